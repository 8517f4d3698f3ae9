"""The promotion's result: this year's and last year's figures, the plan and the review.

:class:`PromotionResult` is what :func:`crmlab.promotion.plan.analyse_promotion` returns: a
:class:`~crmlab.present.result.Result` that shows itself as a card (sales per phase: last
year, this year, target, attainment, old customers' share; money in the currency of its
context), draws new vs old per phase (:meth:`PromotionResult.plot`) and gives the CLI's
JSON (:meth:`PromotionResult.to_dict`).
"""
from __future__ import annotations

from dataclasses import field

import numpy as np
import pandas as pd

from crmlab.present.formatting import MISSING, number, pct
from crmlab.present.result import Card, Result, result
from crmlab.promotion.calendar import PHASE_LABELS, Phase, span
from crmlab.promotion.season import split_figure
from crmlab.settings import Settings, current

__all__ = ["PromotionResult", "METRICS", "TYPES", "COUNTS"]

TYPES = ("new", "old", "all")
COUNTS = ("buyers", "orders", "sales", "units")
METRICS = ("buyers", "orders", "sales", "units", "aov", "orders_per_buyer", "units_per_buyer")


def _nested(f: pd.DataFrame, cell=None) -> dict:
    out: dict = {}
    for (ph, typ), row in f.iterrows():
        out.setdefault(ph, {})[typ] = {m: (cell(ph, typ, m) if cell else _num(row[m])) for m in METRICS}
    return out


def _num(v):
    if v is None or pd.isna(v):
        return None
    v = float(v)
    return int(v) if v.is_integer() and abs(v) < 2**53 else v


