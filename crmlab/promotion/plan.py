"""Big promotions (大促): plan this year's Double 11 from last year, review it afterwards.

Definitions (the ``crmlab promotion`` contract):

* Promotion day D (default: this year's 11-11; any day works: 618, a brand day) and last
  year's day (default D minus one year).
* Phases are whole calendar days of the store-local order time, given as day offsets from
  D, inclusive: build-up 蓄势 D−71…D−12, warm-up 预热 D−10…D−1, the day 冲刺 D, after-glow
  余温 D+1…D+3 (:data:`DEFAULT_PHASES`). A day in no phase (D−11) belongs to none.
* The promotion period runs from the first phase's start to the last phase's end (gap
  days included). A buyer is **new** in a year's promotion when their first paid order
  ever (in the whole export) is on or after that period's start, else **old**.
* Per phase (and the period) × new/old/all, paid orders only: ``buyers`` (distinct),
  ``orders``, ``sales``, ``units`` (sum of quantity, when the export has it), ``aov`` =
  sales / orders, ``orders_per_buyer``, ``units_per_buyer``.
* Plan: last year's figures × (1 + growth) per customer type. Growth is given
  (``--growth``) or estimated, **only from windows the export fully covers** (its first
  row on or before the earlier window's first day; for new buyers also not before the
  lead-in's end, ``history_start``): new buyers acquired in the 12 months before the
  period vs the 12 before that; old: this year's active old base (a paid order in the 365
  days before the period) vs last year's, i.e. last year's participation rate (old buyers
  / active base) applied to this year's base. When a window is not covered no growth is
  invented: that type's growth is None with its reason (``growth_reason``), and there is
  no plan (``plan`` None, ``plan_reason`` one sentence) until ``--growth`` gives it.
  Cross-checked against the BG/NBD expected purchases of the base.
* Intervals (:mod:`crmlab.promotion.uncertainty`): each target's plan range (where the
  actual falls if the store runs as planned) and each attainment's interval, compound
  Poisson over buyers with the growth estimate's error, at the run's interval level.
* Review (once the export reaches D): target, actual, attainment = actual / target and
  the change vs last year (:class:`~crmlab.promotion.review.PromotionResult`).

Every count and sum is one Ibis expression run in the engine; only per phase × type rows
(and the per-day season series) come back to pandas.
"""
from __future__ import annotations

import ibis
import numpy as np
import pandas as pd

from crmlab.engine.sources import order_table
from crmlab.engine.aggregates import paid_orders
from crmlab.present.formatting import pct
from crmlab.promotion.calendar import (DEFAULT_PHASES, PHASE_LABELS, Phase, default_date, parse_date, parse_growth,
                                       parse_phases, span)
from crmlab.promotion.clv_check import clv_check as _clv_check, clv_note as _clv_note
from crmlab.promotion.review import COUNTS, METRICS, TYPES, PromotionResult
from crmlab.promotion.season import _d, _paid_with_first, promotion_daily
from crmlab.promotion.uncertainty import SPREAD, growth_relvar, spread_with_all
from crmlab.schema import CrmlabInputError

__all__ = ["Phase", "PromotionResult", "DEFAULT_PHASES", "PHASE_LABELS", "METRICS", "TYPES", "parse_date",
           "parse_phases", "parse_growth", "default_date", "analyse_promotion", "promotion_daily",
           "warm_up_list"]


