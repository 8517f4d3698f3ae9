"""Customer lifetime value (顾客终身价值), the time dimension: buy-till-you-die models.

* :func:`rfm_summary`: lifetimes' RFM summary (``frequency``, ``recency``, ``T``,
  ``monetary_value``), computed in the engine; equal to
  ``lifetimes.utils.summary_data_from_transaction_data`` (and, with ``calibration_end``, to
  ``calibration_and_holdout_data``) and much faster.
* :func:`fit_clv_models`: BG/NBD, Pareto/NBD and MBG/NBD by maximum likelihood on distinct
  rows with weights (:mod:`crmlab.clv.likelihoods`: vectorised log-likelihoods with
  analytic gradients, equal to lifetimes' own); :func:`fit_gamma_gamma` for spend. Each
  model has a ``status``: ``ok``, ``boundary`` (the optimum lies on the edge of the
  parameter space, e.g. no dropout: a result, reported with its meaning) or ``failed``
  (with the reason); a failed model never stops the others.
* :func:`choose_model`: the holdout rule (models whose predicted holdout total is within
  ±10% of the actual: lowest per-customer MAE; none: smallest total error, said so).
* :func:`~crmlab.clv.pipeline.clv_pipeline` (re-exported here): the one pipeline that
  ``crmlab clv`` and notebook 04 run — fits, holdout with prediction intervals, CLV with
  its interval, model checks — returning a :class:`~crmlab.clv.pipeline.ClvResult`.

Standard errors come from the Hessian in the log-parameters (central differences of the
analytic gradient); intervals are on the log scale, so they are always positive.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Sequence

import numpy as np
import pandas as pd

from crmlab.clv import likelihoods as lk
from crmlab.ingest.readers import CrmlabInputError, parse_observation_end
from crmlab.clv.summary import summary_table

__all__ = ["ClvFitError", "FittedModel", "rfm_summary", "fit_clv_models", "fit_gamma_gamma", "fit_nbd",
           "choose_model", "frequency_monetary_correlation", "value_deciles", "p_alive_matrix",
           "wakeup_candidates", "MODELS", "LABELS", "holdout_comparison", "customer_value", "clv_pipeline",
           "ClvResult", "period_transactions"]

MODELS = ("bgnbd", "pareto_nbd", "mbgnbd")
LABELS = {"bgnbd": "BG/NBD", "pareto_nbd": "Pareto/NBD", "mbgnbd": "MBG/NBD", "gamma_gamma": "Gamma-Gamma",
          "nbd": "NBD"}
_UNITS = {"D": 1.0, "W": 7.0}
Z95 = 1.959963984540054
# what a parameter at the edge of its space means (log-parameter at ±LOG_BOUND)
_EDGE = {("bgnbd", "a", 0): "dropout probability 0 for everyone", ("bgnbd", "b", 1): "no dropout",
         ("mbgnbd", "a", 0): "dropout probability 0 for everyone", ("mbgnbd", "b", 1): "no dropout",
         ("pareto_nbd", "s", 0): "no dropout", ("pareto_nbd", "beta", 1): "no dropout",
         ("gamma_gamma", "q", 1): "the same spend rate for everyone"}
_PAIRS = {("a", "b"): "the same dropout probability for everyone", ("s", "beta"): "the same dropout rate for everyone",
          ("r", "alpha"): "the same purchase rate for everyone (Poisson purchases)",
          ("q", "v"): "the same spend rate for everyone"}


class ClvFitError(CrmlabInputError):
    """The data cannot support any CLV model (no customers, no repeat customers, T all 0)."""


# ----------------------------------------------------------------------------- RFM summary

def rfm_summary(orders, observation_end=None, time_unit: str = "D", calibration_end=None,
                engine=None) -> pd.DataFrame:
    """Per-customer RFM summary for the buy-till-you-die models (paid orders only).

    Computed in the engine by :func:`crmlab.clv.summary.summary_table` and brought back per
    customer (the per-customer CLV needs it); fits use distinct rows with weights.

    Parameters
    ----------
    orders : OrderTable or DataFrame
        An :class:`crmlab.engine.OrderTable` or orders from :func:`crmlab.ingest.readers.load_orders`.
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

