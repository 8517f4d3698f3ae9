"""The fitter base every buy-till-you-die model shares, in lifelines' shape.

:class:`FittedModel` is both the fitter and its result, the way a lifelines fitter is:
``BetaGeoModel().fit(summary)`` (or ``FittedModel("bgnbd").fit(summary)``) fits by maximum
likelihood and returns the model; ``params_`` holds the estimates, ``summary`` is a
DataFrame (estimate, standard error, 95% interval per parameter), ``log_likelihood_`` the
total log-likelihood; ``print_summary()`` prints it; in a notebook it shows its card.

One small class per model, each in its own module (PyMC-Marketing's layout):
:class:`~crmlab.clv.bgnbd.BetaGeoModel`, :class:`~crmlab.clv.pareto_nbd.ParetoNBDModel`,
:class:`~crmlab.clv.mbgnbd.ModifiedBetaGeoModel`, :class:`~crmlab.clv.gamma_gamma.GammaGammaModel`.
A model class says only what is its own (its name and starting values); the fit, the
standard errors and the reading of a boundary are here, on the vectorised likelihoods of
:mod:`crmlab.clv.likelihoods`.

Standard errors come from the Hessian in the log-parameters (central differences of the
analytic gradient); intervals are on the log scale, so they are always positive.
"""
from __future__ import annotations

from dataclasses import field, fields
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.stats import norm

from crmlab.clv import likelihoods as lk
from crmlab.present.result import Card, Result, result
from crmlab.schema import CrmlabInputError
from crmlab.settings import Settings

__all__ = ["ClvFitError", "FittedModel", "MODELS", "LABELS", "fit_rows", "fit_nbd", "check_summary", "summary_rows"]

MODELS = ("bgnbd", "pareto_nbd", "mbgnbd")
LABELS = {"bgnbd": "BG/NBD", "pareto_nbd": "Pareto/NBD", "mbgnbd": "MBG/NBD", "gamma_gamma": "Gamma-Gamma",
          "nbd": "NBD"}
# what a parameter at the edge of its space means (log-parameter at ±LOG_BOUND)
_EDGE = {("bgnbd", "a", 0): "dropout probability 0 for everyone", ("bgnbd", "b", 1): "no dropout",
         ("mbgnbd", "a", 0): "dropout probability 0 for everyone", ("mbgnbd", "b", 1): "no dropout",
         ("pareto_nbd", "s", 0): "no dropout", ("pareto_nbd", "beta", 1): "no dropout",
         ("gamma_gamma", "q", 1): "the same spend rate for everyone"}
_PAIRS = {("a", "b"): "the same dropout probability for everyone", ("s", "beta"): "the same dropout rate for everyone",
          ("r", "alpha"): "the same purchase rate for everyone (Poisson purchases)",
          ("q", "v"): "the same spend rate for everyone"}
#: the level of the parameters' intervals (``summary``, ``to_dict()["ci"]``)
CI_LEVEL = 0.95


class ClvFitError(CrmlabInputError):
    """The data cannot support any CLV model (no customers, no repeat customers, T all 0)."""


