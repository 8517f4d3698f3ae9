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

from crmlab.present.formatting import MISSING, integer, pct
from crmlab.present.result import Card, Result, result
from crmlab.promotion.calendar import PHASE_LABELS, Phase, span
from crmlab.promotion.season import split_figure
from crmlab.promotion.uncertainty import METHOD, intervals
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
    ``settings``: the context (the orders' engine, time zone, currency, interval level);
    ``engine`` and ``timezone`` read it. ``plan`` is None when a growth could not be
    estimated from windows the export fully covers and was not given (``plan_reason``).
    :attr:`intervals` gives each target's plan range and each attainment's interval.

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
    #: per type whose growth is missing: why (one sentence); ``plan_reason``: why there is no plan
    growth_reason: dict = field(default_factory=dict)
    plan_reason: str | None = None
    #: this year's and last year's counts with their spread over buyers (:mod:`crmlab.promotion.uncertainty`)
    spread: dict | None = field(default=None, compare=False, repr=False)
    growth_relvar: dict = field(default_factory=dict)

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
    def intervals(self) -> pd.DataFrame | None:
        """Per (phase, type, metric): ``target_low``/``target_high`` (the plan range: where the
        actual falls, at the context's interval level, if the store runs as planned) and
        ``attainment_low``/``attainment_high`` (the attainment's interval; NaN before the
        review). None without a plan. Method: :mod:`crmlab.promotion.uncertainty`."""
        if self.plan is None or self.spread is None:
            return None
        f = intervals(self.spread["last"], self.spread["this"], self.plan, self.growth, self.growth_relvar,
                      self.context.interval_level)
        if not self.reviewed:
            f[["attainment_low", "attainment_high"]] = np.nan
        return f

    @property
    def review(self) -> pd.DataFrame | None:
        """Per (phase, type, metric): target, its plan range (target_low, target_high), actual,
        attainment with its interval (attainment_low, attainment_high), last_year,
        change_vs_last_year. None before the promotion day or without a plan."""
        if not self.reviewed or self.plan is None:
            return None
        t, a, ly = (x.stack(future_stack=True) for x in (self.plan, self.this_year, self.last_year))
        iv = self.intervals.reindex(t.index)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = pd.DataFrame({"target": t, "target_low": iv["target_low"], "target_high": iv["target_high"],
                                "actual": a, "attainment": a / t.where(t != 0),
                                "attainment_low": iv["attainment_low"], "attainment_high": iv["attainment_high"],
                                "last_year": ly, "change_vs_last_year": a / ly.where(ly != 0) - 1})
        out.index.names = ["phase", "type", "metric"]
        return out

    def to_frame(self) -> pd.DataFrame:
        """Long: per (phase, type, metric) last_year, this_year, target (NaN without a plan),
        target_low, target_high, attainment, attainment_low, attainment_high, change_vs_last_year."""
        ly, ty = (x.stack(future_stack=True) for x in (self.last_year, self.this_year))
        t = (self.plan.stack(future_stack=True) if self.plan is not None else pd.Series(np.nan, index=ly.index))
        iv = self.intervals
        iv = (iv.reindex(ly.index) if iv is not None else
              pd.DataFrame(np.nan, index=ly.index, columns=["target_low", "target_high", "attainment_low",
                                                            "attainment_high"]))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = pd.DataFrame({"last_year": ly, "this_year": ty, "target": t, "target_low": iv["target_low"],
                                "target_high": iv["target_high"],
                                "attainment": (ty / t.where(t != 0)) if self.reviewed else np.nan,
                                "attainment_low": iv["attainment_low"], "attainment_high": iv["attainment_high"],
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
                "growth_reason": {k: self.growth_reason.get(k) for k in self.growth},
                "plan": {**(_nested(self.plan) if self.plan is not None else {}), "assumptions": list(self.assumptions)},
                "plan_reason": self.plan_reason, "plan_range": self._ranges(),
                "interval_level": self.context.interval_level, "interval_method": METHOD,
                "clv_check": self.clv_check, "review": review}

    def _ranges(self) -> dict | None:
        iv = self.intervals
        if iv is None:
            return None
        return _nested(self.plan, lambda ph, typ, m: {"low": _num(iv.at[(ph, typ, m), "target_low"]),
                                                      "high": _num(iv.at[(ph, typ, m), "target_high"])})

    def _attained(self, ph: str, named: bool = True) -> str:
        """``, 118% of the target ¥33,159 (90% interval 105%–133%)`` for a phase's sales (``named``:
        with the target's value), or ''."""
        t = self.plan.at[(ph, "all"), "sales"]
        if not t:
            return ""
        iv = self.intervals.loc[(ph, "all", "sales")]
        a = self.this_year.at[(ph, "all"), "sales"] / t
        return (f", {pct(a, 0)} of " + (f"the target {self.fmt.money(t)}" if named else "target")
                + f" ({self.fmt.interval_name()} {pct(iv['attainment_low'], 0)}–{pct(iv['attainment_high'], 0)})")

    def _finding(self) -> str:
        ty, plan, f = self.this_year, self.plan, self.fmt
        if plan is None and not self.reviewed:
            return f"no plan for {self.date:%Y-%m-%d} yet: {self.plan_reason}"
        if not self.reviewed:
            g = ", ".join(f"{k} {pct(v, 1, sign=True)}" for k, v in self.growth.items())
            iv = self.intervals.loc[("period", "all", "sales")]
            return (f"plan for {self.date:%Y-%m-%d}: period sales target {f.money(plan.at[('period', 'all'), 'sales'])} "
                    f"({self.fmt.level()} plan range {f.money_interval(iv['target_low'], iv['target_high'])}) "
                    f"from {integer(plan.at[('period', 'all'), 'buyers'])} buyers (growth {g})")
        finding = f"{self.date:%Y-%m-%d} reviewed: "
        if "day" in [ph.name for ph in self.phases]:
            finding += f"day sales {f.money(ty.at[('day', 'all'), 'sales'])}" + (
                self._attained("day") if plan is not None else "") + "; "
        return finding + (f"whole period {f.money(ty.at[('period', 'all'), 'sales'])}"
                          + (self._attained("period", False) if plan is not None else " (no targets: growth not given)")
                          + ("" if self.complete("period") else " (not over yet)"))

    def _card(self) -> Card:
        ty, ly, plan, f = self.this_year, self.last_year, self.plan, self.fmt
        iv = self.intervals
        rows = {}
        for ph in [p.name for p in self.phases] + ["period"]:
            s = ty.at[(ph, "all"), "sales"]
            t = plan.at[(ph, "all"), "sales"] if plan is not None else np.nan
            att, band = MISSING, MISSING
            if self.reviewed and plan is not None and t:
                r = iv.loc[(ph, "all", "sales")]
                att, band = pct(s / t, 0), f"{pct(r['attainment_low'], 0)}–{pct(r['attainment_high'], 0)}"
            rows[ph] = {"sales last year": f.money(ly.at[(ph, "all"), "sales"]), "sales this year": f.money(s),
                        "sales target": f.money(t) if plan is not None else MISSING, "attainment": att,
                        f"attainment {f.interval_name()}": band,
                        "old customers' share": pct(ty.at[(ph, "old"), "sales"] / s, 0) if s else MISSING}
        tab = pd.DataFrame(rows).T
        tab.index.name = "phase (all buyers)"
        return Card("PromotionResult", "big promotion plan and review", self._finding(), tab,
                    "phases are store-local calendar days; old customers' share: of this year's sales; "
                    "interval: chance alone (buyers and the growth estimate), compound Poisson",
                    settings=self.footer(self.observation_end),
                    hint=".plot(); .review, .plan, .intervals, .assumptions")
