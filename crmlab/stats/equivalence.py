"""Equivalence tests for rates: two one-sided tests (TOST) that rates lie within a tolerance.

:func:`pairwise_tost` (every pair of rates within the tolerance of each other) and
:func:`departs` (a rate shown to lie outside the tolerance of a reference) are the tests behind
the magic number's plateau rule (:func:`crmlab.analyses.magic_rules.magic_number`);
:func:`pair_size` says how many customers at risk two order counts need to be judged.
:func:`pairwise_rise` (a later rate shown above an earlier one, Holm over the pairs) and
:func:`rise_size` are behind the "indicated" level of a plateau too thin to be shown.
:func:`plateau_tost` (each rate against the pooled rate) and :func:`judged_alone` are the
older, looser test, kept for callers that want it.

No crmlab imports (layer 3).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["plateau_tost", "judged_alone", "tost_arrays", "pairwise_tost", "pair_size", "departs", "rise_size",
           "pairwise_rise"]


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
    p, pooled, d, se, pv, need = tost_arrays(x, n, tolerance, alpha)
    return pd.DataFrame({"at_risk": n.astype(np.int64), "repurchased": x.astype(np.int64), "rate": p,
                         "pooled_rate": pooled, "difference": d, "se": se, "p_value": pv,
                         "equivalent": pv < alpha, "needed_at_risk": need})


def tost_arrays(x: np.ndarray, n: np.ndarray, tolerance: float, alpha: float):
    """:func:`plateau_tost` as arrays: ``(rate, pooled_rate, difference, se, p_value, needed_at_risk)``."""
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


def _pairs(repurchased, at_risk):
    """Every pair ``i < j`` of rates ``x/n``: ``(n, i, j, p, se)``, ``se`` of ``p_j − p_i`` (each
    rate's variance with ``p`` kept half an event inside (0, 1), so a 0% or 100% rate has one)."""
    x = np.asarray(repurchased, dtype=float)
    n = np.asarray(at_risk, dtype=float)
    i, j = np.triu_indices(len(x), 1)
    p = x / n
    pc = np.clip(p, 0.5 / n, 1 - 0.5 / n)
    v = pc * (1 - pc) / n
    return n, i, j, p, np.sqrt(v[i] + v[j])


def pairwise_tost(repurchased, at_risk, tolerance: float = 0.03, alpha: float = 0.05) -> pd.DataFrame:
    """Two one-sided tests (TOST) that every pair of rates lies within ``tolerance`` of each other.

    For rows i < j with ``x`` repurchased of ``n``, ``d = p_i − p_j`` has the Wald variance
    ``p_i (1 − p_i) / n_i + p_j (1 − p_j) / n_j`` (rows independent; each ``p`` kept half a
    customer away from 0 and 1); ``p_value = 1 − Φ((tolerance − |d|) / se)``, the larger of
    the two one-sided p-values (Schuirmann 1987). A pair is ``equivalent`` when
    ``p_value < alpha``: the 1 − 2·alpha interval of ``d`` lies inside ± ``tolerance``.
    "Every pair equivalent" is an intersection–union test of "some pair differs by
    ``tolerance`` or more": level ``alpha`` with no multiplicity correction (Berger 1982).
    No rate is pooled with another, so no pair can hide behind an average.

    ``needed_factor``: at the observed rates, how many times its customers the pair would
    need to pass, ``(z_{1−alpha} se / (tolerance − |d|))²`` (below 1 when it passes already);
    infinite when ``|d| >= tolerance``. ``needed_at_risk`` is that times the smaller ``n``.

    Returns a DataFrame with one row per pair: ``i, j`` (row positions), ``at_risk_i,
    at_risk_j, rate_i, rate_j, difference, se, p_value, equivalent, needed_factor,
    needed_at_risk``.
    """
    n, i, j, p, se = _pairs(repurchased, at_risk)
    d = p[i] - p[j]
    margin = tolerance - np.abs(d)
    pv = stats.norm.sf(margin / se)
    z = stats.norm.ppf(1 - alpha)
    with np.errstate(divide="ignore"):
        factor = np.where(margin > 0, (z * se / np.where(margin > 0, margin, 1.0)) ** 2, np.inf)
    return pd.DataFrame({"i": i, "j": j, "at_risk_i": n[i].astype(np.int64), "at_risk_j": n[j].astype(np.int64),
                         "rate_i": p[i], "rate_j": p[j], "difference": d, "se": se, "p_value": pv,
                         "equivalent": pv < alpha, "needed_factor": factor,
                         "needed_at_risk": factor * np.minimum(n[i], n[j])})


def pair_size(tolerance: float = 0.03, alpha: float = 0.05, power: float = 0.95) -> int:
    """Customers at risk each of two order counts needs for their rates to be told apart from
    "within ``tolerance``": the count at which two equal rates pass :func:`pairwise_tost` with
    probability ``power`` at the worst-case variance 1/4,
    ``2 · 0.25 (z_{1−alpha} + z_{(1+power)/2})² / tolerance²`` (7,220 for ±3 points, 5%, 95%;
    4,758 at 80%). Order counts with fewer are "not enough customers to tell"."""
    z = stats.norm.ppf(1 - alpha) + stats.norm.ppf((1 + power) / 2)
    return int(np.ceil(0.5 * z * z / tolerance ** 2))


def departs(repurchased, at_risk, ref_repurchased: float, ref_at_risk: float, tolerance: float = 0.03):
    """One-sided p-values that each rate lies *outside* ``tolerance`` of a reference rate.

    ``d = p − p_ref`` with Wald variance ``p (1 − p) / n + p_ref (1 − p_ref) / n_ref`` (the
    reference independent of the rows); the null hypothesis is ``|d| <= tolerance`` and the
    p-value ``1 − Φ((|d| − tolerance) / se)`` (valid at the null's boundary, conservative
    inside it). Small p: the rate is shown to differ from the reference by more than the
    tolerance. Returns ``(difference, se, p_value)`` arrays.
    """
    x = np.asarray(repurchased, dtype=float)
    n = np.asarray(at_risk, dtype=float)
    p = x / n
    pc = np.clip(p, 0.5 / n, 1 - 0.5 / n)
    q = ref_repurchased / ref_at_risk
    se = np.sqrt(pc * (1 - pc) / n + q * (1 - q) / ref_at_risk)
    d = p - q
    return d, se, stats.norm.sf((np.abs(d) - tolerance) / se)



def rise_size(tolerance: float = 0.03, alpha: float = 0.05, power: float = 0.8) -> int:
    """Customers at risk an order count needs for a rate ``tolerance`` above a well-known
    reference rate to be detected by a one-sided z-test at ``alpha`` with probability ``power``,
    at the worst-case variance 1/4: ``0.25 (z_{1−alpha} + z_{power})² / tolerance²`` (1,718 for
    3 points, 5%, 80%). Below it a 3-point rise would mostly go unseen, so a plateau is not
    *indicated* there (:func:`crmlab.analyses.magic_rules.magic_number`)."""
    z = stats.norm.ppf(1 - alpha) + stats.norm.ppf(power)
    return int(np.ceil(0.25 * z * z / tolerance ** 2))


def pairwise_rise(repurchased, at_risk, alpha: float = 0.05) -> pd.DataFrame:
    """One-sided z-tests that the later rate of each pair is above the earlier one, Holm over the pairs.

    For rows i < j (in order, e.g. order counts), ``rise = p_j − p_i`` with the Wald standard
    error of :func:`pairwise_tost`; ``p_rise = 1 − Φ(rise / se)`` tests H0: ``p_j <= p_i``.
    ``rises``: rejected by Holm's step-down procedure over all pairs at ``alpha`` (family-wise
    error at most ``alpha`` under any configuration of the rates; Holm 1979).

    Returns a DataFrame with one row per pair: ``i, j, rise, se, p_rise, rises``.
    """
    n, i, j, p, se = _pairs(repurchased, at_risk)
    rise = p[j] - p[i]
    pv = stats.norm.sf(rise / se)
    m = len(pv)
    order = np.argsort(pv, kind="stable")
    # Holm: the r-th smallest p (r = 0..m-1) is compared with alpha / (m - r); stop at the first above
    passed = pv[order] <= alpha / (m - np.arange(m))
    stop = np.flatnonzero(~passed)
    rejected = np.zeros(m, bool)
    rejected[order[: stop[0] if len(stop) else m]] = True
    return pd.DataFrame({"i": i, "j": j, "rise": rise, "se": se, "p_rise": pv, "rises": rejected})
