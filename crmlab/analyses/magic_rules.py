"""The repurchase magic number (复购魔法数字), read off the repurchase curve honestly.

The magic number is the order count from which the curve
(:func:`crmlab.analyses.curve.repurchase_curve`) stops rising. Four rules
(:func:`magic_number`); ``plateau`` is the default, at two levels said plainly: the flatness
is *shown* by equivalence tests (TOST, :func:`crmlab.stats.equivalence.pairwise_tost`: every
two rates in the plateau within the tolerance of each other, no rate pooled, a fixed sequence
over k), not assumed from a test that failed to reject; or, on a store too small to show it,
*indicated* by the estimates (:mod:`crmlab.analyses.magic_indicated`). When no order count
qualifies the answer is ``None`` with a reason that describes the curve, or says how many
customers it would take to show the plateau.

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
from crmlab.analyses.magic_indicated import indicated_search
from crmlab.analyses.magic_reasons import reason as _reason
from crmlab.present.formatting import MISSING, number, pct, pp
from crmlab.present.result import Card, Result, result
from crmlab.settings import Settings, current
from crmlab.stats.equivalence import departs, pair_size, pairwise_tost, rise_size

__all__ = ["MagicNumber", "magic_number", "RULES"]

RULES = ("plateau", "ztest", "segmented", "tolerance")


@result
class MagicNumber(Result):
    """The chosen magic number, what every rule says and why.

    ``plateau`` is the pairwise equivalence test behind the plateau rule
    (:func:`~crmlab.stats.equivalence.pairwise_tost` columns plus ``pair``, ``k_i``, ``k_j``):
    for the magic number when one is found, otherwise for the smallest k whose rates look
    flat (every pair's point difference within the tolerance) but could not be shown so;
    None when no k looks flat. ``needed_factor`` is then how many times the store's
    customers (in the same proportions, at the observed rates) the order counts would need
    to be judged and to pass, infinite when a difference is itself outside the tolerance.
    ``through_k``: the last order count with enough customers to tell (the plateau's end);
    ``tail``: the thinner order counts after it, each tested for a move outside the
    tolerance of the plateau (``outside``). ``settings``: the curve's context.
    ``level``: the plateau rule's level, ``"shown"`` (the equivalence tests pass),
    ``"indicated"`` (too few customers to show it, but every two rates' estimates are within
    the tolerance, none is shown to rise and nothing after is shown to move;
    :mod:`~crmlab.analyses.magic_indicated`; ``through_k`` is then K', ``plateau`` carries the
    rise tests too) or ``"none"``.
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
    through_k: int | None = None
    tail: pd.DataFrame | None = None
    level: str = "none"

    def _as_dict(self) -> dict:
        plateau = None if self.plateau is None else self.plateau.to_dict("records")
        tail = None if self.tail is None else self.tail.to_dict("records")
        return {"magic_number": self.magic_number, "rule": self.rule, "reason": self.reason,
                "rules": dict(self.rules), "rules_agree": self.agree, "plateau_test": plateau,
                "needed_factor": self.needed_factor,  # infinite: more customers would not do (null)
                "plateau_through_k": self.through_k, "tail_test": tail, "plateau_level": self.level,
                "headline": self.headline()}

    def _finding(self) -> str:
        """The one-line finding: the card's, the page's and the index's (:meth:`headline`)."""
        others = ", ".join(f"{k} {MISSING if v is None else v}" for k, v in self.rules.items() if k != self.rule)
        rules = f" (rules: {others}" + ("; they agree)" if self.agree else ")")
        M = self.magic_number
        if M is None:
            return f"No magic number by the {self.rule} rule: {self.reason}{rules}"
        if self.rule != "plateau" or self.plateau is None or self.level == "none":
            return f"Magic number {M} by the {self.rule} rule{rules}"
        p, pl = self.plateau, self.details.get("plateau", {})
        rates = np.r_[p["rate_i"], p["rate_j"]]
        n = np.r_[p["at_risk_i"], p["at_risk_j"]]
        tol, conf = f"±{pp(pl.get('tolerance', 0.03), 0, sign=False)}", pct(1 - pl.get("alpha", 0.05), 0)
        span = (f"the rates at {M}–{self.through_k} orders are within {tol} of each other "
                f"({pct(rates.min())}–{pct(rates.max())})")
        if self.level == "shown":
            return f"Magic number {M} — shown: {span} at {conf} confidence (two one-sided tests, every pair){rules}"
        has = number(n.min()) + ("" if n.min() == n.max() else "–" + number(n.max()))
        return (f"Magic number {M} — indicated: {span} but the store is too small to show it at {conf} confidence "
                f"(needs ~{number(pl['pair_size'])} customers per order count, has {has}){rules}")

    def _card(self) -> Card:
        finding = self._finding()
        tab = cap = None
        if self.plateau is not None:
            p = self.plateau
            tab = pd.DataFrame({"at risk": [f"{number(a)} / {number(b)}" for a, b in zip(p["at_risk_i"], p["at_risk_j"])],
                                "rates": [f"{pct(a)} / {pct(b)}" for a, b in zip(p["rate_i"], p["rate_j"])],
                                "difference": p["difference"].map(pp), "p (TOST)": p["p_value"].map(lambda x: f"{x:.3g}"),
                                "equivalent": p["equivalent"].map({True: "yes", False: "no"}),
                                "needed at risk": p["needed_at_risk"].map(number)},
                               index=pd.Index(p["pair"], name="k"))
            cap = "the plateau's equivalence test: every pair of rates within the tolerance (two one-sided tests)"
            if self.level == "indicated":
                tab["rise (Holm)"] = p["rises"].map({True: "shown", False: "not shown"}).to_numpy()
                cap += "; indicated: estimates within the tolerance, no rise shown (one-sided, Holm)"
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



def _pairs(k, x, n, lo: int, hi: int, tolerance: float, alpha: float) -> pd.DataFrame:
    """Every pair of order counts ``k[lo:hi]`` by :func:`~crmlab.stats.equivalence.pairwise_tost`."""
    t = pairwise_tost(x[lo:hi], n[lo:hi], tolerance, alpha)
    ki, kj = k[lo:hi][t["i"]], k[lo:hi][t["j"]]
    t.insert(0, "pair", [f"{a} vs {b}" for a, b in zip(ki, kj)])
    t.insert(1, "k_i", ki.astype(int))
    t.insert(2, "k_j", kj.astype(int))
    return t.drop(columns=["i", "j"])


def _judged(n: np.ndarray, n_tell: int) -> int:
    """How many order counts from the smallest k on (unbroken) have ``n_tell`` customers at risk."""
    short = np.flatnonzero(n < n_tell)
    return int(short[0]) if len(short) else len(n)


def _look(k, x, n, J: int, tolerance: float, alpha: float, n_tell: int):
    """The smallest k whose rates look flat (every pair's point difference within the tolerance)
    through the judged order counts, or through the next one when fewer than two are judged;
    its pair table and the factor of the store's customers that would judge and show them.
    ``(None, None)`` when no k looks flat."""
    for i in range(len(k) - 1):
        end = min(max(J, i + 2), len(k))
        t = _pairs(k, x, n, i, end, tolerance, alpha)
        if (t["difference"].abs() < tolerance - 1e-12).all():
            return t, float(max(t["needed_factor"].max(), n_tell / n[i:end].min()))
    return None, None


def _plateau_search(k, x, n, alpha: float, tolerance: float, n_tell: int) -> dict:
    """The plateau by fixed-sequence testing from the tail down (see :func:`magic_number`).

    Returns a dict: ``magic`` (k or None), ``judged`` (how many order counts have ``n_tell``
    at risk), ``table`` (pairs behind the answer, or of the first k that looks flat, or None),
    ``needed_factor``, ``tail`` (thinner order counts after the judged ones against the
    plateau) and ``moved`` (a thinner order count shown outside the tolerance)."""
    J = _judged(n, n_tell)
    magic, table = None, None
    for i in range(J - 2, -1, -1):  # H_i: some pair in k[i..J-1] differs by >= tolerance
        t = _pairs(k, x, n, i, J, tolerance, alpha)
        if not t["equivalent"].all():
            break  # the sequence stops at its first hypothesis not rejected
        magic, table = i, t
    out = {"magic": None, "judged": J, "table": table, "needed_factor": None, "tail": None, "moved": False}
    if magic is None:
        out["table"], out["needed_factor"] = _look(k, x, n, J, tolerance, alpha, n_tell)
        return out
    out["needed_factor"] = float(table["needed_factor"].max())
    if J < len(k):  # thinner order counts: not enough to tell flat, enough to show a move
        d, se, pv = departs(x[J:], n[J:], x[magic:J].sum(), n[magic:J].sum(), tolerance)
        moved = pv < alpha / (len(k) - J)  # Bonferroni over the thinner order counts
        out["tail"] = pd.DataFrame({"k": k[J:].astype(int), "at_risk": n[J:].astype(np.int64), "rate": x[J:] / n[J:],
                                    "plateau_rate": x[magic:J].sum() / n[magic:J].sum(), "difference": d, "se": se,
                                    "p_value": pv, "outside": moved})
        out["moved"] = bool(moved.any())
    out["magic"] = None if out["moved"] else int(k[magic])
    return out


def _rule_plateau(u, alpha, tolerance, power=0.95, rise_alpha=None, min_indicated=None):
    k = u["k"].to_numpy(int)
    x = u["repurchased"].to_numpy(float)
    n = u["at_risk"].to_numpy(float)
    n_tell = pair_size(tolerance, alpha, power)
    res = _plateau_search(k, x, n, alpha, tolerance, n_tell)
    J = res["judged"]
    det = {"pair_size": n_tell, "through_k": int(k[J - 1]) if J else None, "table": res["table"],
           "not_enough_to_tell": [int(v) for v in k[J:]], "tail": res["tail"], "moved": res["moved"],
           "needed_factor": res["needed_factor"], "alpha": alpha, "tolerance": tolerance,
           "level": "none" if res["magic"] is None else "shown",
           "rise_size": min_indicated or rise_size(tolerance, alpha)}
    if res["magic"] is not None or res["moved"]:
        return res["magic"], det
    ind = indicated_search(k, x, n, alpha, tolerance, det["rise_size"], n_tell, rise_alpha)
    det["indicated_through_k"] = ind["through"]
    if ind["table"] is not None:  # a plateau indicated, or one whose thinner order counts move away
        det.update(table=ind["table"], tail=ind["tail"], moved=ind["moved"], needed_factor=ind["needed_factor"],
                   through_k=ind["through"], level="none" if ind["moved"] else "indicated")
    return ind["magic"], det


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
                 min_at_risk: int = 50, power: float = 0.95, rise_alpha: float | None = None,
                 min_indicated: int | None = None) -> MagicNumber:
    """Choose the magic number from a repurchase curve.

    Only the unbroken run of order counts from k = 1 with at least ``min_at_risk``
    customers at risk takes part (at least three, else "too little data").

    Rules
    -----
    plateau (default)
        *Shown* (``level``): the smallest k from which every pair of rates through K lies
        within ``tolerance`` of each other by two one-sided tests at ``alpha``
        (:func:`~crmlab.stats.equivalence.pairwise_tost`, all pairs: intersection–union,
        level ``alpha``; no rate pooled). K is the last order count of the unbroken run from
        k = 1 with :func:`~crmlab.stats.equivalence.pair_size` customers at risk (7,220 at
        ±3 points, 5%, ``power`` 0.95), fixed by the counts alone; a plateau spans at least
        two such order counts. Fixed sequence from the tail down, H_{K−1}, H_{K−2}, …, each
        at ``alpha``, stopping at the first not rejected (H_k: some pair in k..K differs by
        ``tolerance`` or more): family-wise error of "flat from M through K" at most
        ``alpha``. Thinner order counts after K are "not enough customers to tell": not
        pooled, not claimed flat, but one shown outside ``tolerance`` of the plateau's rate
        (:func:`~crmlab.stats.equivalence.departs`, Bonferroni at ``alpha``) means the
        curve moves again: no plateau. *Indicated*, when not shown: over the unbroken run
        M..K' with ``min_indicated`` customers at risk (default
        :func:`~crmlab.stats.equivalence.rise_size`, 1,718) every two rates' estimates are
        within ``tolerance``, no later rate is shown above an earlier one (one-sided, at
        ``rise_alpha`` (default ``alpha``), Holm over the pairs) and none after K' is shown
        outside ``tolerance`` (:mod:`~crmlab.analyses.magic_indicated`): a rule on
        estimates, fooled about half the time at a true difference of exactly ``tolerance``.
        Otherwise None, with a reason (how many customers it would take to show it).
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
    answers, details = _answers(u, alpha, tolerance, power, rise_alpha, min_indicated)
    chosen = answers[rule]
    found = [v for v in answers.values() if v is not None]
    agree = len(set(found)) == 1 and len(found) == len(RULES)
    pl = details.get("plateau", {})
    table = pl.pop("table", None)
    reason = _reason(curve, u, rule, chosen, answers, details, table, min_at_risk, alpha, tolerance)
    tail = pl.pop("tail", None)
    settings = getattr(curve, "settings", None) or current()
    return MagicNumber(chosen, rule, reason, answers, agree, details, table, pl.get("needed_factor"), settings,
                       pl.get("through_k"), tail, pl.get("level", "none"))


def _answers(u: pd.DataFrame, alpha: float, tolerance: float, power: float,
             rise_alpha: float | None = None, min_indicated: int | None = None) -> tuple[dict, dict]:
    """What each rule answers (None everywhere with fewer than three usable order counts)."""
    if len(u) < 3:
        return {r: None for r in RULES}, {}
    answers, details = {}, {}
    answers["plateau"], details["plateau"] = _rule_plateau(u, alpha, tolerance, power, rise_alpha, min_indicated)
    answers["ztest"], details["ztest"] = _rule_ztest(u, alpha)
    answers["segmented"], details["segmented"] = _rule_segmented(u, tolerance)
    answers["tolerance"], details["tolerance"] = _rule_tolerance(u, tolerance)
    return answers, details
