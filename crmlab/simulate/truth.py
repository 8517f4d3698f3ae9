"""What the simulated store planted: truth.json's numbers and truth_customers.csv's rows.

No random draw happens here: every figure is computed from the simulated orders and the
spec with plain NumPy and pandas, so the crmlab statistics can be checked against it.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict

import numpy as np
import pandas as pd

from crmlab.simulate.customers import Chain, Customers, expit
from crmlab.simulate.promotions import promotion_truth
from crmlab.simulate.sends import Campaign
from crmlab.simulate.spec import StoreSpec

__all__ = ["store_truth", "truth_customers", "propensity_truth", "spec_dict", "write_truth"]

_REPURCHASE_NOTE = ("P(order k+1 within window_days of order k) among customers whose k-th order is at least "
                    "window_days before the observation end: the population's curve, an association (see "
                    "propensity); campaign orders add about +0.001 to k-th orders placed in the 90 days before "
                    "the campaign")


def propensity_truth(spec: StoreSpec, own: dict, z: np.ndarray) -> dict:
    """The planted heterogeneity: a_k, a typical customer's own rate, every buyer's mean rate at k."""
    sd = spec.propensity_sd
    if sd <= 0:
        return {"sd_logit": 0.0, "model": "none: every customer has the planted rate at each k"}
    ks = sorted(own)
    return {
        "sd_logit": sd,
        "model": "P(repurchase within the window | k orders, z) = expit(a_k + sd_logit * z), z ~ N(0, 1) per customer",
        "calibration": "a_k solved so that the mean over customers whose k-th order is at least window_days "
                       "before the observation end equals repurchase_rate_by_k",
        "intercept_by_k": {str(k): round(own[k], 6) for k in ks},
        "typical_customer_rate_by_k": {str(k): round(float(expit(own[k])), 6) for k in ks},
        "all_buyers_rate_by_k": {str(k): round(float(expit(own[k] + sd * z).mean()), 6) for k in ks},
        "note": "the curve's rise is partly selection: had every buyer reached k orders, their mean rate at k "
                "would be all_buyers_rate_by_k, not repurchase_rate_by_k",
    }


#: issue 24's options: recorded only when used, so the default store's truth.json stays as it was
_OPTIONAL = {"returns": ("returns", "return_partial_share", "return_unmatched_share"),
             "truncate_before": ("truncate_before",)}


def spec_dict(spec: StoreSpec) -> dict:
    """The spec as truth.json records it (issue 24's options only when they are on)."""
    d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(spec).items()}
    for switch, keys in _OPTIONAL.items():
        if not getattr(spec, switch):
            for k in keys:
                d.pop(k)
    return d


def _paid_counts(n: int, all_paid: pd.DataFrame, obs_end: pd.Timestamp) -> tuple[pd.Series, dict]:
    """Paid orders per customer, and the lifecycle-stage counts by the ladder's rule."""
    n_all = all_paid.groupby("cust").size().reindex(range(n), fill_value=0)
    last_all = all_paid.groupby("cust")["order_time"].max().reindex(range(n))
    # whole calendar days from the last paid order's date to the observation end's date
    since = (np.datetime64(obs_end, "D") - last_all.to_numpy().astype("datetime64[D]")) / np.timedelta64(1, "D")
    stage = np.where(n_all.to_numpy() == 0, "potential",
             np.where(since > 360, "lost", np.where(since > 90, "dormant",
             np.where(n_all.to_numpy() >= 2, "returning", "new"))))
    counts = pd.Series(stage).value_counts().to_dict()
    return n_all, {k: int(v) for k, v in sorted(counts.items())}


