"""Does the model fit this store? The checks that decide what the CLV page may claim.

* :func:`spend_frequency_check`: Gamma-Gamma assumes a customer's spend per purchase is
  independent of how often they buy; Spearman's rank correlation of frequency and average
  spend among repeat customers with its p-value (and Pearson's, for comparison) is the
  evidence — the page's wording follows it, never a flat assertion.
* :func:`misfit`: the sentence that goes first in the headline when the holdout misses the
  total (outside the ±band) or the period-transactions test rejects the chosen model.
* :func:`no_dropout_evidence`: when the chosen model finds no dropout (Pareto/NBD at its NBD
  boundary, BG/NBD or MBG/NBD with a, b huge, or P(alive) >= 0.8 for customers silent far
  beyond their own rhythm), the data cannot tell who is gone: nobody is labelled "likely
  still a customer" and the wake-up list is ranked by recency against each customer's own
  rhythm (:func:`rhythm_ratio`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from crmlab.clv import expectations as ex
from crmlab.present import formatting
from crmlab.clv.base import LABELS, FittedModel

__all__ = ["spend_frequency_check", "misfit", "no_dropout_evidence", "rhythm_ratio", "PT_ALPHA", "NO_DROPOUT"]

#: the period-transactions test's level below which the model "does not fit"
PT_ALPHA = 0.01
#: the sentence for a store whose data shows no dropout
NO_DROPOUT = "the store's data cannot tell who is gone"
_SILENT_GAPS = 4.0  # "far beyond their own rhythm": silent for more than 4 of their own mean gaps
_ALIVE_HIGH = 0.8


def spend_frequency_check(summary: pd.DataFrame, suffix: str = "") -> dict:
    """Spearman's ρ of frequency and average spend among repeat customers, its p-value, Pearson's
    r and the number of repeat customers; NaN with fewer than 3."""
    rep = summary[summary[f"frequency{suffix}"] > 0]
    out = {"spearman_rho": float("nan"), "p_value": float("nan"), "pearson_r": float("nan"), "n": int(len(rep))}
    if len(rep) < 3:
        return out
    f, m = rep[f"frequency{suffix}"].to_numpy(float), rep[f"monetary_value{suffix}"].to_numpy(float)
    if np.ptp(f) == 0 or np.ptp(m) == 0:
        return out
    rho, p = spearmanr(f, m)
    out.update(spearman_rho=float(rho), p_value=float(p), pearson_r=float(np.corrcoef(f, m)[0, 1]))
    return out


def misfit(hold: dict | None, chosen: str, period_transactions: dict) -> str | None:
    """Why the chosen model does not fit this store (holdout total outside the band; the
    period-transactions test rejecting at :data:`PT_ALPHA`), or None."""
    why = []
    if hold is not None and chosen in hold["metrics"].index:
        err = float(hold["metrics"].at[chosen, "total_error"])
        if abs(err) > hold["band"]:
            why.append(f"its holdout total is {err:+.0%} off")
    pt = period_transactions.get(chosen)
    if pt is not None and pt.get("p_value") is not None and pt["p_value"] < PT_ALPHA:
        why.append(f"the period-transactions test rejects it, {formatting.p_is(pt['p_value'])}")
    if not why:
        return None
    return f"{LABELS[chosen]} does not fit this store ({'; '.join(why)}): treat the value as rough"


def rhythm_ratio(summary: pd.DataFrame) -> pd.Series:
    """Silence against the customer's own rhythm: (T − recency) / (recency / frequency), the time
    since the last purchase in mean inter-purchase gaps; NaN for one-time buyers."""
    x, r, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where((x > 0) & (r > 0), r / np.where(x > 0, x, 1), np.nan)
        out = (T - r) / gap
    return pd.Series(out, index=summary.index, name="rhythm_ratio")


def no_dropout_evidence(model: FittedModel, summary: pd.DataFrame, min_customers: int = 20) -> str | None:
    """Why the chosen model shows no evidence of dropout, or None when it does."""
    if model.status == "boundary" and "no dropout" in (model.error or ""):
        return f"{LABELS[model.name]} finds no dropout ({model.error})"
    th = model.params_.to_numpy(float)
    if model.name in ("bgnbd", "mbgnbd") and (th[2] / (th[2] + th[3]) < 1e-3 or min(th[2], th[3]) > 1e3):
        return f"{LABELS[model.name]}'s dropout probability is essentially 0 (a = {th[2]:.3g}, b = {th[3]:.3g})"
    ratio = rhythm_ratio(summary).to_numpy()
    silent = (summary["frequency"].to_numpy(float) >= 2) & (ratio > _SILENT_GAPS)
    if silent.sum() >= min_customers:
        s = summary[silent]
        pa = ex.p_alive(model.name, th, *(s[c].to_numpy(float) for c in ("frequency", "recency", "T")))
        if float(np.median(pa)) >= _ALIVE_HIGH:
            return (f"{LABELS[model.name]} keeps customers silent for more than {_SILENT_GAPS:g} of their own "
                    f"purchase gaps alive (median P(alive) {np.median(pa):.2f} over {int(silent.sum()):,})")
    return None
