"""The cost-aware policy: for each customer the arm with the highest expected incremental
profit, or no message when no arm pays; the budget curve; the cut at a budget.

Expected incremental profit of sending arm ``a`` to customer ``i``::

    profit[i, a] = uplift[i, a] * value[i] * margin - cost[a]

``uplift`` is the learner's (cross-fitted) conversion uplift, ``value`` the value of one
conversion (the customer's order value, or CLV: :mod:`crmlab.targeting.pipeline`), ``cost`` the
billed parts of the arm's copy times the price (the send log's cost per messaged customer).

**Budget curve.** Customers ranked by their best arm's expected profit, highest first, only
those with a positive one: after ``m`` messages the expected profit is the sum of the first
``m`` (non-decreasing in ``m``; for a budget in messages this greedy list is the best
allocation: each message costs one unit of budget and the profits are additive). For a
money budget the list is cut in the same order at the first customer who no longer fits
(a knapsack; the greedy cut is within one message's profit of the best).

**Intervals.** The expected profits are the model's; each comes with the percentile
bootstrap interval of the same list's *held-out* estimate: the sum over the list of the
doubly robust scores ``psi[i, a] = phi[i, a] * value[i] * margin - cost[a]`` (``phi`` the
DR pseudo-outcome, unbiased for the customer's uplift under the known randomisation),
customers resampled within their assigned arm. The held-out point estimate is reported too
(``held_out``): it is what the campaign's randomised data say the list would have made.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.targeting.evaluation import Resampler

__all__ = ["arm_profits", "choose", "budget_cut", "budget_curve", "list_interval", "replicate_weights", "NONE"]

NONE = "none"


def arm_profits(uplift: pd.DataFrame, value: np.ndarray, margin: float, cost: dict) -> pd.DataFrame:
    """Expected incremental profit of every arm for every customer (columns: arms)."""
    v = np.asarray(value, float)
    return pd.DataFrame({a: uplift[a].to_numpy(float) * v * margin - float(cost[a]) for a in uplift.columns},
                        index=uplift.index)


def choose(profits: pd.DataFrame) -> pd.DataFrame:
    """Per customer: ``arm`` (best, or ``"none"`` when no arm's expected profit is > 0),
    ``expected_incremental_profit`` (0 for none) and ``rank`` (1 = most profitable; none last,
    by how little they lose)."""
    best = profits.idxmax(axis=1).astype(str)
    top = profits.max(axis=1)
    arm = best.where(top > 0, NONE)
    eip = top.where(top > 0, 0.0)
    order = np.lexsort((np.arange(len(top)), -top.to_numpy()))
    rank = np.empty(len(top), int)
    rank[order] = np.arange(1, len(top) + 1)
    return pd.DataFrame({"arm": arm, "best_arm": best, "expected_incremental_profit": eip, "best_profit": top,
                         "rank": rank}, index=profits.index)


def budget_cut(policy: pd.DataFrame, cost: dict, budget: int | None = None,
               budget_money: float | None = None) -> pd.DataFrame:
    """``policy`` with the customers past the budget set to ``"none"`` (ranked order kept)."""
    p = policy.copy()
    send = p["arm"] != NONE
    order = p.index[np.argsort(p["rank"].to_numpy())]
    ranked = order[send.reindex(order).to_numpy()]
    if budget is not None:
        drop = ranked[int(budget):]
    elif budget_money is not None:
        c = np.cumsum([float(cost[a]) for a in p.loc[ranked, "arm"]])
        drop = ranked[c > float(budget_money) + 1e-9]
    else:
        return p
    p.loc[drop, "arm"] = NONE
    p.loc[drop, "expected_incremental_profit"] = 0.0
    return p


def replicate_weights(groups: np.ndarray, n_boot: int = 200, seed: int = 0) -> np.ndarray:
    """The bootstrap's resampling counts, ``(n_boot, customers)`` (``uint8``: a count above 255
    has probability far below 1e-100), customers resampled within ``groups``: the draws
    :func:`list_interval` and :func:`budget_curve` make from ``seed``, drawn once and shared by
    every list of the same customers (the lists' intervals then use the same replicates)."""
    rng, res = np.random.default_rng(seed), Resampler(groups)
    W = np.empty((n_boot, res.n), np.uint8)
    for b in range(n_boot):
        w = res.weights(rng)
        if w.max(initial=0) > 255:  # pragma: no cover  (never: see the doc)
            raise OverflowError("a bootstrap count above 255")
        W[b] = w
    return W


def list_interval(psi: np.ndarray, include: np.ndarray, groups: np.ndarray, n_boot: int = 200, level: float = 0.95,
                  seed: int = 0, weights: np.ndarray | None = None) -> tuple[float, float, float]:
    """Held-out estimate of a list's profit (sum of ``psi`` over ``include``) and its
    percentile bootstrap interval (customers resampled within ``groups``; ``weights``: the
    replicates of :func:`replicate_weights`, drawn here when not given)."""
    x = np.where(include, np.asarray(psi, float), 0.0)
    W = replicate_weights(groups, n_boot, seed) if weights is None else weights
    boot = np.array([float((w * x).sum()) for w in W])  # no BLAS: it spin-waits
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    return float(x.sum()), float(np.quantile(boot, lo)), float(np.quantile(boot, hi))


def budget_curve(policy: pd.DataFrame, cost: dict, psi: np.ndarray | None = None, groups: np.ndarray | None = None,
                 points: int = 21, n_boot: int = 200, level: float = 0.95, seed: int = 0,
                 weights: np.ndarray | None = None) -> pd.DataFrame:
    """Messages -> cost and expected incremental profit of the best list of that size.

    ``psi`` (customers x 1: the DR profit score of each customer's best arm, in ``policy``'s
    order) and ``groups`` (the assigned arms) add ``held_out``, ``ci_low``, ``ci_high``;
    without them those are missing (``weights``: the replicates of :func:`replicate_weights`,
    drawn here when not given). Rows: ``points`` message counts from 0 to the policy's size
    (always including both ends)."""
    send = (policy["arm"] != NONE).to_numpy()
    order = np.argsort(policy["rank"].to_numpy(), kind="mergesort")
    order = order[send[order]]
    prof = policy["expected_incremental_profit"].to_numpy(float)[order]
    costs = policy["arm"].iloc[order].map({a: float(c) for a, c in cost.items()}).to_numpy(float)
    M = len(order)
    ms = np.unique(np.linspace(0, M, points).round().astype(int))
    cum_p, cum_c = np.r_[0.0, np.cumsum(prof)], np.r_[0.0, np.cumsum(costs)]
    out = pd.DataFrame({"messages": ms, "cost": cum_c[ms], "incremental_profit": cum_p[ms]})
    out[["held_out", "ci_low", "ci_high"]] = np.nan
    if psi is None or M == 0:
        return out
    W = replicate_weights(np.asarray(groups), n_boot, seed) if weights is None else weights
    # each listed customer's segment of the curve (between two of its points), in the original order
    # (the customers not on the list: a last bin of their own, dropped)
    seg = np.full(len(send), len(ms) - 1)
    seg[order] = np.searchsorted(ms, np.arange(1, M + 1), side="left") - 1
    x = np.where(seg < len(ms) - 1, np.asarray(psi, float), 0.0)
    boot = np.empty((len(W), len(ms)))
    for b, w in enumerate(W):
        boot[b] = np.r_[0.0, np.cumsum(np.bincount(seg, w * x, minlength=len(ms))[:-1])]
    x = x[order]
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    out["held_out"] = np.r_[0.0, np.cumsum(x)][ms]
    out["ci_low"] = np.quantile(boot, lo, axis=0)
    out["ci_high"] = np.quantile(boot, hi, axis=0)
    return out
