"""How numbers read in a shared report: one place for counts, percents, money, p-values,
the bilingual column labels and the glossary of customer stages.

Every report (and the runner's index pages) formats through these, so a count is always
``12,345`` (never ``12345`` or ``4.000``), a share ``12.3%``, a difference of shares
``+1.8 pp``, money ``¥1,235`` rounded to the yuan (the symbol is the store's: :func:`set_currency`;
Online Retail is in £), a p-value ``< 0.001`` (never ``0.0000`` or ``6.5e-19``), a ratio
``46.7×``, a yes/no ``✓``/``✗`` and a missing value ``—`` (never ``None`` or ``nan``).

Charts: :class:`crmlab.present.ticks.PercentTicks` labels a percent axis with as many decimals as its ticks need
and no more (no ``0%, 0%, 1%, 1%``), and :func:`percent_locator` places ticks on nice steps.
"""
from __future__ import annotations

import math
import numbers
import os
import re
from typing import Callable, Iterable

import pandas as pd

from crmlab.present.glossary import GLOSSARY, LABELS, glossary_table, label, stage_name
from crmlab.settings import DEFAULT, Settings, configure, current as current_settings

__all__ = ["Formatter", "MISSING", "CURRENCY_ENV", "set_currency", "get_currency", "is_missing", "number", "integer", "pct", "pp", "money",
           "pvalue", "p_is", "ratio", "boolean", "days", "change", "interval", "auto", "label", "LABELS", "GLOSSARY",
           "stage_name", "glossary_table"]

#: what a missing value reads as
MISSING = "—"
#: environment variable through which the report runner gives a run its currency: a fallback
#: read only while the session keeps the default currency (until the runner passes settings)
CURRENCY_ENV = "CRMLAB_CURRENCY"
#: no longer read (the session's settings hold the currency); kept for old monkeypatches
_CURRENCY: list[str | None] = [None]
MINUS = "−"  # U+2212, the typographic minus


def set_currency(symbol: str | None) -> str:
    """Set the session's currency symbol for every money figure (a shortcut for
    ``crmlab.settings.configure(currency=...)``; ``¥`` by default, ``£`` for Online Retail).
    ``None`` or ``""`` keeps the current one. Returns the symbol in use."""
    if symbol:
        configure(currency=str(symbol))
    return get_currency()


def get_currency() -> str:
    """The session's currency (:func:`crmlab.settings.current`); while it is the default,
    ``$CRMLAB_CURRENCY`` when set."""
    cur = current_settings().currency
    if cur == DEFAULT.currency:
        return os.environ.get(CURRENCY_ENV) or cur
    return cur


def is_missing(x) -> bool:
    """None, NaN, NaT, pandas NA, an infinite float."""
    if x is None:
        return True
    if isinstance(x, str):
        return False
    if x is pd.NA or x is pd.NaT:
        return True
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



def p_is(p, floor: float = 0.001) -> str:
    """A p-value as a phrase: ``"p = 0.017"``, ``"p < 0.001"`` (never ``p = 1.3e-05``)."""
    text = pvalue(p, floor)
    return f"p {text}" if text.startswith("<") else f"p = {text}"

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
        if settings is None:  # the session's, with the runner's currency while it keeps the default
            settings = current_settings()
            settings = settings.replace(currency=get_currency()) if settings.currency == DEFAULT.currency else settings
        self.settings = settings

    @property
    def currency(self) -> str:
        return self.settings.currency

    @property
    def timezone(self) -> str:
        return self.settings.timezone

    # numbers that do not depend on the context: the module's functions, for one spelling
    number = staticmethod(number)
    integer = staticmethod(integer)
    pct = staticmethod(pct)
    pp = staticmethod(pp)
    pvalue = staticmethod(pvalue)
    ratio = staticmethod(ratio)
    boolean = staticmethod(boolean)
    days = staticmethod(days)
    change = staticmethod(change)
    auto = staticmethod(auto)

    def money(self, x, digits: int = 0, sign: bool = False) -> str:
        """Money in the context's currency: ``£1,235``."""
        return money(x, digits, currency=self.settings.currency, sign=sign)

    def money_interval(self, lo, hi, digits: int = 0) -> str:
        """``£1,200 – £1,300``."""
        return interval(lo, hi, money, digits=digits, currency=self.settings.currency)

    def interval(self, lo, hi, kind: str = "pct", digits: int | None = None) -> str:
        """An interval in brackets, ``[12.1%, 14.0%]`` (``kind``: ``"pct"``, ``"pp"``,
        ``"money"`` or ``"number"``); ``—`` when either end is missing."""
        if is_missing(lo) or is_missing(hi):
            return MISSING
        one = {"pct": lambda v: pct(v, 1 if digits is None else digits),
               "pp": lambda v: pp(v, 1 if digits is None else digits),
               "money": lambda v: self.money(v, digits or 0),
               "number": lambda v: number(v, digits or 0)}[kind]
        return f"[{one(lo)}, {one(hi)}]"

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
        ts = pd.Timestamp(t)
        return f"{ts:%Y-%m-%d %H:%M}" if (ts.hour, ts.minute, ts.second) != (0, 0, 0) else f"{ts:%Y-%m-%d}"

    def timestamp(self, t) -> str | None:
        """A store-local moment to the second (``2025-12-31 23:59:59``), as card footers show
        observation ends; ``None`` when missing (the footer leaves it out)."""
        if is_missing(t):
            return None
        return f"{pd.Timestamp(t):%Y-%m-%d %H:%M:%S}"

    def axis_money(self, unit: str = "") -> str:
        """A chart axis label for money: the currency, or with a unit (``万£``)."""
        return f"{unit}{self.settings.currency}" if unit else self.settings.currency

    def ten_thousands(self) -> str:
        """The unit of an axis in ten thousands: ``万元 ¥10k`` for yuan, ``万 £10k`` otherwise."""
        cur = self.settings.currency
        return f"万{'元' if cur in ('¥', '￥', 'CN¥', 'RMB') else ''} {cur}10k"
