"""Figures: functions that take computed results and draw them.

They compute nothing new. Each takes an optional ``ax=`` (seaborn's and lifelines' way):

* without it, the function makes a new Figure and returns it; the Figure shows itself in a
  notebook (PNG, crmlab's style) without pyplot, so nothing global is touched;
* with it, the function draws onto that Axes (of any figure: your ``plt.subplots``, a grid,
  another crmlab figure) and returns the Axes, to restyle or to place beside another:

>>> import matplotlib.pyplot as plt  # doctest: +SKIP
>>> fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))  # doctest: +SKIP
>>> retention_curves(table, ax=left)  # doctest: +SKIP
>>> repurchase_curve_figure(curve, ax=right).set_title("After order k")  # doctest: +SKIP

Result objects call them from ``.plot(ax=None)``. Chinese labels render with the Noto Sans
CJK SC font shipped in the ``mplfonts`` wheel; every figure is drawn inside :func:`style`
(an ``rc_context``), so importing crmlab changes no global matplotlib setting.
``monthly_sales_figure`` draws two panels: its ``ax`` is a pair of Axes.
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
from typing import Iterator

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from crmlab.present.formatting import Formatter, integer, pct, pp
from crmlab.present.ticks import PercentTicks, percent_locator
from crmlab.settings import Settings

__all__ = ["cjk_font_path", "style", "CrmlabFigure", "monthly_sales_figure", "spread_figure", "retention_heatmap",
           "retention_curves", "rates_over_time", "stage_bar", "matrix_figure", "repurchase_curve_figure",
           "km_figure", "holdout_figure", "p_alive_heatmap", "clv_figure", "forest_plot", "cumulative_figure"]

# colour-blind safe (Okabe & Ito 2008): no red-green pair; blue and orange first
COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#666666"]


def cjk_font_path() -> str | None:
    """Path of a CJK font file that pip installs (Noto Sans CJK SC in mplfonts)."""
    try:
        import mplfonts
    except ImportError:  # pragma: no cover
        return None
    p = os.path.join(os.path.dirname(mplfonts.__file__), "fonts", "NotoSansCJKsc-Regular.otf")
    return p if os.path.exists(p) else None


@functools.lru_cache(maxsize=1)
def _family() -> tuple[str, ...]:
    path = cjk_font_path()
    if not path:
        return ("DejaVu Sans",)
    font_manager.fontManager.addfont(path)  # once: each call would add the font again
    return (font_manager.FontProperties(fname=path).get_name(), "DejaVu Sans")


def _families() -> list[str]:
    return list(_family())


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Draw inside crmlab's style: CJK-capable font, readable sizes, light grid.

    The font family is named, not the generic ``sans-serif``: text drawn here keeps the CJK
    font when the figure is rendered later elsewhere (pyplot's inline backend, savefig)."""
    family = _families()
    rc = {"font.family": family, "font.sans-serif": family, "axes.unicode_minus": False,
          "figure.dpi": 100, "savefig.dpi": 100, "font.size": 11, "axes.titlesize": 13,
          "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
          "axes.prop_cycle": matplotlib.cycler(color=COLORS), "figure.constrained_layout.use": True}
    with matplotlib.rc_context(rc):
        yield


class CrmlabFigure(Figure):
    """A matplotlib Figure that shows itself in a notebook as a PNG drawn in crmlab's style,
    without pyplot (so no figure is kept open and none is shown twice)."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        with style():
            self.savefig(buf, format="png", dpi=100)
        return buf.getvalue()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        # ahead of the PNG printer pyplot's inline backend registers for every Figure
        return {"image/png": self._repr_png_(), "text/plain": repr(self)}


def _fig(w: float = 9, h: float = 4.5, ncols: int = 1, nrows: int = 1):
    fig = CrmlabFigure(figsize=(w, h), constrained_layout=True)
    axes = fig.subplots(nrows, ncols)
    return fig, axes


def _canvas(ax, w: float, h: float):
    """``(figure, axes, given)``: the caller's ``ax`` and its figure, or a new w × h figure."""
    if ax is not None:
        _cjk_ticks(ax)
        return ax.figure, ax, True
    fig, a = _fig(w, h)
    return fig, a, False