@result(frozen=False)
class FittedModel(Result):
    """A fitted model: parameters, log-likelihood, status and log-scale covariance.

    lifelines' shape: ``FittedModel("bgnbd").fit(summary)`` fits (and returns the model),
    ``params_`` holds the estimates, ``summary`` is a DataFrame of estimate, standard error
    and 95% interval per parameter, ``print_summary()`` prints it. Its display says how many
    customers it was fitted on (and on how many distinct rows: customers with the same
    history are one weighted row). Mutable (a lifelines fitter fills itself in ``fit``).

    Attributes
    ----------
    name : {"bgnbd", "pareto_nbd", "mbgnbd", "gamma_gamma", "nbd"}
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
    settings : Settings or None
        The context it was fitted under (the session's when ``None``).
    """

    #: model name -> the class that knows its starting values (filled by the model modules)
    _registry: ClassVar[dict] = {}

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
    settings: Settings | None = field(default=None, compare=False)

    def __init_subclass__(cls, model: str | None = None, **kw) -> None:
        super().__init_subclass__(**kw)
        if model is not None:
            FittedModel._registry[model] = cls

    # -- what a model class says -------------------------------------------------------
    @staticmethod
    def starts(rows: lk.Rows) -> list:
        """``[(label, natural-scale parameters), ...]`` to start the search from."""
        raise NotImplementedError

    @classmethod
    def fit_summary(cls, summary: pd.DataFrame, penalizer: float = 0.0, suffix: str = "") -> "FittedModel":
        """A new fitted model from an RFM summary (the model class's own fit)."""
        raise NotImplementedError

    # -- lifelines' interface -----------------------------------------------------------
    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def log_likelihood_(self) -> float:
        """lifelines' name for :attr:`log_likelihood`."""
        return self.log_likelihood

    @property
    def log_params(self) -> np.ndarray:
        return np.log(self.params_.to_numpy(float))

    def ci(self, level: float = CI_LEVEL) -> dict:
        """``{param: [low, high]}`` on the log scale (always positive); None where not estimable."""
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
        """Fit this model to an RFM summary (:func:`crmlab.clv.fitting.rfm_summary`) and return it.

        Purchase models are judged against the NBD (a boundary status when there is no
        evidence of dropout); ``suffix="_cal"`` fits a calibration summary.

        Raises
        ------
        ClvFitError
            A purchase model on data that cannot support one (no repeat customers, ...).
        """
        cls = self._registry.get(self.name)
        if cls is None:
            raise ValueError(f"unknown model {self.name!r}; choose from {MODELS + ('gamma_gamma',)}")
        new = cls.fit_summary(summary, penalizer, suffix)
        for f in fields(self):
            setattr(self, f.name, getattr(new, f.name))
        return self

    def print_summary(self, decimals: int = 4) -> None:
        """Print the model, what it was fitted on, and :attr:`summary` (lifelines' ``print_summary``)."""
        print(self.summary_text(decimals))

    def _fitted_on(self, weighted: str = "") -> str:
        who = "repeat customers" if self.name == "gamma_gamma" else "customers"
        return f"{self.n_customers:,} {who}" + (f" ({self.n_rows:,} distinct rows{weighted})" if self.n_rows else "")

    def summary_text(self, decimals: int = 4) -> str:
        """The text :meth:`print_summary` prints."""
        head = [f"<crmlab.{type(self).__name__}: {LABELS.get(self.name, self.name)}>"]
        if self.params_ is None:
            return head[0] + "\nnot fitted yet: .fit(summary)"
        head += [f"{'fitted on':<16}{self._fitted_on(', weighted')}",
                 f"{'log-likelihood':<16}{self.log_likelihood:,.{decimals}f}", f"{'status':<16}{self.status}"]
        if self.error:
            head.append(f"{'':<16}{self.error}")
        if self.status == "failed":
            return "\n".join(head)
        body = self.summary.to_string(float_format=lambda x: f"{x:.{decimals}g}", na_rep="—")
        return "\n".join(head + ["---", body, "---", f"{self.fmt.level(CI_LEVEL)} intervals on the log scale "
                                 "(always positive); standard errors θ × SE(log θ)"])

    # -- the one presentation path ------------------------------------------------------
    def _card(self) -> Card:
        name, title = LABELS.get(self.name, self.name), type(self).__name__
        if self.params_ is None:
            return Card(title, name, "not fitted yet: .fit(summary)")
        rows = (f"{self.n_customers:,} customers" + (f" ({self.n_rows:,} distinct rows)" if self.n_rows else "")
                if self.name != "gamma_gamma" else f"{self.n_customers:,} repeat customers")
        if self.status == "failed":
            return Card(title, name, f"failed on {rows}", notes=(self.error,) if self.error else ())
        finding = f"fitted on {rows}, log-likelihood {self.log_likelihood:,.2f}, status {self.status}"
        s = self.summary
        sig = _significant
        tab = pd.DataFrame({"estimate": s["estimate"].map(sig), "std. error": s["std_error"].map(sig),
                            f"{self.fmt.level(CI_LEVEL)} CI": [_bracket(a, b) for a, b in zip(s["ci_low"], s["ci_high"])]},
                           index=s.index)
        return Card(title, name, finding, tab, "intervals on the log scale (always positive)",
                    (self.error,) if self.error else (), hint=".summary, .print_summary(), .params_")

    def __repr__(self) -> str:
        label, cls = LABELS.get(self.name, self.name), type(self).__name__
        if self.params_ is None:
            return f"<{cls} {label}: not fitted>"
        fitted = f"fitted on {self._fitted_on()}"
        if self.status == "failed":
            return f"<{cls} {label}: failed ({fitted}): {self.error}>"
        params = ", ".join(f"{k} {v:.4g}" for k, v in self.params_.items())
        return f"<{cls} {label}: {fitted}; {params}; log-likelihood {self.log_likelihood:,.2f}, {self.status}>"

    def _as_dict(self) -> dict:
        if self.status == "failed":
            return {"status": "failed", "error": self.error, "attempts": self.attempts}
        return {"status": self.status, "error": self.error, "params": {k: float(v) for k, v in self.params_.items()},
                "ci": self.ci(), "ci_level": CI_LEVEL, "std_errors": dict(self.standard_errors.items()),
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


def _significant(x) -> str:
    """Four significant figures with thousands separators (whole numbers from 10,000); ``—`` if missing."""
    if x is None or not np.isfinite(x):
        return "—"
    return f"{float(x):,.4g}" if abs(float(x)) < 1e4 else f"{float(x):,.0f}"


def _bracket(lo, hi) -> str:
    return "—" if _significant(lo) == "—" or _significant(hi) == "—" else f"[{_significant(lo)}, {_significant(hi)}]"


# ----------------------------------------------------------------------------- the shared fit

def failed(name: str, error: str, attempts=(), n_customers: int = 0, n_rows: int = 0,
           settings: Settings | None = None) -> FittedModel:
    """A model that could not be fitted, with NaN parameters and the reason."""
    names = lk.PARAMS[name]
    return FittedModel(name, pd.Series(np.nan, index=list(names)), status="failed", error=error,
                       attempts=list(attempts), n_customers=n_customers, n_rows=n_rows,
                       standard_errors=pd.Series(np.nan, index=list(names)), cov_log=np.zeros((len(names),) * 2),
                       settings=settings)


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


def _edge_words(name: str, edges: list) -> str:
    """What parameters at the edge of their space mean."""
    parts, done, e = [], set(), dict(edges)
    for (p1, p2), meaning in _PAIRS.items():
        if e.get(p1) == 1 and e.get(p2) == 1:
            parts.append(f"{p1}, {p2} → ∞ ({meaning})")
            done |= {p1, p2}
    parts += [f"{p} → {'∞' if up else '0'}" + (f" ({_EDGE[(name, p, up)]})" if (name, p, up) in _EDGE else "")
              for p, up in edges if p not in done]
    return "; ".join(parts) + ": held at the estimate, no interval"


def fit_rows(name: str, rows: lk.Rows, n_customers: int, starts, penalizer: float = 0.0,
             nbd: FittedModel | None = None, settings: Settings | None = None) -> FittedModel:
    """Maximum likelihood for ``name`` on distinct ``rows``; never raises for a model.

    ``nbd``: the NBD fitted to the same rows; a purchase model no better than it is at the
    no-dropout boundary (``status="boundary"``, with the NBD's covariance)."""
    names = list(lk.PARAMS[name])
    try:
        z, ll, attempts, H = lk.maximise(name, rows, starts, penalizer)
    except RuntimeError as e:
        return failed(name, f"no starting value converged ({e})", str(e).split("; "), n_customers, len(rows), settings)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as e:
        return failed(name, f"{type(e).__name__}: {e}", (), n_customers, len(rows), settings)
    status, error = "ok", None
    free = np.abs(z) < lk.LOG_BOUND - 1.0
    cov, se_log, pd_ok = _covariance(name, z, rows, free, H if free.all() else None)
    # far out and flat: the likelihood keeps rising (or stays level) towards the edge
    flat = free & ~(se_log < 2.0) & (np.abs(z) > np.log(1e3))
    if flat.any():
        free = free & ~flat
        cov, se_log, pd_ok = _covariance(name, z, rows, free)
    edges = [(names[i], int(z[i] > 0)) for i in np.flatnonzero(~free)]
    if nbd is not None and nbd.ok and name in MODELS and ll - nbd.log_likelihood < 0.01:
        status = "boundary"
        error = (f"no evidence of dropout: the likelihood is highest in the no-dropout limit, where {LABELS[name]} "
                 f"reduces to the NBD (log-likelihood {ll - nbd.log_likelihood:+.3f} vs the NBD's); "
                 "P(alive) is about 1 for everyone")
        cov = np.zeros_like(cov)
        cov[:2, :2] = nbd.cov_log
        se_log = np.full(len(z), np.nan)
        se_log[:2] = np.sqrt(np.diag(nbd.cov_log))
    elif edges:
        status, error = "boundary", _edge_words(name, edges)
    elif not pd_ok:
        status = "boundary"
        error = "the likelihood is flat in some direction (Hessian not negative definite): no intervals"
    th = np.exp(z)
    return FittedModel(name, pd.Series(th, index=names), float(ll), pd.Series(th * se_log, index=names), cov, status,
                       error, attempts, attempts[-1].split(":")[0], n_customers, len(rows), settings)


def _nbd_starts(rows: lk.Rows) -> list:
    rate = max(float(np.dot(rows.w, rows.x)) / max(float(np.dot(rows.w, rows.T)), 1e-9), 1e-6)
    tmax = max(float(rows.T.max()), 1e-6)
    return [("default", [1.0, 1.0 / rate]), ("other", [0.1, 0.1 * tmax])]


def fit_nbd(rows: lk.Rows, n_customers: int, settings: Settings | None = None) -> FittedModel:
    """The NBD (purchases without dropout): the limit every dropout model reduces to."""
    return fit_rows("nbd", rows, n_customers, _nbd_starts(rows), settings=settings)


def check_summary(summary: pd.DataFrame, f="frequency", r="recency", T="T") -> None:
    """Raise :class:`ClvFitError` when no purchase model can be fitted to ``summary``."""
    if len(summary) == 0:
        raise ClvFitError("no customers to fit")
    if (summary[f] > 0).sum() == 0:
        raise ClvFitError("no repeat customers: every customer bought on one day only, so purchase rates "
                          "and dropout cannot be estimated")
    if summary[T].max() <= 0:
        raise ClvFitError("all customers first bought on the observation end's day: no time has passed (T = 0)")


def summary_rows(summary: pd.DataFrame, suffix: str = "", compress: bool = True) -> lk.Rows:
    """The (frequency, recency, T) rows of an RFM summary, compressed to distinct rows with weights."""
    cols = [summary[f"{c}{suffix}"].to_numpy(float) for c in ("frequency", "recency", "T")]
    return lk.Rows.from_customers(*cols)[0] if compress else lk.Rows(*cols)


class PurchaseModel(FittedModel):
    """A purchase (buy-till-you-die) model: fitted with the NBD as its no-dropout reference."""

    @classmethod
    def fit_summary(cls, summary: pd.DataFrame, penalizer: float = 0.0, suffix: str = "", rows: lk.Rows | None = None,
                    nbd: FittedModel | None = None) -> FittedModel:
        name = cls.__dataclass_fields__["name"].default
        check_summary(summary, f"frequency{suffix}", f"recency{suffix}", f"T{suffix}")
        rows = summary_rows(summary, suffix) if rows is None else rows
        settings = summary.attrs.get("settings")
        nbd = fit_nbd(rows, len(summary), settings) if nbd is None else nbd
        return fit_rows(name, rows, len(summary), cls.starts(rows), penalizer, nbd, settings)