@dataclass(repr=False)
class FittedModel:
    """A fitted model: parameters, log-likelihood, status and log-scale covariance.

    lifelines' shape: ``FittedModel("bgnbd").fit(summary)`` fits (and returns the model),
    ``params_`` holds the estimates, ``summary`` is a DataFrame of estimate, standard error
    and 95% interval per parameter, ``print_summary()`` prints it. Its display says how many
    customers it was fitted on (and on how many distinct rows: customers with the same
    history are one weighted row).

    Attributes
    ----------
    name : {"bgnbd", "pareto_nbd", "mbgnbd", "gamma_gamma"}
    params_ : Series
        Natural-scale estimates (NaN when the fit failed; None before :meth:`fit`).
    log_likelihood : float
        Total log-likelihood at the estimate (lifetimes' likelihood, without a penalizer).
    standard_errors : Series
        Delta-method standard errors (θ × SE of log θ); NaN where not estimable.
    cov_log : ndarray
        Covariance of the log-parameters (zeros for parameters held at a boundary).
    status : {"ok", "boundary", "failed"}
    error : str or None
        For ``boundary``: what the edge means; for ``failed``: why.
    attempts : list of str
        Each starting point tried and how it ended.
    n_customers, n_rows : int
        Customers, and distinct rows actually fitted.
    """

    name: str
    params_: pd.Series | None = None
    log_likelihood: float = float("nan")
    standard_errors: pd.Series | None = None
    cov_log: np.ndarray | None = None
    status: str = "ok"
    error: str | None = None
    attempts: list = field(default_factory=list)
    remedy: str = "none"
    n_customers: int = 0
    n_rows: int = 0

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def log_params(self) -> np.ndarray:
        return np.log(self.params_.to_numpy(float))

    def ci(self, level: float = 0.95) -> dict:
        """``{param: [low, high]}`` on the log scale (always positive); None where not estimable."""
        from scipy.stats import norm

        z = norm.ppf(0.5 + level / 2)
        out = {}
        for k, v, se in zip(self.params_.index, self.params_.to_numpy(float), self.standard_errors.to_numpy(float)):
            out[k] = None if not (np.isfinite(se) and v > 0) else [float(v * np.exp(-z * se / v)),
                                                                  float(v * np.exp(z * se / v))]
        return out

    @property
    def summary(self) -> pd.DataFrame:
        """Estimate, standard error and 95% interval per parameter (log scale), as lifelines'
        ``summary``: a DataFrame indexed by parameter."""
        if self.params_ is None:
            raise ValueError(f"{self.name} is not fitted yet: call .fit(summary) first")
        ci = self.ci()
        return pd.DataFrame({"estimate": self.params_, "std_error": self.standard_errors,
                             "ci_low": [c[0] if c else np.nan for c in ci.values()],
                             "ci_high": [c[1] if c else np.nan for c in ci.values()]}, index=self.params_.index)

    def fit(self, summary: pd.DataFrame, suffix: str = "", penalizer: float = 0.0) -> "FittedModel":
        """Fit this model to an RFM summary (:func:`rfm_summary`) and return it (lifelines' way).

        Purchase models by :func:`fit_clv_models` (boundary status judged against the NBD),
        Gamma-Gamma by :func:`fit_gamma_gamma`; ``suffix="_cal"`` fits a calibration summary.

        Raises
        ------
        ClvFitError
            A purchase model on data that cannot support one (no repeat customers, ...).
        """
        if self.name == "gamma_gamma":
            new = fit_gamma_gamma(summary, penalizer, suffix)
        elif self.name in MODELS:
            new = fit_clv_models(summary, (self.name,), penalizer, suffix=suffix)[self.name]
        else:
            raise ValueError(f"unknown model {self.name!r}; choose from {MODELS + ('gamma_gamma',)}")
        for f in fields(self):
            setattr(self, f.name, getattr(new, f.name))
        return self

    def print_summary(self, decimals: int = 4) -> None:
        """Print the model, what it was fitted on, and :attr:`summary` (lifelines' ``print_summary``)."""
        print(self.summary_text(decimals))

    def summary_text(self, decimals: int = 4) -> str:
        """The text :meth:`print_summary` prints."""
        head = [f"<crmlab.FittedModel: {LABELS.get(self.name, self.name)}>"]
        if self.params_ is None:
            return head[0] + "\nnot fitted yet: .fit(summary)"
        who = "repeat customers" if self.name == "gamma_gamma" else "customers"
        head += [f"{'fitted on':<16}{self.n_customers:,} {who}" + (f" ({self.n_rows:,} distinct rows, weighted)"
                                                                  if self.n_rows else ""),
                 f"{'log-likelihood':<16}{self.log_likelihood:,.{decimals}f}", f"{'status':<16}{self.status}"]
        if self.error:
            head.append(f"{'':<16}{self.error}")
        if self.status == "failed":
            return "\n".join(head)
        body = self.summary.to_string(float_format=lambda x: f"{x:.{decimals}g}", na_rep="—")
        return "\n".join(head + ["---", body, "---",
                                 "95% intervals on the log scale (always positive); standard errors θ × SE(log θ)"])

    def _card(self):
        from crmlab.present.cards import model_card

        return model_card(self)

    def __repr__(self) -> str:
        label = LABELS.get(self.name, self.name)
        if self.params_ is None:
            return f"<FittedModel {label}: not fitted>"
        who = "repeat customers" if self.name == "gamma_gamma" else "customers"
        fitted = f"fitted on {self.n_customers:,} {who}" + (f" ({self.n_rows:,} distinct rows)" if self.n_rows else "")
        if self.status == "failed":
            return f"<FittedModel {label}: failed ({fitted}): {self.error}>"
        params = ", ".join(f"{k} {v:.4g}" for k, v in self.params_.items())
        return f"<FittedModel {label}: {fitted}; {params}; log-likelihood {self.log_likelihood:,.2f}, {self.status}>"

    def _repr_html_(self) -> str:
        return self._card().html()

    def to_dict(self) -> dict:
        if self.status == "failed":
            return {"status": "failed", "error": self.error, "attempts": self.attempts}
        num = lambda v: None if not np.isfinite(v) else float(v)  # noqa: E731
        return {"status": self.status, "error": self.error,
                "params": {k: float(v) for k, v in self.params_.items()},
                "ci": self.ci(), "ci_level": 0.95,
                "std_errors": {k: num(v) for k, v in self.standard_errors.items()},
                "log_likelihood": float(self.log_likelihood), "start": self.remedy,
                "rows_fitted": self.n_rows, "customers": self.n_customers}

    @property
    def fitter(self):
        """A lifetimes fitter carrying these parameters (for lifetimes' own prediction methods)."""
        if self.status == "failed":
            raise ClvFitError(f"{self.name}: {self.error}")
        from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

        cls = {"bgnbd": BetaGeoFitter, "pareto_nbd": ParetoNBDFitter, "mbgnbd": ModifiedBetaGeoFitter,
               "gamma_gamma": GammaGammaFitter}[self.name]
        f = cls()
        f.params_ = self.params_.copy()
        f.predict = getattr(f, "conditional_expected_number_of_purchases_up_to_time", None)
        return f


