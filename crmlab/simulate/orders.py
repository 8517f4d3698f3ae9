"""The simulated store's order export: the noise orders beside the paid chain, order ids and
amounts, orders split into lines, nicknames and phones, and the export's mixed status wording.

The draws from the store's generator happen in :func:`all_orders` then :func:`export_orders`,
in the order :func:`crmlab.simulate.store.simulate_store` calls them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.simulate.customers import Customers
from crmlab.simulate.spec import CATEGORIES, CHANNELS, GIVEN, REGIONS, STATUS_CN, SUFFIX, SURNAMES, StoreSpec

__all__ = ["all_orders", "export_orders"]


def _noise_orders(spec: StoreSpec, rng: np.random.Generator, cu: Customers, n_paid: int) -> list[pd.DataFrame]:
    """Unpaid, refunded and cancelled orders of buyers, and the potential customers' unpaid orders."""
    end = pd.Timestamp(spec.end)
    noise = []
    for status, share in (("unpaid", spec.unpaid_share), ("refunded", spec.refunded_share),
                          ("cancelled", spec.cancelled_share)):
        m = int(round(n_paid * share))
        c = rng.choice(cu.buyers, m)
        t = cu.first[c] + (rng.uniform(0, 1, m) * np.maximum(
            (np.datetime64(end) - cu.first[c]) / np.timedelta64(1, "s"), 0) * 1e9).astype("timedelta64[ns]")
        noise.append(pd.DataFrame({"cust": c, "order_time": t, "k": 0, "status": status, "source": "noise"}))
    pot = np.flatnonzero(cu.is_pot)
    noise.append(pd.DataFrame({"cust": pot, "order_time": cu.first[pot], "k": 0, "status": "unpaid",
                               "source": "potential"}))
    return noise


def all_orders(spec: StoreSpec, rng: np.random.Generator, cu: Customers, paid: pd.DataFrame,
               camp_orders: pd.DataFrame) -> pd.DataFrame:
    """Every order (chain, campaign, noise) in time order, with its ``order_id`` and ``amount``."""
    noise = _noise_orders(spec, rng, cu, len(paid))
    allo = pd.concat([paid, camp_orders, *noise], ignore_index=True)
    allo = allo.sort_values(["order_time", "cust"], kind="stable").reset_index(drop=True)
    allo["order_time"] = allo["order_time"].dt.floor("s")
    allo["order_id"] = [f"O{i:08d}" for i in range(1, len(allo) + 1)]
    allo["amount"] = np.round(rng.gamma(spec.spend_p, 1.0 / cu.nu[allo["cust"].to_numpy()]), 2)
    allo["amount"] = np.maximum(allo["amount"], 0.01)
    return allo


def _split_lines(rng: np.random.Generator, allo: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Each order as 1-3 lines whose amounts (in cents) add up to the order's."""
    m = len(allo)
    n_lines = rng.choice([1, 2, 3], m, p=[0.6, 0.3, 0.1])
    rep_idx = np.repeat(np.arange(m), n_lines)
    lines = allo.iloc[rep_idx].reset_index(drop=True)
    line_no = np.concatenate([np.arange(x) for x in n_lines]) if m else np.array([], int)
    shares = rng.dirichlet(np.ones(3), m)
    part = shares[rep_idx, line_no]
    part = part / np.bincount(rep_idx, weights=part, minlength=m)[rep_idx]
    cents = np.round(lines["amount"].to_numpy() * 100).astype(np.int64)
    line_cents = np.floor(cents * part).astype(np.int64)
    last = np.r_[np.diff(rep_idx) != 0, True]
    fix = cents - np.bincount(rep_idx, weights=line_cents, minlength=m).astype(np.int64)[rep_idx]
    return lines, line_cents + np.where(last, fix, 0)


def _nicknames(rng: np.random.Generator, n: int) -> np.ndarray:
    s = rng.integers(0, len(SURNAMES), n)
    g1 = rng.integers(0, len(GIVEN), n)
    g2 = rng.integers(0, len(GIVEN), n)
    suf = rng.integers(0, len(SUFFIX), n)
    return np.array([SURNAMES[a] + GIVEN[b] + GIVEN[c] + SUFFIX[d] for a, b, c, d in zip(s, g1, g2, suf)])


def export_orders(rng: np.random.Generator, cu: Customers,
                  allo: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The order lines as the store exports them, and each customer's nickname and phone."""
    lines, line_cents = _split_lines(rng, allo)
    cust_i = lines["cust"].to_numpy()
    cat_names = list(CATEGORIES)
    ccat = cu.cat[cust_i]
    prod = np.array([CATEGORIES[cat_names[c]][0][int(x) % len(CATEGORIES[cat_names[c]][0])]
                     for c, x in zip(ccat, rng.integers(0, 6, len(lines)))])
    qty = rng.choice([1, 1, 1, 2, 3], len(lines))
    nick = _nicknames(rng, cu.n)
    phone = np.array([f"10{d}{x:08d}" for d, x in zip(rng.integers(0, 10, cu.n), rng.integers(0, 10**8, cu.n))])
    out = pd.DataFrame({
        "customer_id": cu.ids[cust_i],
        "order_id": lines["order_id"].to_numpy(),
        "order_time": lines["order_time"].dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy(),
        "amount": line_cents / 100.0,
        "status": lines["status"].to_numpy(),
        "channel": np.array(CHANNELS)[cu.channel[cust_i]],
        "region": np.array(REGIONS)[cu.region[cust_i]],
        "product": prod,
        "category": np.array(cat_names)[ccat],
        "quantity": qty,
        "nickname": nick[cust_i],
        "phone": phone[cust_i],
    })
    # a quarter of the statuses in the export's Chinese wording, as real exports mix them
    cn = rng.uniform(size=len(out)) < 0.25
    out.loc[cn, "status"] = out.loc[cn, "status"].map(STATUS_CN)
    return out, nick, phone
