"""How numbers read in a shared report: one place for counts, percents, money, p-values,
the bilingual column labels and the glossary of customer stages.

Every report (and the runner's index pages) formats through these, so a count is always
``12,345`` (never ``12345`` or ``4.000``), a share ``12.3%``, a difference of shares
``+1.8 pp``, money ``¥1,235`` rounded to the yuan (the symbol is the store's: :func:`set_currency`;
Online Retail is in £), a p-value ``< 0.001`` (never ``0.0000`` or ``6.5e-19``), a ratio
``46.7×``, a yes/no ``✓``/``✗`` and a missing value ``—`` (never ``None`` or ``nan``).

Charts: :class:`PercentTicks` labels a percent axis with as many decimals as its ticks need
and no more (no ``0%, 0%, 1%, 1%``), and :func:`percent_locator` places ticks on nice steps.
"""
from __future__ import annotations

import math
import numbers
import os
import re
from typing import Callable, Iterable

from crmlab.settings import Settings, current as current_settings

__all__ = ["Formatter", "MISSING", "CURRENCY_ENV", "set_currency", "get_currency", "is_missing", "number", "integer", "pct", "pp", "money",
           "pvalue", "ratio", "boolean", "days", "change", "interval", "auto", "label", "LABELS", "GLOSSARY",
           "stage_name", "glossary_table", "PercentTicks", "percent_locator", "percent_labels", "fix_percent_axes"]

#: what a missing value reads as
MISSING = "—"
#: environment variable through which the runner gives every notebook of a run its currency
CURRENCY_ENV = "CRMLAB_CURRENCY"
_CURRENCY: list[str | None] = [None]
MINUS = "−"  # U+2212, the typographic minus


def set_currency(symbol: str | None) -> str:
    """The store's currency symbol for every money figure (``¥`` by default, or
    ``$CRMLAB_CURRENCY``; ``£`` for Online Retail). ``None`` or ``""`` keeps the current one.
    Returns the symbol in use."""
    if symbol:
        _CURRENCY[0] = str(symbol)
    return get_currency()


def get_currency() -> str:
    return _CURRENCY[0] or os.environ.get(CURRENCY_ENV) or "¥"


def is_missing(x) -> bool:
    """None, NaN, NaT, pandas NA, an infinite float."""
    if x is None:
        return True
    if isinstance(x, str):
        return False
    try:
        import pandas as pd

        if x is pd.NA or x is pd.NaT:
            return True
    except ImportError:  # pragma: no cover
        pass
    if isinstance(x, numbers.Real):
        return not math.isfinite(float(x))
    try:
        return bool(x != x)
    except (TypeError, ValueError):
        return False


def _signed(text: str, negative: bool, sign: bool) -> str:
    if negative:
        return MINUS + text
    return ("+" + text) if sign else text


def number(x, digits: int = 0, sign: bool = False) -> str:
    """``12345.6`` -> ``"12,346"``; ``digits`` after the point; ``sign``: ``+``/``−`` always."""
    if is_missing(x):
        return MISSING
    v = round(float(x), digits)
    if v == 0:
        v = 0.0  # no "-0"
    return _signed(f"{abs(v):,.{digits}f}", v < 0, sign)


def integer(x, sign: bool = False) -> str:
    """A count: ``4000.0`` -> ``"4,000"``."""
    return number(x, 0, sign)


def _pct_digits(v: float, digits: int | None) -> int:
    if digits is not None:
        return digits
    a = abs(v)
    return 0 if a == 0 or a >= 10 else 1 if a >= 0.1 else 2


def pct(x, digits: int | None = 1, sign: bool = False) -> str:
    """A share: ``0.1234`` -> ``"12.3%"``. ``digits=None``: as many as the size needs
    (``35%``, ``2.5%``, ``0.07%``)."""
    if is_missing(x):
        return MISSING
    v = 100 * float(x)
    d = _pct_digits(v, digits)
    v = round(v, d)
    return _signed(f"{abs(v):,.{d}f}%", v < 0, sign)


def pp(x, digits: int = 1, sign: bool = True) -> str:
    """A difference of two shares, in percentage points: ``0.018`` -> ``"+1.8 pp"``."""
    if is_missing(x):
        return MISSING
    v = round(100 * float(x), digits)
    return _signed(f"{abs(v):,.{digits}f} pp", v < 0, sign)


