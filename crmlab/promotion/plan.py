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
* Plan: last year's figures × (1 + growth) per customer type. Growth is given or
  estimated: new buyers acquired in the 12 months before the period vs the 12 before
  that; old: this year's active old base (a paid order in the 365 days before the period)
  vs last year's, i.e. last year's participation rate (old buyers / active base) applied
  to this year's base. Cross-checked against the BG/NBD expected purchases of the base.
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
from crmlab.schema import CrmlabInputError

__all__ = ["Phase", "PromotionResult", "DEFAULT_PHASES", "PHASE_LABELS", "METRICS", "TYPES", "parse_date",
           "parse_phases", "parse_growth", "default_date", "analyse_promotion", "promotion_daily",
           "warm_up_list"]


def _figures(o, days: dict[str, pd.Timestamp], phases) -> pd.DataFrame:
    """Per year × phase (and ``period``) × new/old: buyers, orders, sales, units — one query."""
    t = _paid_with_first(o)
    qty = o.has("quantity")
    parts = []
    for label, day in days.items():
        s, e = span(day, phases)
        y = t.filter(t.day.between(_d(s), _d(e)))
        phase = ibis.cases(*[(y.day.between(_d(a), _d(b)), p.name) for p in phases for a, b in [p.days(day)]],
                           else_=ibis.null("string"))
        y = y.mutate(year=ibis.literal(label), type=ibis.ifelse(y.first_day >= _d(s), "new", "old"), phase=phase)
        aggs = {"buyers": y.customer_id.nunique(), "orders": y.customer_id.count(), "sales": y.amount.sum()}
        if qty:
            aggs["units"] = y.quantity.sum().cast("float64")
        keys = ["year", "phase", "type"]
        parts.append(y.filter(y.phase.notnull()).group_by(keys).aggregate(**aggs))
        parts.append(y.mutate(phase=ibis.literal("period")).group_by(keys).aggregate(**aggs))
    raw = o.engine.to_pandas(ibis.union(*parts))
    names = [p.name for p in phases] + ["period"]
    idx = pd.MultiIndex.from_product([list(days), names, ["new", "old"]], names=["year", "phase", "type"])
    raw = raw.set_index(["year", "phase", "type"]).reindex(idx)
    out = pd.DataFrame({"buyers": raw["buyers"].fillna(0).astype(int), "orders": raw["orders"].fillna(0).astype(int),
                        "sales": raw["sales"].astype(float).fillna(0.0),
                        "units": raw["units"].astype(float).fillna(0.0) if qty else np.nan}, index=idx)
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
    (a paid order in the 365 days before ``cut`` / ``cut_last``); the first paid order day."""
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
    r = o.engine.to_pandas(new.cross_join(act)).iloc[0]
    out = {k: int(r[k]) if pd.notna(r[k]) else 0 for k in ("new_recent", "new_before", "active_this", "active_last")}
    out["first_day"] = None if pd.isna(r["first_day"]) else pd.Timestamp(r["first_day"])
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
        ``"new=0.1,old=0.2"``; a type not given is estimated.
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
    rate, source, part = _growth(given, b, last_y, notes)
    notes += _coverage_notes(b, source, s0, o.has("quantity"))
    plan = _plan(counts.loc["last"], rate, ph)
    check = None
    if clv_check:
        check = _checked(o, {"this_year": cut, "last_year": cut_last}, {"this_year": (s1, e1), "last_year": (s0, e0)},
                         float(plan.at[("period", "old"), "orders"]), float(last_y.at[("period", "old"), "orders"]),
                         notes)
    bases = {k: v for k, v in b.items() if k != "windows"}
    bases["participation"] = None if part is None else part.to_dict()
    return PromotionResult(day, last, ph, end, this, last_y, plan, rate, source, tuple(notes), bases, check,
                           o.has("quantity"), o.settings)


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


def _growth(given: dict, b: dict, last_y: pd.DataFrame, notes: list[str]):
    """Growth per customer type (given, estimated or 0), its source, and last year's participation;
    the reasoning appended to ``notes``."""
    rate, source, w = {}, {}, b["windows"]
    if "new" in given:
        rate["new"], source["new"] = given["new"], "given"
        notes.append(f"New-buyer growth {_pct(given['new'])}: given.")
    elif b["new_before"] > 0:
        rate["new"], source["new"] = b["new_recent"] / b["new_before"] - 1, "estimated"
        notes.append(f"New-buyer growth {_pct(rate['new'])}, estimated: {b['new_recent']:,} customers placed their "
                     f"first paid order in the 12 months {_window(w, 'new_recent')} vs {b['new_before']:,} in "
                     f"{_window(w, 'new_before')}.")
    else:
        rate["new"], source["new"] = 0.0, "no history"
        notes.append(f"New-buyer growth 0%: no first orders in {_window(w, 'new_before')} to compare with.")
    part = last_y.xs("old", level="type")["buyers"] / b["active_last"] if b["active_last"] else None
    if "old" in given:
        rate["old"], source["old"] = given["old"], "given"
        notes.append(f"Old-buyer growth {_pct(given['old'])}: given.")
    elif b["active_last"] > 0:
        rate["old"], source["old"] = b["active_this"] / b["active_last"] - 1, "estimated"
        notes.append(f"Old-buyer growth {_pct(rate['old'])}, estimated: this year's active old base (a paid order "
                     f"in the 365 days {_window(w, 'active_this')}) is {b['active_this']:,} customers vs "
                     f"{b['active_last']:,} last year ({_window(w, 'active_last')}); last year's participation (old "
                     "buyers per active-base customer) applied to this year's base: "
                     + ", ".join(f"{k} {pct(v, 1)}" for k, v in part.items()) + ".")
    else:
        rate["old"], source["old"] = 0.0, "no history"
        notes.append(f"Old-buyer growth 0%: no active old base in {_window(w, 'active_last')} to compare with.")
    return rate, source, part


def _coverage_notes(b: dict, source: dict, s0: pd.Timestamp, has_quantity: bool) -> list[str]:
    """Where the export does not cover what the figures need."""
    notes, fd, w = [], b["first_day"], b["windows"]
    if fd is not None and fd > s0:
        notes.append(f"The export's first paid order is on {fd:%Y-%m-%d}, after last year's period started: last "
                     "year's figures, and the targets built on them, are understated.")
    for k, typ, what in (("new_before", "new", "the earlier new-buyer window"),
                         ("active_last", "old", "last year's active-base window")):
        if fd is not None and source[typ] == "estimated" and fd > w[k][0]:
            notes.append(f"The export's first paid order is on {fd:%Y-%m-%d}, inside {what} ({_window(w, k)}): it "
                         f"is not fully covered, so {typ}-buyer growth is overstated.")
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
