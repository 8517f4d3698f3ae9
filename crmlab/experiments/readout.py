"""The whole readout of an SMS experiment: :func:`analyse_experiment` and its result."""
from __future__ import annotations

from dataclasses import field
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from crmlab.engine.sources import order_table
from crmlab.experiments.cuped import cuped_lin
from crmlab.experiments.decision import decide, no_verdict_decision
from crmlab.experiments.factorial import factorial_effects
from crmlab.experiments.metrics import (DEFAULT_PRICE_PER_MESSAGE, HOLDOUT_NAMES, arm_table, campaign_outcomes,
                                        compare_proportions, control_rows, first_order_time, holm, parse_split,
                                        srm_check, welch_revenue)
from crmlab.experiments.monitoring import monitor_experiment
from crmlab.experiments.profit import INTERACTION_MARGIN, arm_profits
from crmlab.experiments.preconditions import verdict_preconditions
from crmlab.present.figures import forest_plot
from crmlab.present.formatting import integer, number, p_is, pct, pp
from crmlab.present.result import Card, Result, result
from crmlab.schema import CrmlabInputError
from crmlab.settings import Settings, current

__all__ = ["ExperimentResult", "analyse_experiment", "key_findings"]

_OBJECT_COLUMNS = ("revenue", "cuped", "control_clock")


@result
class ExperimentResult(Result):
    """Everything the report and the CLI show (``to_dict()`` is the CLI's JSON).

    ``no_verdict_reason`` is None when there is a verdict; otherwise why not (the data cannot
    carry the tests: then ``comparisons`` and ``incremental`` are empty, ``factorial`` None and
    ``chi2_all_arms``' statistics None, while ``arms`` keeps the counts; or a blocker such as a
    sample ratio mismatch: then the tests are there and the choice is only provisional).
    ``parameters`` are the analysis' choices (alpha, margin, price per message, seed, current
    copy, target effect; ``to_dict()["settings"]`` in the CLI's JSON); ``settings`` is the
    context (the orders' :class:`~crmlab.settings.Settings`: currency, time zone, engine).
    """

    window_hours: float
    control: str
    arms: pd.DataFrame
    comparisons: pd.DataFrame
    chi2_all_arms: dict
    srm: dict
    factorial: dict | None
    verdict: str
    decision: dict
    incremental: pd.DataFrame
    window_complete_share: float
    warnings: list = field(default_factory=list)
    outcomes: pd.DataFrame | None = None  # one row per targeted customer (campaign_outcomes)
    holdout_clock: str = "none"
    cuped_days: int = 0
    parameters: dict = field(default_factory=dict)
    monitoring: pd.DataFrame | None = None
    monitoring_method: dict | None = None
    no_verdict_reason: str | None = None
    settings: Settings = field(default_factory=current)

    def _card(self) -> Card:
        """The decision, each arm's conversion and revenue, each arm against the control."""
        d = self.decision or {}
        finding = ("no verdict yet: " + "; ".join(d["blockers"])) if d.get("blockers") else (d.get("reason")
                                                                                               or self.verdict)
        a, c, vs = self.arms, self.comparisons, f"vs {self.control} (pp)"
        tab = pd.DataFrame({"targeted": a["targeted"].map(integer), "buyers": a["buyers"].map(integer),
                            "conversion": a["conversion_rate"].map(lambda x: pct(x, 2)),
                            "revenue / targeted": a["revenue_per_targeted"].map(lambda x: self.fmt.money(x, 2))},
                           index=a.index)
        tab[vs] = ""
        tab["Holm p"] = ""
        for arm in c.index:
            tab.at[arm, vs] = (f"{number(100 * c.at[arm, 'diff'], 2, sign=True)} "
                               f"[{number(100 * c.at[arm, 'ci_low'], 2)}, {number(100 * c.at[arm, 'ci_high'], 2)}]")
            tab.at[arm, "Holm p"] = f"{c.at[arm, 'p_holm']:.3g}"
        return Card("ExperimentResult", "SMS experiment readout", finding, tab,
                    f"converted: a paid order within {self.window_hours:g} hours of the send; each arm against the "
                    f"{self.control} on its own clock", tuple(self.warnings),
                    self.footer(window=f"{self.window_hours:g} h"), hint=".decision, .comparisons, .plot()")

    def to_frame(self) -> pd.DataFrame:
        """The arms: counts, conversion, revenue and cost per arm (``arms``)."""
        return self.arms.copy()

    def plot(self, ax=None):
        """Each arm's difference in conversion from the control with its 95% interval
        (:func:`crmlab.present.figures.forest_plot`); the new Figure, or ``ax`` when given."""
        rows = self.comparisons[["diff", "ci_low", "ci_high"]].astype(float)
        return forest_plot(rows.rename(columns={"ci_low": "low", "ci_high": "high"}),
                           "各组 vs 对照 Arms vs control", self.control, ax=ax)

    def _as_dict(self) -> dict:
        """The CLI's JSON (made JSON-safe by the base's :func:`~crmlab.present.result.json_safe`)."""
        arms = [{"arm": a, **{k: (v if k not in ("targeted", "sends", "delivered", "buyers", "orders", "ordered",
                                                  "unpaid") or pd.isna(v) else int(v)) for k, v in r.items()}}
                for a, r in self.arms.iterrows()]
        comps = [{"arm": a, "vs": self.control, **r.to_dict()} for a, r in self.comparisons.iterrows()]
        out = {"window_hours": self.window_hours, "control": self.control, "holdout_clock": self.holdout_clock,
               "arms": arms, "comparisons": comps, "chi2_all_arms": self.chi2_all_arms, "srm": self.srm,
               "factorial": self.factorial, "verdict": self.verdict, "no_verdict_reason": self.no_verdict_reason,
               "decision": self.decision,
               "incremental": self.incremental.reset_index().to_dict("records"),
               "window_complete_share": self.window_complete_share, "warnings": self.warnings,
               "cuped_days": self.cuped_days, "settings": self.parameters, "context": self.settings}
        if self.monitoring is not None:
            out["monitoring"] = _monitoring_records(self.monitoring)
            out["monitoring_method"] = self.monitoring_method
        return out


