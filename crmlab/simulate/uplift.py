"""A simulated SMS campaign with **planted heterogeneous effects**, for uplift targeting.

Every customer has a purchase history before the campaign (recency, orders, spend level);
the campaign randomises them to the arms (``A@17:00``, ``B@17:00`` by default) and a
no-message holdout. The conversion inside the attribution window is drawn from

    P(convert | arm) = base(x) + uplift_arm(x)   (holdout: base(x))

with both recorded per customer in the truth, so the true expected incremental profit of any
policy is computable without any model:

    profit_i(arm) = uplift_arm(x_i) * value_i * margin - parts_arm * price

(``value_i`` = the customer's expected order value). With ``heterogeneous=True``:

* **dormant high-value** customers (last order 120-365 days ago, spend level above the
  median, or 3+ orders) are helped a lot (``+0.10`` for copy A);
* **recent buyers** (last order within 30 days) would buy anyway (high ``base``) and a
  message costs a little (``-0.02``: annoyed, unsubscribe);
* everyone else gets a small effect (``+0.005``: below the cost of a message for most);
* **copy B** (long: 2 billed parts) adds ``+0.06`` only for loyal customers (3+ orders),
  and is ``-0.01`` worse than A for the others.

With ``heterogeneous=False`` every customer gets the same ``flat_uplift`` for every arm.
All draws come from one generator seeded with ``seed``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["simulate_uplift_campaign", "true_profit", "oracle_arms", "UPLIFT_ARMS"]

UPLIFT_ARMS = ("A@17:00", "B@17:00")
_PARTS = {"A": 1, "B": 2}
_CHANNELS = ("天猫", "抖音", "微信小程序")
_REGIONS = ("广东", "浙江", "江苏", "上海", "北京")


def _history(rng: np.random.Generator, n: int, camp: pd.Timestamp) -> tuple[pd.DataFrame, dict]:
    """Past paid orders (before the campaign) and each customer's traits."""
    n_orders = 1 + rng.poisson(1.2, n)
    recency = np.where(rng.uniform(size=n) < 0.3, rng.uniform(1, 30, n), rng.uniform(30, 365, n))
    level = rng.gamma(4.0, 40.0, n)  # expected order value
    ids = np.array([f"U{i:07d}" for i in range(n)], dtype=object)
    cust = np.repeat(np.arange(n), n_orders)
    k = np.concatenate([np.arange(m)[::-1] for m in n_orders])  # 0 = the last order
    gap = rng.exponential(45.0, len(cust))
    days_before = recency[cust] + np.where(k == 0, 0.0, k * 20.0 + gap)
    t = camp - pd.to_timedelta(days_before, unit="D")
    amount = np.round(rng.gamma(5.0, level[cust] / 5.0), 2)
    orders = pd.DataFrame({"customer_id": ids[cust], "order_time": t.floor("s"), "amount": amount,
                           "status": "paid", "channel": np.array(_CHANNELS)[rng.integers(0, 3, len(cust))],
                           "region": np.array(_REGIONS)[rng.integers(0, 5, len(cust))]})
    return orders, {"ids": ids, "n_orders": n_orders, "recency": recency, "level": level}


def _effects(tr: dict, arms, heterogeneous: bool, flat_uplift: float) -> tuple[np.ndarray, dict, np.ndarray]:
    """Base conversion, the planted uplift per arm, and each customer's segment label."""
    rec, n_orders, level = tr["recency"], tr["n_orders"], tr["level"]
    recent = rec <= 30
    dormant_hv = (rec >= 120) & ((level > np.median(level)) | (n_orders >= 3))
    loyal = n_orders >= 3
    base = np.where(recent, 0.25, 0.03) + 0.01 * np.minimum(n_orders, 5)
    seg = np.select([recent, dormant_hv], ["recent", "dormant_high_value"], "other")
    up = {}
    for a in arms:
        if not heterogeneous:
            up[a] = np.full(len(rec), flat_uplift)
            continue
        u = np.select([recent, dormant_hv], [-0.04, 0.10], 0.005)
        if a.startswith("B"):
            u = np.where(loyal, u + 0.06, u - 0.01)
            u = np.where(recent, -0.04, u)
        up[a] = np.clip(u, -base, 1 - base)
    return base, up, seg


