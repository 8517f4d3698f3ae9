"""The result of a payment-reminder experiment (:class:`ReminderResult`) and its chart: the
share of unpaid orders paid by each hour after creation, one curve per arm (Kaplan–Meier)."""
from __future__ import annotations

from dataclasses import field

import pandas as pd

from crmlab.present.figures import _canvas, pct_axis, style
from crmlab.present.formatting import MISSING
from crmlab.present.result import Card, Result, result
from crmlab.settings import Settings, current

__all__ = ["ReminderResult", "reminder_km_figure"]

_ARM_KEYS = ("arm", "orders", "paid", "share_paid", "ci_low", "ci_high", "recovered_revenue", "cost")


@result
class ReminderResult(Result):
    """``arms``: one row per arm (``none`` first; see :mod:`crmlab.experiments.reminders`),
    ``km``: long ``arm, hours, share_paid``; ``decision`` {``arm``, ``reason``}; ``warnings``;
    ``pay_window_hours``; ``margin``; ``observation_end``; ``settings``: the context."""

    title = "Payment reminders"
    about = "which delay after an unpaid order recovers the most margin, or none"

    arms: pd.DataFrame
    km: pd.DataFrame
    decision: dict
    warnings: list
    pay_window_hours: float
    margin: float
    observation_end: pd.Timestamp | None = None
    settings: Settings = field(default_factory=current)

    def to_frame(self) -> pd.DataFrame:
        """Every arm's numbers (one row per arm, indexed by arm)."""
        return self.arms.set_index("arm") if len(self.arms) else self.arms

    def _as_dict(self) -> dict:
        """The CLI's JSON: ``arms`` (the contract's keys first, then the detail), ``km``,
        ``decision``, ``warnings``."""
        arms = []
        for r in self.arms.to_dict("records"):
            arms.append({**{k: r.get(k) for k in _ARM_KEYS}, **{k: v for k, v in r.items() if k not in _ARM_KEYS}})
        km = {str(a): g[["hours", "share_paid"]].to_dict("records") for a, g in self.km.groupby("arm", sort=False)}
        return {"arms": arms, "km": km, "decision": self.decision, "warnings": list(self.warnings),
                "pay_window_hours": self.pay_window_hours, "margin": self.margin,
                "interval_level": self.context.interval_level, "observation_end": self.observation_end,
                "context": self.settings}

    def _card(self) -> Card:
        f = self.fmt
        d = self.decision or {}
        finding = d.get("reason") or MISSING
        rows = []
        for r in self.arms.to_dict("records"):
            none = r["delay_hours"] == 0
            rows.append({"arm": r["arm"], "unpaid at its delay": f.integer(r["orders"]),
                         "paid in window": f.pct(r["share_paid"]),
                         "without reminder": MISSING if none else f.pct(r["none_share_paid"]),
                         "difference": MISSING if none else f.interval(r["incremental_low"], r["incremental_high"], "pp"),
                         "recovered per reminder": MISSING if none else f.money(r["recovered_revenue"], 2),
                         "cost per reminder": MISSING if none else f.money(r["cost"], 3),
                         "net margin per 100 unpaid orders": MISSING if none else f.money(100 * r["value_per_order"]),
                         f"{f.interval_name()}": MISSING if none else f.money_interval(100 * r["value_low"],
                                                                                       100 * r["value_high"])})
        tab = pd.DataFrame(rows).set_index("arm") if rows else None
        cap = (f"paid within {self.pay_window_hours:g} h of creation, among the arm's orders still unpaid when its "
               "reminder went out, against the no-reminder arm's orders unpaid at the same hour; net margin = "
               f"{f.pct(self.margin, 0)} margin x recovered revenue - SMS cost, per 100 orders unpaid at randomisation")
        return Card(self.title, self.about, finding, tab, cap, tuple(self.warnings),
                    self.footer(self.observation_end, interval=f.interval_name()), hint=".plot(): time to payment by arm")

    def plot(self, ax=None):
        """The share paid by each hour after creation, per arm (:func:`reminder_km_figure`)."""
        return reminder_km_figure(self.km, self.arms, self.pay_window_hours, ax=ax)


def reminder_km_figure(km: pd.DataFrame, arms: pd.DataFrame, window_hours: float, ax=None):
    """Kaplan–Meier share paid by hour since creation, one step line per arm, the delays marked."""
    delays = dict(zip(arms["arm"], arms["delay_hours"])) if len(arms) else {}
    with style():
        fig, ax, given = _canvas(ax, 8, 4)
        for arm, g in km.groupby("arm", sort=False):
            line, = ax.step(g["hours"], g["share_paid"], where="post", label=str(arm))
            d = delays.get(arm, 0)
            if d and d < window_hours:
                ax.axvline(d, color=line.get_color(), ls=":", lw=0.8)
        pct_axis(ax)
        ax.set_xlim(0, window_hours)
        ax.set_xlabel("hours since the order was placed")
        ax.set_ylabel("share paid")
        ax.set_title("付款时间 Time to payment by reminder delay (Kaplan-Meier)")
        ax.legend(fontsize=8, title="reminder", title_fontsize=8)
    return ax if given else fig
