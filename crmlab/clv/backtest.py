"""Model error learned from the store itself: rolling-origin backtests and the intervals built on them.

A buy-till-you-die model's own prediction interval (:func:`crmlab.clv.holdout.predictive_totals`)
holds parameter uncertainty and purchase noise *inside the model*; on a store that is not
BG/NBD (every real store) the model's error is larger than that. Here the error is measured
on the store's own past, the way forecasters evaluate a method by time-series
cross-validation on a rolling forecasting origin (Hyndman & Athanasopoulos, *Forecasting:
Principles and Practice*, 3rd ed., §5.10; Tashman 2000, Int. J. Forecasting 16:437–450):

* :func:`backtest_origins`: calibration ends ``horizon/2`` apart whose whole forecast window
  (``horizon`` days) lies before a given day, each with at least ``horizon`` days of history;
* :func:`backtest_errors`: at each origin every purchase model is fitted on the history up to
  it (distinct rows with weights) and predicts the window's total repeat purchases; the
  error is ``log(actual / predicted)``;
* :func:`model_error_interval`: the prediction interval of a total: its centre times
  ``exp(± z · sqrt(s_model² + s_within²))``, where ``s_model`` is the root mean square of
  the chosen model's K backtest log errors (bias counts as error), ``s_within`` the log-scale
  width of the model's own interval and ``z`` the normal quantile of the level. With K = 3
  iid normal errors a Student t_K quantile would be exact; but a model's error on one store
  is persistent (its bias repeats from one origin to the next), so past errors predict the
  next one better than iid errors would: on 40 stores of crmlab's simulator the normal
  quantile covered 39/40 at nominal 90% with a median width 3.4× the model's own, the t_3
  quantile 40/40 at 5.0× (studies/clv_coverage.py; docs/methods/clv.md). With fewer than 2
  backtests the cross-model spread (the other models' log ratio to this model's prediction)
  is a floor for ``s_model``: the models' disagreement is evidence of model error too.

Such an interval is named for what it covers: "90% prediction interval incl. model error
from 3 backtests".
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from crmlab.clv.base import ClvFitError, check_summary
from crmlab.clv.fitting import fit_clv_models, rfm_summary
from crmlab.clv.summary import TIME_UNITS
from crmlab.clv.values import expected_grid
from crmlab.clv.likelihoods import Rows

__all__ = ["backtest_origins", "backtest_errors", "model_error_interval", "model_error_scale", "MODEL_ERROR_METHOD"]

#: the method in one sentence (JSON ``interval_method``)
MODEL_ERROR_METHOD = ("rolling-origin backtests of the model on the store's own history (Hyndman & Athanasopoulos, "
                      "FPP3 §5.10; Tashman 2000): root mean square of the log errors of K past forecasts of the same "
                      "horizon (floored by the spread between the models), combined with the model's own parameter "
                      "and purchase-noise interval on the log scale (normal quantile)")


def _day_end(day: pd.Timestamp) -> pd.Timestamp:
    return (pd.Timestamp(day).normalize() + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)).as_unit("ns")


def backtest_origins(first_day, last_day, horizon_days: int, k: int = 3, step_days: int | None = None) -> list:
    """Up to ``k`` calibration ends (end of day, latest first) whose ``horizon_days`` window ends
    on or before ``last_day`` and that have at least ``horizon_days`` of history after ``first_day``."""
    step = int(step_days or max(horizon_days // 2, 1))
    last = pd.Timestamp(last_day).normalize() - pd.Timedelta(days=int(horizon_days))
    first = pd.Timestamp(first_day).normalize() + pd.Timedelta(days=int(horizon_days))
    out = []
    while len(out) < k and last >= first:
        out.append(_day_end(last))
        last -= pd.Timedelta(days=step)
    return out


def backtest_errors(o, time_unit: str, origins: Sequence, horizon_days: int, names: Sequence[str]) -> pd.DataFrame:
    """Each model's forecast of the total repeat purchases in the ``horizon_days`` after each
    origin, fitted on the history up to it, against what happened.

    Returns
    -------
    DataFrame with ``origin``, ``model``, ``predicted``, ``actual``, ``log_error`` (log actual /
    predicted); origins where the history cannot support a model are left out."""
    out = []
    duration = horizon_days / TIME_UNITS[time_unit]
    for origin in origins:
        seen = o.until(pd.Timestamp(origin).normalize() + pd.Timedelta(days=int(horizon_days) + 1)
                       - pd.Timedelta(microseconds=1))
        try:
            cal = rfm_summary(seen, time_unit=time_unit, calibration_end=origin)
            check_summary(cal, "frequency_cal", "recency_cal", "T_cal")
        except (ValueError, ClvFitError):
            continue
        x, tx, T = (cal[f"{c}_cal"].to_numpy(float) for c in ("frequency", "recency", "T"))
        rows, _ = Rows.from_customers(x, tx, T)
        actual = float(cal["frequency_holdout"].sum())
        try:
            fits = fit_clv_models(cal, names, suffix="_cal", rows=rows)
        except (ValueError, ClvFitError):
            continue
        for name, m in fits.items():
            if not m.ok:
                continue
            pred = float(rows.w @ expected_grid(name, m.params_.to_numpy(float), rows, [duration])[:, 0])
            out.append({"origin": pd.Timestamp(origin), "model": name, "predicted": pred, "actual": actual,
                        "log_error": float(np.log(max(actual, 0.5) / max(pred, 1e-9)))})
    return pd.DataFrame(out, columns=["origin", "model", "predicted", "actual", "log_error"])


def model_error_scale(errors: Sequence[float], spread: Sequence[float] = ()) -> tuple[float, int]:
    """``(s_model, K)``: the root mean square of the backtest log errors, floored by the largest
    absolute cross-model log ratio; K the number of backtests (0: no model error measured)."""
    e = np.asarray([v for v in errors if np.isfinite(v)], float)
    d = np.asarray([v for v in spread if np.isfinite(v)], float)
    k = len(e)
    s = float(np.sqrt(np.mean(e ** 2))) if k else 0.0
    if len(d):
        s = max(s, float(np.max(np.abs(d))))
    return s, k


def model_error_interval(center: float, low: float, high: float, s_model: float, k: int,
                         level: float = 0.9) -> tuple[float, float]:
    """The ``level`` interval of a total with model error: ``center · exp(± z · sqrt(s_model² + s_within²))``,
    ``s_within`` read from the model's own interval ``[low, high]`` (log scale, normal quantile).
    ``k = 0``: the model's own interval unchanged."""
    if k <= 0 or not np.isfinite(center) or center <= 0:
        return float(low), float(high)
    z = norm.ppf(0.5 + level / 2)
    lo, hi = max(float(low), 1e-12 * center), max(float(high), center)
    s_within = max(np.log(hi / center), np.log(center / lo)) / z if lo > 0 else 0.0
    half = z * float(np.hypot(s_model, s_within))
    return float(center * np.exp(-half)), float(center * np.exp(half))