def money(x, digits: int = 0, currency: str | None = None, sign: bool = False) -> str:
    """``1234.5`` -> ``"¥1,235"`` (rounded to the yuan by default); negative: ``"−¥51"``."""
    if is_missing(x):
        return MISSING
    cur = get_currency() if currency is None else currency
    v = round(float(x), digits)
    return _signed(f"{cur}{abs(v):,.{digits}f}", v < 0, sign)


def pvalue(p, floor: float = 0.001) -> str:
    """``6.5e-19`` -> ``"< 0.001"``; ``0.0321`` -> ``"0.032"`` (three decimals below 0.1, so
    0.049 never reads 0.05); ``0.32`` -> ``"0.32"``."""
    if is_missing(p):
        return MISSING
    p = float(p)
    if p < floor:
        return f"< {floor:g}"
    if p < 0.1:
        return f"{p:.3f}"
    if p > 0.99:
        return "> 0.99"
    return f"{p:.2f}"


def ratio(x, digits: int = 1) -> str:
    """A multiple (ROI, lift): ``46.71`` -> ``"46.7×"``."""
    if is_missing(x):
        return MISSING
    return number(x, digits) + "×"


def boolean(x) -> str:
    """``True`` -> ``"✓"``, ``False`` -> ``"✗"``."""
    if is_missing(x):
        return MISSING
    return "✓" if bool(x) else "✗"


def days(x, unit: bool = True) -> str:
    """A number of days as an integer: ``91.6`` -> ``"92 days"`` (``unit=False``: ``"92"``)."""
    if is_missing(x):
        return MISSING
    n = int(round(float(x)))
    return f"{n:,} day{'s' if abs(n) != 1 else ''}" if unit else f"{n:,}"


def change(new, old, digits: int = 0) -> str:
    """Relative change ``new / old - 1`` with a sign: ``"+88%"``; ``—`` when ``old`` is 0 or missing."""
    if is_missing(new) or is_missing(old) or float(old) == 0:
        return MISSING
    return pct(float(new) / float(old) - 1, digits, sign=True)


def interval(lo, hi, fmt: Callable = pct, **kw) -> str:
    """``[12.1%, 14.0%]``; ``—`` when either end is missing."""
    if is_missing(lo) or is_missing(hi):
        return MISSING
    return f"{fmt(lo, **kw)} – {fmt(hi, **kw)}"


# --------------------------------------------------------------------------- labels