def _failed(name: str, error: str, attempts=(), n_customers: int = 0, n_rows: int = 0) -> FittedModel:
    names = lk.PARAMS[name]
    return FittedModel(name, pd.Series(np.nan, index=list(names)), status="failed", error=error,
                       attempts=list(attempts), n_customers=n_customers, n_rows=n_rows,
                       standard_errors=pd.Series(np.nan, index=list(names)), cov_log=np.zeros((len(names),) * 2))


def _starts(name: str, rows: lk.Rows) -> list:
    if name == "gamma_gamma":
        return [("default", [1.0, 1.0, float(np.average(rows.tx, weights=rows.w))]), ("other", [5.0, 3.0, 50.0]),
                ("lifetimes' default", [1.0, 1.0, 1.0])]
    rate = max(float(np.dot(rows.w, rows.x)) / max(float(np.dot(rows.w, rows.T)), 1e-9), 1e-6)
    tmax = max(float(rows.T.max()), 1e-6)
    if name == "nbd":
        return [("default", [1.0, 1.0 / rate]), ("other", [0.1, 0.1 * tmax])]
    return [("default", [1.0, 1.0 / rate, 1.0, 1.0 if name != "pareto_nbd" else tmax]),
            ("other starting values", [0.1, 0.1 * tmax, 0.1, 0.1 * (1 if name != "pareto_nbd" else tmax)]),
            ("third starting values", [0.5, 0.5 / rate, 2.0, 5.0 if name != "pareto_nbd" else 0.5 * tmax])]


