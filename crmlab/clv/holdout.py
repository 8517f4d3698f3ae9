"""The model checks: predictions for a holdout period with their intervals, and the period-transactions test.

* :func:`holdout_comparison`: each model fitted up to the calibration end predicts the
  holdout's repeat purchases: totals with the model's own prediction interval, MAE, RMSE and
  Poisson deviance per customer, the model chosen by :func:`crmlab.clv.fitting.choose_model`
  (the deviance, a proper score, inside the ±10% band), weekly cumulative tracking. The
  pipeline widens each interval by the model error of rolling-origin backtests
  (:mod:`crmlab.clv.backtest`).
* :func:`period_transactions`: observed vs expected customers by repeat count, chi-square.

Prediction intervals for the holdout add purchase noise to the parameter uncertainty: its
variance per distinct row is simulated from the fitted model given each history (alive with
P(alive), then the model's own purchase and dropout process), summed over customers, and
combined with the parameter part (delta method on the log) by Monte Carlo.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from scipy.stats import chi2

from crmlab.clv import expectations as ex
from crmlab.clv import likelihoods as lk
from crmlab.clv.base import LABELS, ClvFitError, FittedModel
from crmlab.clv.fitting import choose_model, holdout_scores
from crmlab.clv.summary import TIME_UNITS
from crmlab.clv.values import expected_grid, free_params, jacobian, rows_and_index
from crmlab.engine.sources import OrderTable
from crmlab.engine.aggregates import day_number, purchase_days

__all__ = ["holdout_comparison", "predictive_totals", "period_transactions", "daily_holdout", "PI_METHOD"]

PI_METHOD = ("delta method on the log of the expected total with the log-parameters' asymptotic normal "
             "covariance, plus purchase noise simulated from the fitted model given each history; combined by "
             "Monte Carlo")
_METRICS = ["status", "predicted_total", "predicted_low", "predicted_high", "actual_total", "total_error", "mae",
            "rmse", "deviance"]


def _noise_variance(name: str, th, rows: lk.Rows, grid, rng, budget: float = 1e7) -> np.ndarray:
    """Σ over customers of Var(cumulative purchases at each grid time | history, θ̂), by simulation."""
    W = len(grid)
    reps = int(np.clip(budget / max(len(rows) * W, 1), 8, 100))  # only the sum over rows is needed
    alive = ex.p_alive(name, th, rows.x, rows.tx, rows.T)
    out = np.zeros(W)
    step = max(1, int(2e6 // (reps * W)))
    for i in range(0, len(rows), step):
        sl = slice(i, i + step)
        sims = ex.simulate_paths(name, th, rows.x[sl], rows.tx[sl], rows.T[sl], grid, reps, rng, alive[sl])
        out += rows.w[sl] @ sims.var(axis=0, ddof=1)
    return out


def _mix_quantiles(center, sd_log, noise_var, level: float, rng, draws: int = 100_000):
    """Quantiles of center·exp(sd_log·Z1) + sqrt(noise_var)·Z2 (per grid point)."""
    z1, z2 = rng.standard_normal(draws), rng.standard_normal(draws)
    lo, hi = [], []
    for c, s, v in zip(np.atleast_1d(center), np.atleast_1d(sd_log), np.atleast_1d(noise_var)):
        y = c * np.exp(s * z1) + np.sqrt(max(v, 0.0)) * z2
        a, b = np.quantile(y, [(1 - level) / 2, (1 + level) / 2])
        lo.append(max(a, 0.0))
        hi.append(b)
    return np.array(lo), np.array(hi)


def predictive_totals(model: FittedModel, rows: lk.Rows, grid, level: float = 0.9, seed: int = 0) -> pd.DataFrame:
    """Expected total repeat purchases at each time in ``grid`` after the histories, with a
    ``level`` prediction interval (parameter uncertainty + purchase noise)."""
    rng = np.random.default_rng(seed)
    grid = np.atleast_1d(np.asarray(grid, float))
    z = model.log_params
    E, J = jacobian(lambda lp: expected_grid(model.name, np.exp(lp), rows, grid), z, free_params(model))
    tot = rows.w @ E
    g = np.einsum("r,rwp->wp", rows.w, J)
    sd_log = np.sqrt(np.maximum(np.einsum("wp,pq,wq->w", g, model.cov_log, g), 0)) / np.maximum(tot, 1e-300)
    nv = _noise_variance(model.name, model.params_.to_numpy(float), rows, grid, rng)
    lo, hi = _mix_quantiles(tot, sd_log, nv, level, rng)
    return pd.DataFrame({"t": grid, "predicted": tot, "low": lo, "high": hi, "param_sd_log": sd_log,
                         "noise_sd": np.sqrt(nv)})


def _ranking(metrics: pd.DataFrame, band: float) -> list[str]:
    m = metrics.dropna(subset=["total_error", "deviance"])
    inside = m["total_error"].abs() <= band
    key = pd.DataFrame({"out": ~inside, "score": np.where(inside, m["deviance"], m["total_error"].abs())},
                       index=m.index)
    return list(key.sort_values(["out", "score"]).index)


def _metrics(ok: Mapping[str, FittedModel], rows, inv, actual, duration: float, level: float, seed: int):
    """Per-customer predictions and the per-model metrics table (empty when no model is usable)."""
    preds, out = {}, []
    for name, m in ok.items():
        p = expected_grid(name, m.params_.to_numpy(float), rows, [duration])[:, 0][inv]
        preds[name] = p
        pt = predictive_totals(m, rows, [duration], level, seed).iloc[0]
        out.append({"model": name, "status": m.status, "predicted_total": float(p.sum()),
                    "predicted_low": float(pt["low"]), "predicted_high": float(pt["high"]),
                    "actual_total": float(actual.sum()), **holdout_scores(p, actual)})
    metrics = pd.DataFrame(out).set_index("model") if out else pd.DataFrame(columns=_METRICS)
    if out:
        metrics["total_error"] = metrics["predicted_total"] / metrics["actual_total"] - 1
        metrics = metrics[_METRICS]
    return preds, metrics


def _chosen(metrics: pd.DataFrame, failed: dict, choose: str | None, band: float) -> tuple[str, str, bool]:
    """The holdout rule's model, or the one asked for (which must have been fitted)."""
    if not len(metrics):
        raise ClvFitError("no purchase model could be fitted on the calibration period: "
                          + "; ".join(f"{LABELS[k]}: {v}" for k, v in failed.items()))
    best, reason, tracks = choose_model(metrics, band)
    if choose is not None:
        if choose not in metrics.index:
            raise ClvFitError(f"model {choose!r} was not fitted on the calibration period"
                              + (f": {failed[choose]}" if choose in failed else ""))
        best, reason = choose, f"asked for (--model {choose})"
    return best, reason, tracks


