"""Always-valid daily monitoring of an SMS experiment, until one day after the campaign ends.

Analysts look every morning; a fixed-horizon 95% interval read at each look excludes zero
on *some* day far more often than 5% of the time when nothing works (A/A). A confidence
sequence stays valid however often it is read.

Looks are at 00:00 of each day after the first send (day 1 = the morning after), until one
day after the last attribution window ends (the seeds' rule: monitor until the campaign end
plus one day), and never past the observation end. At look d a customer counts once their
(virtual) send time has passed; their outcome is what is visible by then: converted = a paid
order within the window so far, revenue = the paid amount within the window so far. Each
messaged arm is compared with the holdout customers on its clock.

* fixed-horizon interval: difference in means +- z_{1-alpha/2} x SE, SE^2 = s_t^2/n_t + s_c^2/n_c;
* confidence sequence: the asymptotic CS of Waudby-Smith et al. (2023, eq. 9; Howard et al.
  2021), as GrowthBook implements it: with N = n_t + n_c and s2 = SE^2 N,

      half-width = sqrt(s2) sqrt( 2 (N rho^2 + 1) / (N rho)^2 * ln( sqrt(N rho^2 + 1) / alpha ) ),
      rho^2 = (-2 ln alpha + ln(-2 ln alpha + 1)) / N*,

  where the tuning constant N* is the sample size at which the sequence is tightest.
  Default N*: the comparison's final size (its customers are known from the send log
  before any outcome; GrowthBook's default is 5,000).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats

from crmlab.engine.aggregates import ts
from crmlab.experiments.metrics import control_rows

__all__ = ["Panel", "daily_panel", "sequence_bounds", "cs_rho", "monitor_experiment"]

DAY = 86400


def cs_rho(alpha: float, tuning: float) -> float:
    """rho of the asymptotic confidence sequence tightest at sample size ``tuning`` (eq. 161)."""
    la = -2 * math.log(alpha)
    return math.sqrt((la + math.log(la + 1)) / tuning)


def sequence_bounds(n_t, s_t, ss_t, n_c, s_c, ss_c, alpha: float = 0.05, tuning=None) -> dict:
    """Difference of means (arm - control) from counts ``n``, sums ``s`` and sums of squares
    ``ss`` (any array shapes that broadcast): ``diff``, fixed-horizon ``ci_low``/``ci_high``
    and confidence-sequence ``cs_low``/``cs_high``. ``tuning`` defaults to n_t + n_c."""
    n_t, s_t, ss_t, n_c, s_c, ss_c = (np.asarray(x, float) for x in (n_t, s_t, ss_t, n_c, s_c, ss_c))
    with np.errstate(invalid="ignore", divide="ignore"):
        mt, mc = s_t / n_t, s_c / n_c
        vt = np.maximum(ss_t - n_t * mt ** 2, 0) / (n_t - 1)
        vc = np.maximum(ss_c - n_c * mc ** 2, 0) / (n_c - 1)
        se2 = vt / n_t + vc / n_c
        ok = (n_t >= 2) & (n_c >= 2)
        se2 = np.where(ok, se2, np.nan)
        diff = mt - mc
        z = stats.norm.isf(alpha / 2)
        N = n_t + n_c
        tun = N if tuning is None else np.asarray(tuning, float)
        la = -2 * math.log(alpha)
        rho2 = (la + math.log(la + 1)) / tun
        hw = np.sqrt(se2 * N) * np.sqrt(2 * (N * rho2 + 1) * np.log(np.sqrt(N * rho2 + 1) / alpha) / (N ** 2 * rho2))
        h = z * np.sqrt(se2)
    return {"diff": diff, "ci_low": diff - h, "ci_high": diff + h, "cs_low": diff - hw, "cs_high": diff + hw}


@dataclass
class Panel:
    """Per-customer outcomes by look, sparse: what :func:`monitor_experiment` sums per arm.

    ``looks`` (look times), ``first_look`` (per customer, in ``customers`` order: the first look
    index at which they count, or -1), and increments at (``row``, ``look``): ``conv`` (1 at
    the look their first paid order becomes visible), ``rev`` (paid amount) and ``sq`` (the
    increase of their squared cumulative revenue).
    """

    customers: pd.Index
    looks: pd.DatetimeIndex
    first_look: np.ndarray
    row: np.ndarray
    look: np.ndarray
    conv: np.ndarray
    rev: np.ndarray
    sq: np.ndarray

    def _mat(self, values) -> sparse.csr_matrix:
        return sparse.csr_matrix((values, (self.row, self.look)), shape=(len(self.customers), len(self.looks)))

    def sums(self, member) -> dict:
        """Cumulative per-look ``n``, ``s_conv``, ``s_rev``, ``ss_rev`` of the customers weighted
        by ``member`` (a 0/1 vector over customers, or a replicates x customers matrix)."""
        D = len(self.looks)
        inc = self.first_look >= 0
        B = sparse.csr_matrix((np.ones(inc.sum()), (np.flatnonzero(inc), self.first_look[inc])),
                              shape=(len(self.customers), D))
        M = np.asarray(member, float)
        out = {}
        for k, mat in (("n", B), ("s_conv", self._mat(self.conv)), ("s_rev", self._mat(self.rev)),
                       ("ss_rev", self._mat(self.sq))):
            out[k] = np.cumsum(np.asarray((mat.T @ M.T).T), axis=-1)
        return out


def daily_panel(orders, outcomes: pd.DataFrame, window_hours: float) -> Panel:
    """Build the :class:`Panel` of ``outcomes``' customers: their paid orders inside the window,
    bucketed by the look at which each becomes visible, aggregated in the engine."""
    o = orders
    send = outcomes["send_time"]
    start = send.min().normalize()
    W = pd.Timedelta(hours=window_hours)
    last = (send + W).max() + pd.Timedelta(days=1)
    D = int(math.ceil((last - start) / pd.Timedelta(days=1)))
    looks = pd.DatetimeIndex([start + pd.Timedelta(days=d) for d in range(1, D + 1)])
    looks = looks[looks <= o.observation_end]
    D = len(looks)
    first = np.ceil(((send - start).dt.total_seconds() / DAY).to_numpy()).astype(int)
    first_look = np.where(first <= D, np.maximum(first, 1) - 1, -1) if D else np.full(len(send), -1)
    empty = np.array([], int)
    if D == 0:
        return Panel(outcomes.index, looks, first_look, empty, empty, np.array([]), np.array([]), np.array([]))
    reg = o.engine.register(pd.DataFrame({"customer_id": outcomes.index.astype(str), "pos": np.arange(len(outcomes)),
                                          "send_time": send.to_numpy(dtype="datetime64[ns]")}), "crmlab_monitor")
    t = o.table.filter((o.table.status == "paid") & (o.table.order_time <= ts(min(o.observation_end, looks[-1]))))
    j = t.join(reg, "customer_id")
    lag = j.order_time.epoch_seconds() - j.send_time.epoch_seconds()
    j = j.filter((lag >= 0) & (lag <= int(W.total_seconds())))
    secs = j.order_time.epoch_seconds() - int(start.timestamp())
    j = j.mutate(d=(secs + (DAY - 1)) // DAY)
    agg = j.group_by(["pos", "d"]).aggregate(rev=j.amount.sum())
    ev = o.engine.to_pandas(agg)
    ev = ev[(ev["d"] >= 1) & (ev["d"] <= D)].sort_values(["pos", "d"])
    pos, d = ev["pos"].to_numpy(int), ev["d"].to_numpy(int) - 1
    rev = ev["rev"].to_numpy(float)
    new = np.r_[True, pos[1:] != pos[:-1]] if len(pos) else np.array([], bool)
    cum = pd.Series(rev).groupby(pos).cumsum().to_numpy() if len(pos) else rev
    prev = np.where(new, 0.0, np.r_[0.0, cum[:-1]]) if len(pos) else rev
    return Panel(outcomes.index, looks, first_look, pos, d, new.astype(float), rev, cum ** 2 - prev ** 2)


def monitor_experiment(outcomes: pd.DataFrame, orders, control: str, window_hours: float, alpha: float = 0.05,
                       tuning: float | None = None) -> tuple[pd.DataFrame, dict]:
    """Per look and messaged arm against its control: conversion and revenue per targeted
    customer, each with the fixed-horizon interval and the confidence sequence.

    Returns the table (``arm``, ``vs``, ``control_clock``, ``day``, ``look_time``,
    ``targeted``, ``control_targeted``, ``diff``, ``ci_low``, ``ci_high``, ``cs_low``,
    ``cs_high`` for conversion, the same with ``rev_`` for revenue) and the method.
    """
    p = daily_panel(orders, outcomes, window_hours)
    rows = []
    arms = outcomes["arm"].to_numpy()
    for a in sorted(set(arms) - {control}):
        c_idx = outcomes.index.get_indexer(control_rows(outcomes, a, control).index)
        mc = np.zeros(len(outcomes))
        mc[c_idx] = 1
        st, sc = p.sums((arms == a).astype(float)), p.sums(mc)
        if len(p.looks) == 0:
            continue
        N_final = st["n"][-1] + sc["n"][-1]
        tun = tuning or N_final
        conv = sequence_bounds(st["n"], st["s_conv"], st["s_conv"], sc["n"], sc["s_conv"], sc["s_conv"], alpha, tun)
        rev = sequence_bounds(st["n"], st["s_rev"], st["ss_rev"], sc["n"], sc["s_rev"], sc["ss_rev"], alpha, tun)
        clock = outcomes["clock"].to_numpy()[c_idx]
        for k, lt in enumerate(p.looks):
            rows.append({"arm": a, "vs": control, "control_clock": str(clock[0]) if len(set(clock)) == 1 else "all",
                         "day": k + 1, "look_time": lt, "targeted": int(st["n"][k]), "control_targeted": int(sc["n"][k]),
                         "tuning": float(tun), **{key: float(v[k]) for key, v in conv.items()},
                         **{f"rev_{key}": float(v[k]) for key, v in rev.items()}})
    method = {"alpha": alpha, "looks": "daily at 00:00 from the day after the first send to one day after the last "
                                       "window ends (not past the observation end)",
              "fixed_horizon": "difference of means +- z x SE (unpooled variances), valid for one look only",
              "confidence_sequence": "asymptotic confidence sequence (Waudby-Smith et al. 2023, eq. 9; Howard et al. "
                                     "2021), as GrowthBook: half-width = sqrt(SE^2 N) sqrt(2 (N rho^2 + 1) / (N rho)^2 "
                                     "ln(sqrt(N rho^2 + 1) / alpha)), N = n_arm + n_control",
              "tuning": (f"N* = {tuning:g} (rho^2 = (-2 ln alpha + ln(1 - 2 ln alpha)) / N*)" if tuning else
                         "N* = each comparison's final size, from the send log (rho^2 = (-2 ln alpha + "
                         "ln(1 - 2 ln alpha)) / N*)")}
    return pd.DataFrame(rows), method