def _monitoring_records(m: pd.DataFrame) -> list[dict]:
    rec = []
    for r in m.itertuples(index=False):
        d = r._asdict()
        d["look_time"] = str(d["look_time"])
        d["revenue"] = {k[4:]: d.pop(k) for k in list(d) if k.startswith("rev_")}
        rec.append(d)
    return rec


def _compare(outcomes: pd.DataFrame, a: str, control: str, correct: bool, seed: int, cuped_days: int,
             alpha: float) -> dict:
    t = outcomes[outcomes["arm"] == a]
    c = control_rows(outcomes, a, control)
    d = compare_proportions(int(t["converted"].sum()), len(t), int(c["converted"].sum()), len(c), correct)
    d["control_targeted"] = len(c)
    d["control_clock"] = str(c["clock"].iloc[0]) if len(c) and c["clock"].nunique() == 1 else "all"
    d["revenue"] = welch_revenue(t["revenue"].to_numpy(), c["revenue"].to_numpy(), seed=seed)
    d["cuped"] = None
    if cuped_days:
        d["revenue"]["cuped"] = cuped_lin(t["revenue"], t["pre_spend"], c["revenue"], c["pre_spend"], alpha)
        d["cuped"] = cuped_lin(t["converted"].astype(float), t["pre_orders"], c["converted"].astype(float),
                                 c["pre_orders"], alpha)
    return d