def _figures(o, days: dict[str, pd.Timestamp], phases) -> pd.DataFrame:
    """Per year × phase (and ``period``) × new/old: buyers, orders, sales, units and their
    spread over buyers (:data:`~crmlab.promotion.uncertainty.SPREAD`: sums of each buyer's
    squared orders, sales, units and of sales × orders) — one query."""
    t = _paid_with_first(o)
    qty = o.has("quantity")
    parts = []
    for label, day in days.items():
        s, e = span(day, phases)
        y = t.filter(t.day.between(_d(s), _d(e)))
        phase = ibis.cases(*[(y.day.between(_d(a), _d(b)), p.name) for p in phases for a, b in [p.days(day)]],
                           else_=ibis.null("string"))
        y = y.mutate(year=ibis.literal(label), type=ibis.ifelse(y.first_day >= _d(s), "new", "old"), phase=phase,
                     units=(y.quantity if qty else ibis.literal(0.0)).cast("float64"))
        keys = ["year", "phase", "type"]
        for yy in (y.filter(y.phase.notnull()), y.mutate(phase=ibis.literal("period"))):
            c = yy.group_by([*keys, "customer_id"]).aggregate(orders=yy.customer_id.count().cast("float64"),
                                                             sales=yy.amount.sum(), units=yy.units.sum())
            parts.append(c.group_by(keys).aggregate(
                buyers=c.customer_id.count(), orders=c.orders.sum(), sales=c.sales.sum(), units=c.units.sum(),
                q_orders=(c.orders * c.orders).sum(), q_sales=(c.sales * c.sales).sum(),
                q_units=(c.units * c.units).sum(), c_sales_orders=(c.sales * c.orders).sum()))
    raw = o.engine.to_pandas(ibis.union(*parts))
    names = [p.name for p in phases] + ["period"]
    idx = pd.MultiIndex.from_product([list(days), names, ["new", "old"]], names=["year", "phase", "type"])
    raw = raw.set_index(["year", "phase", "type"]).reindex(idx)
    out = pd.DataFrame({"buyers": raw["buyers"].fillna(0).astype(int), "orders": raw["orders"].fillna(0).astype(int),
                        "sales": raw["sales"].astype(float).fillna(0.0)}, index=idx)
    for c in ("units", "q_units"):
        out[c] = raw[c].astype(float).fillna(0.0) if qty else np.nan
    for c in ("q_orders", "q_sales", "c_sales_orders"):
        out[c] = raw[c].astype(float).fillna(0.0)
    return out


def _with_all(counts: pd.DataFrame, phases) -> pd.DataFrame:
    """Add the ``all`` type (new + old: each buyer is one or the other) and the ratios."""
    rows = {}
    for ph in [p.name for p in phases] + ["period"]:
        new, old = counts.loc[(ph, "new")], counts.loc[(ph, "old")]
        for typ, r in (("new", new), ("old", old), ("all", new + old)):
            rows[(ph, typ)] = r
    f = pd.DataFrame(rows).T
    f.index.names = ["phase", "type"]
    with np.errstate(divide="ignore", invalid="ignore"):
        f["aov"] = f["sales"] / f["orders"].where(f["orders"] > 0)
        f["orders_per_buyer"] = f["orders"] / f["buyers"].where(f["buyers"] > 0)
        f["units_per_buyer"] = f["units"] / f["buyers"].where(f["buyers"] > 0)
    return f[list(METRICS)].astype(float)


def _bases(o, cut: pd.Timestamp, cut_last: pd.Timestamp) -> dict:
    """New buyers in the 12 months before ``cut`` and the 12 before that; active old bases
    (a paid order in the 365 days before ``cut`` / ``cut_last``); the first paid order day and
    the export's first day (its first row of any status)."""
    p = paid_orders(o)
    first = p.group_by("customer_id").aggregate(fd=p.order_time.min().date())
    m12, m24 = cut - pd.DateOffset(months=12), cut - pd.DateOffset(months=24)
    day = p.order_time.date()
    one = pd.Timedelta(days=1)
    new = first.aggregate(new_recent=first.fd.between(_d(m12), _d(cut - one)).cast("int64").sum(),
                          new_before=first.fd.between(_d(m24), _d(m12 - one)).cast("int64").sum(),
                          first_day=first.fd.min())
    act = p.aggregate(active_this=p.customer_id.nunique(where=day.between(_d(cut - 365 * one), _d(cut - one))),
                      active_last=p.customer_id.nunique(where=day.between(_d(cut_last - 365 * one),
                                                                          _d(cut_last - one))))
    rows = o.table.aggregate(export_start=o.table.order_time.min())
    r = o.engine.to_pandas(new.cross_join(act).cross_join(rows)).iloc[0]
    out = {k: int(r[k]) if pd.notna(r[k]) else 0 for k in ("new_recent", "new_before", "active_this", "active_last")}
    out["first_day"] = None if pd.isna(r["first_day"]) else pd.Timestamp(r["first_day"])
    out["export_start"] = None if pd.isna(r["export_start"]) else pd.Timestamp(r["export_start"]).normalize()
    out["windows"] = {"new_recent": (m12, cut - one), "new_before": (m24, m12 - one),
                      "active_this": (cut - 365 * one, cut - one), "active_last": (cut_last - 365 * one,
                                                                                   cut_last - one)}
    return out


