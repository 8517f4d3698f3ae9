"""Customer lifetime value (顾客终身价值), the time dimension: buy-till-you-die models.

* :func:`rfm_summary`: lifetimes' RFM summary (``frequency``, ``recency``, ``T``,
  ``monetary_value``), computed in one vectorised pass over the customer codes the loader
  made; equal to ``lifetimes.utils.summary_data_from_transaction_data`` (and, with
  ``calibration_end``, to ``calibration_and_holdout_data``) and much faster.
* :func:`fit_clv_models`: lifetimes' BG/NBD, Pareto/NBD and MBG/NBD fitters on
  compressed rows (identical (frequency, recency, T) fitted once, with weights), with
  deterministic starting values and documented remedies for ``ConvergenceError``;
  :func:`fit_gamma_gamma` for spend. Results follow the ``params_`` / ``summary()`` shape.
* :func:`holdout_comparison`: each model's holdout predictions, MAE/RMSE, the chosen model.
* :func:`customer_value`: P(alive), expected purchases and CLV per customer.

Wrapped lifetimes 0.11.3 problems: fitters are given NumPy arrays (its input check fails
on some pandas Series); Pareto/NBD's unseeded random starting values are replaced by fixed
ones and its Nelder-Mead search (minutes on a 20,000-customer store, ending where the
likelihood is NaN, without raising) by Powell's method with the likelihood checked at the
estimate; standard errors come from a numerical Hessian for every model (lifetimes has
none for Pareto/NBD); fitter output printed on failure is silenced.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from statsmodels.tools.numdiff import approx_hess3

from crmlab.io import CrmlabInputError, parse_observation_end
from crmlab.summary import summary_table

__all__ = ["ClvFitError", "FittedModel", "rfm_summary", "fit_clv_models", "fit_gamma_gamma", "holdout_comparison",
           "customer_value", "value_deciles", "frequency_monetary_correlation", "p_alive_matrix",
           "wakeup_candidates", "MODELS"]

MODELS = ("bgnbd", "pareto_nbd", "mbgnbd")
_UNITS = {"D": 1.0, "W": 7.0}


class ClvFitError(CrmlabInputError):
    """A CLV model cannot be fitted: the data cannot support it or every remedy failed."""


# ----------------------------------------------------------------------------- RFM summary

def rfm_summary(orders, observation_end=None, time_unit: str = "D", calibration_end=None,
                engine=None) -> pd.DataFrame:
    """Per-customer RFM summary for the buy-till-you-die models (paid orders only).

    Computed in the engine by :func:`crmlab.summary.summary_table` and brought back per
    customer (the per-customer CLV needs it); fits use distinct rows with weights.

    Parameters
    ----------
    orders : OrderTable or DataFrame
        An :class:`crmlab.engine.OrderTable` or orders from :func:`crmlab.io.load_orders`.
    observation_end : optional
        Defaults to the loader's observation end.
    time_unit : {"D", "W"}
        Days, or weeks as days / 7 (the CDNOW papers' unit).
    calibration_end : optional
        Split into a calibration period (up to and including this day) and a holdout.

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
    customers who bought in the calibration period.
    """
    expr, o = summary_table(orders, time_unit, observation_end, calibration_end, engine)
    out = o.engine.to_pandas(expr).sort_values("customer_id").set_index("customer_id")
    out.attrs.update(observation_end=o.observation_end, time_unit=time_unit)
    if calibration_end is not None:
        out.attrs["calibration_end"] = parse_observation_end(calibration_end)
    return out


# ----------------------------------------------------------------------------- fitted models

@dataclass
class FittedModel:
    """A fitted lifetimes model with the ``params_`` / ``summary()`` shape.

    Attributes
    ----------
    name : str
    fitter : lifetimes fitter
    params_ : Series
    log_likelihood : float
        Total log-likelihood at the estimate (without any penalizer term).
    remedy : str
        ``"none"`` or the remedy that made the fit converge.
    attempts : list of str
        What was tried, in order, and how it ended.
    moved : float or None
        With a penalizer remedy: the largest relative change of a parameter between the
        penalizer used and one ten times smaller (how much the penalizer matters).
    n_customers, n_rows : int
        Customers, and distinct rows actually fitted (after compression).
    """

    name: str
    fitter: object
    params_: pd.Series
    log_likelihood: float
    standard_errors: pd.Series
    remedy: str = "none"
    attempts: list = field(default_factory=list)
    moved: float | None = None
    n_customers: int = 0
    n_rows: int = 0

    def summary(self) -> pd.DataFrame:
        """Estimate, standard error and 95% interval per parameter."""
        se = self.standard_errors
        return pd.DataFrame({"estimate": self.params_, "std_error": se, "ci_low": self.params_ - 1.959964 * se,
                             "ci_high": self.params_ + 1.959964 * se})

    def to_dict(self) -> dict:
        return {"params": {k: float(v) for k, v in self.params_.items()}, "log_likelihood": float(self.log_likelihood),
                "std_errors": {k: (None if not np.isfinite(v) else float(v)) for k, v in self.standard_errors.items()},
                "remedy": self.remedy, "moved": self.moved, "rows_fitted": self.n_rows, "customers": self.n_customers}


def _lifetimes(name: str, penalizer: float):
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

    cls = {"bgnbd": BetaGeoFitter, "pareto_nbd": ParetoNBDFitter, "mbgnbd": ModifiedBetaGeoFitter,
           "gamma_gamma": GammaGammaFitter}[name]
    return cls(penalizer_coef=penalizer)


def _total_nll(name: str, fitter, theta: np.ndarray, data: tuple, weights: np.ndarray) -> float:
    """Total negative log-likelihood at natural parameters ``theta`` (no penalizer)."""
    cls = type(fitter)
    if name == "pareto_nbd":
        return float(cls._negative_log_likelihood(theta, *data, weights, 0.0) * weights.mean())
    if name in ("bgnbd", "mbgnbd"):
        # lifetimes' BG/MBG likelihoods take log-parameters with alpha on its internal time scale;
        # evaluated here on the original scale (scale 1)
        return float(cls._negative_log_likelihood(np.log(theta), *data, weights, 0.0) * weights.sum())
    return float(cls._negative_log_likelihood(np.log(theta), *data, weights, 0.0) * weights.sum())


def _standard_errors(name, fitter, params: pd.Series, data, weights) -> pd.Series:
    lp = np.log(params.to_numpy(float))

    def f(x):
        return _total_nll(name, fitter, np.exp(x), data, weights)

    try:
        H = approx_hess3(lp, f)
        cov_log = np.linalg.inv(H)
        se = np.sqrt(np.clip(np.diag(cov_log), 0, None)) * params.to_numpy(float)  # delta method
    except (np.linalg.LinAlgError, ValueError, FloatingPointError):
        se = np.full(len(params), np.nan)
    return pd.Series(se, index=params.index)


_START = {"bgnbd": None, "mbgnbd": None, "pareto_nbd": np.array([0.5, 10.0, 0.5, 10.0]), "gamma_gamma": None}


def _fit_once(name: str, cols: tuple, weights: np.ndarray, penalizer: float, tol: float | None, start):
    fitter = _lifetimes(name, penalizer)
    kw = {"weights": weights}
    if tol is not None:
        kw["tol"] = tol
    if name == "pareto_nbd":
        # lifetimes draws unseeded random starting values and uses Nelder-Mead, which on
        # real stores wanders into regions where the likelihood is NaN (minutes, garbage):
        # fixed start, Powell's method, and the result is checked below
        kw["initial_params"] = start if start is not None else _START["pareto_nbd"]
        kw["fit_method"] = "Powell"
    elif start is not None:
        kw["initial_params"] = np.log(start)
    with contextlib.redirect_stdout(io.StringIO()), np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitter.fit(*cols, **kw)
    p = fitter.params_.astype(float)
    from lifetimes.utils import ConvergenceError

    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ConvergenceError("non-finite or non-positive parameters")
    if not np.isfinite(_total_nll(name, fitter, p.to_numpy(), cols, weights)):
        raise ConvergenceError("the likelihood is not finite at the estimate")
    return fitter


def _compress(df: pd.DataFrame, cols: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray]:
    g = df.groupby(list(cols), sort=True).size()
    rows = g.index.to_frame(index=False)
    return rows, g.to_numpy().astype(float)


def _fit_with_remedies(name: str, rows: pd.DataFrame, cols: Sequence[str], weights: np.ndarray, penalizer: float,
                       tol: float | None, n_customers: int) -> FittedModel:
    from lifetimes.utils import ConvergenceError

    arrays = tuple(rows[c].to_numpy(float) for c in cols)
    if name != "gamma_gamma":
        arrays = (arrays[0].astype(int),) + arrays[1:]
    default_tol = 1e-8 if name == "pareto_nbd" else 1e-7  # Powell at 1e-6 stops short on CDNOW
    plan = [("none", penalizer, tol, None),
            ("looser tolerance", penalizer, 1e-5, None),
            ("other starting values", penalizer, None, np.array([1.0, 1.0, 1.0, 1.0][: 3 if name == "gamma_gamma" else 4])),
            ("penalizer 0.001", max(penalizer, 0.001), None, None),
            ("penalizer 0.01", max(penalizer, 0.01), None, None)]
    attempts, last_err = [], None
    for remedy, pen, t, start in plan:
        try:
            fitter = _fit_once(name, arrays, weights, pen, t if t is not None else default_tol, start)
        except (ConvergenceError, ValueError, np.linalg.LinAlgError, FloatingPointError) as e:
            last_err = e
            attempts.append(f"{remedy}: {type(e).__name__}")
            continue
        attempts.append(f"{remedy}: converged")
        params = fitter.params_.astype(float).copy()
        moved = None
        if remedy.startswith("penalizer"):
            try:
                weaker = _fit_once(name, arrays, weights, pen / 10, default_tol, None)
                moved = float(np.max(np.abs(weaker.params_.to_numpy() / params.to_numpy() - 1)))
            except (ConvergenceError, ValueError, np.linalg.LinAlgError, FloatingPointError):
                moved = None
        data = arrays
        ll = -_total_nll(name, fitter, params.to_numpy(), data, weights)
        se = _standard_errors(name, fitter, params, data, weights)
        return FittedModel(name, fitter, params, ll, se, remedy, attempts, moved, n_customers, len(rows))
    raise ClvFitError(f"{name}: did not converge after every remedy ({'; '.join(attempts)}); last error: {last_err}")


def _check_summary(summary: pd.DataFrame, f="frequency", r="recency", T="T") -> None:
    if len(summary) == 0:
        raise ClvFitError("no customers to fit")
    if (summary[f] > 0).sum() == 0:
        raise ClvFitError("no repeat customers: every customer bought on one day only, so purchase rates "
                          "and dropout cannot be estimated")
    if summary[T].max() <= 0:
        raise ClvFitError("all customers first bought on the observation end's day: no time has passed (T = 0)")


def fit_clv_models(summary: pd.DataFrame, models: Sequence[str] = MODELS, penalizer: float = 0.0,
                   compress: bool = True, tol: float | None = None, suffix: str = "") -> dict[str, FittedModel]:
    """Fit lifetimes' BG/NBD, Pareto/NBD and MBG/NBD to an RFM summary.

    Customers with identical (frequency, recency, T) are fitted once with a weight
    (``compress=True``): the same likelihood, far fewer rows. When a fit does not
    converge, the remedies are tried in this order and the one needed is reported:
    a looser tolerance, other starting values, a penalizer of 0.001, then 0.01 (a
    penalizer is never added silently: ``FittedModel.remedy`` and ``moved`` say so).

    Parameters
    ----------
    summary : DataFrame
        From :func:`rfm_summary` (``suffix="_cal"`` for a calibration summary).
    models : names among ``"bgnbd", "pareto_nbd", "mbgnbd"``
    penalizer : float
        lifetimes' ``penalizer_coef`` for the first attempt.

    Raises
    ------
    ClvFitError
        No repeat customers, T all zero, or every remedy failed.
    """
    f, r, T = f"frequency{suffix}", f"recency{suffix}", f"T{suffix}"
    _check_summary(summary, f, r, T)
    unknown = set(models) - set(MODELS)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; choose from {MODELS}")
    if compress:
        rows, w = _compress(summary, [f, r, T])
    else:
        rows, w = summary[[f, r, T]].reset_index(drop=True), np.ones(len(summary))
    return {m: _fit_with_remedies(m, rows, [f, r, T], w, penalizer, tol, len(summary)) for m in models}


def frequency_monetary_correlation(summary: pd.DataFrame, suffix: str = "") -> float:
    """Pearson correlation of frequency and monetary value among repeat customers.

    Gamma-Gamma assumes spend is independent of frequency; reports warn when |r| > 0.3.
    """
    rep = summary[summary[f"frequency{suffix}"] > 0]
    if len(rep) < 3:
        return float("nan")
    return float(np.corrcoef(rep[f"frequency{suffix}"], rep[f"monetary_value{suffix}"])[0, 1])


def fit_gamma_gamma(summary: pd.DataFrame, penalizer: float = 0.0, suffix: str = "") -> FittedModel:
    """Gamma-Gamma spend model on repeat customers (frequency > 0, monetary value > 0)."""
    f, m = f"frequency{suffix}", f"monetary_value{suffix}"
    rep = summary[(summary[f] > 0) & (summary[m] > 0)]
    if len(rep) < 10:
        raise ClvFitError(f"Gamma-Gamma needs repeat customers with positive spend; found {len(rep)}")
    rows, w = _compress(rep, [f, m])
    return _fit_with_remedies("gamma_gamma", rows, [f, m], w, penalizer, None, len(rep))


# ----------------------------------------------------------------------------- holdout and value

def holdout_comparison(summary_cal: pd.DataFrame, models: Mapping[str, FittedModel], choose: str | None = None,
                       max_frequency: int = 7) -> dict:
    """Predicted vs actual repeat purchases in the holdout period, per model.

    Returns
    -------
    dict with ``metrics`` (DataFrame per model: MAE, RMSE per customer, predicted and
    actual totals), ``by_frequency`` (mean actual and predicted holdout purchases by
    calibration frequency 0..7+), ``predictions`` (per customer), ``chosen`` (lowest
    MAE unless ``choose`` names one) and ``margin`` (the runner-up's MAE minus the
    chosen one's).
    """
    s = summary_cal
    actual = s["frequency_holdout"].to_numpy()
    preds, rows = {}, []
    for name, m in models.items():
        p = m.fitter.conditional_expected_number_of_purchases_up_to_time(
            s["duration_holdout"].to_numpy(), s["frequency_cal"].to_numpy(), s["recency_cal"].to_numpy(),
            s["T_cal"].to_numpy())
        p = np.asarray(p, dtype=float)
        preds[name] = p
        rows.append({"model": name, "mae": float(np.mean(np.abs(p - actual))),
                     "rmse": float(np.sqrt(np.mean((p - actual) ** 2))), "predicted_total": float(p.sum()),
                     "actual_total": float(actual.sum())})
    metrics = pd.DataFrame(rows).set_index("model")
    metrics["total_error"] = metrics["predicted_total"] / metrics["actual_total"] - 1
    order = metrics["mae"].sort_values()
    chosen = choose if choose is not None else order.index[0]
    if chosen not in metrics.index:
        raise ValueError(f"model {chosen!r} was not fitted ({list(metrics.index)})")
    others = order.drop(chosen)
    margin = float(others.iloc[0] - order[chosen]) if len(others) else None
    bucket = np.minimum(s["frequency_cal"].to_numpy(), max_frequency).astype(int)
    byf = pd.DataFrame({"frequency_cal": bucket, "actual": actual, **preds}).groupby("frequency_cal").mean()
    byf["customers"] = pd.Series(bucket).value_counts().sort_index().to_numpy()
    byf.index = [f"{i}+" if i == max_frequency else str(i) for i in byf.index]
    pred_df = pd.DataFrame({"actual": actual, **preds}, index=s.index)
    return {"metrics": metrics, "by_frequency": byf, "predictions": pred_df, "chosen": chosen, "margin": margin}


def customer_value(summary: pd.DataFrame, model: FittedModel, gamma_gamma: FittedModel | None,
                   horizon_months: int = 12, discount_rate: float = 0.01, margin: float = 1.0,
                   purchases_days: int = 90) -> pd.DataFrame:
    """Per customer: P(alive), expected purchases in the next ``purchases_days``, CLV.

    CLV is lifetimes' ``GammaGammaFitter.customer_lifetime_value`` (discounted monthly at
    ``discount_rate`` over ``horizon_months``) times ``margin``; customers with no repeat
    purchase get the Gamma-Gamma population mean spend. Without a spend model, CLV is NaN.
    """
    unit = summary.attrs.get("time_unit", "D")
    f = summary["frequency"].to_numpy()
    r = summary["recency"].to_numpy()
    T = summary["T"].to_numpy()
    fit = model.fitter
    with np.errstate(all="ignore"):
        p_alive = np.asarray(fit.conditional_probability_alive(f, r, T), dtype=float)
        t = purchases_days / _UNITS[unit]
        exp_n = np.asarray(fit.conditional_expected_number_of_purchases_up_to_time(t, f, r, T), dtype=float)
    out = pd.DataFrame({"frequency": f, "recency": r, "T": T, "monetary_value": summary["monetary_value"].to_numpy(),
                        "p_alive": p_alive, f"expected_purchases_{purchases_days}d": exp_n}, index=summary.index)
    if gamma_gamma is not None:
        gg = gamma_gamma.fitter
        spend = gg.conditional_expected_average_profit(pd.Series(f, index=summary.index),
                                                       pd.Series(summary["monetary_value"].to_numpy(), index=summary.index))
        out["expected_spend"] = np.asarray(spend, dtype=float)
        with np.errstate(all="ignore"):
            clv = gg.customer_lifetime_value(fit, pd.Series(f, index=summary.index), pd.Series(r, index=summary.index),
                                             pd.Series(T, index=summary.index),
                                             pd.Series(summary["monetary_value"].to_numpy(), index=summary.index),
                                             time=horizon_months, discount_rate=discount_rate, freq=unit)
        out["clv"] = np.asarray(clv, dtype=float) * margin
    else:
        out["expected_spend"] = np.nan
        out["clv"] = np.nan
    return out


def value_deciles(values: pd.DataFrame) -> pd.DataFrame:
    """CLV deciles (10 = top): customers, total and mean CLV, share of expected value."""
    v = values["clv"].dropna()
    dec = pd.qcut(v.rank(method="first"), 10, labels=range(1, 11))
    g = v.groupby(dec, observed=True)
    out = pd.DataFrame({"customers": g.size(), "total_clv": g.sum(), "mean_clv": g.mean()})
    out["share_of_value"] = out["total_clv"] / out["total_clv"].sum()
    out.index.name = "decile"
    return out.iloc[::-1]


def p_alive_matrix(model: FittedModel, max_frequency: int, max_recency: float, T: float,
                   steps: int = 40) -> pd.DataFrame:
    """P(alive) for customers of age ``T`` on a (frequency x recency) grid, for the heat map."""
    f = np.arange(0, int(max_frequency) + 1)
    r = np.linspace(0, max_recency, steps)
    F, R = np.meshgrid(f, r, indexing="ij")
    with np.errstate(all="ignore"):
        p = np.asarray(model.fitter.conditional_probability_alive(F.ravel(), R.ravel(), np.full(F.size, T)), float)
    p = p.reshape(F.shape)
    p[(F == 0) & (R > 0)] = np.nan  # impossible: no repeat purchase but a recency
    return pd.DataFrame(p, index=pd.Index(f, name="frequency"), columns=pd.Index(np.round(r, 1), name="recency"))


def wakeup_candidates(values: pd.DataFrame, stages: pd.DataFrame, p_alive_cutoff: float = 0.5) -> pd.DataFrame:
    """Dormant customers (lifecycle stage) still likely alive, ranked by CLV (ids and numbers only)."""
    v = values.copy()
    v.index = v.index.astype(str)
    st = stages.reindex(v.index)
    m = (st["stage"] == "dormant") & (v["p_alive"] > p_alive_cutoff)
    out = v.loc[m, ["p_alive", "clv", "frequency", "monetary_value"]].join(st.loc[m, ["days_since_last"]])
    return out.sort_values("clv", ascending=False)
