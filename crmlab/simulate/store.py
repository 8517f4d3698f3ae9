"""A simulated store with planted truth, so every crmlab statistic can be checked.

The purchase process (per customer, all random draws from one seeded generator):

* Acquisition: first paid order on a day between ``start`` and ``end`` (more on the
  Double-11 and 618 promotion days), at a random time of day.
* Big promotions (大促): each year a share of the repeat orders due in the 30 days after
  Double 11 (11-11) and 618 (06-18) is pulled into the 10-day warm-up or onto the day
  itself, drawn from a separate seeded generator so every other draw is unchanged. A
  pull keeps each customer's order sequence and the side of ``window_days`` every gap
  falls on, so the planted repurchase rates stay exact; truth.json records the pulls
  and each promotion's day and warm-up figures (new/old as in ``crmlab.promotion.plan``).
* Repurchase chain with a planted **magic number**: after the k-th paid order the
  customer places order k+1 within ``window_days`` (90) with probability
  ``repurchase_rate[k]``, which rises with k and is flat from k = M on (default M = 3:
  0.30, 0.45, then 0.62). The gap, given a repurchase inside the window, is a truncated
  exponential whose scale is the customer's own tempo (heterogeneous, Gamma distributed).
* Customer heterogeneity (selection): each customer has a persistent propensity z ~ N(0, 1)
  (its own seeded generator), and P(order k+1 within the window) = expit(a_k +
  ``propensity_sd`` * z). Customers who reach k orders are therefore a selected group: a_k
  is solved at each k so that the mean over the customers whose k-th order is at least the
  window before the observation end (the ones the data can judge) is exactly
  ``repurchase_rate[k]``. The planted curve is the population's, an association; a typical
  customer's own chance (z = 0) and the mean chance if every buyer reached k orders rise
  less and fall after M (truth.json ``propensity``). ``propensity_sd = 0`` gives the
  old, homogeneous chain draw for draw.
* Buy-till-you-die: a customer who does not repurchase inside the window drops out
  (dies) with a per-customer probability ``dropout ~ Beta(a, b)``; the death time lies
  uniformly within the window after the last order. A survivor returns after a long gap
  (window + exponential with a per-customer mean).
* Spend: Gamma-Gamma. Each customer's spend rate ``nu ~ Gamma(q, scale=1/v)``, each
  paid order's amount ``~ Gamma(p, scale=1/nu)`` (lifetimes' GammaGammaFitter
  parametrisation), rounded to cents; orders are split into 1-3 lines.
* Noise the loader must handle: unpaid (潜客 customers have only unpaid orders),
  refunded and cancelled orders, added beside the paid chain so the chain's truth stays
  exact.
* One SMS campaign (2025-11-01, Double-11 warm-up): customers whose last paid order is
  within a year are randomised per customer to copy A/B x 10:00/17:00 plus a
  no-message holdout, a fifth each (the holdout's virtual send time split between 10:00 and
  17:00). A delivered message adds a planted extra chance of a paid order inside 72 hours,
  larger for customers who bought more in the 90 days before (persistent levels: mean 1 over
  the targeted); 17:00 works better, copy does not matter (so the cheaper copy A wins). Campaign orders are added
  beside the chain (they nudge the 90-day rates of k-th orders placed in the 90 days
  before the campaign by about a tenth of a point; truth.json records this).

* Returns (``returns``, off by default): a share of the paid orders reversed by credit notes,
  separate ``C``-prefixed documents minutes to days later, some partial, plus a few credits
  that match no purchase (:mod:`crmlab.simulate.credit_notes`; truth_returns.csv lists them).
* A truncated export (``truncate_before``, off by default): the store simulated from
  ``start`` and its export (orders and sends) cut at that date (:mod:`crmlab.simulate.truncation`).

``truth.json`` records every planted number; ``truth_customers.csv`` each customer's
death time (empty when alive at the observation end), so P(alive) can be scored.

The steps, each in its own module (all random draws from one seeded generator, in this
order, plus the separate generators named above): :func:`~crmlab.simulate.customers.draw_customers`,
:func:`~crmlab.simulate.customers.repurchase_chain`, :func:`~crmlab.simulate.promotions.promotion_pull`,
:func:`~crmlab.simulate.sends.assign_campaign`, :func:`~crmlab.simulate.sends.campaign_orders`,
:func:`~crmlab.simulate.orders.all_orders`, :func:`~crmlab.simulate.orders.export_orders`,
:func:`~crmlab.simulate.sends.sends_table` and :func:`~crmlab.simulate.truth.store_truth`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crmlab.simulate.bgnbd import simulate_bgnbd
from crmlab.simulate.credit_notes import credit_notes, returns_truth
from crmlab.simulate.customers import draw_customers, repurchase_chain
from crmlab.simulate.orders import all_orders, export_orders
from crmlab.simulate.promotions import promotion_pull
from crmlab.simulate.sends import assign_campaign, campaign_orders, natural_conversions, sends_table
from crmlab.simulate.spec import StoreSpec
from crmlab.simulate.truncation import cut_export, cut_text, first_paid, truncation_truth
from crmlab.simulate.truth import store_truth, write_truth

__all__ = ["StoreSpec", "SimulatedStore", "simulate", "simulate_store", "write_sample", "simulate_bgnbd"]


@dataclass(frozen=True)
class SimulatedStore:
    """What :func:`simulate` returns: the export's ``orders`` and ``sends``, the ``truth`` dict
    (truth.json), ``customers`` (truth_customers.csv) and ``credits`` (truth_returns.csv: one
    row per credit-note line, ``None`` when the spec has no returns)."""

    orders: pd.DataFrame
    sends: pd.DataFrame
    truth: dict
    customers: pd.DataFrame
    credits: pd.DataFrame | None = None


def simulate_store(spec: StoreSpec = StoreSpec()) -> tuple[pd.DataFrame, pd.DataFrame, dict, pd.DataFrame]:
    """Simulate the store (the module doc gives the model; each step is its own function).

    Parameters
    ----------
    spec : StoreSpec
        Every planted parameter; the same spec gives the same data.

    Returns
    -------
    orders : DataFrame
        Order lines as a store would export them (``customer_id, order_id, order_time,
        amount, status, channel, region, product, category, quantity, nickname, phone``).
    sends : DataFrame
        The campaign's SMS log.
    truth : dict
        Everything planted (written as truth.json).
    customers : DataFrame
        Per customer: ``customer_id, death_time, paid_orders`` (truth_customers.csv).
    """
    s = simulate(spec)
    return s.orders, s.sends, s.truth, s.customers


def simulate(spec: StoreSpec = StoreSpec()) -> SimulatedStore:
    """Simulate the store, then (issue 24, each off by default and drawing from its own
    generator, so the store itself is the same) add credit notes (``spec.returns``:
    :mod:`crmlab.simulate.credit_notes`) and cut the export (``spec.truncate_before``:
    :mod:`crmlab.simulate.truncation`)."""
    rng = np.random.default_rng(spec.seed)
    cu = draw_customers(spec, rng)
    chain = repurchase_chain(spec, rng, cu)
    paid, pulls = promotion_pull(chain.paid, spec)
    camp = assign_campaign(spec, rng, paid)
    camp_orders = campaign_orders(spec, rng, camp)
    nat = natural_conversions(spec, paid, camp)
    allo = all_orders(spec, rng, cu, paid, camp_orders)
    orders, nick, phone = export_orders(rng, cu, allo)
    sends, segs = sends_table(spec, cu, camp, nick, phone)
    truth, customers = store_truth(spec, cu, chain, paid, camp_orders, allo, pulls, camp, nat, segs)
    credits, gone = None, set()
    if spec.returns > 0:
        orders, credits = credit_notes(spec, cu, allo, orders)
        gone = set(credits.loc[credits["kind"] == "full", "reverses"])
        truth["returns"] = returns_truth(spec, credits, cut_text(spec) if spec.truncate_before else None)
    if spec.truncate_before:
        cut_orders, cut_sends = cut_export(spec, orders, sends)
        truth["truncation"] = truncation_truth(spec, cu, allo, gone, orders, cut_orders, sends, cut_sends)
        customers = customers.assign(first_paid_time=first_paid(cu, allo, gone).dt.strftime("%Y-%m-%d %H:%M:%S")
                                     .fillna("").to_numpy())
        orders, sends = cut_orders, cut_sends
    return SimulatedStore(orders, sends, truth, customers, credits)


def write_sample(out_dir: str, n_customers: int = 20_000, seed: int = 0, **spec_kw) -> dict:
    """Write ``orders.csv``, ``sends.csv``, ``truth.json`` and ``truth_customers.csv`` (and
    ``truth_returns.csv`` when ``returns`` is on).

    Same arguments give byte-identical files.

    Parameters
    ----------
    out_dir : str
        The folder (created when missing).
    n_customers, seed : int
    **spec_kw
        Any other :class:`StoreSpec` field.

    Returns
    -------
    dict
        The truth (as written to truth.json).
    """
    spec = StoreSpec(n_customers=n_customers, seed=seed, **spec_kw)
    s = simulate(spec)
    orders, sends, truth, customers = s.orders, s.sends, s.truth, s.customers
    os.makedirs(out_dir, exist_ok=True)
    if s.credits is not None:
        s.credits.to_csv(os.path.join(out_dir, "truth_returns.csv"), index=False, float_format="%.2f",
                         lineterminator="\n")
    orders.to_csv(os.path.join(out_dir, "orders.csv"), index=False, float_format="%.2f", lineterminator="\n")
    sends.to_csv(os.path.join(out_dir, "sends.csv"), index=False, float_format="%.2f", lineterminator="\n")
    customers.to_csv(os.path.join(out_dir, "truth_customers.csv"), index=False, lineterminator="\n")
    write_truth(out_dir, truth)
    return truth