def _fit(name: str, rows: lk.Rows, n_customers: int, penalizer: float = 0.0, nbd: FittedModel | None = None,
         starts=None) -> FittedModel:
    names = list(lk.PARAMS[name])
    try:
        z, ll, attempts, H = lk.maximise(name, rows, starts or _starts(name, rows), penalizer)
    except RuntimeError as e:
        return _failed(name, f"no starting value converged ({e})", str(e).split("; "), n_customers, len(rows))
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as e:
        return _failed(name, f"{type(e).__name__}: {e}", (), n_customers, len(rows))
    status, error = "ok", None
    free = np.abs(z) < lk.LOG_BOUND - 1.0
    cov, se_log, pd_ok = _covariance(name, z, rows, free, H if free.all() else None)
    # far out and flat: the likelihood keeps rising (or stays level) towards the edge
    flat = free & ~(se_log < 2.0) & (np.abs(z) > np.log(1e3))
    if flat.any():
        free = free & ~flat
        cov, se_log, pd_ok = _covariance(name, z, rows, free)
    edges = [(names[i], int(z[i] > 0)) for i in np.flatnonzero(~free)]
    no_dropout = nbd is not None and nbd.ok and name in MODELS and ll - nbd.log_likelihood < 0.01
    if no_dropout:
        status = "boundary"
        error = (f"no evidence of dropout: the likelihood is highest in the no-dropout limit, where {LABELS[name]} "
                 f"reduces to the NBD (log-likelihood {ll - nbd.log_likelihood:+.3f} vs the NBD's); "
                 "P(alive) is about 1 for everyone")
        cov = np.zeros_like(cov)
        cov[:2, :2] = nbd.cov_log
        se_log = np.full(len(z), np.nan)
        se_log[:2] = np.sqrt(np.diag(nbd.cov_log))
    elif edges:
        status = "boundary"
        parts, done = [], set()
        for (p1, p2), meaning in _PAIRS.items():
            e = dict(edges)
            if e.get(p1) == 1 and e.get(p2) == 1:
                parts.append(f"{p1}, {p2} → ∞ ({meaning})")
                done |= {p1, p2}
        parts += [f"{p} → {'∞' if up else '0'}" + (f" ({_EDGE[(name, p, up)]})" if (name, p, up) in _EDGE else "")
                  for p, up in edges if p not in done]
        error = "; ".join(parts) + ": held at the estimate, no interval"
    elif not pd_ok:
        status = "boundary"
        error = "the likelihood is flat in some direction (Hessian not negative definite): no intervals"
    th = np.exp(z)
    return FittedModel(name, pd.Series(th, index=names), float(ll), pd.Series(th * se_log, index=names), cov, status,
                       error, attempts, attempts[-1].split(":")[0], n_customers, len(rows))


def _covariance(name: str, z: np.ndarray, rows: lk.Rows, free: np.ndarray, H=None):
    """Covariance of the free log-parameters (inverse of the negative Hessian); zeros elsewhere."""
    cov, se_log = np.zeros((len(z), len(z))), np.full(len(z), np.nan)
    if not free.any():
        return cov, se_log, True
    H = -(lk.hessian(name, z, rows, free) if H is None else H)
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return cov, se_log, False
    c = np.linalg.inv(H)
    cov[np.ix_(free, free)] = c
    se_log[free] = np.sqrt(np.diag(c))
    return cov, se_log, True


def _check_summary(summary: pd.DataFrame, f="frequency", r="recency", T="T") -> None:
    if len(summary) == 0:
        raise ClvFitError("no customers to fit")
    if (summary[f] > 0).sum() == 0:
        raise ClvFitError("no repeat customers: every customer bought on one day only, so purchase rates "
                          "and dropout cannot be estimated")
    if summary[T].max() <= 0:
        raise ClvFitError("all customers first bought on the observation end's day: no time has passed (T = 0)")


def fit_nbd(rows: lk.Rows, n_customers: int) -> FittedModel:
    """The NBD (purchases without dropout): the limit every dropout model reduces to."""
    return _fit("nbd", rows, n_customers)


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
    f, r, T = f"frequency{suffix}", f"recency{suffix}", f"T{suffix}"
    _check_summary(summary, f, r, T)
    unknown = set(models) - set(MODELS)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; choose from {MODELS}")
    if rows is None:
        cols = [summary[c].to_numpy(float) for c in (f, r, T)]
        rows = lk.Rows.from_customers(*cols)[0] if compress else lk.Rows(*cols)
    nbd = fit_nbd(rows, len(summary))
    return {m: _fit(m, rows, len(summary), penalizer, nbd) for m in models}


