"""How far chance alone moves a promotion's targets and attainment: compound-Poisson intervals over buyers.

Every count of a promotion cell is a sum over the customers who bought in it:
``S = sum_i v_i`` (``v_i`` = 1 for buyers, the customer's orders, sales or units). Treating
the buyers as a Poisson process whose customers bring their own values (compound Poisson;
the same as a Poisson bootstrap over buyers, to first order), ``Var(S) = sum_i v_i**2 = Q``,
so the relative variance of a count is ``Q / S**2`` (``1 / S`` for buyers). A growth
estimated from two window counts ``R / B`` has relative variance ``1 / R + 1 / B``; a
growth given with ``--growth`` has none (it is a decision, not an estimate).

* **Target** ``T = X (1 + g)`` (``X`` last year's count of the phase and type):
  ``Var(T) = (1 + g)**2 (Q_X + X**2 v_g)``; ``all`` adds new and old (a buyer is one or the
  other).
* **Plan range** (``target_low`` … ``target_high``): where this year's actual falls with
  the run's interval level *if the store runs as planned*: the target's own error plus this
  year's sampling error ``Var(Y) = Q_X (1 + g)`` (last year's buyers' spread, scaled), on
  the log scale: ``T exp(±z sqrt((Var(T) + Var(Y)) / T**2))``.
* **Attainment interval** (``attainment_low`` … ``attainment_high``): ``A = Y / T`` with
  ``Var(log A) = Q_Y / Y**2 + Var(T) / T**2``; a store that ran as planned has 100% inside
  it with (about) the stated probability.
* **Ratios** (AOV = sales / orders, orders and units per buyer): ``Var(log a/b) =
  Q_a/a**2 + Q_b/b**2 - 2 C_ab/(a b)`` with ``C_ab = sum_i a_i b_i``; a ratio's target is
  last year's ratio (for ``all``, the mix of the two types: its variance is taken as last
  year's ``all`` ratio's).

This year's and last year's counts are treated as independent. For old customers they are
positively correlated (the same customers), which makes the attainment interval wider than
needed, not narrower; the study ``studies/promotion_attainment.py`` measures the coverage.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

__all__ = ["SPREAD", "RATIOS", "growth_relvar", "spread_with_all", "intervals", "METHOD"]

#: the per-cell spread columns the engine returns beside the counts
SPREAD = ("q_orders", "q_sales", "q_units", "c_sales_orders")
#: ratio metric -> (numerator, denominator)
RATIOS = {"aov": ("sales", "orders"), "orders_per_buyer": ("orders", "buyers"),
          "units_per_buyer": ("units", "buyers")}
METHOD = ("compound Poisson over buyers (each count's variance is the sum of its buyers' squared values), "
          "with the growth estimate's sampling error; log scale")


def growth_relvar(bases: dict, source: dict) -> dict[str, float]:
    """Relative variance of ``1 + growth`` per type: ``1/R + 1/B`` when estimated from two
    window counts, 0 when given (or not estimated)."""
    keys = {"new": ("new_recent", "new_before"), "old": ("active_this", "active_last")}
    out = {}
    for typ, (a, b) in keys.items():
        ra, rb = bases.get(a) or 0, bases.get(b) or 0
        out[typ] = 1.0 / ra + 1.0 / rb if source.get(typ) == "estimated" and ra > 0 and rb > 0 else 0.0
    return out


def spread_with_all(cells: pd.DataFrame, phases) -> pd.DataFrame:
    """Counts and spread per (phase, type) with the ``all`` type (new + old: disjoint buyers)."""
    rows = {}
    for ph in [p.name for p in phases] + ["period"]:
        new, old = cells.loc[(ph, "new")], cells.loc[(ph, "old")]
        for typ, r in (("new", new), ("old", old), ("all", new + old)):
            rows[(ph, typ)] = r
    f = pd.DataFrame(rows).T.astype(float)
    f.index.names = ["phase", "type"]
    return f


def _q(f: pd.DataFrame, m: str) -> pd.Series:
    return f["buyers"] if m == "buyers" else f[f"q_{m}"]


def _div(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / b, np.nan)


def _count_var(last: pd.DataFrame, growth: dict, rv: dict, m: str) -> tuple[pd.Series, pd.Series]:
    """Var(T) and Var(Y if as planned) of count ``m`` per (phase, type)."""
    f = 1.0 + last.index.get_level_values("type").map(lambda t: growth.get(t, np.nan)).to_numpy(float)
    v = last.index.get_level_values("type").map(lambda t: rv.get(t, 0.0)).to_numpy(float)
    x, q = last[m].to_numpy(float), _q(last, m).to_numpy(float)
    var_t = pd.Series(f ** 2 * (q + x ** 2 * v), index=last.index)
    var_y = pd.Series(q * f, index=last.index)
    for var in (var_t, var_y):  # all = new + old
        for ph in last.index.get_level_values("phase").unique():
            var.loc[(ph, "all")] = var.loc[(ph, "new")] + var.loc[(ph, "old")]
    return var_t, var_y


def _ratio_relvar(f: pd.DataFrame, m: str) -> np.ndarray:
    a, b = RATIOS[m]
    qa, qb = _q(f, a).to_numpy(float), _q(f, b).to_numpy(float)
    sa, sb = f[a].to_numpy(float), f[b].to_numpy(float)
    c = f["c_sales_orders"].to_numpy(float) if m == "aov" else sa
    return np.clip(_div(qa, sa ** 2) + _div(qb, sb ** 2) - 2 * _div(c, sa * sb), 0.0, None)


def intervals(last: pd.DataFrame, this: pd.DataFrame, plan: pd.DataFrame, growth: dict, rv: dict,
              level: float) -> pd.DataFrame:
    """Plan range and attainment interval per (phase, type, metric).

    Parameters
    ----------
    last, this : DataFrame
        :func:`spread_with_all` of last year and this year (counts and spread).
    plan : DataFrame
        The targets per (phase, type) (columns: the metrics).
    growth, rv : dict
        Growth per type and :func:`growth_relvar`.
    level : float
        The interval level (the run's ``Settings.interval_level``).

    Returns
    -------
    DataFrame
        Index (phase, type, metric); columns ``target_low``, ``target_high``,
        ``attainment_low``, ``attainment_high`` (NaN where a count is 0).
    """
    z = float(norm.ppf(0.5 + level / 2))
    out = {}
    for m in plan.columns:
        t = plan[m].reindex(last.index).to_numpy(float)
        if m in RATIOS:
            a, b = RATIOS[m]
            rv_t = _ratio_relvar(last, m)
            rv_yplan = rv_t * _div(last[b], plan[b].reindex(last.index))
            rv_y = _ratio_relvar(this, m)
            y = _div(this[a], this[b])
        else:
            var_t, var_y = _count_var(last, growth, rv, m)
            rv_t, rv_yplan = _div(var_t, t ** 2), _div(var_y, t ** 2)
            y = this[m].to_numpy(float)
            rv_y = np.where(y > 0, _div(_q(this, m), y ** 2), rv_yplan)
        with np.errstate(invalid="ignore", over="ignore"):
            w = z * np.sqrt(rv_t + rv_yplan)
            att = _div(y, t)
            wa = z * np.sqrt(rv_y + rv_t)
        out[m] = pd.DataFrame({"target_low": t * np.exp(-w), "target_high": t * np.exp(w),
                               "attainment_low": att * np.exp(-wa), "attainment_high": att * np.exp(wa)},
                              index=last.index)
    f = pd.concat(out, names=["metric"]).reorder_levels(["phase", "type", "metric"])
    return f.reindex(pd.MultiIndex.from_product([last.index.get_level_values("phase").unique(), ["new", "old", "all"],
                                                 list(plan.columns)], names=["phase", "type", "metric"]))