def _cjk_ticks(ax) -> None:
    """Title, axis labels and tick labels of an Axes made outside :func:`style` in crmlab's
    CJK-capable font (their text objects exist already and keep the font they were made
    with), so Chinese labels render."""
    family = _families()
    for t in (ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label):
        t.set_fontfamily(family)
    ax.tick_params(which="both", labelfontfamily=family)  # kept for ticks made later, too


def pct_axis(ax, axis: str = "y") -> None:
    """Percent ticks on nice steps, with the decimals they need and no repeated label."""
    a = ax.yaxis if axis == "y" else ax.xaxis
    a.set_major_formatter(PercentTicks(1.0))
    a.set_major_locator(percent_locator())


# ------------------------------------------------------------------ 01 store overview

def monthly_sales_figure(monthly: pd.DataFrame, ax=None, settings: Settings | None = None):
    """Sales by month split new vs returning buyers, and the returning share by month.

    ``ax``: a pair of Axes (sales, share); returned as given. Without it: a new Figure.
    ``settings``: the store's (the currency on the sales axis); default: the session's."""
    with style():
        if ax is not None:
            a1, a2 = ax
            fig = a1.figure
            _cjk_ticks(a1)
            _cjk_ticks(a2)
        else:
            fig, (a1, a2) = _fig(10, 4.2, ncols=2)
        x = np.arange(len(monthly))
        labels = [str(p) for p in monthly.index]
        a1.bar(x, monthly["new_sales"] / 1e4, label="首购客 first-time", color=COLORS[0])
        a1.bar(x, monthly["returning_sales"] / 1e4, bottom=monthly["new_sales"] / 1e4, label="老客 returning",
               color=COLORS[1])
        a1.set_title(f"月销售额 Sales by month ({Formatter(settings).ten_thousands()})")
        a2.plot(x, monthly["returning_buyer_share"], marker="o", label="老客买家占比 returning buyers")
        a2.plot(x, monthly["returning_sales_share"], marker="s", label="老客销售占比 returning sales")
        pct_axis(a2)
        a2.set_title("老客占比 Returning share")
        for a in (a1, a2):
            step = max(1, len(x) // 8)
            a.set_xticks(x[::step], labels[::step], rotation=30)
            a.legend(fontsize=9)
        if monthly["partial"].any():
            a1.set_xlabel("last month partial 最后一个月未满", fontsize=9)
    return ax if ax is not None else fig


def spread_figure(table: pd.DataFrame, title: str, ax=None):
    """Horizontal bars of sales share by region or channel."""
    with style():
        fig, ax, given = _canvas(ax, 6, 0.35 * len(table) + 1.2)
        t = table.iloc[::-1]
        ax.barh([str(i) for i in t.index], t["sales_share"], color=COLORS[0])
        pct_axis(ax, "x")
        ax.set_title(title)
    return ax if given else fig


# ------------------------------------------------------------------ 02 retention and repurchase

def retention_heatmap(table, max_rows: int = 24, ax=None, min_n: int = 50):
    """Cohort x day retention; censored cells (no eligible customer) blank; n under each rate;
    the cohort's size beside its label; cells with fewer than ``min_n`` eligible customers grey
    (their rate and n still shown) and outside the colour scale."""
    rates = table.rates.iloc[-(max_rows + 1):]
    elig = table.eligible.loc[rates.index]
    sizes = getattr(table, "size", None)
    with style():
        fig, ax, given = _canvas(ax, 1.2 * rates.shape[1] + 3.4, 0.36 * len(rates) + 1.6)
        r = rates.to_numpy(float)
        small = np.isfinite(r) & (elig.to_numpy(float) < min_n)
        shown = np.where(small, np.nan, r)
        data = np.ma.masked_invalid(shown)
        vmax = np.nanmax(shown) if np.isfinite(shown).any() else 1
        im = ax.imshow(data, aspect="auto", cmap="Blues", vmin=0, vmax=vmax or 1)
        for i in range(rates.shape[0]):
            for j in range(rates.shape[1]):
                v = rates.iat[i, j]
                if small[i, j]:
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="#e4e4e4", edgecolor="white", lw=0.5))
                if np.isfinite(v):
                    dark = not small[i, j] and v > 0.6 * (vmax or 1)
                    ax.text(j, i, f"{pct(v)}\nn={integer(elig.iat[i, j])}", ha="center", va="center", fontsize=7,
                            color="white" if dark else "#777" if small[i, j] else "#222")
        ax.set_xticks(range(rates.shape[1]), [f"day {c}" for c in rates.columns])
        ylab = [f"{i}  (n={integer(sizes.get(i))})" if sizes is not None and i in sizes.index and np.isfinite(sizes.get(i))
                else str(i) for i in rates.index]
        ax.set_yticks(range(len(rates)), ylab, fontsize=8)
        ax.grid(False)
        ax.set_title(f"留存率 Retention by cohort ({table.kind}); blank = not yet observable; "
                     f"grey = fewer than {min_n} customers", fontsize=11)
        fig.colorbar(im, ax=ax, shrink=0.6, format=PercentTicks(1.0))
    return ax if given else fig