def analyse_experiment(sends: pd.DataFrame, orders, window_hours: float = 72,
                       arm_column: str = "variant", control: str | None = None,
                       planned_split: Mapping[str, float] | str | None = None, planned_n_per_arm: int | None = None,
                       alpha: float = 0.05, correct: bool = False, campaign: str | None = None, seed: int = 0,
                       observation_end=None, engine=None, *, price_per_message: float = DEFAULT_PRICE_PER_MESSAGE,
                       margin: float = 0.3, cuped_days: int = 90, monitor: bool = False,
                       current_copy: str | None = None, target_effect: float | None = None,
                       cs_tuning: float | None = None,
                       interaction_margin: float = INTERACTION_MARGIN) -> ExperimentResult:
    """The full analysis behind notebook 05 and ``crmlab abtest``.

    Parameters beyond the data: ``price_per_message`` prices billed segments where the log
    has no ``cost``; ``margin`` is the profit share of revenue; ``cuped_days`` the
    pre-period of CUPED (0: off); ``monitor`` adds the daily always-valid monitoring;
    ``current_copy`` is kept when copies cost and convert the same (default: the first);
    ``target_effect`` (a difference in conversion, e.g. 0.01) sizes the next test;
    ``cs_tuning`` is the confidence sequence's tuning constant (default: each comparison's
    final sample size); ``interaction_margin`` the copy x time interaction (conversion points)
    within which copy and time may be judged apart (shown by an equivalence test). The decision is :func:`crmlab.experiments.decision.decide`.

    No verdict (``result.no_verdict_reason`` says why, ``decision["arm"]`` is None) when
    :func:`crmlab.experiments.preconditions.verdict_preconditions` finds the data cannot carry the
    tests: no holdout, nothing delivered, sends outside the orders' observation, or fewer than
    5 expected buyers or non-buyers in an arm or its holdout (see that module's doc). Then no
    test is computed (so none can warn or overflow) and the result shows the counts per arm.
    """
    o = order_table(orders, engine, observation_end)
    outcomes = campaign_outcomes(sends, o, window_hours, arm_column, campaign, control=control,
                                 price_per_message=price_per_message, cuped_days=cuped_days, seed=seed)
    arms = arm_table(outcomes)
    control = _checked_control(outcomes, arms)
    srm = srm_check(arms["targeted"].to_dict(), parse_split(planned_split))
    first = first_order_time(o)
    declared = outcomes.attrs.get("control_given", False) or any(str(a).lower() in HOLDOUT_NAMES for a in arms.index)
    reasons = verdict_preconditions(outcomes, arms, control, holdout_declared=declared, first_order=first,
                                    observation_end=o.observation_end, window_hours=window_hours)
    complete = float(outcomes["window_complete"].mean())
    common = {"window_hours": window_hours, "control": control, "arms": arms, "srm": srm,
              "window_complete_share": complete, "warnings": _warnings(outcomes, srm, control, window_hours, complete),
              "outcomes": outcomes, "holdout_clock": outcomes.attrs["holdout_clock"], "cuped_days": cuped_days,
              "parameters": {"alpha": alpha, "margin": margin, "price_per_message": price_per_message, "seed": seed,
                             "current_copy": current_copy, "target_effect": target_effect,
                             "interaction_margin": interaction_margin},
              "settings": o.settings}
    if reasons:
        decision = no_verdict_decision(reasons, outcomes, control, alpha=alpha, margin=margin,
                                       target_effect=target_effect)
        return ExperimentResult(**common, **_no_tests(len(arms)), verdict=decision["verdict"], decision=decision,
                                no_verdict_reason=decision["no_verdict_reason"])
    tests = _tests(outcomes, arms, control, correct, seed, cuped_days, alpha, margin)
    W = pd.Timedelta(hours=window_hours)
    uncovered = int((outcomes["send_time"] + W < first).sum()) if first is not None else 0
    decision = decide(outcomes, arms, tests["factorial"], srm, control, planned_n=planned_n_per_arm, alpha=alpha,
                      complete=complete, margin=margin, current_copy=current_copy, target_effect=target_effect,
                      uncovered=uncovered, settings=o.settings, interaction_margin=interaction_margin)
    monitoring, method = (monitor_experiment(outcomes, o, control, window_hours, alpha=alpha, tuning=cs_tuning)
                          if monitor else (None, None))
    return ExperimentResult(**common, **tests, verdict=decision["verdict"], decision=decision,
                            no_verdict_reason=decision["no_verdict_reason"], monitoring=monitoring,
                            monitoring_method=method)


def _checked_control(outcomes: pd.DataFrame, arms: pd.DataFrame) -> str:
    """The control arm, checked: in the sends, and with another arm to compare it with."""
    names = list(arms.index)
    control = outcomes.attrs["control"]
    if control not in names:
        raise CrmlabInputError(f"control arm {control!r} not in the sends (arms: {', '.join(names)})")
    if len(names) < 2:
        raise CrmlabInputError(f"only one arm in the sends ({names[0]}): nothing to compare")
    return control


def _no_tests(n_arms: int) -> dict:
    """The test fields of a result with no verdict: empty tables, no statistics."""
    comparisons = pd.DataFrame(columns=["rate", "control_rate", "diff", "ci_low", "ci_high", "newcomb_low",
                                        "newcomb_high", "z", "chi2", "p_value", "p_holm", "relative_lift",
                                        "lift_ci_low", "lift_ci_high", "control_targeted", "control_clock",
                                        "revenue", "cuped"], dtype=object)
    inc = pd.DataFrame(columns=["incremental_conversion", "incremental_revenue", "cost", "incremental_roi",
                                "incremental_profit", "profit_per_1000", "profit_ci_low", "profit_ci_high"], dtype=float)
    return {"comparisons": comparisons, "chi2_all_arms": {"chi2": None, "df": n_arms - 1, "p_value": None},
            "factorial": None, "incremental": inc}


