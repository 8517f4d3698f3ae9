"""A simulated SMS programme with a long-term holdout and a planted cumulative effect
(issue 28; ``crmlab program`` is checked against it).

The model (every draw from ``np.random.default_rng(seed)``):

* **Customers** ``C000001`` ...: each has a monthly order rate λ ~ Gamma(``rate_shape``,
  scale ``rate_scale``), a first paid order uniform in the ``history_days`` before ``start``
  and Poisson(λ x months since) more before ``start`` (so each is an existing customer).
* **Holdout**: :func:`crmlab.experiments.program.program_holdout_mask` with ``holdout_share``
  and ``salt`` (the stable hash the design uses); held-out customers are never messaged.
* **Campaigns**: ``campaigns_per_month`` a month (days 1, 11, 21 of each programme month, at
  10:00). A programme customer who has not opted out is targeted with probability
  ``target_active`` when they bought in the month before, else ``target_quiet`` (so campaigns
  choose their customers, as real ones do); a targeted message is delivered with
  ``delivery_rate``; after a delivered message the customer opts out with
  ``opt_out_per_message`` and gets no later message.
* **Orders in programme month m**: Poisson(λ + ``message_effect`` x delivered messages that
  month), at uniform times in the month; amounts Gamma(``amount_shape``, scale
  ``amount_scale``) rounded to cents. The effect adds up over months: the **planted cumulative
  effect** is the difference in the expected share with a paid order in months 1..m, and in
  expected revenue per customer, between the programme and the holdout policy over the
  customer population (:func:`program_truth`).

The held-out truth is closed-form (a Gamma mixture of Poissons): P(an order in a month) =
1 - (1 + scale)^-shape, P(one in months 1..m) = 1 - (1 + m scale)^-shape, revenue per month
shape x scale x amount mean. The programme's depends on the targeting path: it is computed by
running the same model on ``truth_customers`` customers (its own seeded generator).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from crmlab.experiments.program import DEFAULT_SALT, HASH_RULE, program_holdout_mask
from crmlab.simulate.truth import write_truth

__all__ = ["ProgramSpec", "simulate_program", "program_truth", "write_program_sample"]


@dataclass(frozen=True)
class ProgramSpec:
    """Every planted number of the programme store (see the module doc)."""

    n_customers: int = 20_000
    seed: int = 0
    holdout_share: float = 0.05
    salt: str = DEFAULT_SALT
    start: str = "2025-01-01"
    months: int = 12
    extra_days: int = 12  # the observation ends inside month months + 1: a month not covered whole
    history_days: int = 365
    rate_shape: float = 0.8
    rate_scale: float = 0.25
    campaigns_per_month: int = 3
    target_active: float = 0.8
    target_quiet: float = 0.4
    delivery_rate: float = 0.95
    opt_out_per_message: float = 0.01
    message_effect: float = 0.03
    amount_shape: float = 2.0
    amount_scale: float = 60.0
    truth_customers: int = 400_000


def _history(spec: ProgramSpec, rng: np.random.Generator, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orders before the start: (customer index, time, whether each customer bought in the
    month before the start)."""
    n, start = len(lam), pd.Timestamp(spec.start)
    span = rng.uniform(1, spec.history_days, n)  # days from the first order to the start
    extra = rng.poisson(lam * span / 30.44)
    cust = np.r_[np.arange(n), np.repeat(np.arange(n), extra)]
    back = np.r_[span, np.repeat(span, extra) * (1 - rng.uniform(size=extra.sum()))]  # days before the start
    when = start.to_datetime64() - (back * 86400).astype("timedelta64[s]")
    before = np.zeros(n, bool)
    before[cust[when >= (start - pd.DateOffset(months=1)).to_datetime64()]] = True
    return cust, when, before