def _by_frequency(s: pd.DataFrame, actual, preds: dict, max_frequency: int) -> pd.DataFrame:
    """Mean actual and predicted holdout purchases by calibration frequency 0..max_frequency+."""
    bucket = np.minimum(s["frequency_cal"].to_numpy(), max_frequency).astype(int)
    byf = pd.DataFrame({"frequency_cal": bucket, "actual": actual, **preds}).groupby("frequency_cal").mean()
    byf["customers"] = pd.Series(bucket).value_counts().sort_index().to_numpy()
    byf.index = [f"{i}+" if i == max_frequency else str(i) for i in byf.index]
    return byf


def _tracking(ok: Mapping[str, FittedModel], best: str, rows, daily_actual: pd.Series, duration: float, unit: str,
              level: float, seed: int) -> pd.DataFrame:
    """Weekly cumulative actual holdout purchases vs the chosen model's prediction and band (and the others')."""
    step = 7.0 / TIME_UNITS[unit]
    grid = np.unique(np.append(np.arange(step, duration, step), duration))
    band_df = predictive_totals(ok[best], rows, grid, level, seed)
    offs = np.asarray(daily_actual.index, float)
    cum = np.array([daily_actual.to_numpy()[offs <= t * TIME_UNITS[unit] + 1e-9].sum() for t in grid])
    tracking = pd.DataFrame({"week": np.arange(1, len(grid) + 1), "t": grid, "actual": cum,
                             "predicted": band_df["predicted"], "low": band_df["low"], "high": band_df["high"]})
    for name in ok:
        if name != best:
            tracking[name] = rows.w @ expected_grid(name, ok[name].params_.to_numpy(float), rows, grid)
    return tracking


