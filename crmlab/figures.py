"""Figures: functions that take computed results and return a matplotlib Figure.

They compute nothing new. Chinese labels render with the Noto Sans CJK SC font shipped in
the ``mplfonts`` wheel; every figure is drawn inside :func:`style` (an ``rc_context``), so
importing crmlab changes no global matplotlib setting.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.figure import Figure

__all__ = ["cjk_font_path", "style"]

COLORS = ["#1f5fa8", "#e07b39", "#3a9a5b", "#b8433d", "#7d5ba6", "#8c6d31", "#5b8fa8"]


def cjk_font_path() -> str | None:
    """Path of a CJK font file that pip installs (Noto Sans CJK SC in mplfonts)."""
    try:
        import mplfonts
    except ImportError:  # pragma: no cover
        return None
    p = os.path.join(os.path.dirname(mplfonts.__file__), "fonts", "NotoSansCJKsc-Regular.otf")
    return p if os.path.exists(p) else None


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Draw inside crmlab's style: CJK-capable font, readable sizes, light grid."""
    path = cjk_font_path()
    family = ["DejaVu Sans"]
    if path:
        font_manager.fontManager.addfont(path)
        family = [font_manager.FontProperties(fname=path).get_name(), "DejaVu Sans"]
    rc = {"font.family": "sans-serif", "font.sans-serif": family, "axes.unicode_minus": False,
          "figure.dpi": 100, "savefig.dpi": 100, "font.size": 11, "axes.titlesize": 13,
          "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
          "axes.prop_cycle": matplotlib.cycler(color=COLORS), "figure.constrained_layout.use": True}
    with matplotlib.rc_context(rc):
        yield


def _fig(w: float = 9, h: float = 4.5, ncols: int = 1, nrows: int = 1):
    fig = Figure(figsize=(w, h), constrained_layout=True)
    axes = fig.subplots(nrows, ncols)
    return fig, axes


def pct_axis(ax, axis: str = "y") -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=0))


# ------------------------------------------------------------------ 01 store overview

def monthly_sales_figure(monthly: pd.DataFrame) -> Figure:
    """Sales by month split new vs returning buyers, and buyers per month."""
    with style():
        fig, (a1, a2) = _fig(10, 4.2, ncols=2)
        x = np.arange(len(monthly))
        labels = [str(p) for p in monthly.index]
        a1.bar(x, monthly["new_sales"] / 1e4, label="新客 new", color=COLORS[0])
        a1.bar(x, monthly["returning_sales"] / 1e4, bottom=monthly["new_sales"] / 1e4, label="老客 returning",
               color=COLORS[1])
        a1.set_title("月销售额 Sales by month (万元 ¥10k)")
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
    return fig


def spread_figure(table: pd.DataFrame, title: str) -> Figure:
    """Horizontal bars of sales share by region or channel."""
    with style():
        fig, ax = _fig(6, 0.35 * len(table) + 1.2)
        t = table.iloc[::-1]
        ax.barh([str(i) for i in t.index], t["sales_share"], color=COLORS[0])
        pct_axis(ax, "x")
        ax.set_title(title)
    return fig
