"""Retention read the way a boss reads it: one headline with its change, one cohort table.

* :func:`latest_vs_year_before`: the headline of notebook 02 — retention on day N of the latest
  cohorts that every customer has been followed for (a quarter of them: three months, 13 weeks
  or 91 days), against the same cohorts a year before, with an interval for the difference
  (Newcombe's hybrid score interval, the run's interval level). A cohort with one customer not
  yet followed that long is not "latest complete": its rate would mix follow-ups.
* :func:`cohort_grid`: the Amplitude/Mixpanel view — rows cohorts, a size column, day 0 = 100%,
  then day N; a cell is shown only when every customer of the cohort has been followed for it
  (too young: blank, never 0); the all-cohorts row pools exactly the cells shown in its column.
  :func:`grid_styler` formats it with the one formatter (counts, percents, blank cells).
"""
from __future__ import annotations

from dataclasses import field

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import confint_proportions_2indep

from crmlab.analyses.retention import ALL, RetentionTable
from crmlab.present.formatting import Formatter
from crmlab.present.result import Card, Result, result
from crmlab.settings import Settings, current
from crmlab.stats.proportion import wilson

__all__ = ["RetentionChange", "latest_vs_year_before", "cohort_grid", "grid_styler", "LATEST", "SIZE", "ALL"]

#: how many of the latest complete cohorts make the headline: about a quarter of new buyers
LATEST = {"month": 3, "week": 13, "day": 91}
#: the cohort table's size column
SIZE = "new buyers"


@result
class RetentionChange(Result):
    """Retention on one day of the latest complete cohorts, and of the same cohorts a year before.

    Attributes
    ----------
    day : int or str
        The table's column (day N, or a bracket ``"1-30"``).
    kind : str
        The table's kind (``on_or_after``: a paid order from day N to ``horizon_days``).
    cohorts, before_cohorts : tuple of str
        The latest complete cohorts; the same cohorts a year before (empty without them).
    retained, eligible, before_retained, before_eligible : int
        Customers who came back and customers counted (every customer of the cohorts).
    level : float
        The interval level of :attr:`interval` (the run's ``interval_level``).
    """

    about = "retention of the latest complete cohorts against a year before"

    day: object
    kind: str
    horizon_days: int | None
    cohorts: tuple
    retained: int
    eligible: int
    before_cohorts: tuple = ()
    before_retained: int = 0
    before_eligible: int = 0
    level: float = 0.9
    settings: Settings = field(default_factory=current, compare=False)

    @property
    def rate(self) -> float:
        """The latest complete cohorts' rate."""
        return self.retained / self.eligible if self.eligible else float("nan")

    @property
    def before_rate(self) -> float:
        """The same cohorts' rate a year before (NaN without them)."""
        return self.before_retained / self.before_eligible if self.before_eligible else float("nan")

    @property
    def difference(self) -> float:
        """``rate - before_rate`` (a difference of shares: points)."""
        return self.rate - self.before_rate

    @property
    def interval(self) -> tuple[float, float]:
        """The ``level`` interval of :attr:`difference` (Newcombe's hybrid score); NaN without a year before."""
        if not self.before_eligible or not self.eligible:
            return float("nan"), float("nan")
        lo, hi = confint_proportions_2indep(self.retained, self.eligible, self.before_retained,
                                           self.before_eligible, method="newcomb", compare="diff",
                                           alpha=1 - self.level)
        return float(lo), float(hi)

    @property
    def rate_interval(self) -> tuple[float, float]:
        """The ``level`` Wilson interval of :attr:`rate`."""
        lo, hi = wilson([self.retained], [self.eligible], alpha=1 - self.level)
        return float(lo[0]), float(hi[0])

    @property
    def direction(self) -> str:
        """``"up"`` / ``"down"`` when the interval of the difference excludes 0, ``"flat"`` when it
        holds 0, ``"none"`` without a year before."""
        lo, hi = self.interval
        if not np.isfinite(lo):
            return "none"
        return "up" if lo > 0 else "down" if hi < 0 else "flat"

    def span(self) -> str:
        """The cohorts in words: ``"2025-04 – 2025-06"`` (or the one cohort)."""
        return _span(self.cohorts)

    def _card(self) -> Card:
        f = self.fmt
        label = f"day-{self.day}" if not isinstance(self.day, str) else f"days {self.day}"
        text = (f"{label} retention {f.pct(self.rate)} of the {f.integer(self.eligible)} new buyers of {self.span()} "
                f"(the latest cohorts every customer of which has been followed)")
        if self.before_eligible:
            lo, hi = self.interval
            text += (f"; {f.pp(self.difference)} on {_span(self.before_cohorts)} ({f.interval_name(self.level)} "
                     f"{f.pp(lo)} to {f.pp(hi)})")
        return Card("RetentionChange", self.about, text, settings=self.footer())


def _span(cohorts) -> str:
    cohorts = list(cohorts)
    if not cohorts:
        return "—"
    return cohorts[0] if len(cohorts) == 1 else f"{cohorts[0]} – {cohorts[-1]}"


def _complete(ret: RetentionTable, day) -> list:
    """Cohorts (in order) every customer of which has been followed for ``day``."""
    size = ret.size.drop(ALL)
    elig = ret.eligible[day].drop(ALL)
    ok = (elig == size.reindex(elig.index)) & (elig > 0)
    return list(elig.index[ok.to_numpy()])