def _spread(metrics: pd.DataFrame, k: str) -> list[float]:
    """The other models' log ratio to model ``k``'s predicted total."""
    p = metrics["predicted_total"].astype(float)
    return [float(np.log(p[j] / p[k])) for j in p.index if j != k and p[j] > 0 and p[k] > 0]


def holdout_with_model_error(hold: dict, errors: pd.DataFrame, level: float) -> dict:
    """Widen each model's holdout interval by its backtest errors (in place on ``hold["metrics"]``):
    ``predicted_low``/``_high`` become the interval incl. model error; the model's own interval
    stays as ``within_model_low``/``_high``; ``model_error_sd_log`` and ``backtests`` (K) are added.
    The cross-model spread is the floor of the model error only with fewer than 2 backtests."""
    m = hold["metrics"]
    m["within_model_low"], m["within_model_high"] = m["predicted_low"], m["predicted_high"]
    sds, ks = [], []
    for k in m.index:
        e = errors.loc[errors["model"] == k, "log_error"].to_numpy(float)
        s, n = model_error_scale(e, _spread(m, k) if len(e) < 2 else ())
        n = max(n, 1) if s > 0 else n
        lo, hi = model_error_interval(float(m.at[k, "predicted_total"]), float(m.at[k, "predicted_low"]),
                                      float(m.at[k, "predicted_high"]), s, n, level)
        m.at[k, "predicted_low"], m.at[k, "predicted_high"] = lo, hi
        sds.append(s)
        ks.append(n)
    m["model_error_sd_log"], m["backtests"] = sds, ks
    hold["backtests"] = errors
    return hold


def clv_errors(hold: dict | None, chosen: str) -> np.ndarray:
    """The chosen model's log errors for the CLV total: its backtests and the holdout itself."""
    if hold is None or chosen not in hold["metrics"].index:
        return np.array([])
    m, bt = hold["metrics"], hold.get("backtests")
    own = float(np.log(max(m.at[chosen, "actual_total"], 0.5) / max(m.at[chosen, "predicted_total"], 1e-9)))
    past = [] if bt is None else bt.loc[bt["model"] == chosen, "log_error"].tolist()
    return np.array([own] + past, float)
