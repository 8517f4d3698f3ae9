"""Pre-send balance of an SMS experiment and re-randomisation (issue 28, ``crmlab design``).

* **Covariates** (:func:`design_covariates`), per candidate as of the design date (the orders'
  observation end): ``recency`` (days since the last paid order), ``frequency`` (paid orders),
  ``monetary`` (paid sales), ``tenure`` (days since the first paid order) and, with a send log,
  ``past_messages`` (delivered messages whose response window closed before the design date)
  and ``past_responses`` (their attributable responses: window orders minus messages x the
  log's organic rate, :func:`crmlab.experiments.responses.response_history`). A customer the
  log never messaged has 0 of both; a candidate without orders has no recency ... tenure
  (missing, left out of that covariate's SMD).
* **Balance**: for each covariate and each messaged arm,
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

from crmlab.analyses.rfm import rfm_scores
from crmlab.engine.aggregates import customer_frame
from crmlab.engine.sources import order_table
from crmlab.experiments.clocks import split_arm
from crmlab.experiments.design import assign, minimum_detectable_effect
from crmlab.experiments.program import DEFAULT_SALT, HASH_RULE, program_holdout_mask
from crmlab.experiments.responses import response_history

__all__ = ["design_covariates", "response_strata", "smd_table", "design_experiment", "COVARIATES"]

#: the balance table's covariates, in order (the last two only with a send log)
COVARIATES = ("recency", "frequency", "monetary", "tenure", "past_messages", "past_responses")


def design_covariates(orders, sends: pd.DataFrame | None = None, window_hours: float = 72,
                      candidates=None, engine=None) -> pd.DataFrame:
    """Per buyer, or per id of ``candidates`` (index ``customer_id``, text): the
    :data:`COVARIATES` as of the orders' observation end (see the module doc); without ``sends``
    only the first four, and ``attrs["past_responses"]`` says "no send log". ``attrs["as_of"]``:
    the design date."""
    o = order_table(orders, engine)
    rfm = rfm_scores(o)
    feats = rfm[["recency", "frequency", "monetary"]].astype(float)
    feats.index = feats.index.astype(str)
    cf = customer_frame(o)
    cf.index = cf.index.astype(str)
    end = pd.Timestamp(o.observation_end)
    first = pd.to_datetime(cf["first_time"]).reindex(feats.index)
    feats["tenure"] = ((end.normalize() - first.dt.normalize()).dt.days).astype(float)
    if candidates is not None:  # a candidate without orders: missing order covariates, still randomised
        feats = feats.reindex(pd.Index(pd.unique(pd.Index(candidates).astype(str)), name="customer_id"))
    note = "no send log: past messages and responses are not in the balance table"
    if sends is not None and len(sends):
        h = response_history(sends, o, window_hours=window_hours)
        h.index = h.index.astype(str)
        organic = h.attrs.get("organic_rate") or 0.0
        m = h["messages"].reindex(feats.index).fillna(0).astype(float)
        feats["past_messages"] = m
        feats["past_responses"] = h["responses"].reindex(feats.index).fillna(0).astype(float) - m * organic
        note = (f"past messages and attributable responses with a {window_hours:g} h window "
                f"(organic rate {organic:.4f} netted out)")
    feats.attrs.update(as_of=end, past_responses=note)
    return feats


def response_strata(features: pd.DataFrame) -> pd.Series:
    """A stratum per customer from the send log: "never messaged", "no response" (messaged,
    no window order beyond the organic share) or "responded" (``crmlab design --strata responses``)."""
    m, r = features["past_messages"].fillna(0).to_numpy(), features["past_responses"].fillna(0).to_numpy()
    lab = np.where(m == 0, "never messaged", np.where(r > 0, "responded", "no response"))
    return pd.Series(lab, index=features.index, name="responses")


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
                      price_per_message: float = 0.05, parts: dict | None = None, program_holdout: float = 0.0,
                      program_salt: str = DEFAULT_SALT) -> dict:
    """The ``crmlab design`` result: ``assignment`` (customer_id, arm, copy, send_time),
    ``arms`` {arm: customers}, ``balance``, ``max_abs_smd``, ``rerandomized``, ``mde``, ``cost``,
    ``program_holdout``.

    ``features``: covariates indexed by customer id (every candidate); ``strata``: a label per
    customer (same index) each stratum is split in the planned shares; ``baseline``: the
    conversion the detectable difference is computed at (80% power, two-sided ``alpha``);
    ``parts``: billed parts per message by copy (default 1); ``program_holdout``: the share of
    customers the whole programme keeps out (:func:`crmlab.experiments.program.program_holdout_mask`
    with ``program_salt``): they are left out of the assignment before anything is drawn."""
    kept = ~program_holdout_mask(features.index, program_holdout, program_salt)
    prog = {"share": program_holdout, "salt": program_salt, "customers": int((~kept).sum()), "rule": HASH_RULE}
    features = features[kept]
    strata = strata.reindex(features.index) if strata is not None else None
    cust = pd.DataFrame({"customer_id": features.index.astype(str)})
    if strata is not None:
        cust["stratum"] = strata.reindex(features.index).fillna("unknown").astype(str).to_numpy()
    draws = max(1, int(rerandomize) or 1)
    best, made = None, 0
    for k in range(draws):
        made = k + 1
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
                             "draws": made, "accepted": bool(worst < threshold),
                             "rule": "Morgan & Rubin (2012): redraw until max |SMD| < threshold"
                                     if rerandomize else "none: one draw"},
            "mde": {"baseline": baseline, "power": power, "alpha": alpha, "per_arm": mde},
            "cost": {"messages": messages, "price_per_message": price_per_message, "total": cost},
            "strata": None if strata is None else int(pd.Series(cust["stratum"]).nunique()),
            "program_holdout": prog}