def _year_before(label: str, cohort: str) -> str | None:
    """The cohort a year before ``label`` (same month; 52 weeks / 364 days before), None for channels."""
    if cohort == "month":
        t = pd.Timestamp(f"{label}-01")
        return f"{t.year - 1:04d}-{t.month:02d}"
    if cohort == "week":
        t = pd.Timestamp(label.split(" ")[0]) - pd.Timedelta(days=364)
        return f"{t:%Y-%m-%d} (week)"
    if cohort == "day":
        return f"{pd.Timestamp(label) - pd.Timedelta(days=364):%Y-%m-%d}"
    return None


def latest_vs_year_before(ret: RetentionTable, day=None, n: int | None = None,
                          level: float | None = None) -> RetentionChange | None:
    """Day-``day`` retention of the latest ``n`` complete cohorts against the same cohorts a year before.

    Parameters
    ----------
    ret : RetentionTable
        Any kind; a cohort counts as complete for ``day`` when all its customers are eligible.
    day : int or str, optional
        A column of ``ret`` (default: day 30 when there is one, else the last column).
    n : int, optional
        How many cohorts (default :data:`LATEST` for the table's cohort unit). Channel cohorts
        have no latest: the headline is every customer followed long enough (``"all cohorts"``),
        no year before.
    level : float, optional
        The interval level (default: the table's settings' ``interval_level``).

    Returns
    -------
    RetentionChange or None
        None when no cohort is complete for ``day``. The year before is left out (empty) unless
        every one of its cohorts is in the table and complete.
    """
    day = day if day is not None else (30 if 30 in ret.rates.columns else ret.rates.columns[-1])
    level = ret.context.interval_level if level is None else level
    E, R = ret.eligible[day], ret.retained[day]
    if ret.cohort not in LATEST:  # channel cohorts have no "latest": every customer followed long enough
        if E[ALL] <= 0:
            return None
        return RetentionChange(day, ret.kind, ret.horizon_days, (ALL,), int(R[ALL]), int(E[ALL]), level=level,
                               settings=ret.context)
    done = _complete(ret, day)
    if not done:
        return None
    n = n or LATEST.get(ret.cohort, len(done))
    latest = done[-n:]
    before = [_year_before(c, ret.cohort) for c in latest]
    if any(b is None or b not in done for b in before):
        before = []
    return RetentionChange(day, ret.kind, ret.horizon_days, tuple(latest), int(R[latest].sum()),
                           int(E[latest].sum()), tuple(before), int(R[before].sum()) if before else 0,
                           int(E[before].sum()) if before else 0, level, ret.context)


def _column(d) -> str:
    return f"days {str(d).replace('-', '–')}" if isinstance(d, str) else f"day {d}"


def cohort_grid(ret: RetentionTable, day0: bool = True) -> pd.DataFrame:
    """The cohort table: ``new buyers``, ``day 0`` (100%: the first order), then each day's rate.

    A cell is the cohort's rate when every one of its customers has been followed for that day,
    else NaN (shown blank: too young, never 0); channel cohorts (never complete: they hold new
    customers too) show the rate of their customers followed long enough. The ``all cohorts`` row pools the cells shown in
    its column (retained over eligible of those cohorts). Brackets read ``days 1–7`` and have no
    day 0 (``day0`` is ignored for them).
    """
    cohorts = [c for c in ret.rates.index if c != ALL]
    size = ret.size.reindex(cohorts)
    out = pd.DataFrame({SIZE: size.astype("int64")}, index=pd.Index(cohorts, name="cohort"))
    if day0 and ret.kind != "bracket":
        out["day 0"] = np.where(size > 0, 1.0, np.nan)
    pooled = {SIZE: int(size.sum()), "day 0": 1.0}
    timed = ret.cohort in LATEST  # channel cohorts are never complete: their customers followed long enough
    for d in ret.rates.columns:
        E, R = ret.eligible.loc[cohorts, d], ret.retained.loc[cohorts, d]
        full = ((E == size) & (E > 0)) if timed else (E > 0)
        out[_column(d)] = (R / E.where(full)).astype(float)
        pooled[_column(d)] = R[full].sum() / E[full].sum() if full.any() else np.nan
    out.loc[ALL] = [pooled[c] for c in out.columns]
    out[SIZE] = out[SIZE].astype("int64")
    return out


def grid_styler(grid: pd.DataFrame, f: Formatter | None = None, caption: str | None = None):
    """:func:`cohort_grid` as a pandas Styler: the cohort as the first column (kept in view when
    the table scrolls on a phone), sizes as counts, rates as percents (day 0 ``100%``), blank
    cells where a cohort is too young; numbers right-aligned, nothing wrapped; class
    ``crmlab-table``. Show it through :func:`crmlab.report.notebook.escaped` (labels escaped)."""
    f = f or Formatter()
    rate = (lambda x: "" if not np.isfinite(x) else "100%" if x == 1.0 else f.pct(x, 1))
    df = grid.rename_axis("cohort").reset_index()
    fmts = {c: (f.integer if c == SIZE else rate) for c in grid.columns}
    st = df.style.format(fmts).format(escape="html", subset=["cohort"]).hide(axis="index")  # cohorts may be data (channels)
    st = st.set_properties(subset=list(grid.columns), **{"text-align": "right"})
    st = st.set_table_styles([{"selector": "th, td", "props": [("white-space", "nowrap")]}], overwrite=False)
    st = st.set_table_attributes('class="crmlab-table crmlab-cohorts"')
    return st.set_caption(caption) if caption else st
