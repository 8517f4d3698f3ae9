"""The holdout's clock: each messaged arm is compared with holdout customers measured from the same time.

A conversion is a paid order within the window after the send. A holdout customer gets no
message, so the window has to start somewhere: if every holdout customer's window started
at 10:00, the 17:00 arms would be compared with a holdout whose window opened seven hours
earlier (and, near the end of the observation, closed earlier too). So each holdout
customer gets a **virtual send time at one of the tested times** (the ``@HH:MM`` of the arm
names), and an arm sent at 17:00 is compared with the holdout customers on the 17:00 clock.

* **recorded**: the log already splits the holdout: each holdout customer's logged send time
  lies within an hour of the send times of exactly one tested time, and every tested time
  has holdout customers. The logged times are used as they are.
* **derived**: otherwise the holdout customers are split at random (seeded) between the tested
  times in the proportions of the messaged customers, and each gets its logged date plus a
  time of day drawn from the messaged customers' send times on that clock.
* **none**: the arm names carry no ``@HH:MM`` (no send time tested): the logged times are used.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["ARM_PATTERN", "split_arm", "tested_times", "holdout_clocks"]

ARM_PATTERN = re.compile(r"^(?P<copy>[^@]+)@(?P<time>\d{1,2}:\d{2})$")
_SLACK_MIN = 60


def split_arm(arm: str) -> tuple[str, str] | None:
    """``"B@17:00"`` -> ``("B", "17:00")``; None for a name without a send time."""
    m = ARM_PATTERN.match(str(arm))
    return (m["copy"], m["time"]) if m else None


def tested_times(arms: Sequence[str], control: str) -> list[str] | None:
    """The send times the messaged arms test (sorted), or None when an arm name has no ``@HH:MM``."""
    parts = [split_arm(a) for a in arms if a != control]
    if not parts or any(p is None for p in parts):
        return None
    return sorted({p[1] for p in parts}, key=lambda t: tuple(int(x) for x in t.split(":")))


def _minute_of_day(t: pd.Series) -> np.ndarray:
    return (t.dt.hour * 60 + t.dt.minute + t.dt.second / 60).to_numpy(float)


def holdout_clocks(per_customer: pd.DataFrame, control: str, seed: int = 0) -> tuple[pd.Series, pd.Series, str]:
    """Clock and (virtual) send time of every targeted customer.

    Parameters
    ----------
    per_customer : DataFrame indexed by customer id with ``arm`` and ``send_time`` (logged)
    control : the holdout arm
    seed : for the derived split

    Returns
    -------
    clock : Series of ``"HH:MM"`` (the arm's time; the holdout's assigned time), or ``"all"``
    send_time : Series, the logged send time, or the virtual one for a derived holdout clock
    mode : ``"recorded"``, ``"derived"`` or ``"none"``
    """
    arm = per_customer["arm"].astype(str)
    send = per_customer["send_time"]
    times = tested_times(arm.unique().tolist(), control)
    if times is None:
        return pd.Series("all", index=per_customer.index), send.copy(), "none"
    is_ctl = (arm == control).to_numpy()
    clock = arm.map({a: (split_arm(a)[1] if a != control else None) for a in arm.unique()})
    if not is_ctl.any():
        return clock, send.copy(), "none"
    msg_min = _minute_of_day(send[~is_ctl])
    msg_clock = clock[~is_ctl].to_numpy()
    lo = {t: msg_min[msg_clock == t].min() for t in times}
    hi = {t: msg_min[msg_clock == t].max() for t in times}
    ctl_min = _minute_of_day(send[is_ctl])
    match = np.column_stack([(ctl_min >= lo[t] - _SLACK_MIN) & (ctl_min <= hi[t] + _SLACK_MIN) for t in times])
    if (match.sum(axis=1) == 1).all() and match.any(axis=0).all():
        clock = clock.copy()
        clock[is_ctl] = np.array(times)[match.argmax(axis=1)]
        return clock, send.copy(), "recorded"
    rng = np.random.default_rng([seed, 1700])
    share = np.array([(msg_clock == t).sum() for t in times], float)
    pick = rng.choice(len(times), int(is_ctl.sum()), p=share / share.sum())
    tod = np.empty(len(pick), dtype="timedelta64[ns]")
    for j, t in enumerate(times):
        m = pick == j
        pool = (send[~is_ctl][msg_clock == t] - send[~is_ctl][msg_clock == t].dt.normalize()).to_numpy()
        tod[m] = pool[rng.integers(0, len(pool), int(m.sum()))]
    virtual = send.copy()
    virtual[is_ctl] = send[is_ctl].dt.normalize().to_numpy() + tod
    clock = clock.copy()
    clock[is_ctl] = np.array(times)[pick]
    return clock, virtual, "derived"