#: column names as words, English and Chinese (the reports' tables use these headers)
LABELS: dict[str, str] = {
    # people and orders
    "customer_id": "Customer 客户", "customers": "Customers 客户数", "buyers": "Buyers 买家数",
    "orders": "Orders 订单数", "paid_orders": "Paid orders 付款订单", "sales": "Sales 销售额",
    "amount": "Amount 金额", "aov": "Avg order 客单价", "units": "Units 件数",
    "new_buyers": "First-time buyers 首购买家", "returning_buyers": "Returning buyers 老客买家",
    "new_sales": "First-time sales 首购销售额", "returning_sales": "Returning sales 老客销售额",
    "returning_buyer_share": "Returning buyers % 老客买家占比", "returning_sales_share": "Returning sales % 老客销售占比",
    "order_share": "Share of orders 订单占比", "sales_share": "Share of sales 销售占比",
    "customer_share": "Share of customers 客户占比", "share": "Share 占比", "count": "Count 数量",
    "example rows": "Example rows 示例行", "month": "Month 月份", "status": "Status 状态",
    "region": "Region 地区", "channel": "Channel 渠道", "segment": "Segment 分群", "rfm": "RFM segment RFM 分群",
    "stage": "Stage 阶段", "stage_cn": "阶段", "名称": "Stage 阶段", "ladder_step": "Ladder step 阶梯",
    "days_since_last": "Days since last order 距上次购买天数", "last_time": "Last order 最近购买",
    "dormancy_threshold": "Dormant after (days) 休眠阈值", "sales_per_customer": "Sales per customer 人均销售额",
    "orders_per_buyer": "Orders per buyer 人均订单", "units_per_buyer": "Units per buyer 人均件数",
    "R": "R", "F": "F", "M": "M", "reason": "Why on the list 入选原因",
    # rates and intervals
    "rate": "Rate 比率", "base": "Base 基数", "ci_low": "95% low 下限", "ci_high": "95% high 上限",
    "k": "Orders so far 已购次数", "at_risk": "At risk 可观察人数", "repurchased": "Came back 复购人数",
    "naive_rate": "Naive rate 朴素比率", "km_rate": "Kaplan–Meier rate", "enough": "Judged 参与判断",
    "eligible": "Observable 可观察", "retained": "Retained 留存",
    "pooled_rate": "Pooled rate 合并比率", "diff_vs_pooled": "Difference vs pooled 与合并比率之差",
    "within_tolerance": "Within tolerance 等效", "needed_at_risk": "Needed at risk 所需人数",
    "magic_number": "Magic number 魔法数字", "window_days": "Window (days) 窗口天数",
    "why_none": "Why no magic number 原因",
    # CLV
    "p_alive": "P(alive) 存活概率", "clv": "CLV 终身价值", "clv_low": "CLV low 下限", "clv_high": "CLV high 上限",
    "frequency": "Repeat purchases 复购次数", "recency": "Recency 最近", "T": "Age 客龄",
    "monetary_value": "Avg repeat order 平均复购金额", "expected_spend": "Expected spend 预期客单",
    "expected_purchases": "Expected purchases 预期购买", "total_clv": "Total CLV 总价值",
    "mean_clv": "Mean CLV 平均价值", "decile": "Decile 十分位", "arm": "Arm 组", "clock": "Clock 时钟", "share_of_value": "Share of value 价值占比", "customers_in_decile": "Customers 客户数",
    "predicted_total": "Predicted 预测", "predicted_low": "Predicted low 预测下限",
    "predicted_high": "Predicted high 预测上限", "actual_total": "Actual 实际", "total_error": "Total error 总误差",
    "mae": "MAE per customer", "observed": "Observed 实际", "expected": "Expected 预期",
    "estimate": "Estimate 估计", "se": "Std. error 标准误", "low": "95% low 下限", "high": "95% high 上限",
    # experiments
    "targeted": "Targeted 目标客户数", "delivered": "Delivered 发送成功数", "segments": "Billed 计费条数",
    "conversion_rate": "Conversion 转化率", "conversion": "Conversion 转化率", "revenue": "Revenue 活动销售额",
    "cost": "Cost 投入成本", "roi": "ROI 投入产出比", "revenue_per_targeted": "Revenue / targeted",
    "ordered": "Ordered 拍下", "unpaid": "Unpaid 未付款", "control_rate": "Control rate 对照转化",
    "control_targeted": "Control targeted 对照人数", "diff": "Difference 差异", "newcomb_low": "95% low 下限",
    "newcomb_high": "95% high 上限", "z": "z", "p_value": "p-value", "p_holm": "p (Holm)",
    "relative_lift": "Relative lift 相对提升", "messaged_rate": "Messaged rate 触达组转化",
    "welch_t": "Welch t", "df": "df", "boot_low": "Bootstrap low", "boot_high": "Bootstrap high",
    "odds_ratio": "Odds ratio 比值比", "or_ci_low": "OR low", "or_ci_high": "OR high",
    "diff_ci_low": "95% low 下限", "diff_ci_high": "95% high 上限", "theta": "θ",
    "variance_reduction": "Variance reduction 方差缩减", "raw_ci_low": "Raw low", "raw_ci_high": "Raw high",
    "cs_low": "Always-valid low", "cs_high": "Always-valid high", "day": "Day 天",
    "incremental_conversion": "Incremental conversion 增量转化", "incremental_revenue": "Incremental revenue 增量收入",
    "incremental_profit": "Incremental profit 增量利润", "messages": "Messages 营销次数",
    "responses": "Responses 响应次数", "response_rate": "Response rate 响应率",
    # ledger, provenance
    "input rows": "Input rows 输入行", "used rows": "Used rows 使用行", "observation end": "Observation end 观察截止",
    "sha256": "sha256", "input": "Input 输入文件", "value": "Value 值", "parameter": "Parameter 参数",
    "rows": "Rows 行",
}


def label(name) -> str:
    """The words for a column name: :data:`LABELS`, else ``snake_case`` as ``Snake case``."""
    if not isinstance(name, str):
        return str(name)
    if name in LABELS:
        return LABELS[name]
    if re.fullmatch(r"[a-z0-9_]+", name) and "_" in name:
        words = name.replace("_", " ")
        return words[0].upper() + words[1:]
    return name