def fit_gamma_gamma(summary: pd.DataFrame, penalizer: float = 0.0, suffix: str = "") -> FittedModel:
    """Gamma-Gamma spend model on repeat customers (frequency > 0, monetary value > 0).

    ``failed`` with fewer than 10 such customers, or when q <= 1 (no finite mean spend)."""
    f, m = f"frequency{suffix}", f"monetary_value{suffix}"
    rep = summary[(summary[f] > 0) & (summary[m] > 0)]
    if len(rep) < 10:
        return _failed("gamma_gamma", f"needs at least 10 repeat customers with positive spend; found {len(rep)}",
                       (), len(rep), 0)
    rows = lk.Rows.from_customers(rep[f].to_numpy(float), rep[m].to_numpy(float), np.zeros(len(rep)))[0]
    gg = _fit("gamma_gamma", rows, len(rep), penalizer)
    if gg.ok and gg.params_["q"] <= 1:
        return _failed("gamma_gamma", f"q = {gg.params_['q']:.3g} <= 1: the fitted spend distribution has no finite "
                       "mean", gg.attempts, len(rep), len(rows))
    return gg


def choose_model(metrics: pd.DataFrame, band: float = 0.10) -> tuple[str, str, bool]:
    """The holdout rule: among models whose predicted holdout total is within ±``band`` of the
    actual total, the lowest per-customer MAE; if none is, the smallest |total error|.

    ``metrics`` is indexed by model with ``total_error`` and ``mae`` (failed models left
    out). Returns ``(model, reason, tracks_total)``."""
    m = metrics.dropna(subset=["total_error", "mae"])
    if m.empty:
        raise ClvFitError("no purchase model could be fitted on the calibration period")
    inside = m[m["total_error"].abs() <= band]
    if len(inside):
        best = inside["mae"].idxmin()
        why = (f"lowest per-customer MAE ({inside.at[best, 'mae']:.3f}) among the models whose predicted holdout "
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
    p = lk.p_alive(model.name, model.params_.to_numpy(float), F.ravel(), R.ravel(), np.full(F.size, T))
    p = np.asarray(p, float).reshape(F.shape)
    p[(F == 0) & (R > 0)] = np.nan  # impossible: no repeat purchase but a recency
    return pd.DataFrame(p, index=pd.Index(f, name="frequency"), columns=pd.Index(np.round(r, 1), name="recency"))


def wakeup_candidates(values: pd.DataFrame, stages: pd.DataFrame, p_alive_cutoff: float = 0.5,
                      scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """The wake-up list with the CLV evidence: :func:`crmlab.analyses.wakeup.wakeup_list` given ``values``.

    Dormant customers (lifecycle stage) in the top 40% of buyers by spend (RFM ``M >= 4``;
    from ``scores`` or else from ``stages["sales"]``), the same customers notebook 02 lists,
    with their P(alive) and CLV, ranked by CLV, and a ``reason`` per row ("likely still a
    customer" when P(alive) > ``p_alive_cutoff``). Real ids: for the operations CSV.

    Formerly its own rule (dormant and P(alive) > ``p_alive_cutoff``); those customers are
    the rows whose ``p_alive`` is above the cutoff. P(alive) is ``values["p_alive"]``: from a
    model that lets one-time buyers drop out (:func:`~crmlab.clv.pipeline.customer_value`
    takes care of that)."""
    from crmlab.analyses.wakeup import wakeup_list

    return wakeup_list(stages, scores, values, p_alive_cutoff=p_alive_cutoff)


_PIPELINE = ("ClvResult", "clv_pipeline", "customer_value", "holdout_comparison", "period_transactions")


def __getattr__(name: str):
    # re-exported from crmlab.clv.pipeline on first use: an import at the top of either module
    # would be circular (crmlab.clv.pipeline imported first failed with an ImportError)
    if name in _PIPELINE:
        from crmlab.clv import pipeline as _p

        return getattr(_p, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