def simulate_uplift_campaign(n_customers: int = 20_000, seed: int = 0, heterogeneous: bool = True,
                             arms: tuple = UPLIFT_ARMS, holdout_share: float = 1 / 3,
                             campaign_date: str = "2025-11-01", price_per_message: float = 0.05,
                             window_hours: float = 72, flat_uplift: float = 0.02,
                             campaign_id: str = "uplift-test") -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Simulate a store's history and one randomised campaign with planted per-customer uplift.

    Parameters
    ----------
    n_customers, seed : int
    heterogeneous : bool
        Plant the segment effects of the module doc (else ``flat_uplift`` for everyone).
    arms : tuple of str
        ``COPY@HH:MM``; copy ``B`` is billed as 2 parts, any other as 1.
    holdout_share : float
        Share of customers in the no-message holdout (the rest split evenly over the arms).

    Returns
    -------
    orders : DataFrame
        ``customer_id, order_id, order_time, amount, status, channel, region``.
    sends : DataFrame
        ``customer_id, campaign_id, variant, send_time, delivered, segments, cost``.
    truth : dict
        ``customers`` (DataFrame indexed by customer_id: ``arm``, ``base``, ``value``,
        ``segment``, ``uplift_<arm>`` per arm), ``parts`` {arm: billed parts}, ``price``,
        ``campaign_time``, ``heterogeneous``.
    """
    rng = np.random.default_rng(seed)
    camp = pd.Timestamp(campaign_date) + pd.Timedelta(hours=17)
    past, tr = _history(rng, n_customers, camp)
    base, up, seg = _effects(tr, arms, heterogeneous, flat_uplift)
    names = list(arms) + ["holdout"]
    p = [(1 - holdout_share) / len(arms)] * len(arms) + [holdout_share]
    arm = rng.choice(len(names), n_customers, p=p)
    prob = base + np.select([arm == i for i in range(len(arms))], [up[a] for a in arms], 0.0)
    conv = rng.uniform(size=n_customers) < prob
    send_time = camp + pd.to_timedelta(rng.integers(0, 600, n_customers), unit="s")
    lag = pd.to_timedelta(rng.uniform(0.5, window_hours - 2, conv.sum()), unit="h")
    new = pd.DataFrame({"customer_id": tr["ids"][conv], "order_time": (send_time[conv] + lag).floor("s"),
                        "amount": np.round(rng.gamma(5.0, tr["level"][conv] / 5.0), 2), "status": "paid",
                        "channel": "天猫", "region": np.array(_REGIONS)[rng.integers(0, 5, conv.sum())]})
    orders = pd.concat([past, new], ignore_index=True).sort_values(["order_time", "customer_id"], kind="stable")
    orders.insert(1, "order_id", [f"O{i:08d}" for i in range(len(orders))])
    orders = orders.reset_index(drop=True)
    orders.attrs["observation_end"] = camp + pd.Timedelta(days=10)
    parts = {a: _PARTS.get(a[0], 1) for a in arms}
    msg = arm < len(arms)
    seg_n = np.array([parts[a] for a in arms] + [0])[arm]
    sends = pd.DataFrame({"customer_id": tr["ids"], "campaign_id": campaign_id, "variant": np.array(names)[arm],
                          "send_time": send_time, "delivered": msg, "segments": seg_n,
                          "cost": np.round(seg_n * price_per_message, 4)})
    cust = pd.DataFrame({"arm": np.array(names)[arm], "base": base, "value": tr["level"], "segment": seg,
                         "n_orders": tr["n_orders"], "recency_days": tr["recency"],
                         **{f"uplift_{a}": up[a] for a in arms}}, index=pd.Index(tr["ids"], name="customer_id"))
    truth = {"customers": cust, "parts": parts, "price": price_per_message, "campaign_time": camp,
             "heterogeneous": heterogeneous, "arms": list(arms), "window_hours": window_hours}
    return orders, sends, truth


def true_profit(truth: dict, assignment: pd.Series, margin: float = 0.3) -> float:
    """The true expected incremental profit of sending ``assignment`` (customer_id -> arm or
    ``"none"``), from the planted truth: sum of uplift x value x margin - parts x price."""
    c = truth["customers"]
    a = assignment.reindex(c.index).fillna("none").astype(str)
    total = 0.0
    for arm in truth["arms"]:
        m = (a == arm).to_numpy()
        total += float((c[f"uplift_{arm}"].to_numpy()[m] * c["value"].to_numpy()[m] * margin).sum()
                       - m.sum() * truth["parts"][arm] * truth["price"])
    return total


def oracle_arms(truth: dict, margin: float = 0.3) -> pd.Series:
    """The oracle policy: each customer's arm with the highest true expected profit, or
    ``"none"`` when no arm pays."""
    c = truth["customers"]
    prof = pd.DataFrame({a: c[f"uplift_{a}"] * c["value"] * margin - truth["parts"][a] * truth["price"]
                         for a in truth["arms"]})
    best = prof.idxmax(axis=1)
    return best.where(prof.max(axis=1) > 0, "none")
