"""One incremental profit per arm, from the arm's own revenue per message, and the rule that
picks the arm (issue 25, items 8 and 9).

**Profit per message** of a group of messaged customers against a group it is compared with
(the holdout on its clock, or another arm)::

    profit = margin x (revenue per message - the other's revenue per message)
             - (cost per message - the other's cost per message)

Revenue per message is the mean window revenue per targeted customer, so each arm brings its
own order value (no value per buyer pooled over the arms). Costs are known per message; the
variance is ``margin^2 (s_a^2 / n_a + s_b^2 / n_b)`` (sample variances, ddof 1): the delta
method is exact here because the profit is linear in the two means. Intervals are Wald.

**The arm**: the messaged arm with the highest profit per message (point estimate) is compared
with every other arm (profit difference, two-sided Wald p-value), the p-values Holm-adjusted
over those comparisons. The arms whose adjusted p-value is at least ``alpha`` are "not
detectably below the best"; of those the cheapest is chosen (then the current copy, then the
higher point estimate). No pre-test decides whether this view is used.

**The factor view** (copy and send time judged separately, on main effects) is used only when
the copy x send-time interaction on the additive conversion scale is shown to be *within* a
practical margin (``interaction_margin``, default 1 percentage point) by two one-sided tests
(TOST, Schuirmann 1987): each interaction contrast's 100(1 - 2 alpha)% interval lies inside
± margin (intersection-union over the contrasts: level alpha without correction). A small or
non-significant interaction is not evidence of none: without that evidence the arms decide.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from crmlab.experiments.metrics import control_rows, holm

__all__ = ["PROFIT_METHOD", "group_stats", "profit_between", "profit_vs_control", "arm_profits",
           "interaction_equivalence", "INTERACTION_MARGIN"]

INTERACTION_MARGIN = 0.01
PROFIT_METHOD = ("profit per message = margin x (the arm's revenue per message - the holdout's on the same clock) - "
                 "cost per message, each arm from its own revenue; Wald interval with variance margin^2 (s_a^2/n_a + "
                 "s_c^2/n_c) (the delta method, exact for this linear profit)")


def group_stats(rows: pd.DataFrame) -> dict:
    """``n``, mean ``revenue`` per message and its variance ``var`` (of the mean), mean ``cost``,
    conversion ``rate`` of a group of targeted customers (``campaign_outcomes`` rows)."""
    n = len(rows)
    r = rows["revenue"].to_numpy(float)
    return {"n": n, "revenue": float(r.mean()) if n else float("nan"),
            "var": float(r.var(ddof=1) / n) if n > 1 else float("inf"),
            "cost": float(rows["cost"].sum() / n) if n else float("nan"),
            "rate": float(rows["converted"].mean()) if n else float("nan")}


def profit_between(a: dict, b: dict, margin: float, z: float) -> dict:
    """Profit per message of group ``a`` over group ``b`` (:func:`group_stats` dicts):
    ``value``, ``se``, ``ci_low``, ``ci_high``, ``p_value`` (two-sided, against 0)."""
    est = margin * (a["revenue"] - b["revenue"]) - (a["cost"] - b["cost"])
    se = margin * math.sqrt(a["var"] + b["var"])
    p = float(2 * stats.norm.sf(abs(est) / se)) if se > 0 else (1.0 if est == 0 else 0.0)
    return {"value": est, "se": se, "ci_low": est - z * se, "ci_high": est + z * se, "p_value": p}


def profit_vs_control(outcomes: pd.DataFrame, control: str, sel: pd.Series, margin: float, z: float) -> dict:
    """The selected messaged customers against the holdout on their clock (one arm) or the whole
    holdout (several arms): ``incremental_conversion``, ``incremental_revenue_per_message``,
    ``cost_per_message`` and the profit per 1,000 messages (``value``, ``ci_low``, ``ci_high``)."""
    t = outcomes[sel]
    arms_in = t["arm"].unique()
    c = control_rows(outcomes, arms_in[0], control) if len(arms_in) == 1 else outcomes[outcomes["arm"] == control]
    a, b = group_stats(t), group_stats(c)
    r = profit_between(a, b, margin, z)
    return {"incremental_conversion": a["rate"] - b["rate"], "incremental_revenue_per_message": a["revenue"] - b["revenue"],
            "cost_per_message": a["cost"] - b["cost"], **{k: 1000 * r[k] for k in ("value", "ci_low", "ci_high")}}


def arm_profits(outcomes: pd.DataFrame, control: str, margin: float, alpha: float = 0.05) -> pd.DataFrame:
    """Per messaged arm: its profit per 1,000 messages against the holdout on its clock
    (``profit_per_1000``, ``ci_low``, ``ci_high``), its ``cost_per_message``, and against the arm
    with the highest profit: ``below_best`` (per 1,000), ``p_value``, ``p_holm`` (Holm over the
    comparisons with the best) and ``tied`` (not detectably below the best: ``p_holm >= alpha``)."""
    z = stats.norm.isf(alpha / 2)
    arms = [a for a in sorted(outcomes["arm"].unique()) if a != control]
    st = {a: group_stats(outcomes[outcomes["arm"] == a]) for a in arms}
    rows = {a: profit_vs_control(outcomes, control, outcomes["arm"] == a, margin, z) for a in arms}
    t = pd.DataFrame({a: {"profit_per_1000": r["value"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                          "cost_per_message": st[a]["cost"], "revenue_per_message": st[a]["revenue"]}
                      for a, r in rows.items()}).T
    # the best by the arms' own profit per message (the holdout's revenue differs only by clock)
    own = {a: margin * st[a]["revenue"] - st[a]["cost"] for a in arms}
    best = max(arms, key=lambda a: own[a])
    others = [a for a in arms if a != best]
    gaps = {a: profit_between(st[best], st[a], margin, z) for a in others}
    p = np.array([gaps[a]["p_value"] for a in others])
    adj = holm(p) if len(p) else p
    t["below_best"] = [0.0 if a == best else 1000 * gaps[a]["value"] for a in t.index]
    t["p_value"] = [np.nan if a == best else gaps[a]["p_value"] for a in t.index]
    t["p_holm"] = [np.nan if a == best else float(adj[others.index(a)]) for a in t.index]
    t["tied"] = [a == best or adj[others.index(a)] >= alpha for a in t.index]
    t["best"] = [a == best for a in t.index]
    t.index.name = "arm"
    return t


def interaction_equivalence(cells: pd.DataFrame, copies, times, margin: float = INTERACTION_MARGIN,
                            alpha: float = 0.05) -> dict:
    """TOST that every copy x time interaction contrast (additive scale, cell rates with
    variances p(1-p)/n) lies within ± ``margin``: per contrast ``diff``, ``se``, the
    100(1 - 2 alpha)% interval and the TOST p-value (the larger one-sided one); ``equivalent``
    when every p-value is below ``alpha`` (intersection-union)."""
    idx = list(cells.index)
    p = cells["rate"].to_numpy(float)
    v = p * (1 - p) / cells["n"].to_numpy(float)
    z = stats.norm.isf(alpha)
    out = []
    for c, t in itertools.product(copies[1:], times[1:]):
        r = np.zeros(len(idx))
        for key, s in (((c, t), 1), ((c, times[0]), -1), ((copies[0], t), -1), ((copies[0], times[0]), 1)):
            r[idx.index(key)] += s
        d, se = float(r @ p), float(np.sqrt(r ** 2 @ v))
        pv = float(stats.norm.sf((margin - abs(d)) / se)) if se > 0 else float(abs(d) >= margin)
        out.append({"contrast": f"({c}@{t} - {c}@{times[0]}) - ({copies[0]}@{t} - {copies[0]}@{times[0]})",
                    "diff": d, "se": se, "ci_low": d - z * se, "ci_high": d + z * se, "p_value": pv})
    level = 1 - 2 * alpha
    return {"margin": margin, "alpha": alpha, "interval_level": level, "contrasts": out,
            "p_value": max(x["p_value"] for x in out) if out else float("nan"),
            "equivalent": bool(out) and all(x["p_value"] < alpha for x in out),
            "method": f"TOST: each interaction contrast's {100 * level:g}% interval inside ±{100 * margin:g} points"}