# --------------------------------------------------------------------------- glossary

#: one meaning per stage name in every report (01 monthly buyers, 02 lifecycle, 04 CLV, 05 segments)
GLOSSARY: dict[str, tuple[str, str, str]] = {
    # key: (Chinese, English, definition)
    "potential": ("潜客", "potential", "no paid order yet (only unpaid, refunded or cancelled ones)"),
    "first-time": ("首购客", "first-time buyer", "a buyer whose first paid order ever falls in the period shown "
                                                 "(01's monthly 'new' bars)"),
    "returning buyer": ("老客", "returning buyer", "a buyer of the period who had a paid order before it"),
    "new": ("新客", "new", "exactly one paid order so far, and not dormant"),
    "returning": ("复购客", "returning", "two or more paid orders, not dormant"),
    "fan": ("粉丝", "fan", "returning, in the store's top fifth by orders and by spend, bought recently"),
    "dormant": ("休眠", "dormant", "no paid order for longer than the dormancy threshold (90 days by default), "
                                  "but not lost"),
    "lost": ("流失", "lost", "no paid order for more than 360 days"),
    "wake-up": ("唤醒", "wake-up list", "dormant customers in the top 40% of buyers by spend (RFM spend score M "
                                       "4 or 5): the same customers in 02 and 04; 04 adds each one's P(alive) "
                                       "and CLV and ranks them by CLV; each row's reason says why it is listed"),
}


def stage_name(key: str, lang: str = "both") -> str:
    """``"dormant"`` -> ``"休眠 dormant"`` (``lang="cn"`` / ``"en"`` for one language)."""
    cn, en, _ = GLOSSARY.get(key, (key, key, ""))
    return {"cn": cn, "en": en}.get(lang, f"{cn} {en}")


def glossary_table(keys: Iterable[str] | None = None):
    """The glossary as a small DataFrame (term, definition)."""
    import pandas as pd

    keys = list(GLOSSARY) if keys is None else list(keys)
    return pd.DataFrame({"Term 术语": [stage_name(k) for k in keys],
                         "Meaning 含义": [GLOSSARY[k][2] for k in keys]})


# --------------------------------------------------------------------------- tables

_PVALUE = re.compile(r"(^|_)(p|p_value|p_holm|pvalue)$|^p-value$|^p \(")


def auto(name: str, value) -> str:
    """Format one value by its column's name and type (what :func:`crmlab.report.notebook.table`
    falls back on): booleans ✓/✗, p-values ``< 0.001``, whole numbers as counts."""
    if is_missing(value):
        return MISSING
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return boolean(value)
    if isinstance(value, numbers.Integral):
        return integer(value)
    if isinstance(value, numbers.Real):
        if isinstance(name, str) and _PVALUE.search(name.lower()):
            return pvalue(value)
        v = float(value)
        if v == round(v) and abs(v) < 1e15:
            return integer(v)
        return number(v, 2 if abs(v) < 100 else 0) if abs(v) >= 1 else f"{v:.3g}"
    return str(value)


# --------------------------------------------------------------------------- charts

def _decimals_for(values: Iterable[float], scale: float = 100.0, max_decimals: int = 4) -> int:
    vals = [scale * float(v) for v in values if v is not None and math.isfinite(float(v))]
    for d in range(max_decimals + 1):
        if all(abs(round(v, d) - v) < 1e-9 * max(1.0, abs(v)) for v in vals):
            labels = [f"{round(v, d):.{d}f}" for v in vals]
            if len(set(labels)) == len(labels):
                return d
    return max_decimals


try:
    from matplotlib.ticker import Formatter as _Formatter, MaxNLocator as _MaxNLocator
except ImportError:  # pragma: no cover
    _Formatter, _MaxNLocator = object, None


