"""Equivalence tests for rates: two one-sided tests (TOST) that rates lie within a tolerance.

:func:`plateau_tost` is the test behind the magic number's plateau rule
(:func:`crmlab.analyses.magic_rules.magic_number`); :func:`judged_alone` says how many
customers at risk an order count needs to be judged on its own.

No crmlab imports (layer 3).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["plateau_tost", "judged_alone", "tost_arrays"]


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
