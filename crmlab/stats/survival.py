"""The Kaplan–Meier estimator of time to an event, censored, split between the engine and here.

:func:`km_factors` builds, as one Ibis expression, the per-group, per-day log factors
``log(1 − d/n)`` of the product-limit estimator (weighted or not); :func:`km_survival`
multiplies them out on a daily grid in pandas. The magic number's time to the next order
(:func:`crmlab.analyses.curve.kaplan_meier`) and the lifecycle's dormancy threshold
(:mod:`crmlab.analyses.lifecycle`) both use them: the one KM in crmlab's engine.
:func:`kaplan_meier` is the same product-limit estimator on NumPy arrays, with delayed entry
(left truncation), for tables small enough for memory (payment reminders' time to payment:
:mod:`crmlab.experiments.reminders`); :func:`km_step` reads it on a grid.

No crmlab imports: a statistics module (layer 3) stands on NumPy, pandas and Ibis alone.
"""
from __future__ import annotations

import ibis
import numpy as np
import pandas as pd

__all__ = ["km_factors", "km_survival", "kaplan_meier", "km_step"]


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


def kaplan_meier(durations, observed, entry=None) -> pd.DataFrame:
    """The Kaplan–Meier (product-limit) estimator on arrays, with delayed entry.

    Parameters
    ----------
    durations : array of float
        Time of the event or of censoring, per subject.
    observed : array of bool or 0/1
        1 when the event was seen at ``durations``, 0 when censored there.
    entry : array of float, optional
        When each subject entered the risk set (left truncation; default 0: all from the
        start). A subject is at risk at ``t`` when ``entry < t <= duration`` (entering at
        ``t`` counts from just after ``t``) — except entries at the very first time of all (no
        entry or duration before it), at risk then:
        lifelines' ``KaplanMeierFitter().fit(..., entry=...)`` convention.

    Returns
    -------
    DataFrame
        One row per distinct duration: ``time``, ``at_risk``, ``events``, ``censored`` and
        ``survival`` (the product of ``1 - events / at_risk`` up to and including ``time``).
    """
    t = np.asarray(durations, dtype=float)
    d = np.asarray(observed, dtype=float)
    e = np.zeros_like(t) if entry is None else np.asarray(entry, dtype=float)
    if not (len(t) == len(d) == len(e)):
        raise ValueError("durations, observed and entry must have one value per subject")
    if np.isnan(t).any() or np.isnan(e).any() or (t < e).any():
        raise ValueError("durations must be known and not before entry")
    times = np.unique(t)
    ev = np.bincount(np.searchsorted(times, t), weights=d, minlength=len(times))
    out = np.bincount(np.searchsorted(times, t), minlength=len(times))
    left = np.concatenate([[0], np.cumsum(out)[:-1]])  # subjects whose duration is before each time
    entered = np.searchsorted(np.sort(e), times, side="left")  # entry < time
    if len(times) and times[0] <= e.min():  # the first time of all (no entry before it): entry <= time
        entered[0] = int((e <= times[0]).sum())
    n = entered - left
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(n > 0, 1.0 - ev / np.where(n > 0, n, 1), 1.0)
    return pd.DataFrame({"time": times, "at_risk": n.astype(np.int64), "events": ev.astype(np.int64),
                         "censored": (out - ev).astype(np.int64), "survival": np.cumprod(factor)})


def km_step(table: pd.DataFrame, grid) -> np.ndarray:
    """Survival from :func:`kaplan_meier`'s table at each time of ``grid`` (right-continuous
    steps: 1 before the first time; the last value carries on past the data)."""
    grid = np.asarray(grid, dtype=float)
    idx = np.searchsorted(table["time"].to_numpy(float), grid, side="right") - 1
    surv = table["survival"].to_numpy(float)
    return np.where(idx >= 0, surv[np.maximum(idx, 0)], 1.0)
