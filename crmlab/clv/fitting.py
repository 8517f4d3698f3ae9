"""From orders to fitted models: the RFM summary, the purchase models side by side, the holdout rule.

* :func:`rfm_summary`: lifetimes' RFM summary (``frequency``, ``recency``, ``T``,
  ``monetary_value``), computed in the engine; equal to
  ``lifetimes.utils.summary_data_from_transaction_data`` (and, with ``calibration_end``, to
  ``calibration_and_holdout_data``) and much faster.
* :func:`fit_clv_models`: BG/NBD, Pareto/NBD and MBG/NBD by maximum likelihood on distinct
  rows with weights; each model has a ``status``: ``ok``, ``boundary`` (the optimum lies on
  the edge of the parameter space, e.g. no dropout: a result, reported with its meaning) or
  ``failed`` (with the reason); a failed model never stops the others.
* :func:`choose_model`: the holdout rule (models whose predicted holdout total is within
  ±10% of the actual: lowest per-customer Poisson deviance, a proper score; none: smallest
  total error, said so).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from crmlab.clv import likelihoods as lk
from crmlab.clv.base import LABELS, MODELS, ClvFitError, FittedModel, check_summary, fit_nbd, summary_rows
from crmlab.clv.bgnbd import BetaGeoModel
from crmlab.clv.mbgnbd import ModifiedBetaGeoModel
from crmlab.clv.pareto_nbd import ParetoNBDModel
from crmlab.clv.summary import frame_summary, summary_frame, summary_table
from crmlab.engine.sources import order_table
from crmlab.ingest.values import parse_observation_end

__all__ = ["rfm_summary", "fit_clv_models", "choose_model", "holdout_scores", "frequency_monetary_correlation", "CLASSES"]

#: the class of each purchase model
CLASSES = {"bgnbd": BetaGeoModel, "pareto_nbd": ParetoNBDModel, "mbgnbd": ModifiedBetaGeoModel}


def rfm_summary(orders, observation_end=None, time_unit: str = "D", calibration_end=None,
                engine=None) -> pd.DataFrame:
    """Per-customer RFM summary for the buy-till-you-die models (paid orders only).

    Computed in the engine by :func:`crmlab.clv.summary.summary_table` and brought back per
    customer (the per-customer CLV needs it); fits use distinct rows with weights.

    Parameters
    ----------
    orders : OrderTable or DataFrame
        An :class:`crmlab.engine.sources.OrderTable` or orders from :func:`crmlab.ingest.readers.load_orders`.
    observation_end : optional
        Defaults to the loader's observation end.
    time_unit : {"D", "W"}
        Days, or weeks as days / 7 (the CDNOW papers' unit).
    calibration_end : optional
        Split into a calibration period (up to and including this day) and a holdout; a
        time with an offset is read in the orders' own time zone.

    Returns
    -------
    DataFrame indexed by ``customer_id`` (sorted). Without ``calibration_end``: ``frequency``
    (distinct purchase days after the first), ``recency`` (first to last purchase day),
    ``T`` (first purchase day to the observation end's day), ``monetary_value`` (mean
    of the repeat purchase days' totals; 0 when frequency is 0): the numbers of
    ``lifetimes.utils.summary_data_from_transaction_data(..., freq="D",
    freq_multiplier=1 or 7, monetary_value_col=...)``. With ``calibration_end``: the
    columns of ``lifetimes.utils.calibration_and_holdout_data``: ``frequency_cal``,
    ``recency_cal``, ``T_cal``, ``monetary_value_cal``, ``frequency_holdout``,
    ``monetary_value_holdout`` (mean holdout order amount), ``duration_holdout``, for
    customers who bought in the calibration period. ``attrs``: ``observation_end``,
    ``time_unit``, ``settings`` (the orders') and ``calibration_end`` (a store-local Timestamp).
    """
    if isinstance(orders, pd.DataFrame) and calibration_end is None and engine is None:
        out = frame_summary(orders, observation_end, time_unit)  # a loader's frame: its own codes, no engine
        if out is not None:
            return out
    o = order_table(orders, engine, observation_end)
    cal = None if calibration_end is None else parse_observation_end(calibration_end, o.settings.timezone,
                                                                     "calibration_end")
    expr, o = summary_table(o, time_unit, None, cal)
    out = summary_frame(expr, o)  # sorted in the engine, fetched once
    out.attrs["time_unit"] = time_unit
    if cal is not None:
        out.attrs["calibration_end"] = cal
    return out


def fit_clv_models(summary: pd.DataFrame, models: Sequence[str] = MODELS, penalizer: float = 0.0,
                   compress: bool = True, suffix: str = "", rows: lk.Rows | None = None) -> dict[str, FittedModel]:
    """Fit BG/NBD, Pareto/NBD and MBG/NBD to an RFM summary; never raises for a model.

    Customers with identical (frequency, recency, T) are fitted once with a weight
    (``compress=True``): the same likelihood, far fewer rows. Each model's ``status`` says
    whether the optimum is interior (``ok``), on the boundary (``boundary``, e.g. no
    dropout: then the model equals the NBD and ``error`` says so) or whether every starting
    value failed (``failed``, with the reason).

    Parameters
    ----------
    summary : DataFrame
        From :func:`rfm_summary` (``suffix="_cal"`` for a calibration summary).
    models : names among ``"bgnbd", "pareto_nbd", "mbgnbd"``
    penalizer : float
        lifetimes' ``penalizer_coef`` (off by default; never added silently).

    Raises
    ------
    ClvFitError
        No customers, no repeat customers, or T all zero: no model can be fitted.
    """
    check_summary(summary, f"frequency{suffix}", f"recency{suffix}", f"T{suffix}")
    unknown = set(models) - set(MODELS)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; choose from {MODELS}")
    if rows is None:
        rows = summary_rows(summary, suffix, compress)
    nbd = fit_nbd(rows, len(summary), summary.attrs.get("settings"))
    return {m: CLASSES[m].fit_summary(summary, penalizer, suffix, rows=rows, nbd=nbd) for m in models}


def holdout_scores(predicted, actual) -> dict:
    """Per-customer scores of holdout predictions: ``mae``, ``rmse`` and ``deviance`` (the mean
    Poisson deviance 2·[y·log(y/μ) − (y − μ)]: a proper scoring function for the mean, minimised
    in expectation by the true conditional mean, so it cannot be improved by under-predicting,
    as MAE, minimised by the conditional median — 0 for most customers — can)."""
    mu = np.maximum(np.asarray(predicted, float), 1e-12)
    y = np.asarray(actual, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return {"mae": float(np.mean(np.abs(mu - y))), "rmse": float(np.sqrt(np.mean((mu - y) ** 2))),
            "deviance": float(np.mean(2 * (term - (y - mu))))}


def choose_model(metrics: pd.DataFrame, band: float = 0.10) -> tuple[str, str, bool]:
    """The holdout rule: among models whose predicted holdout total is within ±``band`` of the
    actual total, the lowest mean Poisson deviance per customer (a proper score,
    :func:`holdout_scores`); if none is, the smallest |total error|.

    ``metrics`` is indexed by model with ``total_error`` and ``deviance`` (failed models left
    out; without ``deviance`` the MAE is used). Returns ``(model, reason, tracks_total)``."""
    score = "deviance" if "deviance" in metrics.columns else "mae"
    m = metrics.dropna(subset=["total_error", score])
    if m.empty:
        raise ClvFitError("no purchase model could be fitted on the calibration period")
    inside = m[m["total_error"].abs() <= band]
    if len(inside):
        best = inside[score].idxmin()
        what = "Poisson deviance" if score == "deviance" else "MAE"
        why = (f"lowest per-customer {what} ({inside.at[best, score]:.3f}) among the models whose predicted holdout "
               f"total is within ±{band:.0%} of the actual ({', '.join(LABELS[k] for k in inside.index)})")
        return best, why, True
    best = m["total_error"].abs().idxmin()
    why = (f"no model tracks the store's total (every predicted holdout total is more than ±{band:.0%} off); "
           f"{LABELS[best]} is the closest ({m.at[best, 'total_error']:+.1%})")
    return best, why, False


def frequency_monetary_correlation(summary: pd.DataFrame, suffix: str = "") -> float:
    """Pearson correlation of frequency and monetary value among repeat customers.

    Gamma-Gamma assumes spend is independent of frequency; reports warn when |r| > 0.3.
    """
    rep = summary[summary[f"frequency{suffix}"] > 0]
    if len(rep) < 3:
        return float("nan")
    return float(np.corrcoef(rep[f"frequency{suffix}"], rep[f"monetary_value{suffix}"])[0, 1])
