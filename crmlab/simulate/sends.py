"""The simulated store's SMS campaign: who is targeted, their arm and send time, the orders the
messages cause, the chain's own conversions inside the window, and the send log.

The draws from the store's generator happen in :func:`assign_campaign` then
:func:`campaign_orders`, in the order :func:`crmlab.simulate.store.simulate_store` calls them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crmlab.experiments.sms import sms_segments
from crmlab.simulate.customers import Customers
from crmlab.simulate.spec import COPY, StoreSpec

__all__ = ["Campaign", "assign_campaign", "campaign_orders", "natural_conversions", "sends_table"]


@dataclass(frozen=True)
class Campaign:
    """The campaign's design: ``targeted`` customers (sorted indices), their ``arm`` (index into
    ``arm_names``, the holdout last, planned shares ``arm_p``), ``delivered``, ``send_time``
    and the response ``weight`` (mean 1 over the targeted)."""

    targeted: np.ndarray
    arm_names: list
    arm_p: list
    arm: np.ndarray
    is_hold: np.ndarray
    delivered: np.ndarray
    send_time: pd.DatetimeIndex
    weight: np.ndarray


def assign_campaign(spec: StoreSpec, rng: np.random.Generator, paid: pd.DataFrame) -> Campaign:
    """Customers whose last paid order is within the lookback, randomised to the arms."""
    camp_day = pd.Timestamp(spec.campaign_date)
    before = paid[paid["order_time"] < camp_day]
    last_before = before.groupby("cust")["order_time"].max()
    targeted = last_before.index[last_before >= camp_day - pd.Timedelta(days=spec.campaign_lookback_days)].to_numpy()
    targeted = np.sort(targeted)
    arm_names = list(spec.arms) + ["holdout"]
    arm_p = [(1 - spec.holdout_share) / len(spec.arms)] * len(spec.arms) + [spec.holdout_share]
    arm = rng.choice(len(arm_names), len(targeted), p=arm_p)
    is_hold = arm == len(spec.arms)
    delivered = np.where(is_hold, False, rng.uniform(size=len(targeted)) < spec.delivery_rate)
    arm_hours = [10 if "10:00" in a else 17 for a in spec.arms]
    # the holdout's clock: a virtual send at each tested time, split at random (own generator:
    # every other draw unchanged), so each arm is compared with a holdout on the same clock
    clock = np.random.default_rng([spec.seed, 1700]).choice(sorted(set(arm_hours)), len(targeted))
    hour = np.where(is_hold, clock, np.array(arm_hours + [0])[arm])
    send_time = (camp_day + pd.to_timedelta(hour, unit="h")
                 + pd.to_timedelta(rng.integers(0, 600, len(targeted)), unit="s"))
    # persistent levels: the response to a message follows the customer's recent buying,
    # weight (0.05 + paid orders in the 90 days before)^2, mean 1 over the targeted (so each
    # arm's average extra chance is as planted, and CUPED has something to remove)
    recent = before[before["order_time"] >= camp_day - pd.Timedelta(days=90)].groupby("cust").size()
    weight = 0.05 + recent.reindex(targeted, fill_value=0).to_numpy() ** 2.0
    weight = weight / weight.mean()
    return Campaign(targeted, arm_names, arm_p, arm, is_hold, delivered, send_time, weight)


def campaign_orders(spec: StoreSpec, rng: np.random.Generator, camp: Campaign) -> pd.DataFrame:
    """The paid orders a delivered message causes (beside the chain), inside the attribution window."""
    extra = np.minimum(np.append(np.asarray(spec.extra_conversion), 0.0)[camp.arm] * camp.weight, 1.0)
    converts = camp.delivered & (rng.uniform(size=len(camp.targeted)) < extra)
    conv_time = camp.send_time[converts] + pd.to_timedelta(
        rng.uniform(0.5, spec.attribution_hours - 2, converts.sum()), unit="h")
    return pd.DataFrame({"cust": camp.targeted[converts], "order_time": conv_time.values,
                         "k": 0, "status": "paid", "source": "campaign"})


def natural_conversions(spec: StoreSpec, paid: pd.DataFrame, camp: Campaign) -> np.ndarray:
    """Per targeted customer: a chain order inside the window anyway (for the truth of each arm's rate)."""
    win_end = camp.send_time + pd.Timedelta(hours=spec.attribution_hours)
    chain_idx = paid.set_index("cust")["order_time"]
    nat = np.zeros(len(camp.targeted), dtype=bool)
    pos = {c: i for i, c in enumerate(camp.targeted)}
    sel = chain_idx[chain_idx.index.isin(camp.targeted)]
    ti = np.array([pos[c] for c in sel.index])
    if len(ti):
        inside = (sel.values >= camp.send_time.values[ti]) & (sel.values <= win_end.values[ti])
        nat[ti[inside]] = True
    return nat


def sends_table(spec: StoreSpec, cu: Customers, camp: Campaign, nick: np.ndarray,
                phone: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """The campaign's SMS log, and each arm's billed segments for a typical nickname."""
    segs = {a: sms_segments(COPY[a[0]].format(nickname="王晓月呀")) for a in spec.arms}
    copy_txt = np.array([COPY[camp.arm_names[a][0]].format(nickname=nick[c]) if a < len(spec.arms) else ""
                         for a, c in zip(camp.arm, camp.targeted)], dtype=object)
    seg = np.array([sms_segments(t) if t else 0 for t in copy_txt])
    sends = pd.DataFrame({
        "customer_id": cu.ids[camp.targeted],
        "campaign_id": spec.campaign_id,
        "variant": np.array(camp.arm_names)[camp.arm],
        "send_time": camp.send_time.strftime("%Y-%m-%d %H:%M:%S"),
        "delivered": np.where(camp.delivered, "true", "false"),
        "segments": seg,
        "cost": np.round(seg * np.where(camp.is_hold, 0.0, spec.price_per_message), 2),
        "copy": copy_txt,
        "phone": phone[camp.targeted],
    })
    return sends, segs