def retention_curves(table, last_n: int = 6, ax=None):
    """Retention by day for the latest ``last_n`` cohorts with an observable rate, and all cohorts
    together."""
    with style():
        fig, ax, given = _canvas(ax, 8, 4)
        cols = list(table.rates.columns)
        days = all(isinstance(c, (int, float, np.integer, np.floating)) and c > 0 for c in cols)
        x = [float(c) for c in cols] if days else [str(c) for c in cols]  # days on a real (log) axis
        # the latest cohorts with a rate to draw (a cohort too young for every day is censored: no line)
        drawn = [r for r in table.rates.index if r != "all cohorts" and table.rates.loc[r].notna().any()]
        rows = drawn[-last_n:] + ["all cohorts"]
        for r in rows:
            ax.plot(x, table.rates.loc[r].to_numpy(float), marker="o", lw=3 if r == "all cohorts" else 1.2,
                    label=str(r), color="#222" if r == "all cohorts" else None)
        pct_axis(ax)
        if days:
            ax.set_xscale("log")
            ax.set_xticks(x, [f"{c:g}" for c in x])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("day after first order 首单后第N天" + (" (log scale)" if days else ""))
        ax.set_title("留存曲线 Retention curves")
        ax.legend(fontsize=8, ncol=2)
    return ax if given else fig


def rates_over_time(frames: dict, title: str, ax=None):
    """Rates per period with Wilson 95% bands, one line per frame (e.g. 次月/次季度复购率)."""
    with style():
        fig, ax, given = _canvas(ax, 9, 4)
        for label, f in frames.items():
            f = f[f["rate"].notna()]
            x = f.index.to_timestamp() if hasattr(f.index, "to_timestamp") else f.index
            ax.plot(x, f["rate"], marker="o", label=label)
            ax.fill_between(x, f["ci_low"], f["ci_high"], alpha=0.2)
        pct_axis(ax)
        ax.set_title(title)
        ax.legend(fontsize=9)
    return ax if given else fig


def stage_bar(counts: pd.DataFrame, ax=None):
    """Customers per lifecycle stage."""
    with style():
        fig, ax, given = _canvas(ax, 8, 3.5)
        labels = [f"{i}\n{r['名称']}" for i, r in counts.iterrows()]
        ax.bar(labels, counts["customers"], color=COLORS[0])
        for i, (n, s) in enumerate(zip(counts["customers"], counts["share"])):
            ax.text(i, n, f"{integer(n)}\n{pct(s)}", ha="center", va="bottom", fontsize=8)
        ax.set_title("生命周期 Customers by lifecycle stage")
        ax.set_ylim(0, counts["customers"].max() * 1.25)
    return ax if given else fig


