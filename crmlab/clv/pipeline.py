"""The CLV pipeline that ``crmlab clv`` and notebook 04 both run, and its :class:`ClvResult`.

:func:`clv_pipeline` is a few named steps: the RFM summary of the orders; the holdout
comparison on a calibration period (:mod:`crmlab.clv.holdout`); the models fitted on all
the data (:mod:`crmlab.clv.fitting`); the choice of model; the value of each customer with
its interval (:mod:`crmlab.clv.values`); the period-transactions check. It returns a
:class:`ClvResult` (frozen; ``to_dict()`` is the CLI's JSON) that carries its context: the
orders' settings (engine, time zone, currency) with the run's interval level.
"""
from __future__ import annotations

from dataclasses import field

import pandas as pd

from crmlab.clv.backtest import (MODEL_ERROR_METHOD, backtest_errors, backtest_origins, clv_errors,
                                 holdout_with_model_error, model_error_interval, model_error_scale)
from crmlab.clv.checks import (NO_DROPOUT, PT_ALPHA, misfit, no_dropout_evidence, rhythm_ratio,
                               spend_frequency_check)
from crmlab.clv.base import LABELS, MODELS, ClvFitError, FittedModel, check_summary
from crmlab.clv.fitting import fit_clv_models, frequency_monetary_correlation, rfm_summary
from crmlab.clv.gamma_gamma import fit_gamma_gamma
from crmlab.clv.predictive import PREDICTIVE_METHOD, value_distribution
from crmlab.clv.summary import TIME_UNITS
from crmlab.clv.holdout import PI_METHOD, daily_holdout, holdout_comparison, period_transactions
from crmlab.clv.values import CLV_METHOD, customer_value, value_deciles
from crmlab.engine.sources import OrderTable, order_table
from crmlab.present import figures, formatting
from crmlab.present.result import Card, Result, json_safe, result
from crmlab.schema import CrmlabInputError
from crmlab.settings import Settings

__all__ = ["clv_pipeline", "ClvResult", "BACKTESTS"]

#: each customer's predictive distribution of value over the horizon (:mod:`crmlab.clv.predictive`)
PREDICTIVE_COLUMNS = ("p_no_purchase", "value_median", "value_p90")
#: rolling-origin backtests (past calibration ends) behind the intervals' model error
BACKTESTS = 3


