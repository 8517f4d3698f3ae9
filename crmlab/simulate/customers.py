"""The simulated store's customers and their paid-order chains.

:func:`draw_customers` draws each customer's traits (potential or buyer, first order, tempo,
dropout, return gap, spend rate, channel, region, category); :func:`repurchase_chain` runs the
buy-till-you-die chain with the planted magic number and the persistent propensity (see
:mod:`crmlab.simulate.store` for the model). Both draw from the store's one seeded
generator, in this order, so the simulated data stay the same for the same seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crmlab.simulate.spec import CATEGORIES, CATEGORY_P, CHANNEL_P, CHANNELS, REGION_P, REGIONS, StoreSpec

__all__ = ["Customers", "Chain", "draw_customers", "repurchase_chain", "expit"]

DAY_NS = np.timedelta64(86_400_000_000_000, "ns")


@dataclass(frozen=True)
class Customers:
    """Each customer's planted traits (arrays over customers ``0 .. n-1``)."""

    ids: np.ndarray        # C000001 ...
    is_pot: np.ndarray     # 潜客: only unpaid orders
    buyers: np.ndarray     # indices of the customers with paid orders
    first: np.ndarray      # first order time (datetime64[ns])
    tempo: np.ndarray      # gap scale (days) of a repurchase inside the window
    dropout: np.ndarray    # P(dies | no repurchase inside the window)
    ret_mean: np.ndarray   # a survivor's mean extra gap beyond the window (days)
    nu: np.ndarray         # Gamma-Gamma spend rate
    channel: np.ndarray
    region: np.ndarray
    cat: np.ndarray        # index into CATEGORIES

    @property
    def n(self) -> int:
        """Customers."""
        return len(self.ids)


@dataclass(frozen=True)
class Chain:
    """The paid-order chain: ``paid`` (``cust, order_time, k, status, source``), each
    customer's ``death`` time (NaT: never), the solved intercepts ``own`` (k -> a_k, k <= 10)
    and the persistent propensities ``z``."""

    paid: pd.DataFrame
    death: np.ndarray
    own: dict
    z: np.ndarray


def expit(x):
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def _solve_intercept(rate: float, shift: np.ndarray) -> float:
    """The a with mean(expit(a + shift)) = rate (bisection on a monotone function)."""
    lo, hi = -40.0, 40.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if expit(mid + shift).mean() < rate:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _day_weights(days: pd.DatetimeIndex) -> np.ndarray:
    w = np.linspace(1.0, 1.6, len(days))  # the store grows
    md = days.strftime("%m-%d")
    w = w * np.where(np.isin(md, ["11-11", "11-10", "11-12"]), 6.0, 1.0)
    w = w * np.where(np.isin(md, ["06-18", "06-17"]), 3.0, 1.0)
    return w / w.sum()


def draw_customers(spec: StoreSpec, rng: np.random.Generator) -> Customers:
    """Every customer's traits, drawn from ``rng`` (the store's generator)."""
    start, end = pd.Timestamp(spec.start), pd.Timestamp(spec.end)
    n = spec.n_customers
    days = pd.date_range(start, end.normalize(), freq="D")
    n_pot = int(round(n * spec.potential_share))
    is_pot = np.zeros(n, dtype=bool)
    is_pot[rng.choice(n, n_pot, replace=False)] = True
    day0 = rng.choice(len(days), size=n, p=_day_weights(days))
    first = days.values[day0] + (rng.uniform(8 * 3600, 24 * 3600, n) * 1e9).astype("timedelta64[ns]")
    return Customers(
        ids=np.array([f"C{i:06d}" for i in range(1, n + 1)]),
        is_pot=is_pot,
        buyers=np.flatnonzero(~is_pot),
        first=first,
        tempo=rng.gamma(spec.tempo_shape, spec.tempo_mean_days / spec.tempo_shape, n),
        dropout=rng.beta(spec.dropout_a, spec.dropout_b, n),
        ret_mean=rng.gamma(2.0, spec.return_gap_mean_days / 2.0, n),
        nu=rng.gamma(spec.spend_q, 1.0 / spec.spend_v, n),
        channel=rng.choice(len(CHANNELS), n, p=CHANNEL_P),
        region=rng.choice(len(REGIONS), n, p=REGION_P),
        cat=rng.choice(len(CATEGORIES), n, p=CATEGORY_P),
    )


def _next_chance(spec: StoreSpec, k: int, cur_t: np.ndarray, cur_i: np.ndarray, z: np.ndarray,
                 own: dict) -> np.ndarray | float:
    """P(order k+1 within the window) of each customer ``cur_i`` whose k-th order is at ``cur_t``."""
    q = spec.rate(k)
    if spec.propensity_sd > 0:
        end = pd.Timestamp(spec.end)
        judged = cur_t <= np.datetime64(end - pd.Timedelta(days=spec.window_days))
        a_k = _solve_intercept(float(q), spec.propensity_sd * z[cur_i[judged] if judged.any() else cur_i])
        q = expit(a_k + spec.propensity_sd * z[cur_i])
        if k <= 10:
            own[k] = a_k
    return q


def repurchase_chain(spec: StoreSpec, rng: np.random.Generator, cu: Customers) -> Chain:
    """The buyers' paid orders, vectorised over customers one order number at a time."""
    end = np.datetime64(pd.Timestamp(spec.end))
    times, ks, who = [cu.first[cu.buyers]], [np.ones(len(cu.buyers), dtype=int)], [cu.buyers]
    death = np.full(cu.n, np.datetime64("NaT"), dtype="datetime64[ns]")
    cur_t, cur_i, k = cu.first[cu.buyers], cu.buyers, 1
    z = np.random.default_rng([spec.seed, 2222]).standard_normal(cu.n)  # persistent propensity, own generator
    own: dict[int, float] = {}  # k -> a_k
    while len(cur_i):
        q = _next_chance(spec, k, cur_t, cur_i, z, own)
        u_rep = rng.uniform(size=len(cur_i))
        s = cu.tempo[cur_i]
        u_gap = rng.uniform(size=len(cur_i))
        gap_in = -s * np.log1p(-u_gap * (1.0 - np.exp(-spec.window_days / s)))
        gap_in = np.clip(gap_in, 1.0 / 24, spec.window_days - 1.0 / 24)
        dies = rng.uniform(size=len(cur_i)) < cu.dropout[cur_i]
        death_at = rng.uniform(0, spec.window_days, len(cur_i))
        gap_out = spec.window_days + rng.exponential(cu.ret_mean[cur_i])
        rep = u_rep < q
        gap = np.where(rep, gap_in, gap_out)
        nxt = cur_t + (gap * DAY_NS.astype(float)).astype("timedelta64[ns]")
        died = ~rep & dies
        death[cur_i[died]] = cur_t[died] + (death_at[died] * DAY_NS.astype(float)).astype("timedelta64[ns]")
        cont = ~died & (nxt <= end)
        cur_t, cur_i, k = nxt[cont], cur_i[cont], k + 1
        times.append(cur_t)
        ks.append(np.full(len(cur_i), k))
        who.append(cur_i)
    paid = pd.DataFrame({"cust": np.concatenate(who), "order_time": np.concatenate(times), "k": np.concatenate(ks)})
    paid["status"] = "paid"
    paid["source"] = "chain"
    return Chain(paid, death, own, z)
