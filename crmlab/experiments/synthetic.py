"""Planted SMS campaigns: send logs and orders with known effects, for checks and tests.

Customers have persistent levels: a purchase rate λ ~ Gamma(1, base_rate) per day (they buy
at that rate before and after the send: Poisson orders over the whole period) and a spend
level μ ~ Gamma(4, value_mean / 4) (each order ~ Gamma(5, μ / 5)). A messaged customer of arm
a places an extra campaign order within the window with probability min(extra[a] x w, 1),
w = λ / mean λ when ``response_weight`` (active customers respond more; mean 1) else 1.
Send times: the arm's ``@HH:MM`` (10:00 otherwise) on one of ``drip_days`` days, plus up to
10 minutes. The holdout's send time is split at random between the tested times
(``holdout_clock="split"``) or logged at the first tested time for all (``"first"``, so
the analysis has to derive the clock).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from crmlab.experiments.clocks import split_arm

__all__ = ["planted_campaign", "planted_outcomes", "hillstrom_like"]


def planted_campaign(extra: Mapping[str, float], n_per_arm: int = 3000, control_n: int | None = None,
                     segments: Mapping[str, int] | None = None, price: float = 0.05, base_rate: float = 0.004,
                     value_mean: float = 100.0, window_hours: float = 72, drip_days: int = 1, pre_days: int = 120,
                     holdout_clock: str = "split", response_weight: bool = True, with_cost: bool = True,
                     control: str = "holdout", campaign_date: str = "2025-03-01",
                     seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Sends (as :func:`crmlab.ingest.readers.load_sends` returns them), paid orders (the columns an order
    table needs; ``attrs["observation_end"]`` = two days after the last window) and the truth.

    ``extra``: extra conversion per messaged arm, e.g. ``{"A@10:00": 0.02, "B@10:00": 0.02}``;
    ``segments``: billed messages per copy (the part before ``@``; default 1).
    """
    rng = np.random.default_rng(seed)
    arms = list(extra)
    control_n = n_per_arm if control_n is None else control_n
    labels = np.repeat(np.arange(len(arms) + 1), [n_per_arm] * len(arms) + [control_n])
    arm_i = rng.permutation(labels)
    n = len(arm_i)
    names = np.array(arms + [control])
    is_ctl = arm_i == len(arms)
    lam = rng.gamma(1.0, base_rate, n)
    mu = rng.gamma(4.0, value_mean / 4, n)
    day0 = pd.Timestamp(campaign_date)
    hours = [int(split_arm(a)[1].split(":")[0]) if split_arm(a) else 10 for a in arms]
    mins = [int(split_arm(a)[1].split(":")[1]) if split_arm(a) else 0 for a in arms]
    clock_i = np.where(is_ctl, rng.integers(0, len(arms), n), arm_i)
    if holdout_clock == "first":
        clock_i = np.where(is_ctl, int(np.argmin(np.array(hours) * 60 + mins)), clock_i)
    offs = (rng.integers(0, drip_days, n) * 86400 + np.array(hours)[clock_i] * 3600 + np.array(mins)[clock_i] * 60
            + rng.integers(0, 600, n))
    send = day0 + pd.to_timedelta(offs, unit="s")
    W = pd.Timedelta(hours=window_hours)
    start = day0 - pd.Timedelta(days=pre_days)
    end = send.max() + W + pd.Timedelta(days=2)
    span = (end - start).total_seconds()
    k = rng.poisson(lam * span / 86400)
    cust = np.repeat(np.arange(n), k)
    t = start + pd.to_timedelta(rng.uniform(0, span, len(cust)), unit="s")
    w = lam / lam.mean() if response_weight else np.ones(n)
    p = np.where(is_ctl, 0.0, np.minimum(np.append(np.asarray(list(extra.values()), float), 0.0)[arm_i] * w, 1.0))
    conv = rng.uniform(size=n) < p
    ct = send[conv] + pd.to_timedelta(rng.uniform(0.5, window_hours - 2, conv.sum()) * 3600, unit="s")
    cust = np.concatenate([cust, np.flatnonzero(conv)])
    times = np.concatenate([t.to_numpy(), ct.to_numpy()])
    amount = np.round(rng.gamma(5.0, mu[cust] / 5), 2)
    ids = np.array([f"P{seed}_{i:06d}" for i in range(n)], dtype=object)
    orders = pd.DataFrame({"customer_id": ids[cust], "order_id": [f"o{i}" for i in range(len(cust))],
                           "order_time": pd.to_datetime(times).floor("s"), "amount": np.maximum(amount, 0.01),
                           "status": "paid"})
    orders = orders.sort_values("order_time", kind="stable").reset_index(drop=True)
    orders.attrs["observation_end"] = end
    seg_of = {a: int((segments or {}).get((split_arm(a) or (a,))[0], 1)) for a in arms}
    seg = np.where(is_ctl, 0, np.array([seg_of[a] for a in arms] + [0])[arm_i])
    sends = pd.DataFrame({"customer_id": ids, "campaign_id": "planted", "variant": names[arm_i],
                          "send_time": send.floor("s").to_numpy(), "delivered": ~is_ctl, "segments": seg.astype(float)})
    if with_cost:
        sends["cost"] = np.round(seg * price, 4)
    truth = {"extra": dict(extra), "segments": seg_of, "price": price, "control": control,
             "value_mean": value_mean, "observation_end": end}
    return sends, orders, truth