@result
class ClvResult(Result):
    """Everything ``crmlab clv`` prints and notebook 04 shows (``to_dict()`` is the JSON).

    In a notebook it shows itself: the headline (CLV total with its interval), the models
    side by side on the holdout, the warnings. ``model`` is the chosen purchase model
    (a :class:`~crmlab.clv.base.FittedModel`: ``.summary``, ``.print_summary()``), ``values``
    the per-customer table, :meth:`plot` the value by decile. ``settings`` is its context:
    the orders' engine, time zone and currency, and the run's interval level."""

    about = "customer lifetime value"

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
    settings: Settings | None = field(default=None, compare=False)

    @property
    def model(self) -> FittedModel:
        """The chosen purchase model, fitted on all the data."""
        return self.models[self.chosen_model]

    def to_frame(self) -> pd.DataFrame:
        """The per-customer values (P(alive), expected purchases, CLV with its interval)."""
        return self.values

    def plot(self, ax=None, kind: str = "deciles"):
        """``kind="deciles"``: share of expected value by CLV decile
        (:func:`crmlab.present.figures.clv_figure`); ``"holdout"``: mean holdout purchases by
        calibration frequency, actual vs each model (:func:`crmlab.present.figures.holdout_figure`).
        Returns the new Figure, or ``ax`` when given."""
        if kind == "deciles":
            if self.clv["total"] is None:
                raise ValueError(f"no CLV in money to draw: {self.clv.get('error')}")
            return figures.clv_figure(value_deciles(self.values), self.clv["horizon_months"], ax=ax)
        if kind == "holdout":
            if self.holdout is None:
                raise ValueError("no holdout comparison in this result (calibration_end / holdout_days)")
            return figures.holdout_figure(self.holdout["by_frequency"], list(self.holdout["metrics"].index), ax=ax)
        raise ValueError(f"kind must be 'deciles' or 'holdout', not {kind!r}")

    def _headline(self) -> str:
        c, f = self.clv, self.fmt
        if c["total"] is None:
            return f"CLV not computed: {c.get('error')}"
        kind, k = c["value"], c.get("backtests") or 0
        what = (f"{f.level(c.get('interval_level'))} prediction interval incl. model error from {k} backtest"
                + ("s" if k != 1 else "") if k else
                f"{f.interval_name(c.get('interval_level'))} of the expected value, parameter uncertainty only")
        first = f"{c['misfit']}. " if c.get("misfit") else ""
        return (first + f"Expected {c['horizon_months']}-month {kind} of today's {self.customers:,} customers: "
                f"{f.money(c['total'])} ({what}: {f.money(c['total_low'])}–{f.money(c['total_high'])})"
                + (f", margin {c['margin']:g}" if kind == "profit" else ", at margin 1") + ".")

    def _card(self) -> Card:
        f, met = self.fmt, self.holdout["metrics"] if self.holdout is not None else None
        rows = {LABELS.get(k, k): _model_row(m, met, k, k == self.chosen_model) for k, m in self.models.items()}
        for k, pt in self.checks.get("period_transactions", {}).items():  # a failed fit check is never "ok"
            if pt["p_value"] is not None and pt["p_value"] < PT_ALPHA:
                rows[LABELS[k]]["status"] = f"{self.models[k].status} fit; fails the period-transactions test"
        gg = self.gamma_gamma
        rows["Gamma-Gamma (spend)"] = {"status": gg.status, "log-likelihood": _num(gg.log_likelihood, 1) if gg.ok else "—"}
        tab = pd.DataFrame(rows).T.fillna("")
        cap = f"chosen: {self.choice_reason}"
        if self.holdout is not None:
            cap = (f"holdout repeat purchases after {f.when(self.holdout['calibration_end'])} with the "
                   f"{f.level(self.holdout['level'])} prediction interval; " + cap)
        foot = self.footer(self.observation_end,
                           time_unit={"W": "weeks", "D": "days"}.get(self.time_unit, self.time_unit))
        return Card("ClvResult", self.about, self._headline(), tab, cap, tuple(self.warnings), foot,
                    hint=".model.print_summary(); .values per customer; .plot()")

    def _holdout_dict(self) -> dict | None:
        hd = self.holdout
        if hd is None:
            return None
        ms = {k: {kk: (vv if isinstance(vv, str) else float(vv)) for kk, vv in row.items()}
              for k, row in hd["metrics"].iterrows()}
        ms.update({k: {"status": "failed", "error": e} for k, e in hd["failed"].items()})
        tr = hd.get("tracking")
        return {"calibration_end": hd["calibration_end"], "duration": hd["duration"], "models": ms,
                "chosen": hd["chosen"], "rule": f"within ±{hd['band']:.0%} of the actual total: lowest Poisson deviance; "
                                                "else smallest |total error|",
                "reason": hd["reason"], "tracks_total": hd["tracks_total"], "interval_level": hd["level"],
                "interval_method": (MODEL_ERROR_METHOD if "backtests" in hd["metrics"] and (hd["metrics"]["backtests"] > 0).any()
                                    else PI_METHOD),
                "backtests": None if hd.get("backtests") is None else hd["backtests"].to_dict(orient="records"),
                "tracking": None if tr is None else tr.round(4).to_dict(orient="records")}

    def _as_dict(self) -> dict:
        checks = {k: {"chi2": v["chi2"], "df": v["df"], "p_value": v["p_value"], "bins": v["bins_tested"],
                      "observed": v["table"]["observed"].tolist(), "expected": v["table"]["expected"].round(3).tolist()}
                  for k, v in self.checks.get("period_transactions", {}).items()}
        spend = self.checks.get("spend_frequency")
        return {"observation_end": self.observation_end, "time_unit": self.time_unit,
                "customers": self.customers, "repeat_customers": self.repeat_customers,
                "models": {**{k: m.to_dict() for k, m in self.models.items()}, "gamma_gamma": self.gamma_gamma.to_dict()},
                "frequency_monetary_corr": self.frequency_monetary_corr, "chosen_model": self.chosen_model,
                "choice_reason": self.choice_reason, "tracks_total": self.tracks_total, "holdout": self._holdout_dict(),
                "clv": self.clv, "checks": {"period_transactions": checks, "spend_frequency": spend}, "warnings": list(self.warnings),
                "headline": self.headline(), "parameters": self.parameters}

    def to_dict(self) -> dict:
        """JSON-safe: the CLI's ``--json`` (times as text, NaN as null)."""
        return json_safe(self._as_dict())