# ----------------------------------------------------------------------------- plan

def _plan(last_counts: pd.DataFrame, growth: dict[str, float], phases) -> pd.DataFrame:
    """Targets: last year's counts × (1 + growth of the row's type); ratios follow."""
    g = last_counts.astype(float)
    for typ in ("new", "old"):
        m = g.index.get_level_values("type") == typ
        g.loc[m, list(COUNTS)] = g.loc[m, list(COUNTS)].to_numpy(float) * (1.0 + growth[typ])
    return _with_all(g.astype(float), phases)


def _window(w: dict, k: str) -> str:
    return f"{w[k][0]:%Y-%m-%d}…{w[k][1]:%Y-%m-%d}"


def analyse_promotion(orders, date=None, last_year_date=None, phases=None, growth=None, observation_end=None,
                      engine=None, clv_check: bool = True, today=None) -> PromotionResult:
    """Last year's and this year's promotion figures, this year's plan and (once the
    export reaches D) the review. See the module docstring for every definition.

    Parameters
    ----------
    orders : OrderTable or DataFrame
    date, last_year_date : str or Timestamp, optional
        The promotion day (default this year's 11-11: the observation end's year when the
        export ends before ``today``) and last year's (default D minus one year). ``MM-DD``
        means that day in the default year.
    phases : str, mapping or sequence, optional
        ``"build_up=-71:-12,warm_up=-10:-1,day=0:0,after_glow=1:3"`` (the default).
    growth : str or mapping, optional
        ``"new=0.1,old=0.2"``; a type not given is estimated when the export fully covers
        its comparison windows, else the result has no plan (``plan_reason`` says why).
    clv_check : bool
        Cross-check the old-customer target against BG/NBD (a failure only drops it).

    Raises
    ------
    CrmlabInputError
        An unreadable date, phases or growth (the message names the argument).
    """
    o = order_table(orders, engine, observation_end)
    end = pd.Timestamp(o.observation_end)
    day, last, ph, given = _arguments(end, date, last_year_date, phases, growth, today)
    (s1, e1), (s0, e0) = span(day, ph), span(last, ph)
    cut = min(s1, end.normalize() + pd.Timedelta(days=1))  # the plan uses what was known before the period
    cut_last = s0 - (s1 - cut)
    counts = _figures(o, {"this": day, "last": last}, ph)
    this, last_y = _with_all(counts.loc["this"], ph), _with_all(counts.loc["last"], ph)
    b = _bases(o, cut, cut_last)
    notes = _calendar_notes(day, last, ph, end, cut, cut_last)
    rate, source, reason, part = _growth(given, b, last_y, notes, o.history_start)
    notes += _coverage_notes(b, s0, o.has("quantity"))
    plan = None if reason else _plan(counts.loc["last"], rate, ph)
    check = None
    if clv_check:
        target_old = None if plan is None else float(plan.at[("period", "old"), "orders"])
        check = _checked(o, {"this_year": cut, "last_year": cut_last}, {"this_year": (s1, e1), "last_year": (s0, e0)},
                         target_old, float(last_y.at[("period", "old"), "orders"]), notes)
    bases = {k: v for k, v in b.items() if k != "windows"}
    bases["participation"] = None if part is None else part.to_dict()
    spread = {y: spread_with_all(counts.loc[y, list(COUNTS) + list(SPREAD)], ph) for y in ("this", "last")}
    return PromotionResult(day, last, ph, end, this, last_y, plan, rate, source, tuple(notes), bases, check,
                           o.has("quantity"), o.settings, growth_reason=reason, plan_reason=_plan_reason(reason),
                           spread=spread, growth_relvar=growth_relvar(b, source))