def _path(spec: ProgramSpec, rng: np.random.Generator, lam: np.ndarray, messaged: np.ndarray,
          bought_before: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One programme path: per customer and month the orders, and per campaign the
    delivered (bool) and opt-out (bool) arrays [customer, month, campaign]."""
    n, M, K = len(lam), spec.months, spec.campaigns_per_month
    orders = np.zeros((n, M), dtype=np.int64)
    deliv = np.zeros((n, M, K), bool)
    opt = np.zeros((n, M, K), bool)
    out = np.zeros(n, bool)
    active = bought_before.copy()
    for m in range(M):
        p = np.where(active, spec.target_active, spec.target_quiet)
        for k in range(K):
            targeted = messaged & ~out & (rng.uniform(size=n) < p)
            deliv[:, m, k] = targeted & (rng.uniform(size=n) < spec.delivery_rate)
            opt[:, m, k] = deliv[:, m, k] & (rng.uniform(size=n) < spec.opt_out_per_message)
            out |= opt[:, m, k]
        orders[:, m] = rng.poisson(lam + spec.message_effect * deliv[:, m].sum(axis=1))
        active = orders[:, m] > 0
    return orders, deliv, opt


def program_truth(spec: ProgramSpec = ProgramSpec()) -> dict:
    """The planted monthly and cumulative effects (see the module doc): per month m (1-based)
    the programme's and the holdout's expected share with a paid order in the month and in
    months 1..m, expected revenue per customer in the month and through it, and the differences."""
    rng = np.random.default_rng([spec.seed, 2828])
    n = spec.truth_customers
    lam = rng.gamma(spec.rate_shape, spec.rate_scale, n)
    _, _, before = _history(spec, rng, lam)
    orders, _, _ = _path(spec, rng, lam, np.ones(n, bool), before)
    a, s, mean_amount = spec.rate_shape, spec.rate_scale, spec.amount_shape * spec.amount_scale
    rows = []
    for m in range(1, spec.months + 1):
        prog_month, prog_cum = float((orders[:, m - 1] > 0).mean()), float((orders[:, :m].sum(axis=1) > 0).mean())
        prog_rev, prog_cum_rev = (float(orders[:, m - 1].mean() * mean_amount),
                                  float(orders[:, :m].sum(axis=1).mean() * mean_amount))
        hold_month, hold_cum = 1 - (1 + s) ** -a, 1 - (1 + m * s) ** -a
        hold_rev = a * s * mean_amount
        rows.append({"month": m, "messaged_rate": prog_month, "held_out_rate": hold_month,
                     "diff": prog_month - hold_month, "cumulative_messaged_rate": prog_cum,
                     "cumulative_held_out_rate": hold_cum, "cumulative_diff": prog_cum - hold_cum,
                     "revenue_diff": prog_rev - hold_rev, "cumulative_revenue_diff": prog_cum_rev - m * hold_rev})
    return {"months": rows, "truth_customers": n, "spec": asdict(spec),
            "method": "held out: closed form (Gamma-Poisson); programme: the model run on truth_customers customers"}


def simulate_program(spec: ProgramSpec = ProgramSpec()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The programme store's orders (customer_id, order_id, order_time, amount, status;
    ``attrs["observation_end"]``: ``extra_days`` into the month after the programme) and send log
    (customer_id, campaign_id, variant, send_time, delivered, opt_out), as the loaders return them."""
    rng = np.random.default_rng(spec.seed)
    n, start = spec.n_customers, pd.Timestamp(spec.start)
    ids = np.array([f"C{i:06d}" for i in range(1, n + 1)], dtype=object)
    lam = rng.gamma(spec.rate_shape, spec.rate_scale, n)
    held = program_holdout_mask(ids, spec.holdout_share, spec.salt)
    cust, when, before = _history(spec, rng, lam)
    times, custs = [when], [cust]
    orders, deliv, opt = _path(spec, rng, lam, ~held, before)
    bounds = [start + pd.DateOffset(months=m) for m in range(spec.months + 2)]
    end = bounds[spec.months] + pd.Timedelta(days=spec.extra_days)
    tail = rng.poisson(lam * spec.extra_days / 30.44)  # the partial month after the programme: no messages
    for m in range(spec.months + 1):
        k = orders[:, m] if m < spec.months else tail
        c = np.repeat(np.arange(n), k)
        length = ((bounds[m + 1] if m < spec.months else end) - bounds[m]).total_seconds()
        times.append(bounds[m].to_datetime64() + pd.to_timedelta(rng.uniform(0, length, len(c)), unit="s").to_numpy())
        custs.append(c)
    c, t = np.concatenate(custs), np.concatenate(times).astype("datetime64[s]")
    amount = np.round(rng.gamma(spec.amount_shape, spec.amount_scale, len(c)), 2)
    o = pd.DataFrame({"customer_id": ids[c], "order_time": t, "amount": amount}).sort_values(["order_time", "customer_id"])
    o.insert(1, "order_id", [f"P{i:08d}" for i in range(1, len(o) + 1)])
    o["order_time"] = pd.to_datetime(o["order_time"]).astype("datetime64[ns]")
    o["status"] = "paid"
    o = o.reset_index(drop=True)
    o.attrs["observation_end"] = end
    return o, _sends(spec, ids, bounds, deliv, opt)


def _sends(spec: ProgramSpec, ids: np.ndarray, bounds: list, deliv: np.ndarray, opt: np.ndarray) -> pd.DataFrame:
    """The send log: one row per delivered or failed targeted message (failed: delivered false)."""
    rows = []
    for m in range(spec.months):
        for k in range(spec.campaigns_per_month):
            who = np.flatnonzero(deliv[:, m, k])
            when = bounds[m] + pd.Timedelta(days=10 * k, hours=10)
            rows.append(pd.DataFrame({"customer_id": ids[who], "campaign_id": f"M{m + 1:02d}-{k + 1}",
                                      "variant": "programme", "send_time": when, "delivered": True,
                                      "opt_out": opt[who, m, k]}))
    return pd.concat(rows, ignore_index=True)


def write_program_sample(out_dir: str, n_customers: int = 20_000, seed: int = 0, holdout_share: float = 0.05,
                         **spec_kw) -> dict:
    """Write ``orders.csv``, ``sends.csv`` and ``truth.json`` (the planted effects,
    :func:`program_truth`, and the holdout's rule) of the programme store; returns the truth."""
    spec = ProgramSpec(n_customers=n_customers, seed=seed, holdout_share=holdout_share, **spec_kw)
    orders, sends = simulate_program(spec)
    orders["order_time"] = orders["order_time"].dt.strftime("%Y-%m-%d %H:%M:%S")
    sends["send_time"] = sends["send_time"].dt.strftime("%Y-%m-%d %H:%M:%S")
    for c in ("delivered", "opt_out"):
        sends[c] = np.where(sends[c], "true", "false")
    truth = program_truth(spec)
    truth["holdout"] = {"share": spec.holdout_share, "salt": spec.salt, "rule": HASH_RULE}
    os.makedirs(out_dir, exist_ok=True)
    orders.to_csv(os.path.join(out_dir, "orders.csv"), index=False, float_format="%.2f", lineterminator="\n")
    sends.to_csv(os.path.join(out_dir, "sends.csv"), index=False, lineterminator="\n")
    write_truth(out_dir, truth)
    return truth