def _num(x, digits: int) -> str:
    return "—" if x is None or x != x else f"{float(x):,.{digits}f}"


def _model_row(m: FittedModel, met: pd.DataFrame | None, k: str, chosen: bool) -> dict:
    """One model's row of the card: status, log-likelihood, its holdout prediction."""
    row = {"status": m.status, "log-likelihood": _num(m.log_likelihood, 1) if m.ok else "—"}
    if met is not None:
        if k in met.index:
            lo, hi = met.at[k, "predicted_low"], met.at[k, "predicted_high"]
            row["holdout predicted"] = (f"{_num(met.at[k, 'predicted_total'], 0)} "
                                        + ("—" if lo != lo or hi != hi else f"[{_num(lo, 0)}, {_num(hi, 0)}]"))
            row["actual"] = _num(met.at[k, "actual_total"], 0)
            row["error"] = f"{100 * met.at[k, 'total_error']:+.1f}%"
            row["Poisson deviance"] = _num(met.at[k, "deviance"], 3)
        else:
            row.update({"holdout predicted": "—", "actual": "—", "error": "—", "Poisson deviance": "—"})
    row["chosen"] = "✓" if chosen else ""
    return row


# ----------------------------------------------------------------------------- the pipeline's steps

def default_calibration_end(o: OrderTable, holdout_days: int) -> pd.Timestamp | None:
    """The end (store-local, the last microsecond) of the day ``holdout_days`` before the
    observation end's day; ``None`` for no holdout."""
    if not holdout_days:
        return None
    day = pd.Timestamp(o.observation_end).normalize() - pd.Timedelta(days=int(holdout_days))
    return (day + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)).as_unit("ns")


def _holdout(o: OrderTable, time_unit: str, calibration_end, asked, names, model: str | None, level: float,
             band: float, seed: int, warnings: list) -> dict | None:
    """Fit on the calibration period and compare predictions with the holdout; None (and a
    warning) when the default calibration period cannot support a model. ``asked``: the
    calibration end the caller gave (an error, not a warning, when it fails)."""
    try:
        cal = rfm_summary(o, time_unit=time_unit, calibration_end=calibration_end)
        check_summary(cal, "frequency_cal", "recency_cal", "T_cal")
    except (ValueError, ClvFitError) as e:
        if asked is not None:
            raise CrmlabInputError(f"calibration end {asked}: {e}") from None
        warnings.append(f"no holdout comparison (calibration end {calibration_end:%Y-%m-%d}: {e})")
        return None
    cal_end = cal.attrs["calibration_end"]  # a store-local Timestamp, parsed once with the orders' time zone
    cal_models = fit_clv_models(cal, names, suffix="_cal")
    try:
        hold = holdout_comparison(cal, cal_models, model, level=level, band=band, seed=seed,
                                  daily_actual=daily_holdout(o, cal_end))
    except ClvFitError as e:  # every model failed on the calibration period: value without a holdout
        warnings.append(f"no holdout comparison: {e}")
        return None
    hold["calibration_end"] = cal_end
    hold["calibration_models"] = cal_models
    days = int(round(hold["duration"] * TIME_UNITS[time_unit]))
    first = pd.Timestamp(cal_end).normalize() - pd.Timedelta(days=float(cal["T_cal"].max() * TIME_UNITS[time_unit]))
    origins = backtest_origins(first, cal_end, days, k=BACKTESTS)
    return holdout_with_model_error(hold, backtest_errors(o, time_unit, origins, days, names), level)


def _choose(models: dict, names, hold: dict | None, model: str | None, warnings: list):
    """The model to value with: the holdout's choice if it fitted on all the data, else the next
    in the holdout ranking, else (no holdout) the highest log-likelihood. Returns
    ``(chosen, reason, tracks_total, ranking)``."""
    usable = [k for k in names if models[k].ok]
    if not usable:
        raise ClvFitError("no purchase model could be fitted: "
                          + "; ".join(f"{LABELS[k]}: {models[k].error}" for k in names))
    chosen = None
    if hold is not None:
        ranking = [k for k in ([hold["chosen"]] + hold["ranking"]) if k in usable]
        chosen, reason, tracks = (ranking[0], hold["reason"], hold["tracks_total"]) if ranking else (None, "", None)
        if chosen != hold["chosen"] and chosen is not None:
            warnings.append(f"{LABELS[hold['chosen']]} was chosen on the holdout but failed on all data "
                            f"({models[hold['chosen']].error}); using {LABELS[chosen]}")
        if not hold["tracks_total"] and model is None:
            warnings.append(hold["reason"])
    if chosen is None:
        ranking = sorted(usable, key=lambda k: -models[k].log_likelihood)
        chosen, tracks = ranking[0], None
        reason = (f"asked for (--model {model})" if model else
                  "no holdout: the highest log-likelihood (every purchase model has 4 parameters)")
    return chosen, reason, tracks, ranking


