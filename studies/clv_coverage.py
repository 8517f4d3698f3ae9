"""Coverage of the CLV holdout interval incl. model error (issue 25 item 1).

Runs :func:`crmlab.clv.pipeline.clv_pipeline` on stores from crmlab's own simulator
(:func:`crmlab.simulate.store.simulate_store`: the simulator's repurchase process, not BG/NBD)
and on BG/NBD-generated stores (:func:`crmlab.simulate.bgnbd.simulate_bgnbd`), and prints, for
the chosen model's nominal interval of the holdout total: how often it covers the actual total
(with a 95% Clopper–Pearson interval for the coverage), and its median width against the
model's own interval (parameter + purchase noise, today's interval before model error).

    .venv/bin/python studies/clv_coverage.py [--stores 40] [--customers 4000] [--bgnbd-stores 40]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import pandas as pd
from scipy.stats import beta, norm
from scipy.stats import t as student_t

from crmlab.clv.backtest import model_error_interval, model_error_scale
from crmlab.clv.base import MODELS
from crmlab.clv.pipeline import _holdout, default_calibration_end
from crmlab.engine.sources import order_table
from crmlab.ingest.readers import load_orders
from crmlab.simulate.bgnbd import simulate_bgnbd
from crmlab.simulate.spec import StoreSpec
from crmlab.simulate.store import simulate_store

warnings.filterwarnings("ignore")


def chosen_row(orders: pd.DataFrame, **kw) -> dict:
    """The chosen model's holdout prediction, both intervals, the actual total and the chosen
    model's backtest errors: the holdout step of :func:`crmlab.clv.pipeline.clv_pipeline`
    (calibration fits, the choice, the backtests), without valuing today's customers."""
    o = order_table(load_orders(orders, **kw)[0])
    hold = _holdout(o, "W", default_calibration_end(o, 182), None, MODELS, None, 0.9, 0.10, 0, [])
    k = hold["chosen"]
    m = hold["metrics"].loc[k]
    bt = hold["backtests"]
    return {"errors": bt.loc[bt["model"] == k, "log_error"].tolist(), "model": k,
            "predicted": m["predicted_total"], "actual": m["actual_total"], "low": m["predicted_low"],
            "high": m["predicted_high"], "within_low": m["within_model_low"], "within_high": m["within_model_high"],
            "backtests": m["backtests"], "tracks": hold["tracks_total"]}


def simulator_store(seed: int, n: int) -> dict:
    orders, _, _, _ = simulate_store(StoreSpec(n_customers=n, seed=seed))
    return chosen_row(orders)


def bgnbd_store(seed: int, n: int) -> dict:
    sim = simulate_bgnbd(n, seed, calibration_weeks=104.0, holdout_weeks=26.0)
    end = pd.Timestamp(sim["truth"]["start"]) + pd.Timedelta(weeks=130)
    return chosen_row(sim["orders"], observation_end=end.strftime("%Y-%m-%d"))


def variant(rows: pd.DataFrame, quantile: str) -> dict:
    """Coverage and width of the interval rebuilt from the stored backtest errors with another
    quantile ("z": normal, as shipped; "t": Student t with K df), for comparison."""
    lo, hi = [], []
    for _, r in rows.iterrows():
        s, k = model_error_scale(r["errors"])
        if quantile == "t" and k:
            z = student_t.ppf(0.95, k)
            w = max(np.log(r["within_high"] / r["predicted"]), np.log(r["predicted"] / r["within_low"])) / norm.ppf(0.95)
            h = z * np.hypot(s, w)
            a, b = r["predicted"] * np.exp(-h), r["predicted"] * np.exp(h)
        else:
            a, b = model_error_interval(r["predicted"], r["within_low"], r["within_high"], s, k, 0.9)
        lo.append(a)
        hi.append(b)
    return coverage(rows.assign(low=lo, high=hi))


def coverage(rows: pd.DataFrame) -> dict:
    """Coverage (with a 95% Clopper–Pearson interval), of today's interval too, and widths."""
    k = int(((rows["low"] <= rows["actual"]) & (rows["actual"] <= rows["high"])).sum())
    k0 = int(((rows["within_low"] <= rows["actual"]) & (rows["actual"] <= rows["within_high"])).sum())
    n = len(rows)
    ci = (beta.ppf(0.025, k, n - k + 1) if k else 0.0, beta.ppf(0.975, k + 1, n - k) if k < n else 1.0)
    ratio = (rows["high"] - rows["low"]) / (rows["within_high"] - rows["within_low"])
    return {"stores": n, "covered": k, "coverage": k / n, "coverage_95ci": ci, "covered_today": k0,
            "median_width_ratio": float(ratio.median()),
            "median_half_width": float(((rows["high"] - rows["low"]) / 2 / rows["predicted"]).median()),
            "median_half_width_today": float(((rows["within_high"] - rows["within_low"]) / 2
                                              / rows["predicted"]).median()),
            "chosen": rows["model"].value_counts().to_dict()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stores", type=int, default=40)
    ap.add_argument("--bgnbd-stores", type=int, default=40)
    ap.add_argument("--customers", type=int, default=4000)
    a = ap.parse_args(argv)
    for name, fn, n in (("simulator", simulator_store, a.stores), ("BG/NBD", bgnbd_store, a.bgnbd_stores)):
        t = time.time()
        rows = pd.DataFrame([fn(1000 + s, a.customers) for s in range(n)])
        print(f"{name} stores ({a.customers:,} customers, {time.time() - t:.0f} s):", coverage(rows))
        print("  Student t_K quantile instead of the normal:", variant(rows, "t"))
        print("  backtests per store:", rows["errors"].map(len).value_counts().to_dict())
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