def matrix_figure(m: pd.DataFrame, title: str, ax=None):
    """A count matrix (e.g. stage transitions) as an annotated heat map."""
    with style():
        fig, ax, given = _canvas(ax, 1.1 * m.shape[1] + 3, 0.5 * m.shape[0] + 1.5)
        ax.imshow(m.to_numpy(float), cmap="Oranges", aspect="auto")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(j, i, integer(m.iat[i, j]), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(m.shape[1]), [str(c) for c in m.columns], rotation=20)
        ax.set_yticks(range(m.shape[0]), [str(i) for i in m.index])
        ax.set_xlabel(m.columns.name or "")
        ax.set_ylabel(m.index.name or "")
        ax.grid(False)
        ax.set_title(title)
    return ax if given else fig


# ------------------------------------------------------------------ 03 magic number

def repurchase_curve_figure(curve, magic: int | None = None, ax=None):
    """The censoring-aware curve with Wilson intervals, the naive curve and Kaplan-Meier beside it."""
    t = curve.table
    with style():
        fig, ax, given = _canvas(ax, 9, 4.5)
        ok = t["enough"]
        def bars(m):  # interval ends a float step inside the point estimate would be negative lengths
            return [(t["rate"][m] - t["ci_low"][m]).clip(lower=0), (t["ci_high"][m] - t["rate"][m]).clip(lower=0)]
        ax.errorbar(t["k"][ok], t["rate"][ok], yerr=bars(ok),
                    marker="o", capsize=3, lw=2, label=f"复购率 within {curve.window_days} days (censoring-aware)")
        if (~ok).any():
            ax.errorbar(t["k"][~ok], t["rate"][~ok],
                        yerr=bars(~ok),
                        fmt="o", color="#999", capsize=3, label=f"too few at risk (< {curve.min_at_risk})")
        ax.plot(t["k"], t["km_rate"], ls=":", marker="^", label="Kaplan-Meier P(next ≤ window)")
        ax.plot(t["k"], t["naive_rate"], ls="--", marker="s", color=COLORS[3],
                label="naive: ≥k+1 / ≥k orders (biased for recent customers)")
        if magic is not None:  # named in the legend: no label on the axes covers a point
            ax.axvline(magic, color=COLORS[2], lw=2, alpha=0.6, label=f"magic number 魔法数字 = {magic}")
        pct_axis(ax)
        ax.set_xticks(t["k"])
        ax.set_xlabel("orders so far k 已购次数")
        ax.set_ylabel("P(order k+1)")
        ax.set_title("复购魔法数字 Repurchase rate by order count")
        # the legend under the axes, outside the data (inside, on a phone, it covered the 1-order point)
        handles, labels = ax.get_legend_handles_labels()
        first = sorted(range(len(labels)), key=lambda i: not labels[i].startswith("复购率"))  # the curve first
        ax.legend([handles[i] for i in first], [labels[i] for i in first], fontsize=8, loc="upper center",
                  bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    return ax if given else fig


def km_figure(km: pd.DataFrame, window_days: int, ax=None):
    """Kaplan-Meier P(next order by day d) after the k-th order, one line per k."""
    with style():
        fig, ax, given = _canvas(ax, 8, 4)
        for k, g in km.groupby("k"):
            ax.step(g["day"], g["p_next"], where="post", label=f"after order {k}")
        ax.axvline(window_days, color="#999", ls="--")
        pct_axis(ax)
        ax.set_xlabel("days since order k")
        ax.set_ylabel("P(next order by then)")
        ax.set_title("下一单时间 Time to next order (Kaplan-Meier, censored at observation end)")
        ax.legend(fontsize=8)
    return ax if given else fig


# ------------------------------------------------------------------ 04 CLV

def holdout_figure(by_frequency: pd.DataFrame, models: list[str], ax=None):
    """Mean holdout purchases by calibration frequency: actual bars, each model's prediction."""
    with style():
        fig, ax, given = _canvas(ax, 8, 4)
        x = np.arange(len(by_frequency))
        ax.bar(x, by_frequency["actual"], color="#cccccc", label="actual 实际")
        for m in models:
            ax.plot(x, by_frequency[m], marker="o", label=f"{m} predicted")
        ax.set_xticks(x, by_frequency.index)
        ax.set_xlabel("repeat purchases in calibration period")
        ax.set_ylabel("mean purchases in holdout")
        ax.set_title("预测 vs 实际 Holdout: predicted vs actual")
        ax.legend(fontsize=8)
    return ax if given else fig


def p_alive_heatmap(matrix: pd.DataFrame, T: float, unit: str, ax=None):
    """P(alive) by frequency and recency for customers of age T."""
    with style():
        fig, ax, given = _canvas(ax, 8, 4.5)
        im = ax.imshow(np.ma.masked_invalid(matrix.to_numpy(float)), origin="lower", aspect="auto", cmap="viridis",
                       vmin=0, vmax=1, extent=[matrix.columns.min(), matrix.columns.max(), -0.5, len(matrix) - 0.5])
        ax.set_xlabel(f"recency (last purchase, {unit} after the first)")
        ax.set_ylabel("frequency (repeat purchases)")
        ax.grid(False)
        ax.set_title(f"存活概率 P(alive) for customers first seen {T:.0f} {unit} ago")
        fig.colorbar(im, ax=ax, format=PercentTicks(1.0))
    return ax if given else fig


def clv_figure(deciles: pd.DataFrame, horizon_months: int, ax=None):
    """Share of expected value by CLV decile (10 = top)."""
    with style():
        fig, ax, given = _canvas(ax, 8, 3.8)
        ax.bar([str(i) for i in deciles.index], deciles["share_of_value"], color=COLORS[1])
        for i, v in enumerate(deciles["share_of_value"]):
            ax.text(i, v, pct(v, 0), ha="center", va="bottom", fontsize=8)
        pct_axis(ax)
        ax.set_xlabel("CLV decile (10 = most valuable tenth)")
        ax.set_title(f"终身价值分布 Share of {horizon_months}-month expected value by decile")
    return ax if given else fig


# ------------------------------------------------------------------ 05 SMS experiment

def forest_plot(rows: pd.DataFrame, title: str, reference: str, ax=None):
    """Differences in conversion (percentage points) with 95% intervals, one row each.

    ``rows``: index labels, columns ``diff``, ``low``, ``high``.
    """
    with style():
        fig, ax, given = _canvas(ax, 8, 0.55 * len(rows) + 1.6)
        y = np.arange(len(rows))[::-1]
        ax.errorbar(100 * rows["diff"], y, xerr=[100 * (rows["diff"] - rows["low"]), 100 * (rows["high"] - rows["diff"])],
                    fmt="o", capsize=4, lw=2, color=COLORS[0])
        for yi, (_, r) in zip(y, rows.iterrows()):
            ax.text(100 * r["high"], yi, f"  {pp(r['diff'], 2)}", va="center", fontsize=9)
        ax.axvline(0, color="#999", ls="--")
        ax.set_yticks(y, [str(i) for i in rows.index])
        ax.set_xlabel(f"difference in conversion, percentage points (vs {reference})")
        ax.set_title(title)
    return ax if given else fig


def cumulative_figure(cum: pd.DataFrame, window_hours: float, ax=None):
    """Share of targeted customers who bought by hour h after the send, per arm."""
    with style():
        fig, ax, given = _canvas(ax, 8, 4)
        for arm in cum.columns:
            ax.step(cum.index, cum[arm], where="post", label=str(arm), lw=2 if arm == "holdout" else 1.5,
                    ls="--" if arm == "holdout" else "-")
        pct_axis(ax)
        ax.set_xlim(0, window_hours)
        ax.set_xlabel("hours after the send 发送后小时")
        ax.set_title("累计转化 Cumulative conversion in the attribution window")
        ax.legend(fontsize=8)
    return ax if given else fig
