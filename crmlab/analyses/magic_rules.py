"""The repurchase magic number (复购魔法数字), read off the repurchase curve honestly.

The magic number is the order count from which the curve
(:func:`crmlab.analyses.curve.repurchase_curve`) stops rising. Four rules
(:func:`magic_number`); ``plateau`` is the default: the flatness is *shown* by
equivalence tests (TOST, :func:`crmlab.stats.equivalence.plateau_tost`), not assumed from a
test that failed to reject. When no order count qualifies the answer is ``None`` with a
reason that describes the curve, or says how many customers it would take to show the plateau.

The curve is an association: customers who reach k orders are a selected group (the
ones inclined to buy again get there), so the rate at k is not what an extra order would
do to a customer who has fewer. The simulated store plants exactly this (persistent
per-customer propensity, ``crmlab.simulate.store``).
"""
from __future__ import annotations

from dataclasses import field

import numpy as np
import pandas as pd
from statsmodels.regression.linear_model import WLS
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.tools.tools import add_constant

from crmlab.analyses.curve import RepurchaseCurve
from crmlab.present.formatting import MISSING, number, pct
from crmlab.present.result import Card, Result, result
from crmlab.settings import Settings, current
from crmlab.stats.equivalence import judged_alone, tost_arrays

__all__ = ["MagicNumber", "magic_number", "RULES"]

RULES = ("plateau", "ztest", "segmented", "tolerance")


@result
class MagicNumber(Result):
    """The chosen magic number, what every rule says and why.

    ``plateau`` is the equivalence test behind the plateau rule
    (:func:`~crmlab.stats.equivalence.plateau_tost` columns plus ``group``, ``k_from``,
    ``k_to``): for the magic number when one is found, otherwise for the smallest k whose
    rates look flat (every point estimate within the tolerance) but could not be shown so;
    None when no k looks flat. ``needed_factor`` is then how many times the store's
    customers (in the same proportions, at the observed rates) the test would need to pass,
    infinite when a rate is itself outside the tolerance; each group's ``needed_at_risk`` in
    ``plateau`` says the same per order count. ``settings``: the curve's context.
    """

    about = "the repurchase magic number"

    magic_number: int | None
    rule: str
    reason: str | None
    rules: dict
    agree: bool
    details: dict = field(default_factory=dict)
    plateau: pd.DataFrame | None = None
    needed_factor: float | None = None
    settings: Settings = field(default_factory=current, compare=False)

    def _as_dict(self) -> dict:
        plateau = None if self.plateau is None else self.plateau.to_dict("records")
        return {"magic_number": self.magic_number, "rule": self.rule, "reason": self.reason,
                "rules": dict(self.rules), "rules_agree": self.agree, "plateau_test": plateau,
                "needed_factor": self.needed_factor}  # infinite: more customers would not do (null)

    def _card(self) -> Card:
        others = ", ".join(f"{k} {MISSING if v is None else v}" for k, v in self.rules.items() if k != self.rule)
        if self.magic_number is not None:
            finding = (f"magic number {self.magic_number} orders ({self.rule} rule; {others}"
                       + ("; the rules agree)" if self.agree else ")"))
        else:
            finding = f"no magic number by the {self.rule} rule ({others}): {self.reason}"
        tab = cap = None
        if self.plateau is not None:
            p = self.plateau
            tab = pd.DataFrame({"at risk": p["at_risk"].map(number), "rate": p["rate"].map(pct),
                                "pooled": p["pooled_rate"].map(pct), "difference": p["difference"].map(pct),
                                "p (TOST)": p["p_value"].map(lambda x: f"{x:.3g}"),
                                "equivalent": p["equivalent"].map({True: "yes", False: "no"}),
                                "needed at risk": p["needed_at_risk"].map(number)},
                               index=pd.Index(p["group"], name="k"))
            cap = "the plateau's equivalence test: each rate within the tolerance of the pooled rate (two one-sided tests)"
        return Card("MagicNumber", self.about, finding, tab, cap, settings=self.footer(),
                    hint="an association among customers who got there, not the effect of one more order")


def _usable(curve: RepurchaseCurve | pd.DataFrame, min_at_risk: int) -> pd.DataFrame:
    t = curve.table if isinstance(curve, RepurchaseCurve) else curve
    u = t[t["at_risk"] >= min_at_risk]
    # only the unbroken run from the smallest k: a gap in the middle ends the usable curve
    ks = u["k"].to_numpy()
    if len(ks):
        stop = np.flatnonzero(np.diff(ks) != 1)
        if len(stop):
            u = u.iloc[: stop[0] + 1]
    return u



def _groups(k: np.ndarray, x: np.ndarray, n: np.ndarray, n_alone: int):
    """The plateau's test groups from ``k[0]`` on: ``k[0]`` alone, then each order count alone
    while it has ``n_alone`` customers at risk, the rest pooled into one tail group."""
    m = 1
    while m < len(k) and n[m] >= n_alone:
        m += 1
    if m < len(k):
        return (np.r_[k[:m], k[m]], np.r_[k[:m], k[-1]], np.r_[x[:m], x[m:].sum()], np.r_[n[:m], n[m:].sum()])
    return k, k, x, n