class PercentTicks(_Formatter):
    """Percent tick labels with the fewest decimals that label every tick exactly: ticks at
    0, 0.005, 0.01 read ``0.0%, 0.5%, 1.0%`` (matplotlib's ``PercentFormatter(decimals=0)``
    printed ``0%, 0%, 1%``). ``xmax``: the data value that is 100% (1 for shares)."""

    def __init__(self, xmax: float = 1.0, symbol: str = "%"):
        self.xmax = float(xmax)
        self.symbol = symbol
        self.decimals = 0

    def set_locs(self, locs):
        super().set_locs(locs)
        vmin, vmax = (self.axis.get_view_interval() if self.axis is not None else (min(locs, default=0),
                                                                                   max(locs, default=0)))
        lo, hi = min(vmin, vmax), max(vmin, vmax)
        tol = 1e-9 * max(abs(lo), abs(hi), 1e-12)
        shown = [v for v in locs if lo - tol <= v <= hi + tol] or list(locs)
        self.decimals = _decimals_for(shown, 100.0 / self.xmax)

    def __call__(self, x, pos=None):
        v = round(100.0 * x / self.xmax, self.decimals)
        if v == 0:
            v = 0.0
        text = f"{abs(v):,.{self.decimals}f}{self.symbol}"
        return (MINUS + text) if v < 0 else text


def percent_locator(nbins: int | str = 6):
    """Ticks on nice steps (1, 2, 2.5, 5 × 10ⁿ) of the data scale."""
    return _MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10])


def percent_labels(lo: float, hi: float, nbins: int = 6, xmax: float = 1.0) -> list[str]:
    """The tick labels a percent axis from ``lo`` to ``hi`` shows (for tests and checks)."""
    loc = percent_locator(nbins)
    ticks = [t for t in loc.tick_values(lo, hi) if lo - 1e-12 <= t <= hi + 1e-12]
    f = PercentTicks(xmax)
    f.set_locs(ticks)
    return [f(t) for t in ticks]


def fix_percent_axes(fig) -> int:
    """Give every percent axis of ``fig`` (one labelled by matplotlib's ``PercentFormatter``,
    colour bars included) :class:`PercentTicks` and nice tick steps. Returns how many."""
    from matplotlib.ticker import FixedLocator, PercentFormatter

    n = 0
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            f = axis.get_major_formatter()
            if isinstance(f, PercentFormatter):
                axis.set_major_formatter(PercentTicks(f.xmax))
                if not isinstance(axis.get_major_locator(), FixedLocator):
                    axis.set_major_locator(percent_locator())
                n += 1
    return n



# --------------------------------------------------------------------------- the formatter

class Formatter:
    """Every text a result shows, formatted from its own settings (its context).

    The module's functions (:func:`money`, :func:`pct` …) format with the session's
    settings; a result formats with the settings it was computed under, so a £ store's
    card says £ and a 50% interval says 50% whatever the session's defaults are.

    Parameters
    ----------
    settings : crmlab.settings.Settings or None
        The context; ``None``: the session's (:func:`crmlab.settings.current`).

    Examples
    --------
    >>> from crmlab.settings import Settings
    >>> f = Formatter(Settings(currency="£", interval_level=0.5))
    >>> f.money(1234.5), f.level(), f.interval_name()
    ('£1,234', '50%', '50% interval')
    """

    def __init__(self, settings: "Settings | None" = None) -> None:
        self.settings = settings if settings is not None else current_settings()

    @property
    def currency(self) -> str:
        return self.settings.currency

    @property
    def timezone(self) -> str:
        return self.settings.timezone

    def money(self, x, digits: int = 0, sign: bool = False) -> str:
        """Money in the context's currency: ``£1,235``."""
        return money(x, digits, currency=self.settings.currency, sign=sign)

    def money_interval(self, lo, hi, digits: int = 0) -> str:
        """``£1,200 – £1,300``."""
        return interval(lo, hi, money, digits=digits, currency=self.settings.currency)

    def level(self, level: float | None = None) -> str:
        """The interval level as a percent (``90%``; ``97.5%``)."""
        v = self.settings.interval_level if level is None else level
        whole = abs(100 * v - round(100 * v)) < 1e-9
        return pct(v, 0 if whole else 1)

    def interval_name(self, level: float | None = None) -> str:
        """``90% interval``."""
        return f"{self.level(level)} interval"

    def when(self, t) -> str:
        """A store-local time: ``2024-11-11 10:00`` (the context's time zone is the reader's)."""
        if is_missing(t):
            return MISSING
        import pandas as pd

        ts = pd.Timestamp(t)
        return f"{ts:%Y-%m-%d %H:%M}" if (ts.hour, ts.minute, ts.second) != (0, 0, 0) else f"{ts:%Y-%m-%d}"

    def axis_money(self, unit: str = "") -> str:
        """A chart axis label for money: ``sales (£)`` or with a unit (``万``)."""
        return f"{unit}{self.settings.currency}" if unit else self.settings.currency
