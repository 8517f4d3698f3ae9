"""Pre-send balance of an SMS experiment and re-randomisation (issue 28, ``crmlab design``).

* **Balance**: for each covariate (recency, frequency, monetary, ...) and each messaged arm,
  the standardised mean difference against the holdout (or, without one, the first arm):
  SMD = (mean_arm - mean_ref) / sqrt((s²_arm + s²_ref) / 2) (sample variances, ddof 1;
  0 when both variances are 0). ``max_abs_smd`` is the largest |SMD| over covariates and arms.
* **Re-randomisation** (Morgan & Rubin 2012): draw the stratified assignment with seeds
  ``seed, seed + 1, ...`` up to ``rerandomize`` times and keep the first whose max |SMD| is
  below ``threshold``; if none is, the draw with the smallest max |SMD| is kept and the result
  says so. The acceptance rule is recorded (``rerandomized``) so the readout can state it:
  under re-randomisation the usual intervals are conservative (Morgan & Rubin 2012, Thm 3.2 —
  the covariates' imbalance is bounded, so the true variance is smaller than the one assumed).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from crmlab.experiments.clocks import split_arm
from crmlab.experiments.design import assign, minimum_detectable_effect

__all__ = ["smd_table", "design_experiment"]


def smd_table(features: pd.DataFrame, table: pd.DataFrame, reference: str) -> tuple[list[dict], float]:
    """``balance`` records [{covariate, smd: {arm: value}}] and the max |SMD| (see the module doc).
    ``features``: numeric covariates indexed by customer id; ``table``: customer_id, arm."""
    f = features.reindex(table["customer_id"].astype(str).to_numpy())
    arm = table["arm"].to_numpy()
    ref = arm == reference
    out, worst = [], 0.0
    for cov in features.columns:
        x = f[cov].to_numpy(float)
        xr = x[ref & np.isfinite(x)]
        smd = {}
        for a in [a for a in pd.unique(arm) if a != reference]:
            xa = x[(arm == a) & np.isfinite(x)]
            sd = np.sqrt((np.var(xa, ddof=1) + np.var(xr, ddof=1)) / 2) if min(len(xa), len(xr)) > 1 else np.nan
            d = float((xa.mean() - xr.mean()) / sd) if sd > 0 else 0.0
            smd[str(a)] = d
            worst = max(worst, abs(d)) if np.isfinite(d) else worst
        out.append({"covariate": str(cov), "smd": smd})
    return out, worst


def design_experiment(features: pd.DataFrame, arms: Sequence[str], holdout: float = 0.2,
                      strata: pd.Series | None = None, seed: int = 0, rerandomize: int = 0,
                      threshold: float = 0.05, baseline: float = 0.03, alpha: float = 0.05, power: float = 0.8,
                      price_per_message: float = 0.05, parts: dict | None = None) -> dict:
    """The ``crmlab design`` result: ``assignment`` (customer_id, arm, copy, send_time),
    ``arms`` {arm: customers}, ``balance``, ``max_abs_smd``, ``rerandomized``, ``mde``, ``cost``.

    ``features``: covariates indexed by customer id (every candidate); ``strata``: a label per
    customer (same index) each stratum is split in the planned shares; ``baseline``: the
    conversion the detectable difference is computed at (80% power, two-sided ``alpha``);
    ``parts``: billed parts per message by copy (default 1)."""
    cust = pd.DataFrame({"customer_id": features.index.astype(str)})
    if strata is not None:
        cust["stratum"] = strata.reindex(features.index).fillna("unknown").astype(str).to_numpy()
    draws = max(1, int(rerandomize) or 1)
    best = None
    for k in range(draws):
        a = assign(cust, list(arms), holdout_share=holdout, stratify_by="stratum" if strata is not None else None,
                   seed=seed + k)
        ref = "holdout" if holdout > 0 else list(arms)[0]
        bal, worst = smd_table(features, a.table, ref)
        if best is None or worst < best[2]:
            best = (a, bal, worst, seed + k)
        if rerandomize and worst < threshold:
            break
    a, bal, worst, used = best
    t = a.table[["customer_id", "arm"]].copy()
    parts_of = lambda x: (split_arm(x) or (x, None))  # noqa: E731
    t["copy"] = [("" if x == "holdout" else parts_of(x)[0]) for x in t["arm"]]
    t["send_time"] = [("" if x == "holdout" else (parts_of(x)[1] or "")) for x in t["arm"]]
    counts = t["arm"].value_counts()
    n_hold = int(counts.get("holdout", 0))
    mde = {}
    for arm in arms:
        n = int(counts.get(arm, 0))
        ok = n > 0 and (n_hold > 0 or holdout == 0)
        mde[arm] = (minimum_detectable_effect(baseline, n, alpha, power, ratio=(n_hold / n) if n_hold else 1.0)
                    if ok else None)
    messages = int(sum(counts.get(x, 0) for x in arms))
    cost = float(sum(counts.get(x, 0) * (parts or {}).get(parts_of(x)[0], 1) for x in arms) * price_per_message)
    return {"assignment": t, "arms": {str(k): int(v) for k, v in counts.items()}, "balance": bal,
            "max_abs_smd": worst,
            "rerandomized": {"draws_allowed": int(rerandomize), "threshold": threshold, "seed_used": used,
                             "draws": used - seed + 1, "accepted": bool(worst < threshold),
                             "rule": "Morgan & Rubin (2012): redraw until max |SMD| < threshold"
                                     if rerandomize else "none: one draw"},
            "mde": {"baseline": baseline, "power": power, "alpha": alpha, "per_arm": mde},
            "cost": {"messages": messages, "price_per_message": price_per_message, "total": cost},
            "strata": None if strata is None else int(pd.Series(cust["stratum"]).nunique())}