def _plateau_search(k, x, n, alpha: float, tolerance: float, n_alone: int):
    """The smallest k from which the plateau is shown, and the table behind the answer.

    Returns ``(magic, table)``: ``table`` holds the groups (k_from, k_to, x, n) and TOST
    arrays for the magic number, or, when none is shown, for the smallest k whose rates all
    look flat (|d| < tolerance); ``(None, None)`` when no k looks flat."""
    look = None
    for i in range(len(k) - 2):  # a plateau spans at least three order counts
        k0, k1, gx, gn = _groups(k[i:], x[i:], n[i:], n_alone)
        res = tost_arrays(gx, gn, tolerance, alpha)
        table = (k0, k1, gx, gn) + res
        if np.all(res[4] < alpha):
            return int(k[i]), table
        if look is None and np.all(np.abs(res[2]) < tolerance):
            look = table
    return None, look


def _plateau_frame(table, alpha: float) -> pd.DataFrame:
    k0, k1, gx, gn, p, pooled, d, se, pv, need = table
    return pd.DataFrame({"group": [f"{a}" if a == b else f"{a}–{b}" for a, b in zip(k0, k1)],
                         "k_from": k0.astype(int), "k_to": k1.astype(int), "at_risk": gn.astype(np.int64),
                         "repurchased": gx.astype(np.int64), "rate": p, "pooled_rate": pooled, "difference": d,
                         "se": se, "p_value": pv, "equivalent": pv < alpha, "needed_at_risk": need})


def _rule_plateau(u, alpha, tolerance, power=0.95):
    k = u["k"].to_numpy(int)
    x = u["repurchased"].to_numpy(float)
    n = u["at_risk"].to_numpy(float)
    n_alone = judged_alone(tolerance, alpha, power)
    magic, table = _plateau_search(k, x, n, alpha, tolerance, n_alone)
    det = {"judged_alone_at": n_alone, "through_k": int(k[-1]) if len(k) else None}
    if table is not None:
        f = _plateau_frame(table, alpha)
        det.update(table=f, pooled_rate=float(f["pooled_rate"].iloc[0]), p_value=float(f["p_value"].max()),
                   needed_factor=float((f["needed_at_risk"] / f["at_risk"]).max()))
    return magic, det


def _rule_ztest(u, alpha):
    for i in range(len(u) - 1):
        a, b = u.iloc[i], u.iloc[i + 1]
        _, p = proportions_ztest([b["repurchased"], a["repurchased"]], [b["at_risk"], a["at_risk"]])
        if p >= alpha:
            return int(a["k"]), {"p_value": float(p)}
    return None, {}


def _rule_segmented(u, tolerance):
    if len(u) < 4:
        return None, {}
    k = u["k"].to_numpy(float)
    y = u["rate"].to_numpy(float)
    w = u["at_risk"].to_numpy(float)
    best = None
    for b in k[1:-1]:
        X = add_constant(np.column_stack([np.minimum(k, b) - b, np.maximum(k - b, 0)]))
        fit = WLS(y, X, weights=w).fit()
        if best is None or fit.ssr < best[1]:
            best = (b, fit.ssr, fit.params)
    b, _, params = best
    rising, after = params[1], params[2]
    if rising > 0 and abs(after) <= tolerance:
        return int(b), {"slope_before": float(rising), "slope_after": float(after)}
    return None, {"break": int(b), "slope_before": float(rising), "slope_after": float(after)}


def _rule_tolerance(u, tolerance):
    r = u["rate"].to_numpy()
    ks = u["k"].tolist()
    steps = np.abs(np.diff(r))
    for i in range(len(ks) - 1):
        if np.all(steps[i:] <= tolerance):
            return int(ks[i]), {}
    return None, {}


