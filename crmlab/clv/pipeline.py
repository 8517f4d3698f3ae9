"""The CLV pipeline that ``crmlab clv`` and notebook 04 both run, with its intervals and checks.

* :func:`holdout_comparison`: each model fitted up to the calibration end predicts the
  holdout's repeat purchases: totals with a prediction interval, MAE/RMSE per customer, the
  model chosen by :func:`crmlab.clv.models.choose_model`, weekly cumulative tracking.
* :func:`customer_value`: P(alive), expected purchases, CLV per customer with an interval,
  and the store's CLV total with its interval.
* :func:`period_transactions`: observed vs expected customers by repeat count, chi-square.
* :func:`clv_pipeline` -> :class:`ClvResult` (frozen; ``to_dict()`` is the CLI's JSON).

Intervals. Parameter uncertainty is the asymptotic normal of the log-parameters (covariance
from the Hessian), pushed through the vectorised expectations by the delta method on the
log of the quantity (so intervals stay positive); parameters held at a boundary are held
fixed. Prediction intervals for the holdout add purchase noise: its variance per distinct
row is simulated from the fitted model given each history (alive with P(alive), then the
model's own purchase and dropout process), summed over customers, and combined with the
parameter part by Monte Carlo. The CLV total's interval is for the expected value
(parameter uncertainty of the purchase model and of Gamma-Gamma), not for one realisation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from crmlab.clv import likelihoods as lk
from crmlab.clv.models import (LABELS, MODELS, _UNITS, ClvFitError, FittedModel, _check_summary, choose_model,
                        fit_clv_models, fit_gamma_gamma, frequency_monetary_correlation, rfm_summary)
from crmlab.ingest.readers import CrmlabInputError

__all__ = ["holdout_comparison", "customer_value", "period_transactions", "clv_pipeline", "ClvResult"]

PI_METHOD = ("delta method on the log of the expected total with the log-parameters' asymptotic normal "
             "covariance, plus purchase noise simulated from the fitted model given each history; combined by "
             "Monte Carlo")
CLV_METHOD = ("delta method on the log of the expected CLV with the log-parameters' asymptotic normal covariance "
              "(purchase model and Gamma-Gamma): parameter uncertainty of the expected value")


def _rows(summary: pd.DataFrame, suffix: str = ""):
    cols = [summary[f"{c}{suffix}"].to_numpy(float) for c in ("frequency", "recency", "T")]
    return lk.Rows.from_customers(*cols)


def _free(m: FittedModel) -> np.ndarray:
    return np.diag(m.cov_log) > 0


def _jacobian(fn, logp: np.ndarray, free: np.ndarray, h: float = 1e-6):
    """fn(logp) and its forward-difference derivatives in the free log-parameters (last axis)."""
    base = np.asarray(fn(logp), float)
    J = np.zeros(base.shape + (len(logp),))
    for i in np.flatnonzero(free):
        e = np.zeros_like(logp)
        e[i] = h
        J[..., i] = (np.asarray(fn(logp + e), float) - base) / h
    return base, J


def _expected_grid(name: str, th, rows: lk.Rows, grid) -> np.ndarray:
    alive = lk.p_alive(name, th, rows.x, rows.tx, rows.T) if name == "pareto_nbd" else None
    return np.column_stack([lk.expected_purchases(name, th, t, rows.x, rows.tx, rows.T, alive) for t in grid])


def _noise_variance(name: str, th, rows: lk.Rows, grid, rng, budget: float = 1e7) -> np.ndarray:
    """Σ over customers of Var(cumulative purchases at each grid time | history, θ̂), by simulation."""
    W = len(grid)
    reps = int(np.clip(budget / max(len(rows) * W, 1), 8, 100))  # only the sum over rows is needed
    alive = lk.p_alive(name, th, rows.x, rows.tx, rows.T)
    out = np.zeros(W)
    step = max(1, int(2e6 // (reps * W)))
    for i in range(0, len(rows), step):
        sl = slice(i, i + step)
        sims = lk.simulate_paths(name, th, rows.x[sl], rows.tx[sl], rows.T[sl], grid, reps, rng, alive[sl])
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
    E, J = _jacobian(lambda lp: _expected_grid(model.name, np.exp(lp), rows, grid), z, _free(model))
    tot = rows.w @ E
    g = np.einsum("r,rwp->wp", rows.w, J)
    sd_log = np.sqrt(np.maximum(np.einsum("wp,pq,wq->w", g, model.cov_log, g), 0)) / np.maximum(tot, 1e-300)
    nv = _noise_variance(model.name, model.params_.to_numpy(float), rows, grid, rng)
    lo, hi = _mix_quantiles(tot, sd_log, nv, level, rng)
    return pd.DataFrame({"t": grid, "predicted": tot, "low": lo, "high": hi, "param_sd_log": sd_log,
                         "noise_sd": np.sqrt(nv)})


# ----------------------------------------------------------------------------- holdout

def _ranking(metrics: pd.DataFrame, band: float) -> list[str]:
    m = metrics.dropna(subset=["total_error", "mae"])
    inside = m["total_error"].abs() <= band
    key = pd.DataFrame({"out": ~inside, "score": np.where(inside, m["mae"], m["total_error"].abs())}, index=m.index)
    return list(key.sort_values(["out", "score"]).index)


def holdout_comparison(summary_cal: pd.DataFrame, models: Mapping[str, FittedModel], choose: str | None = None,
                       max_frequency: int = 7, level: float = 0.9, band: float = 0.10, seed: int = 0,
                       daily_actual: pd.Series | None = None) -> dict:
    """Predicted vs actual repeat purchases in the holdout period, per model.

    Returns
    -------
    dict with ``metrics`` (per model: ``predicted_total``, ``predicted_low``/``_high`` (a
    ``level`` prediction interval), ``actual_total``, ``total_error``, ``mae``, ``rmse``),
    ``failed`` ({model: reason}), ``by_frequency`` (mean actual and predicted holdout
    purchases by calibration frequency 0..7+), ``predictions`` (per customer), ``chosen``
    (``choose`` if given, else :func:`crmlab.clv.models.choose_model`), ``reason``,
    ``tracks_total``, ``ranking`` and ``tracking`` (weekly cumulative actual vs the chosen
    model's prediction with its band, when ``daily_actual`` — holdout purchase days per day
    offset from the calibration end — is given).
    """
    s = summary_cal
    rows, inv = _rows(s, "_cal")
    actual = s["frequency_holdout"].to_numpy(float)
    duration = float(s["duration_holdout"].iloc[0]) if len(s) else 0.0
    unit = s.attrs.get("time_unit", "W")
    preds, out, failed = {}, [], {}
    ok = {k: m for k, m in models.items() if m.ok}
    for k, m in models.items():
        if not m.ok:
            failed[k] = m.error
    for name, m in ok.items():
        p = _expected_grid(name, m.params_.to_numpy(float), rows, [duration])[:, 0][inv]
        preds[name] = p
        pt = predictive_totals(m, rows, [duration], level, seed).iloc[0]
        out.append({"model": name, "status": m.status, "predicted_total": float(p.sum()),
                    "predicted_low": float(pt["low"]), "predicted_high": float(pt["high"]),
                    "actual_total": float(actual.sum()), "mae": float(np.mean(np.abs(p - actual))),
                    "rmse": float(np.sqrt(np.mean((p - actual) ** 2)))})
    cols = ["status", "predicted_total", "predicted_low", "predicted_high", "actual_total", "total_error", "mae",
            "rmse"]
    metrics = pd.DataFrame(out).set_index("model") if out else pd.DataFrame(columns=cols)
    if out:
        metrics["total_error"] = metrics["predicted_total"] / metrics["actual_total"] - 1
        metrics = metrics[cols]
    if not len(metrics):
        raise ClvFitError("no purchase model could be fitted on the calibration period: "
                          + "; ".join(f"{LABELS[k]}: {v}" for k, v in failed.items()))
    best, reason, tracks = choose_model(metrics, band)
    if choose is not None:
        if choose not in metrics.index:
            raise ClvFitError(f"model {choose!r} was not fitted on the calibration period"
                              + (f": {failed[choose]}" if choose in failed else ""))
        best, reason = choose, f"asked for (--model {choose})"
    bucket = np.minimum(s["frequency_cal"].to_numpy(), max_frequency).astype(int)
    byf = pd.DataFrame({"frequency_cal": bucket, "actual": actual, **preds}).groupby("frequency_cal").mean()
    byf["customers"] = pd.Series(bucket).value_counts().sort_index().to_numpy()
    byf.index = [f"{i}+" if i == max_frequency else str(i) for i in byf.index]
    tracking = None
    if daily_actual is not None and duration > 0:
        step = 7.0 / _UNITS[unit]
        grid = np.unique(np.append(np.arange(step, duration, step), duration))
        band_df = predictive_totals(ok[best], rows, grid, level, seed)
        offs = np.asarray(daily_actual.index, float)
        cum = np.array([daily_actual.to_numpy()[offs <= t * _UNITS[unit] + 1e-9].sum() for t in grid])
        tracking = pd.DataFrame({"week": np.arange(1, len(grid) + 1), "t": grid, "actual": cum,
                                 "predicted": band_df["predicted"], "low": band_df["low"], "high": band_df["high"]})
        for name in ok:
            if name != best:
                tracking[name] = rows.w @ _expected_grid(name, ok[name].params_.to_numpy(float), rows, grid)
    return {"metrics": metrics, "failed": failed, "by_frequency": byf,
            "predictions": pd.DataFrame({"actual": actual, **preds}, index=s.index), "chosen": best,
            "reason": reason, "tracks_total": tracks, "ranking": _ranking(metrics, band), "tracking": tracking,
            "duration": duration, "level": level, "band": band}


def _daily_holdout(o, cal_end) -> pd.Series:
    """Holdout purchase days of calibration customers, counted per day offset after the calibration end."""
    from crmlab.engine.aggregates import day_number, purchase_days

    d = purchase_days(o)
    cal = day_number(cal_end)
    before = d.filter(d.day <= cal).select("customer_id").distinct()
    after = d.filter(d.day > cal)
    after = after.filter(after.customer_id.isin(before.customer_id))
    g = after.group_by("day").aggregate(n=after.customer_id.count())
    df = o.engine.to_pandas(g)
    off = (pd.to_datetime(df["day"]) - pd.Timestamp(cal_end).normalize()).dt.days
    return pd.Series(df["n"].to_numpy(float), index=off.to_numpy()).sort_index()


# ----------------------------------------------------------------------------- value

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
    rows, inv = _rows(summary)
    x, r, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    mv = summary["monetary_value"].to_numpy(float)
    th = model.params_.to_numpy(float)
    pa_m = p_alive_model or model
    pa = lk.p_alive(pa_m.name, pa_m.params_.to_numpy(float), rows.x, rows.tx, rows.T)[inv]
    exp_n = _expected_grid(model.name, th, rows, [purchases_days / _UNITS[unit]])[:, 0][inv]
    out = pd.DataFrame({"frequency": x, "recency": r, "T": T, "monetary_value": mv, "p_alive": pa,
                        f"expected_purchases_{purchases_days}d": exp_n}, index=summary.index)
    z = norm.ppf(0.5 + level / 2)
    attrs = {"total": None, "total_low": None, "total_high": None, "interval_level": level,
             "interval_method": CLV_METHOD, "p_alive_model": pa_m.name}
    if gamma_gamma is None or not gamma_gamma.ok:
        out["expected_spend"] = out["clv"] = out["clv_low"] = out["clv_high"] = np.nan
        out.attrs.update(attrs)
        return out
    P, dP = _jacobian(lambda lp: lk.discounted_purchases(model.name, np.exp(lp), rows.x, rows.tx, rows.T, unit,
                                                         horizon_months, discount_rate), model.log_params,
                      _free(model))
    S, dS = _jacobian(lambda lp: lk.gg_expected_spend(np.exp(lp), x, mv), gamma_gamma.log_params, _free(gamma_gamma))
    clv = margin * S * P[inv]
    with np.errstate(all="ignore"):
        gP = dP / P[:, None]
        gS = dS / S[:, None]
        v = (np.einsum("rp,pq,rq->r", gP, model.cov_log, gP)[inv]
             + np.einsum("ip,pq,iq->i", gS, gamma_gamma.cov_log, gS))
    sd = np.sqrt(np.maximum(v, 0))
    out["expected_spend"] = S
    out["clv"] = clv
    out["clv_low"] = clv * np.exp(-z * sd)
    out["clv_high"] = clv * np.exp(z * sd)
    total = float(clv.sum())
    gm = margin * (np.bincount(inv, weights=S, minlength=len(rows)) @ dP)
    gg = margin * (P[inv] @ dS)
    sd_t = np.sqrt(max(gm @ model.cov_log @ gm + gg @ gamma_gamma.cov_log @ gg, 0.0)) / total if total > 0 else 0.0
    attrs.update(total=total, total_low=total * float(np.exp(-z * sd_t)), total_high=total * float(np.exp(z * sd_t)),
                 total_sd_log=sd_t)
    out.attrs.update(attrs)
    return out


# ----------------------------------------------------------------------------- checks

def period_transactions(summary: pd.DataFrame, model: FittedModel, n_max: int = 7, suffix: str = "") -> dict:
    """Customers by repeat count 0..n_max−1 and n_max+: observed vs expected under the model
    (Σ over customers of P(X(T_i) = n)), with a chi-square goodness-of-fit test (bins with an
    expected count below 5 merged from the top; df = bins − 1 − parameters)."""
    x = summary[f"frequency{suffix}"].to_numpy(float)
    Tu, cnt = np.unique(summary[f"T{suffix}"].to_numpy(float), return_counts=True)
    exp = cnt @ lk.pmf_repeat(model.name, model.params_.to_numpy(float), Tu, n_max)
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


# ----------------------------------------------------------------------------- the pipeline

@dataclass(frozen=True, repr=False)
class ClvResult:
    """Everything ``crmlab clv`` prints and notebook 04 shows (``to_dict()`` is the JSON).

    In a notebook it shows itself: the headline (CLV total with its interval), the models
    side by side on the holdout, the warnings. ``model`` is the chosen purchase model
    (a :class:`~crmlab.clv.models.FittedModel`: ``.summary``, ``.print_summary()``), ``values``
    the per-customer table, :meth:`plot` the value by decile."""

    observation_end: pd.Timestamp
    time_unit: str
    customers: int
    repeat_customers: int
    models: dict
    gamma_gamma: FittedModel
    frequency_monetary_corr: float
    chosen_model: str
    choice_reason: str
    tracks_total: bool | None
    holdout: dict | None
    values: pd.DataFrame
    clv: dict
    checks: dict
    summary: pd.DataFrame
    warnings: tuple = ()
    parameters: dict = field(default_factory=dict)
    engine: str | None = field(default=None, compare=False)
    timezone: str | None = field(default=None, compare=False)

    @property
    def model(self) -> FittedModel:
        """The chosen purchase model, fitted on all the data."""
        return self.models[self.chosen_model]

    def _card(self):
        from crmlab.present.cards import clv_card

        return clv_card(self)

    def __repr__(self) -> str:
        return self._card().text()

    def _repr_html_(self) -> str:
        return self._card().html()

    def plot(self, ax=None, kind: str = "deciles"):
        """``kind="deciles"``: share of expected value by CLV decile
        (:func:`crmlab.present.figures.clv_figure`); ``"holdout"``: mean holdout purchases by
        calibration frequency, actual vs each model (:func:`crmlab.present.figures.holdout_figure`).
        Returns the new Figure, or ``ax`` when given."""
        from crmlab.present import figures
        from crmlab.clv.models import value_deciles

        if kind == "deciles":
            if self.clv["total"] is None:
                raise ValueError(f"no CLV in money to draw: {self.clv.get('error')}")
            return figures.clv_figure(value_deciles(self.values), self.clv["horizon_months"], ax=ax)
        if kind == "holdout":
            if self.holdout is None:
                raise ValueError("no holdout comparison in this result (calibration_end / holdout_days)")
            return figures.holdout_figure(self.holdout["by_frequency"], list(self.holdout["metrics"].index), ax=ax)
        raise ValueError(f"kind must be 'deciles' or 'holdout', not {kind!r}")

    def headline(self) -> str:
        c = self.clv
        kind = c["value"]
        if c["total"] is None:
            return f"CLV not computed: {c.get('error')}"
        return (f"Expected {c['horizon_months']}-month {kind} of today's {self.customers:,} customers: "
                f"¥{c['total']:,.0f} (90% interval ¥{c['total_low']:,.0f}–¥{c['total_high']:,.0f})"
                + (f", margin {c['margin']:g}" if kind == "profit" else ", at margin 1") + ".")

    def to_dict(self) -> dict:
        h = None
        if self.holdout is not None:
            hd = self.holdout
            ms = {k: {kk: (vv if isinstance(vv, str) else float(vv)) for kk, vv in row.items()}
                  for k, row in hd["metrics"].iterrows()}
            ms.update({k: {"status": "failed", "error": e} for k, e in hd["failed"].items()})
            tr = hd.get("tracking")
            h = {"calibration_end": str(hd["calibration_end"]), "duration": hd["duration"], "models": ms,
                 "chosen": hd["chosen"], "rule": f"within ±{hd['band']:.0%} of the actual total: lowest MAE; "
                                                 "else smallest |total error|",
                 "reason": hd["reason"], "tracks_total": hd["tracks_total"], "interval_level": hd["level"],
                 "interval_method": PI_METHOD,
                 "tracking": None if tr is None else tr.round(4).to_dict(orient="records")}
        checks = {k: {"chi2": v["chi2"], "df": v["df"], "p_value": v["p_value"], "bins": v["bins_tested"],
                      "observed": v["table"]["observed"].tolist(), "expected": v["table"]["expected"].round(3).tolist()}
                  for k, v in self.checks.get("period_transactions", {}).items()}
        return {"observation_end": str(self.observation_end), "time_unit": self.time_unit,
                "customers": self.customers, "repeat_customers": self.repeat_customers,
                "models": {**{k: m.to_dict() for k, m in self.models.items()},
                           "gamma_gamma": self.gamma_gamma.to_dict()},
                "frequency_monetary_corr": self.frequency_monetary_corr, "chosen_model": self.chosen_model,
                "choice_reason": self.choice_reason, "tracks_total": self.tracks_total, "holdout": h,
                "clv": self.clv, "checks": {"period_transactions": checks}, "warnings": list(self.warnings),
                "headline": self.headline(), "parameters": self.parameters}


def clv_pipeline(orders, *, time_unit: str = "W", observation_end=None, calibration_end=None, holdout_days: int = 182,
                 model: str | None = None, horizon_months: int = 12, discount_rate: float = 0.01, margin: float = 1.0,
                 engine=None, interval_level: float = 0.9, purchases_days: int = 90, seed: int = 0,
                 band: float = 0.10) -> ClvResult:
    """Fit, compare on a holdout, choose, value: the one CLV pipeline.

    Parameters
    ----------
    orders : OrderTable, DataFrame or path the engine reads
    calibration_end : optional
        Fit up to this day and compare predictions after it; default: ``holdout_days``
        before the observation end (0 or None: no holdout; the model with the highest
        likelihood is used).
    model : optional
        Fit and use only this purchase model.
    margin : float
        Share of revenue that is profit: CLV is revenue at 1, profit otherwise.

    Raises
    ------
    ClvFitError
        The data cannot support any purchase model (every model failed, or no repeat customers).
    """
    from crmlab.engine import order_table

    if model is not None and model not in MODELS:
        raise CrmlabInputError(f"model {model!r}: choose from {', '.join(MODELS)}")
    names = (model,) if model else MODELS
    o = order_table(orders, engine, observation_end)
    summary = rfm_summary(o, time_unit=time_unit)
    _check_summary(summary)
    warnings: list[str] = []
    hold = None
    cal_end = calibration_end
    if cal_end is None and holdout_days:
        cal_end = str((pd.Timestamp(o.observation_end).normalize() - pd.Timedelta(days=int(holdout_days))).date())
    if cal_end is not None:
        try:
            cal = rfm_summary(o, time_unit=time_unit, calibration_end=cal_end)
            _check_summary(cal, "frequency_cal", "recency_cal", "T_cal")
        except (ValueError, ClvFitError) as e:
            if calibration_end is not None:
                raise CrmlabInputError(f"calibration end {calibration_end}: {e}") from None
            warnings.append(f"no holdout comparison (calibration end {cal_end}: {e})")
        else:
            cal_models = fit_clv_models(cal, names, suffix="_cal")
            try:
                hold = holdout_comparison(cal, cal_models, model, level=interval_level, band=band, seed=seed,
                                          daily_actual=_daily_holdout(o, cal.attrs["calibration_end"]))
            except ClvFitError as e:  # every model failed on the calibration period: value without a holdout
                warnings.append(f"no holdout comparison: {e}")
            else:
                hold["calibration_end"] = cal.attrs["calibration_end"]
                hold["calibration_models"] = cal_models
    models = fit_clv_models(summary, names)
    gg = fit_gamma_gamma(summary)
    usable = [k for k in names if models[k].ok]
    if not usable:
        raise ClvFitError("no purchase model could be fitted: "
                          + "; ".join(f"{LABELS[k]}: {models[k].error}" for k in names))
    if hold is not None:
        ranking = [k for k in ([hold["chosen"]] + hold["ranking"]) if k in usable]
        chosen, reason, tracks = (ranking[0], hold["reason"], hold["tracks_total"]) if ranking else (None, "", None)
        if chosen != hold["chosen"] and chosen is not None:
            warnings.append(f"{LABELS[hold['chosen']]} was chosen on the holdout but failed on all data "
                            f"({models[hold['chosen']].error}); using {LABELS[chosen]}")
        if not hold["tracks_total"] and model is None:
            warnings.append(hold["reason"])
    if hold is None or chosen is None:
        ranking = sorted(usable, key=lambda k: -models[k].log_likelihood)
        chosen, tracks = ranking[0], None
        reason = (f"asked for (--model {model})" if model else
                  "no holdout: the highest log-likelihood (every purchase model has 4 parameters)")
    for k in names:
        if models[k].status == "boundary":
            warnings.append(f"{LABELS[k]} at the boundary: {models[k].error}")
        elif models[k].status == "failed":
            warnings.append(f"{LABELS[k]} failed: {models[k].error}")
    pa_model = models[chosen]
    if chosen == "bgnbd":
        others = [k for k in ranking if k != "bgnbd" and models[k].ok]
        if others:
            pa_model = models[others[0]]
            warnings.append(f"BG/NBD keeps every one-time buyer alive (P(alive) = 1 by construction): P(alive) and "
                            f"the wake-up list use {LABELS[others[0]]}, which lets one-time buyers drop out")
        else:
            warnings.append("BG/NBD keeps every one-time buyer alive (P(alive) = 1 by construction) and no other "
                            "model was fitted: one-time buyers' P(alive) is not informative")
    if not gg.ok:
        warnings.append(f"Gamma-Gamma failed ({gg.error}): no CLV in money")
    corr = frequency_monetary_correlation(summary)
    if abs(corr) > 0.3:
        warnings.append(f"frequency and spend are correlated (r = {corr:.2f}): Gamma-Gamma assumes independence")
    values = customer_value(summary, models[chosen], gg, horizon_months, discount_rate, margin, purchases_days,
                            pa_model, interval_level)
    a = values.attrs
    clv = {"total": a["total"], "total_low": a["total_low"], "total_high": a["total_high"],
           "interval_level": interval_level, "interval_method": CLV_METHOD,
           "mean": float(values["clv"].mean()) if a["total"] is not None else None,
           "median": float(values["clv"].median()) if a["total"] is not None else None,
           "value": "revenue" if margin == 1 else "profit", "margin": margin, "horizon_months": horizon_months,
           "discount_rate": discount_rate, "model": chosen, "p_alive_model": pa_model.name,
           "error": None if gg.ok else f"Gamma-Gamma failed: {gg.error}"}
    checks = {"period_transactions": {k: period_transactions(summary, models[k]) for k in usable}}
    params = {"time_unit": time_unit, "calibration_end": None if hold is None else str(hold["calibration_end"]),
              "holdout_days": holdout_days, "model": model, "horizon_months": horizon_months,
              "discount_rate": discount_rate, "margin": margin, "interval_level": interval_level}
    from crmlab.present.cards import run_settings

    return ClvResult(o.observation_end, time_unit, int(len(summary)), int((summary["frequency"] > 0).sum()), models, gg,
                     corr, chosen, reason, tracks, hold, values, clv, checks, summary, tuple(warnings), params,
                     **run_settings(o))
