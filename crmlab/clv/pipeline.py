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

from crmlab.clv.base import LABELS, MODELS, ClvFitError, FittedModel, check_summary
from crmlab.clv.fitting import fit_clv_models, frequency_monetary_correlation, rfm_summary
from crmlab.clv.gamma_gamma import fit_gamma_gamma
from crmlab.clv.holdout import PI_METHOD, daily_holdout, holdout_comparison, period_transactions
from crmlab.clv.values import CLV_METHOD, customer_value, value_deciles
from crmlab.engine.sources import OrderTable, order_table
from crmlab.present import figures
from crmlab.present.result import Card, Result, json_safe, result
from crmlab.schema import CrmlabInputError
from crmlab.settings import Settings

__all__ = ["clv_pipeline", "ClvResult"]


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
        kind = c["value"]
        return (f"Expected {c['horizon_months']}-month {kind} of today's {self.customers:,} customers: "
                f"{f.money(c['total'])} ({f.interval_name(c.get('interval_level'))} "
                f"{f.money(c['total_low'])}–{f.money(c['total_high'])})"
                + (f", margin {c['margin']:g}" if kind == "profit" else ", at margin 1") + ".")

    def _card(self) -> Card:
        f, met = self.fmt, self.holdout["metrics"] if self.holdout is not None else None
        rows = {LABELS.get(k, k): _model_row(m, met, k, k == self.chosen_model) for k, m in self.models.items()}
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
                "chosen": hd["chosen"], "rule": f"within ±{hd['band']:.0%} of the actual total: lowest MAE; "
                                                "else smallest |total error|",
                "reason": hd["reason"], "tracks_total": hd["tracks_total"], "interval_level": hd["level"],
                "interval_method": PI_METHOD, "tracking": None if tr is None else tr.round(4).to_dict(orient="records")}

    def _as_dict(self) -> dict:
        checks = {k: {"chi2": v["chi2"], "df": v["df"], "p_value": v["p_value"], "bins": v["bins_tested"],
                      "observed": v["table"]["observed"].tolist(), "expected": v["table"]["expected"].round(3).tolist()}
                  for k, v in self.checks.get("period_transactions", {}).items()}
        return {"observation_end": self.observation_end, "time_unit": self.time_unit,
                "customers": self.customers, "repeat_customers": self.repeat_customers,
                "models": {**{k: m.to_dict() for k, m in self.models.items()}, "gamma_gamma": self.gamma_gamma.to_dict()},
                "frequency_monetary_corr": self.frequency_monetary_corr, "chosen_model": self.chosen_model,
                "choice_reason": self.choice_reason, "tracks_total": self.tracks_total, "holdout": self._holdout_dict(),
                "clv": self.clv, "checks": {"period_transactions": checks}, "warnings": list(self.warnings),
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
            row["MAE"] = _num(met.at[k, "mae"], 3)
        else:
            row.update({"holdout predicted": "—", "actual": "—", "error": "—", "MAE": "—"})
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
    return hold


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


def _p_alive_model(models: dict, chosen: str, ranking: list, warnings: list) -> FittedModel:
    """BG/NBD keeps one-time buyers alive: P(alive) then comes from the next model that does not."""
    if chosen != "bgnbd":
        return models[chosen]
    others = [k for k in ranking if k != "bgnbd" and models[k].ok]
    if others:
        warnings.append(f"BG/NBD keeps every one-time buyer alive (P(alive) = 1 by construction): P(alive) and "
                        f"the wake-up list use {LABELS[others[0]]}, which lets one-time buyers drop out")
        return models[others[0]]
    warnings.append("BG/NBD keeps every one-time buyer alive (P(alive) = 1 by construction) and no other "
                    "model was fitted: one-time buyers' P(alive) is not informative")
    return models[chosen]


def _clv_summary(values: pd.DataFrame, gg: FittedModel, chosen: str, pa_model: FittedModel, level: float,
                 margin: float, horizon_months: int, discount_rate: float) -> dict:
    """The store's CLV: total with its interval, mean, median and what it is."""
    a = values.attrs
    have = a["total"] is not None
    return {"total": a["total"], "total_low": a["total_low"], "total_high": a["total_high"],
            "interval_level": level, "interval_method": CLV_METHOD,
            "mean": float(values["clv"].mean()) if have else None,
            "median": float(values["clv"].median()) if have else None,
            "value": "revenue" if margin == 1 else "profit", "margin": margin, "horizon_months": horizon_months,
            "discount_rate": discount_rate, "model": chosen, "p_alive_model": pa_model.name,
            "error": None if gg.ok else f"Gamma-Gamma failed: {gg.error}"}


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
    pa_model = _p_alive_model(models, chosen, ranking, warnings)
    if not gg.ok:
        warnings.append(f"Gamma-Gamma failed ({gg.error}): no CLV in money")
    if abs(corr) > 0.3:
        warnings.append(f"frequency and spend are correlated (r = {corr:.2f}): Gamma-Gamma assumes independence")
    values = customer_value(summary, models[chosen], gg, horizon_months, discount_rate, margin, purchases_days,
                            pa_model, interval_level)
    clv = _clv_summary(values, gg, chosen, pa_model, interval_level, margin, horizon_months, discount_rate)
    checks = {"period_transactions": {k: period_transactions(summary, models[k]) for k in names if models[k].ok}}
    # the arguments as text (a record for provenance); the holdout keeps the Timestamp itself
    params = {"time_unit": time_unit, "calibration_end": None if hold is None else str(hold["calibration_end"]),
              "holdout_days": holdout_days, "model": model, "horizon_months": horizon_months,
              "discount_rate": discount_rate, "margin": margin, "interval_level": interval_level}
    return ClvResult(o.observation_end, time_unit, int(len(summary)), int((summary["frequency"] > 0).sum()), models, gg,
                     corr, chosen, reason, tracks, hold, values, clv, checks, summary, tuple(warnings), params, context)