def holdout_comparison(summary_cal: pd.DataFrame, models: Mapping[str, FittedModel], choose: str | None = None,
                       max_frequency: int = 7, level: float = 0.9, band: float = 0.10, seed: int = 0,
                       daily_actual: pd.Series | None = None) -> dict:
    """Predicted vs actual repeat purchases in the holdout period, per model.

    Returns
    -------
    dict with ``metrics`` (per model: ``predicted_total``, ``predicted_low``/``_high`` (a
    ``level`` prediction interval), ``actual_total``, ``total_error``, ``mae``, ``rmse``, ``deviance``: mean Poisson deviance),
    ``failed`` ({model: reason}), ``by_frequency`` (mean actual and predicted holdout
    purchases by calibration frequency 0..7+), ``predictions`` (per customer), ``chosen``
    (``choose`` if given, else :func:`crmlab.clv.fitting.choose_model`), ``reason``,
    ``tracks_total``, ``ranking`` and ``tracking`` (weekly cumulative actual vs the chosen
    model's prediction with its band, when ``daily_actual`` — holdout purchase days per day
    offset from the calibration end — is given).
    """
    s = summary_cal
    rows, inv = rows_and_index(s, "_cal")
    actual = s["frequency_holdout"].to_numpy(float)
    duration = float(s["duration_holdout"].iloc[0]) if len(s) else 0.0
    failed = {k: m.error for k, m in models.items() if not m.ok}
    ok = {k: m for k, m in models.items() if m.ok}
    preds, metrics = _metrics(ok, rows, inv, actual, duration, level, seed)
    best, reason, tracks = _chosen(metrics, failed, choose, band)
    tracking = None
    if daily_actual is not None and duration > 0:
        tracking = _tracking(ok, best, rows, daily_actual, duration, s.attrs.get("time_unit", "W"), level, seed)
    return {"metrics": metrics, "failed": failed, "by_frequency": _by_frequency(s, actual, preds, max_frequency),
            "predictions": pd.DataFrame({"actual": actual, **preds}, index=s.index), "chosen": best,
            "reason": reason, "tracks_total": tracks, "ranking": _ranking(metrics, band), "tracking": tracking,
            "duration": duration, "level": level, "band": band}


def daily_holdout(o: OrderTable, cal_end: pd.Timestamp) -> pd.Series:
    """Holdout purchase days of calibration customers, counted per day offset after the calibration end."""
    d = purchase_days(o)
    cal = day_number(cal_end)
    before = d.filter(d.day <= cal).select("customer_id").distinct()
    after = d.filter(d.day > cal)
    after = after.filter(after.customer_id.isin(before.customer_id))
    g = after.group_by("day").aggregate(n=after.customer_id.count())
    df = o.engine.to_pandas(g)
    off = (pd.to_datetime(df["day"]) - pd.Timestamp(cal_end).normalize()).dt.days
    return pd.Series(df["n"].to_numpy(float), index=off.to_numpy()).sort_index()


def period_transactions(summary: pd.DataFrame, model: FittedModel, n_max: int = 7, suffix: str = "") -> dict:
    """Customers by repeat count 0..n_max−1 and n_max+: observed vs expected under the model
    (Σ over customers of P(X(T_i) = n)), with a chi-square goodness-of-fit test (bins with an
    expected count below 5 merged from the top; df = bins − 1 − parameters)."""
    x = summary[f"frequency{suffix}"].to_numpy(float)
    Tu, cnt = np.unique(summary[f"T{suffix}"].to_numpy(float), return_counts=True)
    exp = cnt @ ex.pmf_repeat(model.name, model.params_.to_numpy(float), Tu, n_max)
    obs = np.bincount(np.minimum(x, n_max).astype(int), minlength=n_max + 1).astype(float)
    labels = [str(i) for i in range(n_max)] + [f"{n_max}+"]
    o, e, lab = list(obs), list(exp), list(labels)
    while len(e) > 2 and e[-1] < 5:
        o[-2] += o.pop()
        e[-2] += e.pop()
        lab[-2] = lab.pop(-2).rstrip("+") + "+"
    o, e = np.array(o), np.array(e)
    stat = float(((o - e) ** 2 / e).sum())
    df = len(o) - 1 - len(model.params_)
    return {"table": pd.DataFrame({"observed": obs, "expected": exp}, index=pd.Index(labels, name="repeat purchases")),
            "chi2": stat, "df": int(df), "p_value": float(chi2.sf(stat, df)) if df > 0 else None,
            "bins_tested": lab}
