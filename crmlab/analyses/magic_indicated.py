"""The "indicated" level of the magic number's plateau: the evidence points to a plateau the
store is too small to *show*.

A plateau is shown (:func:`crmlab.analyses.magic_rules.magic_number`) when every pair of
order counts in it passes two one-sided tests at ±``tolerance``; that needs about 7,220
customers at risk per order count (:func:`~crmlab.stats.equivalence.pair_size`), which a
20,000-customer store has only at k = 1 and 2. Short of that, a plateau from M is
*indicated* when, over the unbroken run of order counts M..K' with at least
:func:`~crmlab.stats.equivalence.rise_size` customers at risk (1,718 at ±3 points: where a
rate 3 points above the plateau is seen by a one-sided 5% test with 80% power):

* every two rates' point estimates are within ``tolerance`` of each other (strictly);
* no later rate is shown above an earlier one (one-sided z-tests, Holm over the pairs at
  ``alpha``: :func:`~crmlab.stats.equivalence.pairwise_rise`);
* no thinner order count after K' is shown more than ``tolerance`` from the plateau's rate
  (:func:`~crmlab.stats.equivalence.departs`, Bonferroni over them at ``alpha``).

It is a rule on estimates, not a test of flatness: a curve whose true rates differ by
exactly the tolerance passes the first condition about half the time (docs/methods/magic-number.md).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.stats.equivalence import departs, pairwise_rise, pairwise_tost

__all__ = ["indicated_search", "indicated_table"]


def indicated_table(k, x, n, lo: int, hi: int, tolerance: float, alpha: float,
                    rise_alpha: float | None = None) -> pd.DataFrame:
    """Every pair of order counts ``k[lo:hi]``: the equivalence test (:func:`pairwise_tost`
    columns) and the rise test (``rise, p_rise, rises``), with ``pair, k_i, k_j``."""
    t = pairwise_tost(x[lo:hi], n[lo:hi], tolerance, alpha)
    r = pairwise_rise(x[lo:hi], n[lo:hi], alpha if rise_alpha is None else rise_alpha)
    t["p_rise"], t["rises"] = r["p_rise"].to_numpy(), r["rises"].to_numpy()
    ki, kj = k[lo:hi][t["i"]], k[lo:hi][t["j"]]
    t.insert(0, "pair", [f"{a} vs {b}" for a, b in zip(ki, kj)])
    t.insert(1, "k_i", ki.astype(int))
    t.insert(2, "k_j", kj.astype(int))
    return t.drop(columns=["i", "j"])


def _tail(k, x, n, lo: int, end: int, tolerance: float, alpha: float) -> pd.DataFrame | None:
    """The order counts after ``end`` against the pooled rate of ``lo..end-1`` (Bonferroni)."""
    if end >= len(k):
        return None
    d, se, pv = departs(x[end:], n[end:], x[lo:end].sum(), n[lo:end].sum(), tolerance)
    return pd.DataFrame({"k": k[end:].astype(int), "at_risk": n[end:].astype(np.int64), "rate": x[end:] / n[end:],
                         "plateau_rate": x[lo:end].sum() / n[lo:end].sum(), "difference": d, "se": se,
                         "p_value": pv, "outside": pv < alpha / (len(k) - end)})


def indicated_search(k, x, n, alpha: float, tolerance: float, n_indicate: int, n_tell: int,
                     rise_alpha: float | None = None) -> dict:
    """The smallest k from which a plateau is indicated (see the module docstring).

    Returns a dict: ``magic`` (k or None), ``through`` (K', or None when fewer than two order
    counts have ``n_indicate`` at risk), ``table`` (:func:`indicated_table` of M..K'),
    ``tail`` (the thinner order counts against the plateau), ``moved`` (one of them shown
    outside the tolerance: no plateau), ``needed_factor`` (times the store's customers that
    would have every order count M..K' judged and every pair pass the equivalence test).
    ``rise_alpha``: the level of the rise tests (None: ``alpha``).
    """
    short = np.flatnonzero(n < n_indicate)
    end = int(short[0]) if len(short) else len(n)
    out = {"magic": None, "through": int(k[end - 1]) if end >= 2 else None, "table": None, "tail": None,
           "moved": False, "needed_factor": None}
    for i in range(end - 1):
        r = x[i:end] / n[i:end]
        if r.max() - r.min() >= tolerance - 1e-12:
            continue
        t = indicated_table(k, x, n, i, end, tolerance, alpha, rise_alpha)
        if t["rises"].any():
            continue
        tail = _tail(k, x, n, i, end, tolerance, alpha)
        moved = tail is not None and bool(tail["outside"].any())
        factor = float(max(t["needed_factor"].max(), n_tell / n[i:end].min()))
        out.update(table=t, tail=tail, moved=moved, needed_factor=factor, magic=None if moved else int(k[i]))
        return out
    return out
