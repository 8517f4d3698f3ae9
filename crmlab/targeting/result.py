"""The result of :func:`crmlab.targeting.pipeline.target`: :class:`TargetingResult`."""
from __future__ import annotations

from dataclasses import field

import pandas as pd

from crmlab.present.figures import _canvas
from crmlab.present.formatting import integer, number
from crmlab.present.result import Card, Result, result
from crmlab.settings import Settings, current

__all__ = ["TargetingResult", "SEND_LIST_COLUMNS"]

#: the columns of send_list.csv (the contract of issue 27)
SEND_LIST_COLUMNS = ("customer_id", "arm", "expected_incremental_profit", "uplift_pp", "rank")


@result
class TargetingResult(Result):
    """Whom to message: the learner, its held-out evaluation, the policy and the send list.

    ``to_dict()`` is ``crmlab target --json`` (keys of issue 27): ``learner``, ``features``,
    ``fallback`` (None, or why the list is not targeted), ``qini``, ``uplift_at_k``,
    ``budget_curve``, ``policy``, ``send_to_all``, ``warnings``. ``send_list`` has one row per
    candidate (:data:`SEND_LIST_COLUMNS`); ``calibration`` is predicted vs observed uplift by
    decile; ``importance`` the top features of the uplift (a shallow surrogate tree's
    importances)."""

    learner: str
    features: list
    fallback: str | None
    qini: dict
    uplift_at_k: list
    budget_curve: pd.DataFrame
    policy: dict
    send_to_all: dict
    send_list: pd.DataFrame
    calibration: pd.DataFrame
    importance: pd.Series
    warnings: list = field(default_factory=list)
    parameters: dict = field(default_factory=dict)
    observation_end: object = None
    settings: Settings = field(default_factory=current)

    title = "TargetingResult"
    about = "whom to message: uplift targeting"

    def _card(self) -> Card:
        f, p, s = self.fmt, self.policy, self.send_to_all
        lvl = f.level()
        if self.fallback:
            finding = f"{self.fallback}: " + (f"send {s['arm']} to everyone" if p["messages"] else "send to no one")
        else:
            finding = (f"send {integer(p['messages'])} messages for {f.money(p['cost'])}: expected "
                       f"{f.money(p['incremental_profit'])} extra profit ({lvl} interval {f.money(p['ci_low'])} to "
                       f"{f.money(p['ci_high'])}) vs {f.money(s['incremental_profit'])} sending {s['arm']} to all")
        b = self.budget_curve
        tab = pd.DataFrame({"messages": b["messages"].map(integer), "cost": b["cost"].map(f.money),
                            "expected extra profit": b["incremental_profit"].map(f.money),
                            f"held-out {lvl} interval": [f"{f.money(lo)} to {f.money(hi)}" for lo, hi in
                                                         zip(b["ci_low"], b["ci_high"])]})
        q = self.qini
        cap = (f"learner {self.learner}; Qini AUUC {number(q['auuc'], 4)} ({lvl} interval {number(q['ci_low'], 4)} "
               f"to {number(q['ci_high'], 4)}); the interval of each list is its held-out (doubly robust) estimate")
        return Card(self.title, self.about, finding, tab.iloc[:: max(1, len(tab) // 8)], cap, tuple(self.warnings),
                    self.footer(self.observation_end), hint=".send_list, .plot(), .calibration, .importance")

    def to_frame(self) -> pd.DataFrame:
        """The send list (one row per candidate)."""
        return self.send_list.copy()

    def plot(self, ax=None, kind: str = "budget"):
        """``kind="budget"``: expected extra profit against the SMS cost with the held-out band;
        ``kind="qini"``: the Qini curve against the random line."""
        fig, ax, _ = _canvas(ax, 9, 4.5)
        if kind == "qini":
            c = pd.DataFrame(self.qini["curve"])
            ax.plot(c["share"], c["uplift"], label=f"{self.learner} learner")
            ax.plot([0, 1], [0, c["uplift"].iloc[-1]], ls="--", color="grey", label="random")
            ax.set_xlabel("share of customers targeted")
            ax.set_ylabel("incremental conversions per customer")
        else:
            b = self.budget_curve
            ax.fill_between(b["cost"], b["ci_low"], b["ci_high"], alpha=0.25, label=f"held-out {self.fmt.level()}")
            ax.plot(b["cost"], b["incremental_profit"], marker="o", label="expected")
            ax.set_xlabel(f"SMS cost ({self.fmt.axis_money()})")
            ax.set_ylabel(f"extra profit ({self.fmt.axis_money()})")
        ax.legend()
        return fig

    def _as_dict(self) -> dict:
        curve = self.budget_curve
        return {"learner": self.learner, "features": list(self.features), "fallback": self.fallback,
                "qini": self.qini, "uplift_at_k": self.uplift_at_k,
                "budget_curve": curve.to_dict("records"), "policy": self.policy, "send_to_all": self.send_to_all,
                "warnings": list(self.warnings), "calibration": self.calibration.reset_index().to_dict("records"),
                "importance": {str(k): float(v) for k, v in self.importance.items()},
                "parameters": self.parameters, "context": self.settings}