def _arguments(end: pd.Timestamp, date, last_year_date, phases, growth, today):
    """The promotion day, last year's, the phases and the given growth, checked."""
    dflt = default_date(end, today)
    day = parse_date(date, "--date", dflt.year) if date is not None and str(date).strip() else dflt
    last = (parse_date(last_year_date, "--last-year-date", day.year - 1)
            if last_year_date is not None and str(last_year_date).strip() else day - pd.DateOffset(years=1))
    ph = parse_phases(phases)
    given = parse_growth(growth)
    if last >= day:
        raise CrmlabInputError(f"--last-year-date: {last:%Y-%m-%d} is not before --date {day:%Y-%m-%d}")
    (s1, e1), (s0, e0) = span(day, ph), span(last, ph)
    if e0 >= s1:
        raise CrmlabInputError(f"--last-year-date: last year's period {s0:%Y-%m-%d}…{e0:%Y-%m-%d} overlaps this "
                               f"year's {s1:%Y-%m-%d}…{e1:%Y-%m-%d}; choose days further apart or shorter phases")
    return day, last, ph, given


def _calendar_notes(day, last, ph, end, cut, cut_last) -> list[str]:
    """The assumptions about days, phases and customer types."""
    s1, s0, one = span(day, ph)[0], span(last, ph)[0], pd.Timedelta(days=1)
    notes = [f"Promotion day {day:%Y-%m-%d}, last year's {last:%Y-%m-%d}. Phases are store-local calendar days, "
             "inclusive: " + "; ".join(f"{p.name} {p.days(day)[0]:%Y-%m-%d}…{p.days(day)[1]:%Y-%m-%d} "
                                       f"(last year {p.days(last)[0]:%Y-%m-%d}…{p.days(last)[1]:%Y-%m-%d})"
                                       for p in ph) + ". Days between phases belong to none.",
             f"New buyer: first paid order ever in the export on or after the period's start ({s1:%Y-%m-%d}; "
             f"last year {s0:%Y-%m-%d}); every other buyer is old. Paid orders only.",
             "Targets = last year's buyers, orders, sales and units per phase and type × (1 + that type's "
             "growth); AOV, orders and units per buyer follow from them (so they equal last year's); "
             "all = new + old."]
    if cut < s1:
        notes.append(f"The export ends on {end:%Y-%m-%d}, before the period: the growth windows end on "
                     f"{cut - one:%Y-%m-%d} (and last year's on {cut_last - one:%Y-%m-%d}).")
    return notes


#: per customer type: the recent and the earlier window counts, the growth's name, what is counted
_GROWTH = {"new": ("new_recent", "new_before", "New-buyer", "customers placed their first paid order in the 12 months"),
           "old": ("active_this", "active_last", "Old-buyer", "customers had a paid order (the active base) in the "
                                                              "365 days")}


def _uncovered(b: dict, typ: str, history_start) -> str | None:
    """Why the export does not cover ``typ``'s earlier comparison window, or None."""
    k = _GROWTH[typ][1]
    start, w = b["export_start"], b["windows"][k]
    if start is None or start > w[0]:
        first = "has no orders" if start is None else f"starts on {start:%Y-%m-%d}"
        return f"the export {first}, after its earlier comparison window {_window(b['windows'], k)} began"
    if typ == "new" and history_start is not None and pd.Timestamp(history_start) > w[0]:
        return (f"first orders before the lead-in's end ({pd.Timestamp(history_start):%Y-%m-%d}) are not known to "
                f"be first, and its earlier comparison window {_window(b['windows'], k)} begins before that")
    if b[k] == 0:
        return f"nobody is counted in its earlier comparison window {_window(b['windows'], k)} to compare with"
    return None


