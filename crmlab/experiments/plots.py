"""Figures of notebook 05's experiment sections: CUPED intervals, daily monitoring, response history."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from crmlab.present.figures import COLORS, pct_axis, style
from crmlab.present.formatting import Formatter
from crmlab.settings import Settings

__all__ = ["cuped_figure", "monitoring_figure", "response_figure"]


def cuped_figure(rows: pd.DataFrame, title: str, unit: str) -> Figure:
    """Raw and CUPED 95% intervals per arm. ``rows``: index arms; columns ``raw_low``,
    ``raw_high``, ``raw_diff``, ``cuped_low``, ``cuped_high``, ``cuped_diff``."""
    with style():
        fig = Figure(figsize=(8, 0.7 * len(rows) + 1.6), constrained_layout=True)
        ax = fig.subplots()
        y = np.arange(len(rows))[::-1]
        for k, (name, off, c) in enumerate((("raw", 0.12, COLORS[1]), ("cuped", -0.12, COLORS[0]))):
            d, lo, hi = rows[f"{name}_diff"], rows[f"{name}_low"], rows[f"{name}_high"]
            ax.errorbar(d, y + off, xerr=[d - lo, hi - d], fmt="o", capsize=4, lw=2, color=c,
                        label="raw Welch" if name == "raw" else "CUPED")
        ax.axvline(0, color="#999", ls="--")
        ax.set_yticks(y, [str(i) for i in rows.index])
        ax.set_xlabel(unit)
        ax.set_title(title)
        ax.legend(fontsize=9)
    return fig


def monitoring_figure(mon: pd.DataFrame, metric: str = "conversion", settings: Settings | None = None,
                      level: float = 0.95) -> Figure:
    """Per arm: the difference by day with the fixed-horizon interval and the confidence sequence.

    ``settings``: the context whose currency labels the revenue axis (default: the session's);
    ``level``: the intervals' level (1 - alpha of the monitoring), named in the legend."""
    lvl = Formatter(settings).level(level)
    pre = "" if metric == "conversion" else "rev_"
    scale = 100 if metric == "conversion" else 1
    arms = list(dict.fromkeys(mon["arm"]))
    with style():
        fig = Figure(figsize=(9, 2.6 * ((len(arms) + 1) // 2) + 0.6), constrained_layout=True)
        axes = np.atleast_1d(fig.subplots((len(arms) + 1) // 2, min(2, len(arms)), sharey=True)).ravel()
        for ax, a in zip(axes, arms):
            g = mon[mon["arm"] == a]
            x = g["day"].to_numpy()
            ax.fill_between(x, scale * g[f"{pre}cs_low"], scale * g[f"{pre}cs_high"], color=COLORS[0], alpha=0.15,
                            label=f"always-valid {lvl} sequence")
            ax.fill_between(x, scale * g[f"{pre}ci_low"], scale * g[f"{pre}ci_high"], color=COLORS[1], alpha=0.3,
                            label=f"fixed-horizon {lvl} CI")
            ax.plot(x, scale * g[f"{pre}diff"], "o-", color=COLORS[0], lw=1.5)
            ax.axhline(0, color="#999", ls="--")
            ax.set_title(f"{a} vs {g['vs'].iloc[0]} ({g['control_clock'].iloc[0]})", fontsize=10)
            ax.set_xlabel("day since the send")
            ax.set_xticks(x)
        for ax in axes[len(arms):]:
            ax.set_visible(False)
        axes[0].set_ylabel("points" if metric == "conversion"
                           else f"{Formatter(settings).currency} per targeted customer")
        axes[0].legend(fontsize=8, loc="upper left")
        fig.suptitle("每日监测 Daily looks: " + ("conversion difference" if metric == "conversion"
                                                  else "revenue per targeted customer"))
    return fig


def response_figure(history: pd.DataFrame) -> Figure:
    """Messages per customer, and the response rate of customers with at least two messages."""
    with style():
        fig = Figure(figsize=(9, 3.6), constrained_layout=True)
        a1, a2 = fig.subplots(1, 2)
        counts = history["messages"].value_counts().sort_index()
        a1.bar(counts.index.astype(str), counts.to_numpy(), color=COLORS[0])
        a1.set_xlabel("营销次数 messages received")
        a1.set_ylabel("customers")
        a1.set_title("Messages per customer")
        many = history[history["messages"] >= 2]["response_rate"].dropna()
        if len(many):
            a2.hist(many, bins=np.linspace(0, 1, 11), color=COLORS[2])
            pct_axis(a2, "x")
            a2.set_title("响应率 Response rate (>= 2 messages)")
        else:
            a2.text(0.5, 0.5, "no customer has two messages yet", ha="center", va="center", transform=a2.transAxes)
            a2.set_axis_off()
    return fig