def _model_warnings(models: dict, names) -> list[str]:
    """Models at the boundary or failed."""
    out = []
    for k in names:
        if models[k].status == "boundary":
            out.append(f"{LABELS[k]} at the boundary: {models[k].error}")
        elif models[k].status == "failed":
            out.append(f"{LABELS[k]} failed: {models[k].error}")
    return out


def _one_model_note(chosen: str, warnings: list) -> None:
    """One model gives CLV, P(alive) and the wake-up ranking; BG/NBD's one-time buyers are alive by construction."""
    if chosen == "bgnbd":
        warnings.append("BG/NBD keeps every one-time buyer alive (P(alive) = 1 by construction): their P(alive) "
                        "is not informative; CLV, P(alive) and the wake-up list all use BG/NBD")


def _clv_summary(values: pd.DataFrame, gg: FittedModel, chosen: str, level: float, margin: float,
                 horizon_months: int, discount_rate: float, hold: dict | None) -> dict:
    """The store's CLV: total with its interval (incl. model error from the backtests and the
    holdout), mean, median and what it is."""
    a = values.attrs
    have = a["total"] is not None
    lo, hi, k, s = a["total_low"], a["total_high"], 0, 0.0
    if have:
        s, k = model_error_scale(clv_errors(hold, chosen))
        lo, hi = model_error_interval(a["total"], a["total_low"], a["total_high"], s, k, level)
    return {"total": a["total"], "total_low": lo, "total_high": hi, "interval_level": level,
            "interval_method": MODEL_ERROR_METHOD if k else CLV_METHOD,
            "interval_covers": ("the 12-month total incl. model error" if k else
                                "the expected total under the model (parameter uncertainty only)"),
            "backtests": k, "model_error_sd_log": s,
            "within_model_low": a["total_low"], "within_model_high": a["total_high"],
            "mean": float(values["clv"].mean()) if have else None,
            "median": float(values["clv"].median()) if have else None,
            "value": "revenue" if margin == 1 else "profit", "margin": margin, "horizon_months": horizon_months,
            "discount_rate": discount_rate, "model": chosen, "p_alive_model": chosen,
            "error": None if gg.ok else f"Gamma-Gamma failed: {gg.error}"}


def _spend_warning(spend: dict) -> str | None:
    """A warning when spend and frequency are related: significant (p < 0.05) and not negligible
    (|ρ| >= 0.1); a weaker significant relation is a finding of the notebook, not a warning."""
    if spend["p_value"] == spend["p_value"] and spend["p_value"] < 0.05 and abs(spend["spearman_rho"]) >= 0.1:
        return (f"frequency and spend per purchase are related (Spearman ρ = {spend['spearman_rho']:.2f}, "
                f"p = {spend['p_value']:.2g}): Gamma-Gamma assumes independence, so spend is biased for "
                "frequent or rare buyers")
    return None


