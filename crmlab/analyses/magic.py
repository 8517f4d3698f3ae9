"""The repurchase magic number (复购魔法数字), computed honestly.

The X-order repurchase curve: for each order count k, of customers with k paid orders,
the share whose order k+1 comes within ``window_days``. Customers whose k-th order is
less than ``window_days`` before the observation end have not had the whole window: they
are left out of k's denominator (not counted as "did not come back", which is what the
naive curve does and why it is biased low for recent customers). A Kaplan-Meier estimate
of time to the next order (:func:`kaplan_meier`, the one KM in crmlab) uses those recent
customers too, censored at the observation end.

The magic number is the order count from which the curve stops rising. Four rules
(:func:`magic_number`); ``plateau`` is the default: the flatness is *shown* by
equivalence tests (TOST, :func:`plateau_tost`), not assumed from a test that failed to
reject. When no order count qualifies the answer is ``None`` with a reason that describes
the curve, or says how many customers it would take to show the plateau.

The curve is an association: customers who reach k orders are a selected group (the
ones inclined to buy again get there), so the rate at k is not what an extra order would
do to a customer who has fewer. The simulated store plants exactly this (persistent
per-customer propensity, ``crmlab.simulate.store``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import ibis
import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.regression.linear_model import WLS
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.tools.tools import add_constant

from crmlab.engine import order_table
from crmlab.engine.aggregates import customer_table, order_sequence, ts
from crmlab.stats.proportion import wilson

__all__ = ["RepurchaseCurve", "MagicNumber", "repurchase_curve", "magic_number", "time_to_next_order",
           "magic_sensitivity", "magic_by_group", "magic_shares", "magic_targets", "kaplan_meier", "km_factors",
           "km_survival", "plateau_tost", "judged_alone", "RULES"]

RULES = ("plateau", "ztest", "segmented", "tolerance")


@dataclass(frozen=True)
class RepurchaseCurve:
    """The X-order repurchase curve.

    ``table`` has one row per k: ``customers`` (with >= k orders), ``at_risk``,
    ``repurchased``, ``rate``, ``ci_low``, ``ci_high`` (Wilson 95%), ``naive_rate``
    (customers with >= k+1 orders / customers with >= k, no window, no censoring guard:
    biased low for recent customers), ``km_rate`` (Kaplan-Meier P(next order within the
    window)) and ``enough`` (at_risk >= min_at_risk).
    """

    table: pd.DataFrame
    window_days: int
    observation_end: pd.Timestamp
    min_at_risk: int

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __repr__(self) -> str:
        from crmlab.present.cards import curve_card

        return curve_card(self).text()

    def _repr_html_(self) -> str:
        from crmlab.present.cards import curve_card

        return curve_card(self).html()

    def plot(self, ax=None, magic: int | None = None):
        """The curve with its intervals, the naive curve and Kaplan-Meier
        (:func:`crmlab.present.figures.repurchase_curve_figure`); the new Figure, or ``ax`` when given."""
        from crmlab.present.figures import repurchase_curve_figure

        return repurchase_curve_figure(self, magic, ax=ax)

    def to_records(self) -> list[dict]:
        cols = ["k", "at_risk", "repurchased", "rate", "ci_low", "ci_high", "naive_rate", "km_rate", "customers"]
        return [{c: (None if pd.isna(v) else (int(v) if c in ("k", "at_risk", "repurchased", "customers")
                                                else float(v))) for c, v in r.items()}
                for r in self.table.reset_index()[cols].to_dict("records")]


@dataclass(frozen=True)
class MagicNumber:
    """The chosen magic number, what every rule says and why.

    ``plateau`` is the equivalence test behind the plateau rule (:func:`plateau_tost`
    columns plus ``group``, ``k_from``, ``k_to``): for the magic number when one is found,
    otherwise for the smallest k whose rates look flat (every point estimate within the
    tolerance) but could not be shown so; None when no k looks flat. ``needed_factor`` is
    then how many times the store's customers (in the same proportions, at the observed
    rates) the test would need to pass, infinite when a rate is itself outside the
    tolerance; each group's ``needed_at_risk`` in ``plateau`` says the same per order count.
    """

    magic_number: int | None
    rule: str
    reason: str | None
    rules: dict
    agree: bool
    details: dict = field(default_factory=dict)
    plateau: pd.DataFrame | None = None
    needed_factor: float | None = None

    def __repr__(self) -> str:
        from crmlab.present.cards import magic_card

        return magic_card(self).text()

    def _repr_html_(self) -> str:
        from crmlab.present.cards import magic_card

        return magic_card(self).html()

    def to_dict(self) -> dict:
        def num(v):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                return None
            if isinstance(v, (bool, np.bool_)):
                return bool(v)
            if isinstance(v, (int, np.integer)):
                return int(v)
            if isinstance(v, (float, np.floating)):
                return float(v) if np.isfinite(v) else None  # infinite: more customers would not do
            return v

        plateau = None if self.plateau is None else [
            {c: num(v) for c, v in r.items()} for r in self.plateau.to_dict("records")]
        return {"magic_number": self.magic_number, "rule": self.rule, "reason": self.reason,
                "rules": dict(self.rules), "rules_agree": self.agree, "plateau_test": plateau,
                "needed_factor": num(self.needed_factor)}


def repurchase_curve(orders, window_days: int = 90, max_k: int = 10, observation_end=None,
                     min_at_risk: int = 50, engine=None) -> RepurchaseCurve:
    """The censoring-aware X-order repurchase curve for k = 1..max_k (see the module doc).

    At risk: customers with at least k paid orders whose k-th order is at least
    ``window_days`` before the observation end. Repurchased: those whose order k+1 comes
    within ``window_days`` of order k (inclusive). One aggregate per k in the engine.
    """
    o = order_table(orders, engine, observation_end)
    end = o.observation_end
    s = order_sequence(o)
    # the sequence (a window over every paid order) once, for the counts and for the KM
    s = s.filter(s.k <= max_k).select("k", "order_time", "next_time").cache()
    try:
        return _curve(o, s, end, window_days, max_k, min_at_risk)
    finally:
        s.release()


def _curve(o, s: ibis.Table, end, window_days: int, max_k: int, min_at_risk: int) -> RepurchaseCurve:
    W = pd.Timedelta(days=window_days)
    has_next = s.next_time.notnull()
    at_risk = s.order_time <= ts(end - W)
    within = (s.next_time.epoch_seconds() - s.order_time.epoch_seconds()) <= int(W.total_seconds())
    agg = s.group_by("k").aggregate(customers=s.k.count(), at_risk=at_risk.cast("int64").sum(),
                                    repurchased=(at_risk & has_next & within).cast("int64").sum(),
                                    with_next=has_next.cast("int64").sum())
    small = o.engine.to_pandas(agg).set_index("k").reindex(range(1, max_k + 1), fill_value=0)
    km = _km_of_sequence(o, s, max_k, window_days)
    df = pd.DataFrame({"k": small.index.to_numpy(), "customers": small["customers"].to_numpy()})
    for c in ("at_risk", "repurchased"):
        df[c] = small[c].to_numpy()
    n = df["customers"].to_numpy()
    df["naive_rate"] = np.where(n > 0, small["with_next"].to_numpy() / np.maximum(n, 1), np.nan)
    at_w = km[km["day"] == window_days].set_index("k")["p_next"]
    df["km_rate"] = np.where(n >= 2, at_w.reindex(df["k"]).to_numpy(), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        df["rate"] = np.where(df["at_risk"] > 0, df["repurchased"] / df["at_risk"].where(df["at_risk"] > 0), np.nan)
    df["ci_low"], df["ci_high"] = wilson(df["repurchased"], df["at_risk"])
    df["enough"] = df["at_risk"] >= min_at_risk
    df = df[["k", "customers", "at_risk", "repurchased", "rate", "ci_low", "ci_high", "naive_rate", "km_rate",
             "enough"]].set_index("k", drop=False).rename_axis(None)
    return RepurchaseCurve(df, window_days, end, min_at_risk)


def kaplan_meier(orders, max_k: int, horizon_days: int, engine=None) -> pd.DataFrame:
    """Kaplan–Meier P(order k+1 by day d after order k), censored at the observation end.

    The one KM in crmlab: subjects from the engine's order sequence (each paid order
    k <= ``max_k``; its duration the gap to the next order, an event, or to the observation
    end, censored), per-(k, day) log factors in the engine (:func:`km_factors`), and the
    product on a daily grid 0..``horizon_days`` here (:func:`km_survival`). Returns a long
    DataFrame ``k, day, p_next`` (1 − survival).
    """
    o = order_table(orders, engine)
    s = order_sequence(o)
    return _km_of_sequence(o, s.filter(s.k <= max_k), max_k, horizon_days)


def _km_of_sequence(o, s: ibis.Table, max_k: int, horizon_days: int) -> pd.DataFrame:
    event = s.next_time.notnull()
    secs = ibis.ifelse(event, s.next_time.epoch_seconds(), ts(o.observation_end).epoch_seconds()) \
        - s.order_time.epoch_seconds()
    subj = s.select(group=s.k, dur=secs.cast("float64") / 86400.0, event=event.cast("int64"))
    f = o.engine.to_pandas(km_factors(subj, horizon_days))
    return km_survival(f, range(1, max_k + 1), horizon_days).rename(columns={"group": "k"})


def km_factors(subjects: ibis.Table, horizon_days: float) -> ibis.Table:
    """The engine part of the Kaplan–Meier estimator, per group and day.

    ``subjects`` has one row per subject: ``group``, ``dur`` (days, float), ``event`` (1 if
    the event was seen at ``dur``, 0 if censored there) and optionally ``w`` (its weight, a
    float64 column; without it every subject weighs 1: the textbook estimator). At each
    distinct duration t with event weight d among the weight n of subjects whose duration
    is >= t (censored at t still at risk), survival falls by (1 − d/n): statsmodels'
    ``SurvfuncRight`` when every weight is 1. Returned per
    ``group`` and ``day`` = ceil(t) (at least 1; t <= g iff ceil(t) <= g for whole days g)
    up to ``horizon_days``: ``log_factor`` (the sum of log(1 − d/n) over the day's event
    times) and ``all_failed`` (some factor is 0: survival is 0 from that day on).
    """
    # subjects past the horizon only add to the number at risk: counted per group, not sorted
    weighted = "w" in subjects.columns
    late = subjects.filter(subjects.dur > horizon_days)
    tail = late.group_by("group").aggregate(tail=late.w.sum() if weighted else late.event.count())
    near = subjects.filter(subjects.dur <= horizon_days)
    if weighted:
        g = near.group_by(["group", "dur"]).aggregate(d=(near.w * near.event).sum(), m=near.w.sum())
    else:  # counts (not a literal weight 1.0: Spark would read it as a decimal and divide to 6 places)
        g = near.group_by(["group", "dur"]).aggregate(d=near.event.sum(), m=near.event.count())
    g = g.left_join(tail, "group").drop("group_right")
    back = ibis.window(group_by=g.group, order_by=ibis.desc(g.dur), preceding=None, following=0)
    g = g.mutate(n=g.m.sum().over(back) + g.tail.fill_null(0))
    g = g.filter(g.d > 0)
    day = ibis.greatest(g.dur.ceil().cast("int64"), 1)
    failed = g.d >= g.n * (1 - 1e-12)  # weights summed in another order may differ by an ulp
    frac = ibis.ifelse(failed, 0.5, 1.0 - g.d.cast("float64") / g.n.cast("float64"))
    g = g.mutate(day=day, lf=frac.ln(), failed=failed.cast("int64"))
    return g.group_by(["group", "day"]).aggregate(log_factor=g.lf.sum(), all_failed=g.failed.max())


def km_survival(factors: pd.DataFrame, groups, horizon_days: float) -> pd.DataFrame:
    """The product of :func:`km_factors` on a daily grid 0..``horizon_days``: a long DataFrame
    ``group, day, p_next`` (1 − survival; the last value carries on past the data)."""
    grid = np.arange(0, int(horizon_days) + 1)
    out = []
    for kk in groups:
        g = factors[factors["group"] == kk]
        lf = np.zeros(len(grid))
        dead = np.zeros(len(grid), bool)
        np.add.at(lf, g["day"].to_numpy(int), g["log_factor"].to_numpy(float))
        dead[g.loc[g["all_failed"] > 0, "day"].to_numpy(int)] = True
        surv = np.where(np.maximum.accumulate(dead), 0.0, np.exp(np.cumsum(lf)))
        out.append(pd.DataFrame({"group": kk, "day": grid, "p_next": 1 - surv}))
    return pd.concat(out, ignore_index=True)


def time_to_next_order(orders, ks: Sequence[int] = (1, 2, 3, 4, 5), observation_end=None,
                       horizon_days: float = 365, engine=None) -> pd.DataFrame:
    """Kaplan-Meier P(next order by day d) after the k-th order, censored at the observation end.

    Returns a long DataFrame ``k, day, p_next`` (1 - survival) on a daily grid up to
    ``horizon_days``, for the ``ks`` with at least two customers.
    """
    o = order_table(orders, engine, observation_end)
    counts = o.engine.to_pandas(order_sequence(o).k.value_counts())
    n_k = dict(zip(counts.iloc[:, 0], counts.iloc[:, 1]))
    km = kaplan_meier(o, max(ks), int(horizon_days))
    keep = [k for k in ks if n_k.get(k, 0) >= 2]
    return km[km["k"].isin(keep)].reset_index(drop=True)


# ----------------------------------------------------------------------------- rules

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


def plateau_tost(repurchased, at_risk, tolerance: float = 0.03, alpha: float = 0.05) -> pd.DataFrame:
    """Two one-sided tests (TOST) that each rate lies within ``tolerance`` of the pooled rate.

    Each row is a group of customers at risk (one order count, or several pooled). With
    ``x`` repurchased of ``n``, rate ``p = x / n``, the pooled rate ``p̄ = Σx / Σn`` and
    weights ``w = n / Σn``, the difference ``d = p − p̄`` of row g has variance
    ``(1 − w_g)² v_g + Σ_{h≠g} w_h² v_h`` with ``v_h = p_h (1 − p_h) / n_h`` (Wald, rows
    independent; ``p_h`` kept half a customer away from 0 and 1). Then
    ``z_low = (d + tolerance) / se``, ``z_high = (tolerance − d) / se`` and
    ``p_value = 1 − Φ(min(z_low, z_high))``: the larger of the two one-sided p-values.
    A row is ``equivalent`` when ``p_value < alpha``, i.e. the 1 − 2·alpha interval of
    ``d`` lies inside ± ``tolerance``. "All rows equivalent" is an intersection–union
    test: its level is ``alpha`` without a multiplicity correction.

    ``needed_at_risk``: at the observed rates, the customers at risk this row would need to
    pass if every row grew in the same proportion, ``n (z_{1−alpha} se / (tolerance − |d|))²``
    (below ``n`` when it passes already); infinite when ``|d| >= tolerance`` (no number of
    customers shows a rate flat that is itself outside the tolerance).

    Returns a DataFrame with ``at_risk, repurchased, rate, pooled_rate, difference, se,
    p_value, equivalent, needed_at_risk``, one row per input row.
    """
    x = np.asarray(repurchased, dtype=float)
    n = np.asarray(at_risk, dtype=float)
    p, pooled, d, se, pv, need = _tost_arrays(x, n, tolerance, alpha)
    return pd.DataFrame({"at_risk": n.astype(np.int64), "repurchased": x.astype(np.int64), "rate": p,
                         "pooled_rate": pooled, "difference": d, "se": se, "p_value": pv,
                         "equivalent": pv < alpha, "needed_at_risk": need})


def _tost_arrays(x: np.ndarray, n: np.ndarray, tolerance: float, alpha: float):
    p = x / n
    N = n.sum()
    pooled = x.sum() / N
    w = n / N
    pc = np.clip(p, 0.5 / n, 1 - 0.5 / n)
    v = pc * (1 - pc) / n
    var = (1 - w) ** 2 * v + (np.sum(w ** 2 * v) - w ** 2 * v)
    se = np.sqrt(var)
    d = p - pooled
    margin = tolerance - np.abs(d)
    pv = stats.norm.sf(margin / se)
    z = stats.norm.ppf(1 - alpha)
    with np.errstate(divide="ignore"):
        need = np.where(margin > 0, n * (z * se / np.where(margin > 0, margin, 1.0)) ** 2, np.inf)
    return p, np.full(len(x), pooled), d, se, pv, need


def judged_alone(tolerance: float = 0.03, alpha: float = 0.05, power: float = 0.95) -> int:
    """Customers at risk an order count needs to be judged on its own in the plateau test.

    The count at which a rate equal to the pooled rate passes the TOST with probability
    ``power``, at the worst-case variance 1/4: ``0.25 (z_{1−alpha} + z_{(1+power)/2})² /
    tolerance²`` (3,610 for ±3 points, 5%, 95%; 2,379 at 80%). Rarer order counts are
    pooled (below): an order count judged alone near a low-power threshold would fail the
    whole plateau by chance (at 80%, a 50,000-customer store showed its flat curve only 85%
    of the time, at 95% 99%).
    """
    z = stats.norm.ppf(1 - alpha) + stats.norm.ppf((1 + power) / 2)
    return int(np.ceil(0.25 * z * z / tolerance ** 2))


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
        res = _tost_arrays(gx, gn, tolerance, alpha)
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
        (:func:`plateau_tost`; all must pass: an intersection–union test, level
        ``alpha`` for each k tried). k is tested on its own; each later order count on its
        own while it has :func:`judged_alone` customers at risk (3,610 for ±3 points at
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
    answers, details = {}, {}
    if len(u) >= 3:
        answers["plateau"], details["plateau"] = _rule_plateau(u, alpha, tolerance, power)
        answers["ztest"], details["ztest"] = _rule_ztest(u, alpha)
        answers["segmented"], details["segmented"] = _rule_segmented(u, tolerance)
        answers["tolerance"], details["tolerance"] = _rule_tolerance(u, tolerance)
    else:
        answers = {r: None for r in RULES}
    chosen = answers[rule]
    found = [v for v in answers.values() if v is not None]
    agree = len(set(found)) == 1 and len(found) == len(RULES)
    reason = None
    pl = details.get("plateau", {})
    table = pl.pop("table", None)
    if len(u) < 3:
        reason = (f"too little data: only {len(u)} order count(s) have at least {min_at_risk} customers whose "
                  f"order had a full {curve.window_days}-day window before the observation end (need 3)")
    elif chosen is None:
        if rule == "plateau" and table is not None:
            reason = _not_shown(table, tolerance, alpha)
        else:
            reason = _describe(u, answers, details)
            if rule == "plateau":
                reason += (f"; from no order count on do all rates lie within {100 * tolerance:g} points of their "
                           f"pooled rate")
    needed = pl.get("needed_factor") if table is not None else None
    return MagicNumber(chosen, rule, reason, answers, agree, details, table, needed)


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


# ----------------------------------------------------------------------------- what the store does with it

def magic_sensitivity(orders, windows: Sequence[int] = (30, 60, 90, 180), max_k: int = 10,
                      observation_end=None, engine=None, **kw) -> pd.DataFrame:
    """The magic number (every rule) for several repurchase windows."""
    o = order_table(orders, engine, observation_end)
    rows = []
    for w in windows:
        c = repurchase_curve(o, w, max_k)
        m = magic_number(c, **kw)
        rows.append({"window_days": w, "magic_number": m.magic_number, **{f"rule_{k}": v for k, v in m.rules.items()},
                     "k1_rate": c.table["rate"].iloc[0], "reason": m.reason or ""})
    return pd.DataFrame(rows).set_index("window_days")


def magic_by_group(orders, by: str = "cohort_year", window_days: int = 90, max_k: int = 10,
                   observation_end=None, min_customers: int = 1000, engine=None, **kw) -> pd.DataFrame:
    """The magic number per first-order cohort year (``by="cohort_year"``) or first channel.

    Groups with fewer than ``min_customers`` buyers are listed with no magic number.
    """
    o = order_table(orders, engine, observation_end)
    c = customer_table(o)
    c = c.filter(c.paid_orders > 0)
    if by == "cohort_year":
        c = c.mutate(group=c.first_time.year().cast("string"))
    elif by == "channel":
        if not o.has("channel"):
            raise ValueError("orders have no 'channel' column")
        c = c.mutate(group=c.first_channel.cast("string").fill_null("(none)"))
    else:
        raise ValueError("by must be 'cohort_year' or 'channel'")
    sizes = o.engine.to_pandas(c.group_by("group").aggregate(customers=c.customer_id.count())).sort_values("group")
    rows = []
    for name, n in zip(sizes["group"], sizes["customers"]):
        row = {"group": name, "customers": int(n)}
        if n >= min_customers:
            members = c.filter(c.group == name).select("customer_id")
            sub = replace(o, table=o.table.semi_join(members, "customer_id"))
            m = magic_number(repurchase_curve(sub, window_days, max_k), **kw)
            row.update(magic_number=m.magic_number, **{f"rule_{k}": v for k, v in m.rules.items()},
                       reason=m.reason or "")
        else:
            row.update(magic_number=None, reason=f"fewer than {min_customers} customers")
        rows.append(row)
    return pd.DataFrame(rows).set_index("group")


def magic_shares(orders, magic: int, observation_end=None, engine=None) -> pd.DataFrame:
    """Customers below the magic number vs at or above it: counts and share of sales."""
    o = order_table(orders, engine, observation_end)
    c = customer_table(o)
    c = c.filter(c.paid_orders > 0)
    c = c.mutate(group=ibis.ifelse(c.paid_orders < magic, f"below {magic} orders", f"{magic}+ orders"))
    out = o.engine.to_pandas(c.group_by("group").aggregate(customers=c.customer_id.count(), sales=c.sales.sum()))
    out = out.set_index("group").sort_index()
    out.index.name = None
    out["customer_share"] = out["customers"] / out["customers"].sum()
    out["sales_share"] = out["sales"] / out["sales"].sum()
    out["sales_per_customer"] = out["sales"] / out["customers"]
    return out


def magic_targets(orders, magic: int, window_days: int = 90, observation_end=None, engine=None) -> pd.DataFrame:
    """Active customers (last paid order within the window) with fewer orders than the magic number.

    Ranked by how close they are (most orders first), then most recent. Ids and numbers only.
    """
    o = order_table(orders, engine, observation_end)
    c = customer_table(o)
    c = c.filter((c.paid_orders > 0) & (c.paid_orders < magic) & (c.recency_days <= window_days))
    t = o.engine.to_pandas(c.select("customer_id", "paid_orders", "recency_days", "sales")).set_index("customer_id")
    t = t.sort_index()
    t["orders_to_magic"] = magic - t["paid_orders"]
    t["days_left_in_window"] = window_days - t["recency_days"]
    t = t.sort_values(["orders_to_magic", "recency_days"], ascending=[True, True])
    t.insert(0, "rank", np.arange(1, len(t) + 1))
    return t