def magic_number(curve: RepurchaseCurve, rule: str = "plateau", alpha: float = 0.05, tolerance: float = 0.03,
                 min_at_risk: int = 50, power: float = 0.95) -> MagicNumber:
    """Choose the magic number from a repurchase curve.

    Only the unbroken run of order counts from k = 1 with at least ``min_at_risk``
    customers at risk takes part (at least three, else "too little data").

    Rules
    -----
    plateau (default)
        The smallest k from which the plateau is *shown*: the rates from k up to the last
        order count taking part (at least three order counts) each lie within
        ``tolerance`` of their pooled rate by two one-sided tests at ``alpha``
        (:func:`~crmlab.stats.equivalence.plateau_tost`; all must pass: an intersection–union test, level
        ``alpha`` for each k tried). k is tested on its own; each later order count on its
        own while it has :func:`~crmlab.stats.equivalence.judged_alone` customers at risk (3,610 for ±3 points at
        5% and ``power`` 0.95: with fewer a flat rate too often fails to show ±3 points);
        the rarer rest is pooled into one tail group. Failing to reject a difference is
        not evidence of flatness (with few customers every curve looks flat), so when
        equivalence cannot be shown the answer is None, and the reason says how many
        customers it would take at the observed rates.
    ztest
        The smallest k whose step to k+1 is not significant (two-sided two-proportion
        z-test at ``alpha``). It looks one step ahead only, so one noisy step moves it,
        and "not significant" is not "flat".
    segmented
        The break point of a two-segment linear fit of rate on k weighted by at-risk
        counts, when the segment after it is flat (|slope| <= ``tolerance`` per order).
    tolerance
        The smallest k after which no step exceeds ``tolerance``.

    The curve is an association (customers who reach k orders are a selected group), so
    the magic number says where the rate levels off among customers who got there, not
    that one more order makes a customer loyal.

    Returns
    -------
    MagicNumber
        ``magic_number`` is None, with a reason, when the chosen rule finds no k or there
        is too little data; never a guess. ``plateau`` and ``needed_factor`` carry the
        equivalence test (see :class:`MagicNumber`).
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, not {rule!r}")
    u = _usable(curve, min_at_risk)
    answers, details = _answers(u, alpha, tolerance, power)
    chosen = answers[rule]
    found = [v for v in answers.values() if v is not None]
    agree = len(set(found)) == 1 and len(found) == len(RULES)
    pl = details.get("plateau", {})
    table = pl.pop("table", None)
    reason = _reason(curve, u, rule, chosen, answers, details, table, min_at_risk, alpha, tolerance)
    needed = pl.get("needed_factor") if table is not None else None
    settings = getattr(curve, "settings", None) or current()
    return MagicNumber(chosen, rule, reason, answers, agree, details, table, needed, settings)


def _answers(u: pd.DataFrame, alpha: float, tolerance: float, power: float) -> tuple[dict, dict]:
    """What each rule answers (None everywhere with fewer than three usable order counts)."""
    if len(u) < 3:
        return {r: None for r in RULES}, {}
    answers, details = {}, {}
    answers["plateau"], details["plateau"] = _rule_plateau(u, alpha, tolerance, power)
    answers["ztest"], details["ztest"] = _rule_ztest(u, alpha)
    answers["segmented"], details["segmented"] = _rule_segmented(u, tolerance)
    answers["tolerance"], details["tolerance"] = _rule_tolerance(u, tolerance)
    return answers, details


def _reason(curve, u, rule, chosen, answers, details, table, min_at_risk, alpha, tolerance) -> str | None:
    """Why there is no magic number (None when there is one)."""
    if len(u) < 3:
        return (f"too little data: only {len(u)} order count(s) have at least {min_at_risk} customers whose "
                f"order had a full {curve.window_days}-day window before the observation end (need 3)")
    if chosen is not None:
        return None
    if rule == "plateau" and table is not None:
        return _not_shown(table, tolerance, alpha)
    reason = _describe(u, answers, details)
    if rule == "plateau":
        reason += (f"; from no order count on do all rates lie within {100 * tolerance:g} points of their "
                   f"pooled rate")
    return reason


def _not_shown(f: pd.DataFrame, tolerance: float, alpha: float) -> str:
    pts = f"{100 * tolerance:g} points"
    fail = f[~f["equivalent"]]
    parts = [f"k = {g} has {n:,} customers at risk and would need about {need:,.0f}"
             for g, n, need in zip(fail["group"], fail["at_risk"], np.ceil(fail["needed_at_risk"]))]
    factor = float((f["needed_at_risk"] / f["at_risk"]).max())
    return (f"the rates from {f['k_from'].iloc[0]} orders on look flat (each within {pts} of their pooled "
            f"{100 * f['pooled_rate'].iloc[0]:.0f}%), but there are not enough customers at k ≥ "
            f"{fail['k_from'].min()} to show the rates are within {pts} (two one-sided tests at "
            f"{100 * alpha:g}%): " + "; ".join(parts)
            + f". At the observed rates that takes about {factor:.1f}× the store's customers")


def _describe(u: pd.DataFrame, answers: dict, details: dict) -> str:
    r = u["rate"].to_numpy()
    ks = u["k"].to_numpy()
    first, last = f"{100 * r[0]:.0f}%", f"{100 * r[-1]:.0f}%"
    steps = np.diff(r)
    seg = details.get("segmented", {})
    slow = answers.get("segmented") or seg.get("break")
    if np.all(steps > 0):
        trend = f"the rate keeps rising through {ks[-1]} orders, {first} to {last}"
    elif r[-1] > r[0]:
        trend = (f"the rate rises unevenly from {first} at {ks[0]} order(s) to {last} at {ks[-1]} orders without "
                 f"levelling off")
    else:
        trend = f"the rate does not rise with order count ({first} at {ks[0]} order(s), {last} at {ks[-1]})"
    return trend + (f"; gains slow after {slow}" if slow else "")
