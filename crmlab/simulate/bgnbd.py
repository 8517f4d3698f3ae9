"""A store that is BG/NBD with Gamma-Gamma spend by construction (:func:`simulate_bgnbd`), for
the CLV interval coverage tests; separate from the simulated shop of :mod:`crmlab.simulate.store`."""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["simulate_bgnbd"]


def simulate_bgnbd(n_customers: int = 2000, seed: int = 0, r: float = 0.243, alpha: float = 4.414, a: float = 0.793,
                   b: float = 2.426, p: float = 6.25, q: float = 3.74, v: float = 15.45, cohort_weeks: float = 12.0,
                   calibration_weeks: float = 39.0, holdout_weeks: float = 39.0, start: str = "2024-01-01") -> dict:
    """A store that is BG/NBD with Gamma-Gamma spend by construction (for interval coverage tests).

    Separate from :func:`simulate_store`. The time unit is the week; defaults are the CDNOW
    estimates (Fader, Hardie & Lee 2005; lifetimes' Gamma-Gamma example). Customer i first
    buys at a uniform time in [0, ``cohort_weeks``); buys again at rate λ_i ~ Gamma(r, rate
    α); after each repeat purchase drops out with probability p_i ~ Beta(a, b); each
    purchase's amount ~ Gamma(p, rate ν_i), ν_i ~ Gamma(q, rate v) (lifetimes'
    parametrisation). Calibration ends at ``calibration_weeks``, the holdout runs
    ``holdout_weeks`` after it.

    Returns
    -------
    dict with ``orders`` (``customer_id, order_id, order_time, amount, status``; week 0 is
    ``start``), ``summary`` (per customer, exact weeks, the columns of lifetimes'
    ``calibration_and_holdout_data``: ``frequency_cal``, ``recency_cal``, ``T_cal``,
    ``monetary_value_cal`` (mean repeat purchase amount), ``frequency_holdout``,
    ``duration_holdout``), ``customers`` (planted ``lam``, ``p``, ``nu``,
    ``alive_at_calibration_end``) and ``truth`` (the planted parameters).
    """
    rng = np.random.default_rng(seed)
    n = n_customers
    t0 = rng.uniform(0.0, cohort_weeks, n)
    lam = rng.gamma(r, 1.0 / alpha, n)
    pdrop = rng.beta(a, b, n)
    nu = rng.gamma(q, 1.0 / v, n)
    ev, death = _bgnbd_events(rng, t0, lam, pdrop, calibration_weeks + holdout_weeks)
    ev["amount"] = rng.gamma(p, 1.0 / nu[ev["cust"].to_numpy()])
    ev["repeat"] = ev["cust"].duplicated()
    cal = ev[ev["t"] <= calibration_weeks]
    g = cal.groupby("cust")
    x = g.size().to_numpy() - 1.0
    rep_mean = cal[cal["repeat"]].groupby("cust")["amount"].mean().reindex(np.arange(n), fill_value=0.0)
    hold = ev[ev["t"] > calibration_weeks].groupby("cust").size().reindex(np.arange(n), fill_value=0).to_numpy()
    ids = np.array([f"B{i:06d}" for i in range(n)])
    summary = pd.DataFrame({"frequency_cal": x, "recency_cal": g["t"].max().to_numpy() - t0,
                            "T_cal": calibration_weeks - t0, "monetary_value_cal": rep_mean.to_numpy(),
                            "frequency_holdout": hold.astype(float), "duration_holdout": float(holdout_weeks)},
                           index=pd.Index(ids, name="customer_id"))
    summary.attrs.update(time_unit="W")
    t_start = pd.Timestamp(start)
    orders = pd.DataFrame({"customer_id": ids[ev["cust"].to_numpy()], "order_id": [f"b{i}" for i in range(len(ev))],
                           "order_time": (t_start + pd.to_timedelta(ev["t"].to_numpy() * 7, unit="D")).floor("s"),
                           "amount": ev["amount"].round(2).to_numpy(), "status": "paid"})
    customers = pd.DataFrame({"lam": lam, "p": pdrop, "nu": nu, "alive_at_calibration_end": death > calibration_weeks},
                             index=summary.index)
    truth = {"r": r, "alpha": alpha, "a": a, "b": b, "p": p, "q": q, "v": v, "unit": "week",
             "calibration_weeks": calibration_weeks, "holdout_weeks": holdout_weeks, "start": start}
    return {"orders": orders, "summary": summary, "customers": customers, "truth": truth}


def _bgnbd_events(rng: np.random.Generator, t0: np.ndarray, lam: np.ndarray, pdrop: np.ndarray,
                  end: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Every purchase up to ``end`` (``cust, t`` in weeks) and each customer's death time
    (inf: alive at ``end``): Poisson purchases at rate ``lam``, death after a repeat purchase
    with probability ``pdrop``."""
    n = len(t0)
    who, when, death = [np.arange(n)], [t0], np.full(n, np.inf)
    cur_i, cur_t = np.arange(n), t0
    with np.errstate(divide="ignore"):
        while len(cur_i):
            nxt = cur_t + rng.exponential(1.0, len(cur_i)) / lam[cur_i]
            keep = nxt <= end
            cur_i, cur_t = cur_i[keep], nxt[keep]
            who.append(cur_i)
            when.append(cur_t)
            dies = rng.random(len(cur_i)) < pdrop[cur_i]
            death[cur_i[dies]] = cur_t[dies]
            cur_i, cur_t = cur_i[~dies], cur_t[~dies]
    ev = pd.DataFrame({"cust": np.concatenate(who), "t": np.concatenate(when)}).sort_values(["cust", "t"])
    return ev, death