def _campaign_truth(spec: StoreSpec, camp: Campaign, nat: np.ndarray, segs: dict) -> dict:
    """The campaign's planted figures: each arm's conversion, the send-time effect, the decision."""
    arms_truth = {}
    extra = np.append(spec.extra_conversion, 0.0)
    for j, a in enumerate(camp.arm_names):
        ex = np.minimum(extra[j] * camp.weight, 1.0) * (spec.delivery_rate if a != "holdout" else 0)
        arms_truth[a] = {"planned_share": camp.arm_p[j], "extra_conversion_if_delivered": float(extra[j]),
                         "conversion_rate": float(np.mean(nat + (1 - nat) * ex)),
                         "segments": int(segs.get(a, 0)), "targeted": int((camp.arm == j).sum())}
    ten = [a for a in spec.arms if "10:00" in a]
    seventeen = [a for a in spec.arms if "17:00" in a]
    return {
        "campaign_id": spec.campaign_id, "date": spec.campaign_date,
        "attribution_hours": spec.attribution_hours, "targeted": int(len(camp.targeted)),
        "delivery_rate": spec.delivery_rate, "price_per_message": spec.price_per_message,
        "natural_rate": float(nat.mean()), "arms": arms_truth,
        "effect_17_vs_10": float(np.mean([arms_truth[a]["conversion_rate"] for a in seventeen])
                                 - np.mean([arms_truth[a]["conversion_rate"] for a in ten])),
        "effect_copy_B_vs_A": 0.0,
        "winner_time": "17:00",
        "decision": {"arm": "A@17:00", "copy": "A", "send_time": "17:00",
                     "why": "copy has no effect and B bills two messages: the cheaper copy A at 17:00"},
        "holdout_clock": "virtual send time split at random between the tested times",
        "response_weight": "(0.05 + paid orders in the 90 days before)^2, mean 1 over the targeted",
    }


def store_truth(spec: StoreSpec, cu: Customers, chain: Chain, paid: pd.DataFrame, camp_orders: pd.DataFrame,
                allo: pd.DataFrame, pulls: dict, camp: Campaign, nat: np.ndarray,
                segs: dict) -> tuple[dict, pd.DataFrame]:
    """truth.json's dict and truth_customers.csv's frame."""
    obs_end = pd.Timestamp(spec.end)
    all_paid = pd.concat([paid, camp_orders])
    n_all, counts = _paid_counts(cu.n, all_paid, obs_end)
    death = chain.death
    truth = {
        "spec": spec_dict(spec),
        "observation_end": str(obs_end),
        "customers": cu.n,
        "buyers": int(len(cu.buyers)),
        "potential_customers": int(cu.is_pot.sum()),
        "magic_number": spec.magic_number,
        "repurchase_window_days": spec.window_days,
        "repurchase_rate_by_k": {str(k): float(spec.rate(k)) for k in range(1, 11)},
        "repurchase_note": _REPURCHASE_NOTE,
        "propensity": propensity_truth(spec, chain.own, chain.z[cu.buyers]),
        "spend": {"p": spec.spend_p, "q": spec.spend_q, "v": spec.spend_v},
        "dropout_beta": {"a": spec.dropout_a, "b": spec.dropout_b},
        "alive_at_observation_end": int(np.sum(~cu.is_pot & (np.isnat(death) | (death > np.datetime64(obs_end))))),
        "lifecycle_counts_ladder": counts,
        "paid_orders": int(len(all_paid)),
        "chain_orders": int(len(paid)),
        "promotions": promotion_truth(allo, spec, pulls),
        "campaign": _campaign_truth(spec, camp, nat, segs),
    }
    return truth, truth_customers(cu, death, n_all)


def truth_customers(cu: Customers, death: np.ndarray, n_all: pd.Series) -> pd.DataFrame:
    """Per customer: ``customer_id, death_time`` (empty when alive at the end), ``paid_orders``."""
    return pd.DataFrame({
        "customer_id": cu.ids,
        "death_time": pd.Series(death).dt.strftime("%Y-%m-%d %H:%M:%S").fillna("").to_numpy(),
        "paid_orders": n_all.to_numpy(),
    })


def write_truth(out_dir: str, truth: dict) -> None:
    """``truth.json`` in ``out_dir``: every planted number, keys sorted, one trailing newline."""
    with open(os.path.join(out_dir, "truth.json"), "w", encoding="utf-8") as f:
        json.dump(truth, f, ensure_ascii=False, indent=2, sort_keys=True)
        f.write("\n")
