"""Why the magic number's rule found no order count: the curve described in words.

The reasons of :func:`crmlab.analyses.magic_rules.magic_number` when its answer is None: too
little data, a plateau refuted by a thinner order count that moves away, rates that look flat
with too few customers to show it (and how many it would take), or a curve that keeps rising.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.present.formatting import pct

__all__ = ["reason"]


def reason(curve, u, rule, chosen, answers, details, table, min_at_risk, alpha, tolerance) -> str | None:
    """Why there is no magic number (None when there is one)."""
    if len(u) < 3:
        return (f"too little data: only {len(u)} order count(s) have at least {min_at_risk} customers whose "
                f"order had a full {curve.window_days}-day window before the observation end (need 3)")
    if chosen is not None:
        return None
    pl = details.get("plateau", {})
    if rule == "plateau" and pl.get("moved"):
        return _moved(table, details["plateau"], tolerance, alpha)
    if rule == "plateau" and table is not None:
        return _not_shown(table, pl, tolerance, alpha)
    reason = _describe(u, answers, details)
    if rule == "plateau" and (pl.get("through_k") or 0) < int(u["k"].iloc[0]) + 1:  # fewer than two judged
        k_short = int(u["k"].iloc[0]) + (0 if pl.get("through_k") is None else 1)
        n_short = int(u.set_index("k").at[k_short, "at_risk"])
        reason += (f"; not enough customers to tell whether it levels off: two order counts are told within "
                   f"{100 * tolerance:g} points of each other from {pl['pair_size']:,} customers at risk each, "
                   f"and k = {k_short} has {n_short:,}")
    elif rule == "plateau":
        reason += (f"; from no order count on are all rates through k = {pl.get('through_k')} within "
                   f"{100 * tolerance:g} points of each other")
    return reason


def _moved(table: pd.DataFrame, pl: dict, tolerance: float, alpha: float) -> str:
    """The plateau shown on the judged order counts, refuted by a thinner one that moves away."""
    t = pl["tail"]
    out = t[t["outside"]]
    parts = [f"k = {k} at {pct(r, 0)} ({n:,} at risk)" for k, r, n in zip(out["k"], out["rate"], out["at_risk"])]
    return (f"the rates from {table['k_i'].min()} to {pl['through_k']} orders are within {100 * tolerance:g} points "
            f"of each other, but the rate moves again after {pl['through_k']}: " + "; ".join(parts)
            + f" {'lies' if len(parts) == 1 else 'lie'} more than {100 * tolerance:g} points from their {pct(t['plateau_rate'].iloc[0], 0)} (one-sided "
            f"z-tests at {100 * alpha:g}%, Bonferroni over the {len(t)} thinner order counts): no plateau")


def _not_shown(f: pd.DataFrame, pl: dict, tolerance: float, alpha: float) -> str:
    pts = f"{100 * tolerance:g} points"
    k0, k1 = int(f["k_i"].min()), int(f["k_j"].max())
    short = sorted({int(v) for v in np.r_[f["k_i"], f["k_j"]] if v > (pl.get("through_k") or 0)})
    text = (f"the rates from {k0} to {k1} orders look flat (every two within {pts} of each other), but there are not "
            f"enough customers to show it (two one-sided tests at {100 * alpha:g}%)")
    if short:
        text += (f": k = {', '.join(map(str, short))} have fewer than {pl['pair_size']:,} customers at risk, "
                 f"not enough to tell")
    else:
        fail = f[~f["equivalent"]]
        text += ": " + "; ".join(f"{g} ({a:,} and {b:,} at risk) would need about {c:.1f}× as many" for g, a, b, c in
                                 zip(fail["pair"], fail["at_risk_i"], fail["at_risk_j"], fail["needed_factor"]))
    factor = pl.get("needed_factor")
    return text + (f". At the observed rates that takes about {factor:.1f}× the store's customers"
                   if factor is not None and np.isfinite(factor) else "")


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
