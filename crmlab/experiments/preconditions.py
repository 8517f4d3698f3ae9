"""When an SMS experiment's data can carry a verdict: :func:`verdict_preconditions`.

The rule, in order (see :mod:`crmlab.experiments.decision` for the reasoning): a holdout to
measure against; something delivered in every messaged arm; orders that cover the windows;
and at least ``MIN_EXPECTED`` = 5 expected buyers and non-buyers in each messaged arm and
the holdout customers on its clock (Cochran's rule for the normal approximation).
"""
from __future__ import annotations

import pandas as pd

from crmlab.experiments.metrics import control_rows

__all__ = ["verdict_preconditions", "MIN_EXPECTED"]

MIN_EXPECTED = 5  # Cochran: expected buyers and non-buyers per group for the normal approximation


def _fmt_time(t) -> str:
    return f"{pd.Timestamp(t):%Y-%m-%d %H:%M}"


def verdict_preconditions(outcomes: pd.DataFrame, arms: pd.DataFrame, control: str, *, holdout_declared: bool = True,
                          first_order=None, observation_end=None, window_hours: float = 72) -> list[str]:
    """Why the data cannot carry a verdict (the module doc's rule, in its order); empty when it can.

    ``outcomes`` from ``campaign_outcomes``, ``arms`` from ``arm_table``; ``holdout_declared``:
    the control was named or an arm is named like a holdout; ``first_order`` and
    ``observation_end``: the orders' observation.
    """
    out = []
    messaged = arms.drop(index=control)
    if not holdout_declared:
        out.append(f"no holdout: no arm is named holdout/control/对照组 and no control arm was given (arms: "
                   f"{', '.join(map(str, arms.index))}), so there is nothing to measure the campaign against "
                   "(name the no-message arm: --control ARM)")
    dead = [a for a in messaged.index if int(messaged.at[a, "delivered"]) == 0]
    if dead:
        sent = int(messaged.loc[dead, "sends"].sum())
        out.append(("no message was delivered" if len(dead) == len(messaged) else
                    f"no message was delivered in {', '.join(map(str, dead))}")
                   + f" (0 of {sent:,} sends to {int(messaged.loc[dead, 'targeted'].sum()):,} customers)")
    if first_order is None:
        out.append("the orders have no order up to the observation end: there is no outcome to count")
    else:
        send = outcomes["send_time"]
        W = pd.Timedelta(hours=window_hours)
        end = pd.Timestamp(observation_end) if observation_end is not None else None
        covered = (send + W >= first_order) & ((send <= end) if end is not None else True)
        if not covered.any():
            where = (f"before the first order ({_fmt_time(first_order)})" if (send + W < first_order).all() else
                     f"outside the orders' observation ({_fmt_time(first_order)} to {_fmt_time(end)})")
            out.append(f"every send ({_fmt_time(send.min())} to {_fmt_time(send.max())}) is dated {where}: the "
                       "orders do not cover the campaign, so every conversion would read 0")
    if out:  # the counts below would only repeat these reasons
        return out
    short = []
    for a in messaged.index:
        t = outcomes[outcomes["arm"] == a]
        c = control_rows(outcomes, a, control)
        n1, x1, n0, x0 = len(t), int(t["converted"].sum()), len(c), int(c["converted"].sum())
        p = (x1 + x0) / (n1 + n0)
        expected = min(n1, n0) * min(p, 1 - p)
        if expected < MIN_EXPECTED:
            clock = c["clock"].iloc[0] if c["clock"].nunique() == 1 and c["clock"].iloc[0] != "all" else None
            short.append(f"{a} {x1}/{n1} vs {control}{f' ({clock} clock)' if clock else ''} {x0}/{n0} "
                         f"(expected {expected:.1f})")
    if short:
        out.append(f"too few conversions for the tests against the {control}: each messaged arm and the {control} "
                   f"customers it is compared with need at least {MIN_EXPECTED} expected buyers and {MIN_EXPECTED} "
                   f"expected non-buyers (buyers/customers): " + "; ".join(short))
    return out
