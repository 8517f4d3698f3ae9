"""Payment reminders (催付): is the planted best delay chosen, and do the intervals cover?

Simulates the reminder experiment of ``crmlab sample --reminders`` (10,000 unpaid orders in
five arms: none, 1h, 6h, 12h, 24h; :mod:`crmlab.simulate.unpaid`) over many seeds, reads each
through the export readers (:mod:`crmlab.ingest.payments`) and :func:`analyse_reminders`, and
prints: the share of seeds whose decision is the planted best delay (truth: a Monte-Carlo of
2,000,000 orders per arm), and per arm the share of seeds whose interval of the net margin per
unpaid order covers the planted value (nominal: the interval level, 90%).

With ``--null`` the reminders change nothing (every planted effect 0, so no reminder is the
planted answer): the share of seeds that still choose a delay is the false-reminder rate.

Run: ``.venv/bin/python studies/reminders_recovery.py [--seeds 200] [--orders 10000] [--null]``
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from crmlab.experiments.reminders import analyse_reminders
from crmlab.ingest.payments import load_payment_orders, load_reminder_sends
from crmlab.simulate.unpaid import ReminderSpec, reminder_truth, simulate_reminders


NULL_EFFECT = (0.0, 0.0, 0.0, 0.0, 0.0)


def one_seed(seed: int, n_orders: int, effect=ReminderSpec.effect) -> pd.DataFrame:
    """The analysis of one simulated experiment: every arm's value and interval, and the decision."""
    orders, sends = simulate_reminders(ReminderSpec(seed=seed, n_orders=n_orders, effect=effect))
    r = analyse_reminders(load_payment_orders(orders), load_reminder_sends(sends))
    t = r.arms[["arm", "value_per_order", "value_low", "value_high"]].assign(seed=seed, decision=r.decision["arm"])
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--orders", type=int, default=ReminderSpec.n_orders)
    ap.add_argument("--null", action="store_true", help="reminders that change nothing: how often a delay is chosen")
    a = ap.parse_args()
    t0 = time.perf_counter()
    effect = NULL_EFFECT if a.null else ReminderSpec.effect
    truth = reminder_truth(ReminderSpec(n_orders=a.orders, effect=effect))
    rows = pd.concat([one_seed(s, a.orders, effect) for s in range(a.seeds)], ignore_index=True)
    best = truth["best_arm"]
    decisions = rows.drop_duplicates("seed")["decision"]
    print(f"{a.seeds} seeds, {a.orders:,} unpaid orders each; planted best delay {best} "
          f"(planted net margin per unpaid order: " + ", ".join(f"{k} {v:.3f}" for k, v in truth["value_per_order"].items())
          + ")")
    print(f"decision = planted best in {100 * (decisions == best).mean():.1f}% of seeds "
          f"(choices: {decisions.value_counts().to_dict()})")
    msg = rows[rows["arm"] != "none"].copy()
    msg["truth"] = msg["arm"].map(truth["value_per_order"])
    msg["covered"] = (msg["value_low"] <= msg["truth"]) & (msg["truth"] <= msg["value_high"])
    cov = msg.groupby("arm", sort=False)["covered"].mean()
    se = np.sqrt(0.9 * 0.1 / a.seeds)
    print("90% interval of the net margin per unpaid order covers the planted value (nominal 90%, "
          f"Monte-Carlo se {100 * se:.1f} pp): " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in cov.items()))
    bias = (msg.groupby("arm", sort=False)["value_per_order"].mean() - msg.groupby("arm", sort=False)["truth"].first())
    print("mean estimate - planted: " + ", ".join(f"{k} {v:+.3f}" for k, v in bias.items()))
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