def planted_outcomes(extra: Mapping[str, float], n_per_arm: int = 3000, segments: Mapping[str, int] | None = None,
                     price: float = 0.05, base_rate: float = 0.004, value_mean: float = 100.0,
                     window_hours: float = 72, control: str = "holdout", seed: int = 0) -> pd.DataFrame:
    """The per-customer window outcomes of :func:`planted_campaign`'s process, drawn directly
    (no orders, no send log): ``arm``, ``clock``, ``orders``, ``converted``, ``revenue``,
    ``cost`` — the columns the decision reads — for studies over many stores.

    Per customer λ ~ Gamma(1, base_rate), μ ~ Gamma(4, value_mean / 4); organic window orders
    ~ Poisson(λ x window days); a messaged customer of arm a adds a campaign order with
    probability min(extra[a] x λ / mean λ, 1); each order ~ Gamma(5, μ / 5). The holdout's
    customers are split at random between the arms' send times (their clocks)."""
    rng = np.random.default_rng(seed)
    arms = list(extra)
    labels = np.repeat(np.arange(len(arms) + 1), n_per_arm)
    arm_i = rng.permutation(labels)
    n = len(arm_i)
    is_ctl = arm_i == len(arms)
    lam = rng.gamma(1.0, base_rate, n)
    mu = rng.gamma(4.0, value_mean / 4, n)
    k = rng.poisson(lam * window_hours / 24)
    p = np.where(is_ctl, 0.0, np.minimum(np.append(np.asarray(list(extra.values()), float), 0.0)[arm_i]
                                         * lam / lam.mean(), 1.0))
    k = k + (rng.uniform(size=n) < p)
    cust = np.repeat(np.arange(n), k)
    revenue = np.bincount(cust, weights=np.round(rng.gamma(5.0, mu[cust] / 5), 2), minlength=n)
    times = [(split_arm(a) or (a, "10:00"))[1] for a in arms]
    clock_i = np.where(is_ctl, rng.integers(0, len(arms), n), arm_i)
    seg_of = [int((segments or {}).get((split_arm(a) or (a,))[0], 1)) for a in arms]
    seg = np.where(is_ctl, 0, np.array(seg_of + [0])[arm_i])
    return pd.DataFrame({"arm": np.array(arms + [control], dtype=object)[arm_i],
                         "clock": np.array(times, dtype=object)[clock_i], "orders": k, "converted": k > 0,
                         "revenue": revenue, "cost": seg * price},
                        index=pd.RangeIndex(n, name="customer_id"))


def hillstrom_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Customers shaped like the Hillstrom e-mail data, for A/A checks of the adjusted readout.

    Recency 1-12 months, a skewed past-year spend (capped at 3,345), a newbie flag, about 0.8%
    converting (logit in the three), a converter's spend log-normal (heavy tail).

    Returns
    -------
    tuple of numpy.ndarray
        Covariates ``[past spend, recency, newbie]`` (n × 3), converted 0/1, revenue.
    """
    rng = np.random.default_rng(seed)
    recency = rng.integers(1, 13, n).astype(float)
    history = np.minimum(29.99 + rng.lognormal(np.log(150), 1.0, n), 3345.0)
    newbie = (rng.uniform(size=n) < 0.5).astype(float)
    logit = -4.9 + 0.45 * np.log(history / 150) - 0.07 * (recency - 6) - 0.3 * newbie
    conv = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(float)
    revenue = conv * np.round(rng.lognormal(np.log(80) + 0.2 * np.log(history / 150), 1.0, n), 2)
    return np.column_stack([history, recency, newbie]), conv, revenue