@result
class PromotionResult(Result):
    """This year's and last year's promotion figures, the plan and (after D) the review.

    ``this_year``, ``last_year`` and ``plan`` are indexed by (phase, type) with the
    phases in order, then ``period``; types ``new``, ``old``, ``all``; columns
    :data:`METRICS`. ``units`` columns are NaN when the export has no quantity.
    ``settings``: the context (the orders' engine, time zone, currency); ``engine`` and
    ``timezone`` read it.

    In a notebook it shows itself (sales per phase: last year, this year, target,
    attainment, old customers' share); :meth:`plot` draws new vs old per phase."""

    date: pd.Timestamp
    last_year_date: pd.Timestamp
    phases: tuple[Phase, ...]
    observation_end: pd.Timestamp
    this_year: pd.DataFrame
    last_year: pd.DataFrame
    plan: pd.DataFrame
    growth: dict
    growth_source: dict
    assumptions: tuple[str, ...]
    bases: dict = field(default_factory=dict)
    clv_check: dict | None = None
    has_units: bool = False
    settings: Settings = field(default_factory=current, compare=False)

    @property
    def engine(self) -> str:
        """The engine that computed the figures."""
        return self.context.engine

    @property
    def timezone(self) -> str:
        """The store time zone of the orders (phases are its calendar days)."""
        return self.context.timezone

    def plot(self, ax=None, metric: str = "sales"):
        """New vs old customers per phase, last year beside this year
        (:func:`crmlab.promotion.season.split_figure`, money in this result's currency).
        Returns the new Figure, or ``ax`` when given."""
        fig = split_figure(self.this_year, self.last_year, metric, PHASE_LABELS, ax=ax, settings=self.context)
        return ax if ax is not None else fig

    @property
    def period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return span(self.date, self.phases)

    @property
    def last_year_period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return span(self.last_year_date, self.phases)

    def complete(self, phase: str) -> bool:
        """The phase's last day is wholly inside the export."""
        end = self.period[1] if phase == "period" else {p.name: p for p in self.phases}[phase].days(self.date)[1]
        return pd.Timestamp(self.observation_end) >= end + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)

    @property
    def reviewed(self) -> bool:
        """A review exists once the export reaches the promotion day."""
        return pd.Timestamp(self.observation_end).normalize() >= self.date

    @property
    def review(self) -> pd.DataFrame | None:
        """Per (phase, type, metric): target, actual, attainment, last_year, change_vs_last_year."""
        if not self.reviewed:
            return None
        t, a, ly = (x.stack(future_stack=True) for x in (self.plan, self.this_year, self.last_year))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = pd.DataFrame({"target": t, "actual": a, "attainment": a / t.where(t != 0),
                                "last_year": ly, "change_vs_last_year": a / ly.where(ly != 0) - 1})
        out.index.names = ["phase", "type", "metric"]
        return out

    def to_frame(self) -> pd.DataFrame:
        """Long: per (phase, type, metric) last_year, this_year, target, attainment, change_vs_last_year."""
        ly, ty, t = (x.stack(future_stack=True) for x in (self.last_year, self.this_year, self.plan))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = pd.DataFrame({"last_year": ly, "this_year": ty, "target": t,
                                "attainment": (ty / t.where(t != 0)) if self.reviewed else np.nan,
                                "change_vs_last_year": ty / ly.where(ly != 0) - 1})
        out.index.names = ["phase", "type", "metric"]
        return out

    def _as_dict(self) -> dict:
        """The CLI's JSON (:meth:`to_dict`; see :mod:`crmlab.promotion.plan` and ``crmlab promotion --help``)."""
        def phase_list(day, done):
            return [{"name": p.name, "start": f"{p.days(day)[0]:%Y-%m-%d}", "end": f"{p.days(day)[1]:%Y-%m-%d}",
                     "offsets": [p.start, p.end], **({"complete": self.complete(p.name)} if done else {})}
                    for p in self.phases]

        rev = self.review
        review = None
        if rev is not None:
            review = _nested(self.plan, lambda ph, typ, m: {k: _num(rev.at[(ph, typ, m), k]) for k in rev.columns})
        s, e = self.period
        s0, e0 = self.last_year_period
        return {"date": f"{self.date:%Y-%m-%d}", "last_year_date": f"{self.last_year_date:%Y-%m-%d}",
                "observation_end": str(self.observation_end), "phases": phase_list(self.date, True),
                "last_year_phases": phase_list(self.last_year_date, False),
                "period": {"start": f"{s:%Y-%m-%d}", "end": f"{e:%Y-%m-%d}", "complete": self.complete("period")},
                "last_year_period": {"start": f"{s0:%Y-%m-%d}", "end": f"{e0:%Y-%m-%d}"},
                "units_available": self.has_units,
                "this_year": _nested(self.this_year), "last_year": _nested(self.last_year),
                "growth": dict(self.growth), "growth_source": dict(self.growth_source),
                "plan": {**_nested(self.plan), "assumptions": list(self.assumptions)},
                "clv_check": self.clv_check, "review": review}

    def _finding(self) -> str:
        ty, plan, f = self.this_year, self.plan, self.fmt
        if not self.reviewed:
            g = ", ".join(f"{k} {pct(v, 1, sign=True)}" for k, v in self.growth.items())
            return (f"plan for {self.date:%Y-%m-%d}: period sales target {f.money(plan.at[('period', 'all'), 'sales'])} "
                    f"from {number(plan.at[('period', 'all'), 'buyers'])} buyers (growth {g})")
        per, per_t = ty.at[("period", "all"), "sales"], plan.at[("period", "all"), "sales"]
        finding = f"{self.date:%Y-%m-%d} reviewed: "
        if "day" in [ph.name for ph in self.phases]:
            day, t = ty.at[("day", "all"), "sales"], plan.at[("day", "all"), "sales"]
            finding += (f"day sales {f.money(day)}" + (f", {pct(day / t, 0)} of the target {f.money(t)}" if t else "")
                        + "; ")
        return finding + (f"whole period {f.money(per)}" + (f", {pct(per / per_t, 0)} of target" if per_t else "")
                          + ("" if self.complete("period") else " (not over yet)"))

    def _card(self) -> Card:
        ty, ly, plan, f = self.this_year, self.last_year, self.plan, self.fmt
        rows = {}
        for ph in [p.name for p in self.phases] + ["period"]:
            t, s = plan.at[(ph, "all"), "sales"], ty.at[(ph, "all"), "sales"]
            rows[ph] = {"last year": f.money(ly.at[(ph, "all"), "sales"]), "this year": f.money(s),
                        "target": f.money(t), "attainment": pct(s / t, 0) if self.reviewed and t else MISSING,
                        "old share": pct(ty.at[(ph, "old"), "sales"] / s, 0) if s else MISSING}
        tab = pd.DataFrame(rows).T
        tab.index.name = "phase (sales, all buyers)"
        return Card("PromotionResult", "big promotion plan and review", self._finding(), tab,
                    "phases are store-local calendar days; old share: this year's old customers' share of sales",
                    settings=self.footer(self.observation_end),
                    hint=".plot(); .review, .plan, .assumptions")