def _growth(given: dict, b: dict, last_y: pd.DataFrame, notes: list[str], history_start=None):
    """Growth per customer type (given, estimated from windows the export fully covers, or
    None), its source, the reason a growth is missing, and last year's participation; the
    reasoning appended to ``notes``."""
    rate, source, reason, w = {}, {}, {}, b["windows"]
    for typ, (kr, kb, name, what) in _GROWTH.items():
        why = None if typ in given else _uncovered(b, typ, history_start)
        if typ in given:
            rate[typ], source[typ] = given[typ], "given"
            notes.append(f"{name} growth {_pct(given[typ])}: given.")
        elif why is None:
            rate[typ], source[typ] = b[kr] / b[kb] - 1, "estimated"
            notes.append(f"{name} growth {_pct(rate[typ])}, estimated from windows the export fully covers: "
                         f"{b[kr]:,} {what} {_window(w, kr)} vs {b[kb]:,} in {_window(w, kb)}.")
        else:
            rate[typ], source[typ] = None, "not covered"
            reason[typ] = (f"{name} growth is not estimated: {why}; give it with --growth {typ}=RATE "
                           "(the notebook's growth parameter).")
            notes.append(reason[typ])
    part = last_y.xs("old", level="type")["buyers"] / b["active_last"] if b["active_last"] else None
    if source["old"] == "estimated" and part is not None:
        notes.append("Old-buyer targets apply last year's participation (old buyers per active-base customer) to "
                     "this year's active base: " + ", ".join(f"{k} {pct(v, 1)}" for k, v in part.items()) + ".")
    return rate, source, reason, part


def _plan_reason(reason: dict) -> str | None:
    """One sentence: why there are no targets (a growth is missing), or None."""
    if not reason:
        return None
    types = " and ".join(f"{t}-buyer" for t in reason)
    flag = ",".join(f"{t}=RATE" for t in reason)
    return (f"No targets are set: the {types} growth cannot be estimated from windows this export fully covers, "
            f"and crmlab does not invent one; give it with --growth {flag} (the notebook's growth parameter).")


def _coverage_notes(b: dict, s0: pd.Timestamp, has_quantity: bool) -> list[str]:
    """Where the export does not cover what the figures need."""
    notes, fd = [], b["first_day"]
    if fd is not None and fd > s0:
        notes.append(f"The export's first paid order is on {fd:%Y-%m-%d}, after last year's period started: last "
                     "year's figures, and the targets built on them, are understated.")
    if not has_quantity:
        notes.append("The export has no quantity column: units and units per buyer are not available.")
    return notes


def _checked(o, cuts: dict, periods: dict, target_old: float, last_old: float, notes: list[str]) -> dict:
    """The CLV cross-check, or the error that dropped it (noted either way)."""
    try:
        check = _clv_check(o, cuts, periods, target_old, last_old)
    except Exception as e:  # the cross-check is optional: any failure only drops it
        why = " ".join(str(e).split())[:200]  # what the data lacks is said in words; a bug keeps its name
        check = {"error": why if isinstance(e, CrmlabInputError) else f"{type(e).__name__}: {why}"}
        notes.append(f"CLV cross-check dropped: {check['error']}")
    else:
        notes.append(_clv_note(check))
    return check


def _pct(x) -> str:
    """A growth rate with its sign (``+10.0%``)."""
    return pct(x, 1, sign=True)


def warm_up_list(orders, result: "PromotionResult", as_of=None, engine=None) -> pd.DataFrame:
    """Old customers to warm up: bought in last year's promotion period and not since.

    "Since" runs from the day after last year's period to ``as_of`` (default: the day
    before this year's warm-up, or the observation end if earlier). One column,
    ``customer_id``, largest spenders in last year's promotion first (ids only)."""
    o = order_table(orders, engine, None)
    s0, e0 = result.last_year_period
    if as_of is None:
        wu = {p.name: p for p in result.phases}.get("warm_up")
        start = result.date + pd.Timedelta(days=wu.start) if wu else result.date
        as_of = min(start - pd.Timedelta(days=1), pd.Timestamp(o.observation_end).normalize())
    as_of = pd.Timestamp(as_of).normalize()
    p = paid_orders(o)
    p = p.mutate(day=p.order_time.date())
    p = p.filter(p.day <= _d(as_of))
    in_promo = p.day.between(_d(s0), _d(e0))
    c = p.group_by("customer_id").aggregate(promo=p.customer_id.count(where=in_promo),
                                            promo_sales=p.amount.sum(where=in_promo),
                                            after=p.customer_id.count(where=p.day > _d(e0)))
    out = o.engine.to_pandas(c.filter((c.promo > 0) & (c.after == 0)).select("customer_id", "promo_sales"))
    out["customer_id"] = out["customer_id"].astype(str)
    out = out.sort_values(["promo_sales", "customer_id"], ascending=[False, True])[["customer_id"]]
    out = out.reset_index(drop=True)
    out.attrs["as_of"] = as_of
    return out
