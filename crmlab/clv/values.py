"""What each customer is worth: P(alive), expected purchases, CLV with its interval, the deciles,
the P(alive) grid and the wake-up list with the CLV evidence.

Intervals. Parameter uncertainty is the asymptotic normal of the log-parameters (covariance
from the Hessian), pushed through the vectorised expectations by the delta method on the
log of the quantity (so intervals stay positive); parameters held at a boundary are held
fixed. These intervals are for the expected value (parameter uncertainty of the purchase
model and of Gamma-Gamma), not for one realisation: the pipeline widens the total's by the
model error of rolling-origin backtests (:mod:`crmlab.clv.backtest`), and each customer's
predictive distribution is :mod:`crmlab.clv.predictive`'s.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from crmlab.analyses.wakeup import wakeup_list
from crmlab.clv import expectations as ex
from crmlab.clv import likelihoods as lk
from crmlab.clv.base import FittedModel
from crmlab.clv.summary import TIME_UNITS

__all__ = ["customer_value", "value_deciles", "p_alive_matrix", "wakeup_candidates", "CLV_METHOD"]

CLV_METHOD = ("delta method on the log of the expected CLV with the log-parameters' asymptotic normal covariance "
              "(purchase model and Gamma-Gamma): parameter uncertainty of the expected value")


def rows_and_index(summary: pd.DataFrame, suffix: str = ""):
    """Distinct rows of an RFM summary and the inverse index customer -> row."""
    cols = [summary[f"{c}{suffix}"].to_numpy(float) for c in ("frequency", "recency", "T")]
    return lk.Rows.from_customers(*cols)


def free_params(m: FittedModel) -> np.ndarray:
    """The log-parameters with a variance (not held at a boundary)."""
    return np.diag(m.cov_log) > 0


def jacobian(fn, logp: np.ndarray, free: np.ndarray, h: float = 1e-6):
    """fn(logp) and its forward-difference derivatives in the free log-parameters (last axis)."""
    base = np.asarray(fn(logp), float)
    J = np.zeros(base.shape + (len(logp),))
    for i in np.flatnonzero(free):
        e = np.zeros_like(logp)
        e[i] = h
        J[..., i] = (np.asarray(fn(logp + e), float) - base) / h
    return base, J


def expected_grid(name: str, th, rows: lk.Rows, grid) -> np.ndarray:
    """Expected repeat purchases per row at each time of ``grid`` after the histories."""
    alive = ex.p_alive(name, th, rows.x, rows.tx, rows.T) if name == "pareto_nbd" else None
    return np.column_stack([ex.expected_purchases(name, th, t, rows.x, rows.tx, rows.T, alive) for t in grid])


def customer_value(summary: pd.DataFrame, model: FittedModel, gamma_gamma: FittedModel | None,
                   horizon_months: int = 12, discount_rate: float = 0.01, margin: float = 1.0,
                   purchases_days: int = 90, p_alive_model: FittedModel | None = None,
                   level: float = 0.9) -> pd.DataFrame:
    """Per customer: P(alive), expected purchases in the next ``purchases_days``, CLV with an interval.

    CLV is lifetimes' ``GammaGammaFitter.customer_lifetime_value`` (monthly steps of 4.345
    weeks or 30 days, discounted at ``discount_rate`` a month, over ``horizon_months``) times
    ``margin``: revenue at margin 1, profit otherwise. ``clv_low``/``clv_high`` are a
    ``level`` interval for each customer's expected CLV; ``attrs`` carry the store's
    ``total``, ``total_low``, ``total_high``. P(alive) comes from ``p_alive_model`` when
    given (BG/NBD keeps every one-time buyer alive by construction). Without a usable spend
    model, CLV is NaN.
    """
    unit = summary.attrs.get("time_unit", "D")
    rows, inv = rows_and_index(summary)
    x, r, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    mv = summary["monetary_value"].to_numpy(float)
    pa_m = p_alive_model or model
    pa = ex.p_alive(pa_m.name, pa_m.params_.to_numpy(float), rows.x, rows.tx, rows.T)[inv]
    exp_n = expected_grid(model.name, model.params_.to_numpy(float), rows, [purchases_days / TIME_UNITS[unit]])[:, 0][inv]
    out = pd.DataFrame({"frequency": x, "recency": r, "T": T, "monetary_value": mv, "p_alive": pa,
                        f"expected_purchases_{purchases_days}d": exp_n}, index=summary.index)
    attrs = {"total": None, "total_low": None, "total_high": None, "interval_level": level,
             "interval_method": CLV_METHOD, "p_alive_model": pa_m.name}
    if gamma_gamma is None or not gamma_gamma.ok:
        out["expected_spend"] = out["clv"] = out["clv_low"] = out["clv_high"] = np.nan
        out.attrs.update(attrs)
        return out
    P, dP = jacobian(lambda lp: ex.discounted_purchases(model.name, np.exp(lp), rows.x, rows.tx, rows.T, unit,
                                                        horizon_months, discount_rate), model.log_params,
                     free_params(model))
    S, dS = jacobian(lambda lp: ex.gg_expected_spend(np.exp(lp), x, mv), gamma_gamma.log_params,
                     free_params(gamma_gamma))
    out["expected_spend"] = S
    attrs.update(_clv_with_interval(out, P, dP, S, dS, inv, model, gamma_gamma, margin, norm.ppf(0.5 + level / 2)))
    out.attrs.update(attrs)
    return out


def _clv_with_interval(out: pd.DataFrame, P, dP, S, dS, inv, model: FittedModel, gamma_gamma: FittedModel,
                       margin: float, z: float) -> dict:
    """Fill ``clv``, ``clv_low``, ``clv_high`` in ``out``; return the store's total and its interval."""
    clv = margin * S * P[inv]
    with np.errstate(all="ignore"):
        gP = dP / P[:, None]
        gS = dS / S[:, None]
        v = (np.einsum("rp,pq,rq->r", gP, model.cov_log, gP)[inv]
             + np.einsum("ip,pq,iq->i", gS, gamma_gamma.cov_log, gS))
    sd = np.sqrt(np.maximum(v, 0))
    out["clv"] = clv
    out["clv_low"] = clv * np.exp(-z * sd)
    out["clv_high"] = clv * np.exp(z * sd)
    total = float(clv.sum())
    gm = margin * (np.bincount(inv, weights=S, minlength=len(P)) @ dP)
    gg = margin * (P[inv] @ dS)
    sd_t = np.sqrt(max(gm @ model.cov_log @ gm + gg @ gamma_gamma.cov_log @ gg, 0.0)) / total if total > 0 else 0.0
    return dict(total=total, total_low=total * float(np.exp(-z * sd_t)), total_high=total * float(np.exp(z * sd_t)),
                total_sd_log=sd_t)


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
    p = ex.p_alive(model.name, model.params_.to_numpy(float), F.ravel(), R.ravel(), np.full(F.size, T))
    p = np.asarray(p, float).reshape(F.shape)
    p[(F == 0) & (R > 0)] = np.nan  # impossible: no repeat purchase but a recency
    return pd.DataFrame(p, index=pd.Index(f, name="frequency"), columns=pd.Index(np.round(r, 1), name="recency"))


def wakeup_candidates(values: pd.DataFrame, stages: pd.DataFrame, p_alive_cutoff: float = 0.5,
                      scores: pd.DataFrame | None = None, dropout_evidence: bool = True) -> pd.DataFrame:
    """The wake-up list with the CLV evidence: :func:`crmlab.analyses.wakeup.wakeup_list` given ``values``.

    Dormant customers (lifecycle stage) in the top 40% of buyers by spend (RFM ``M >= 4``;
    from ``scores`` or else from ``stages["sales"]``), the same customers notebook 02 lists,
    with their P(alive) and CLV, ranked by CLV, and a ``reason`` per row ("likely still a
    customer" when P(alive) > ``p_alive_cutoff``). Real ids: for the operations CSV.

    Formerly its own rule (dormant and P(alive) > ``p_alive_cutoff``); those customers are
    the rows whose ``p_alive`` is above the cutoff. P(alive) is ``values["p_alive"]``, from the
    same model as the CLV. ``dropout_evidence=False`` (the model finds no dropout): nobody is
    "likely still a customer" and the order is by silence against the customer's own rhythm."""
    return wakeup_list(stages, scores, values, p_alive_cutoff=p_alive_cutoff, dropout_evidence=dropout_evidence)