def _tests(outcomes: pd.DataFrame, arms: pd.DataFrame, control: str, correct: bool, seed: int, cuped_days: int,
           alpha: float, margin: float) -> dict:
    """Each arm against the control (Holm-corrected), the all-arms chi-square, the factorial
    effects and the incremental revenue, cost and profit per messaged arm."""
    names = list(arms.index)
    comps = {a: _compare(outcomes, a, control, correct, seed, cuped_days, alpha) for a in names if a != control}
    comparisons = pd.DataFrame(comps).T
    for col in comparisons.columns:
        if col not in _OBJECT_COLUMNS:
            comparisons[col] = comparisons[col].astype(float)
    comparisons["p_holm"] = holm(comparisons["p_value"].to_numpy(float))
    table = np.column_stack([arms["buyers"], arms["targeted"] - arms["buyers"]]).astype(float)
    chi = stats.chi2_contingency(table, correction=False) if (table.sum(axis=0) > 0).all() else None
    chi2_all = ({"chi2": float(chi[0]), "df": int(chi[2]), "p_value": float(chi[1])} if chi is not None
                else {"chi2": 0.0, "df": len(names) - 1, "p_value": 1.0})
    messaged = arms.drop(index=control)
    rev_diff = pd.Series({a: comparisons.at[a, "revenue"]["diff"] for a in messaged.index})
    inc = pd.DataFrame({"incremental_conversion": comparisons["diff"],
                        "incremental_revenue": rev_diff * messaged["targeted"], "cost": messaged["cost"]})
    inc["incremental_roi"] = inc["incremental_revenue"] / inc["cost"].where(inc["cost"] > 0)
    inc["incremental_profit"] = inc["incremental_revenue"] * margin - inc["cost"]
    per = arm_profits(outcomes, control, margin, alpha)  # the same profit per message the decision shows
    inc["profit_per_1000"] = per["profit_per_1000"].astype(float)
    inc["profit_ci_low"] = per["ci_low"].astype(float)
    inc["profit_ci_high"] = per["ci_high"].astype(float)
    return {"comparisons": comparisons, "chi2_all_arms": chi2_all,
            "factorial": factorial_effects(outcomes, control, alpha), "incremental": inc}


def _warnings(outcomes: pd.DataFrame, srm: dict, control: str, window_hours: float, complete: float) -> list[str]:
    warnings = []
    bad = outcomes.attrs.get("invalid_billing", 0)
    if bad:
        warnings.append(f"{bad:,} send(s) with a negative or infinite cost or segment count: priced from the segments "
                        "instead (no cost below 0 is used)")
    if complete < 1:
        warnings.append(f"the {window_hours:g}-hour window is not over for {1 - complete:.0%} of targeted customers "
                        "at the observation end: their conversions are undercounted")
    if not srm["ok"]:
        warnings.append(f"sample ratio mismatch (p = {srm['p_value']:.2g}): arm sizes do not match the planned split"
                        + (" (an equal split was assumed; pass the planned split)" if srm["assumed_equal_split"] else ""))
    mode = outcomes.attrs["holdout_clock"]
    if mode == "derived":
        warnings.append(f"the log gives the {control} one send time: its customers were split at random between the "
                        "tested send times (seeded) so each arm is compared with a holdout on its own clock; "
                        "record the split in the log next time")
    return warnings


def key_findings(res: ExperimentResult) -> list[str]:
    """Notebook 05's key findings, all from the result and its decision (with no verdict: the
    reason and the counts per arm)."""
    d = res.decision
    arms, ctl = res.arms, res.control
    messaged = arms.drop(index=ctl)
    if res.no_verdict_reason is not None and res.comparisons.empty:  # the data cannot carry the tests
        counts = "; ".join(f"{a}: {int(r['targeted']):,} customers, {int(r['sends']):,} sends, {int(r['delivered']):,} "
                           f"delivered, {int(r['buyers']):,} buyers" for a, r in arms.iterrows())
        return [f"**No verdict:** {res.no_verdict_reason}.", f"What the log has: {counts}."]
    lines = [f"**Decision:** {d['reason']}." if not d["blockers"] else f"**No verdict yet:** {'; '.join(d['blockers'])}."]
    inc_total = float(res.incremental["incremental_revenue"].sum())
    cost = float(messaged["cost"].sum())
    lines.append(f"Campaign against the {ctl} (same clock): {int(messaged['buyers'].sum()):,} buyers from "
                 f"{int(messaged['targeted'].sum()):,} messaged customers "
                 f"({100 * messaged['buyers'].sum() / messaged['targeted'].sum():.2f}% vs "
                 f"{100 * arms.at[ctl, 'conversion_rate']:.2f}%); incremental revenue {res.fmt.money(inc_total)} "
                 f"for {res.fmt.money(cost)} of SMS.")
    if res.factorial is not None and res.factorial["interaction"] is not None:
        i = res.factorial["interaction"]
        lines.append(f"Copy × send time interaction on the additive scale: {p_is(i['p_value'])}"
                     + (f", {pp(i['diff'], 2)} [{number(100 * i['ci_low'], 2)}, {number(100 * i['ci_high'], 2)}]"
                        if i.get("diff") is not None else "") + ".")
    if res.cuped_days:
        vr = [r["cuped"]["variance_reduction"] for r in res.comparisons["revenue"]]
        lo, hi = np.nanmin(vr), np.nanmax(vr)
        lines.append(f"CUPED with the {res.cuped_days} days before the send "
                     + ("narrows the revenue intervals" if lo > 0 else "changes the revenue intervals' variance")
                     + f": variance reduction from {pct(lo, 0)} to {pct(hi, 0)} across arms.")
    return lines