def _value(summary: pd.DataFrame, models: dict, gg: FittedModel, chosen: str, hold: dict | None, names,
           warnings: list, horizon_months: int, discount_rate: float, margin: float, purchases_days: int,
           interval_level: float, seed: int) -> tuple[pd.DataFrame, dict, dict]:
    """Value today's customers with the chosen model (CLV, P(alive), predictive distribution)
    and run the fit checks; the misfit, no-dropout and spend warnings go into ``warnings``."""
    if not gg.ok:
        warnings.append(f"Gamma-Gamma failed ({gg.error}): no CLV in money")
    spend = spend_frequency_check(summary)
    if _spend_warning(spend):
        warnings.append(_spend_warning(spend))
    values = customer_value(summary, models[chosen], gg, horizon_months, discount_rate, margin, purchases_days,
                            None, interval_level)
    clv = _clv_summary(values, gg, chosen, interval_level, margin, horizon_months, discount_rate, hold)
    checks = {"period_transactions": {k: period_transactions(summary, models[k]) for k in names if models[k].ok},
              "spend_frequency": spend}
    bad = misfit(hold, chosen, checks["period_transactions"])
    clv["fits"], clv["misfit"] = bad is None, bad
    for k, pt in checks["period_transactions"].items():
        if pt["p_value"] is not None and pt["p_value"] < PT_ALPHA:
            warnings.append(f"{LABELS[k]}: the period-transactions test rejects the model (chi-square "
                            f"{pt['chi2']:.1f}, df {pt['df']}, {formatting.p_is(pt['p_value'])})")
    gone = no_dropout_evidence(models[chosen], summary)
    clv["dropout_evidence"], clv["no_dropout_reason"] = gone is None, gone
    if gone is not None:
        warnings.insert(0, f"{NO_DROPOUT[0].upper() + NO_DROPOUT[1:]}: {gone}; nobody is labelled likely still a "
                           "customer and the wake-up list is ranked by silence against each customer's own rhythm")
    values["rhythm_ratio"] = rhythm_ratio(summary)
    values[list(PREDICTIVE_COLUMNS)] = value_distribution(summary, models[chosen], gg, horizon_months, margin, seed)
    clv["per_customer_distribution"] = {"columns": list(PREDICTIVE_COLUMNS), "method": PREDICTIVE_METHOD,
                                        "horizon_months": horizon_months}
    return values, clv, checks


def clv_pipeline(orders, *, time_unit: str = "W", observation_end=None, calibration_end=None, holdout_days: int = 182,
                 model: str | None = None, horizon_months: int = 12, discount_rate: float = 0.01, margin: float = 1.0,
                 engine=None, interval_level: float = 0.9, purchases_days: int = 90, seed: int = 0,
                 band: float = 0.10) -> ClvResult:
    """Fit, compare on a holdout, choose, value: the one CLV pipeline.

    Parameters
    ----------
    orders : OrderTable, DataFrame or path the engine reads
    calibration_end : optional
        Fit up to this day and compare predictions after it (a time with an offset is read
        in the orders' time zone); default: ``holdout_days`` before the observation end (0
        or None: no holdout; the model with the highest likelihood is used).
    model : optional
        Fit and use only this purchase model.
    margin : float
        Share of revenue that is profit: CLV is revenue at 1, profit otherwise.
    interval_level : float
        The level of the holdout's prediction intervals and of the CLV intervals; the
        result's context, so its headline names it.

    Raises
    ------
    ClvFitError
        The data cannot support any purchase model (every model failed, or no repeat customers).
    """
    if model is not None and model not in MODELS:
        raise CrmlabInputError(f"model {model!r}: choose from {', '.join(MODELS)}")
    names = (model,) if model else MODELS
    o = order_table(orders, engine, observation_end)
    context = o.settings.replace(engine=o.engine.name, interval_level=interval_level)
    summary = rfm_summary(o, time_unit=time_unit)
    check_summary(summary)
    warnings: list[str] = []
    cal_end = calibration_end if calibration_end is not None else default_calibration_end(o, holdout_days)
    hold = None if cal_end is None else _holdout(o, time_unit, cal_end, calibration_end, names, model,
                                                 interval_level, band, seed, warnings)
    models = fit_clv_models(summary, names)
    gg = fit_gamma_gamma(summary)
    chosen, reason, tracks, ranking = _choose(models, names, hold, model, warnings)
    corr = frequency_monetary_correlation(summary)
    warnings += _model_warnings(models, names)
    _one_model_note(chosen, warnings)
    values, clv, checks = _value(summary, models, gg, chosen, hold, names, warnings, horizon_months, discount_rate,
                                 margin, purchases_days, interval_level, seed)
    # the arguments as text (a record for provenance); the holdout keeps the Timestamp itself
    params = {"time_unit": time_unit, "calibration_end": None if hold is None else str(hold["calibration_end"]),
              "holdout_days": holdout_days, "model": model, "horizon_months": horizon_months,
              "discount_rate": discount_rate, "margin": margin, "interval_level": interval_level}
    return ClvResult(o.observation_end, time_unit, int(len(summary)), int((summary["frequency"] > 0).sum()), models, gg,
                     corr, chosen, reason, tracks, hold, values, clv, checks, summary, tuple(warnings), params, context)
