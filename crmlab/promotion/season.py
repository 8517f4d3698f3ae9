"""The promotion season: its day, phases and calendar, the day-by-day series, the charts.

A promotion is a day D and phases given as whole-day offsets from it (store-local
calendar days, inclusive; parsed in :mod:`crmlab.promotion.calendar`, whose names this
module re-exports). This module builds the daily sales series around D in the engine (this
year and last year aligned on D), draws the season (money axes in the currency of the
settings given, else the session's) and styles the review table.
:mod:`crmlab.promotion.plan` does the plan and the review.
"""
from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from crmlab.engine.sources import order_table
from crmlab.engine.aggregates import day_number, paid_orders
from crmlab.present.figures import COLORS, _fig, style
from crmlab.present.formatting import MISSING, Formatter, integer, number, pct
from crmlab.promotion.calendar import (DEFAULT_PHASES, DEFAULT_PHASES_SPEC, PHASE_LABELS, Phase, default_date,
                                       parse_date, parse_growth, parse_phases, span)
from crmlab.settings import Settings

__all__ = ["Phase", "DEFAULT_PHASES", "DEFAULT_PHASES_SPEC", "PHASE_LABELS", "parse_date", "parse_phases",
           "parse_growth", "default_date", "span", "promotion_daily", "season_figure", "split_figure",
           "attainment_figure", "attainment_style", "plan_table", "review_table", "in_words", "WORDS",
           "TYPE_WORDS"]


# ----------------------------------------------------------------------------- engine aggregates

def _d(t) -> ibis.Expr:
    return day_number(t)


def _paid_with_first(o) -> ibis.Table:
    """Paid orders with ``day`` (calendar date) and the customer's ``first_day`` (first paid order ever)."""
    p = paid_orders(o)
    first = p.group_by("customer_id").aggregate(first_day=p.order_time.min().date())
    j = p.join(first, "customer_id")
    return j.mutate(day=j.order_time.date())


def promotion_daily(orders, date, last_year_date=None, phases=None, pad_days: int = 7, engine=None,
                    observation_end=None) -> pd.DataFrame:
    """Paid sales and orders per day of the season, this year and last year aligned on D.

    Index ``offset`` (days from D: first phase's start − ``pad_days`` … last phase's end +
    ``pad_days``); columns ``sales_this``, ``sales_last``, ``orders_this``, ``orders_last``,
    ``old_sales_this``, ``old_sales_last`` (old = first paid order before that year's
    period start) and ``date_this`` / ``date_last``. Days after the observation end are NaN.
    """
    o = order_table(orders, engine, observation_end)
    phases = parse_phases(phases)
    day = parse_date(date)
    last = (parse_date(last_year_date, "--last-year-date") if last_year_date is not None
            else day - pd.DateOffset(years=1))
    lo, hi = phases[0].start - pad_days, max(p.end for p in phases) + pad_days
    t = _paid_with_first(o)
    parts = []
    for label, dd in (("this", day), ("last", last)):
        s = dd + pd.Timedelta(days=phases[0].start)
        y = t.filter(t.day.between(_d(dd + pd.Timedelta(days=lo)), _d(dd + pd.Timedelta(days=hi))))
        y = y.mutate(year=ibis.literal(label), offset=y.day.delta(_d(dd), unit="day"))
        parts.append(y.group_by(["year", "offset"]).aggregate(sales=y.amount.sum(), orders=y.customer_id.count(),
                                                             old_sales=y.amount.sum(where=y.first_day < _d(s))))
    raw = o.engine.to_pandas(ibis.union(*parts))
    offsets = pd.RangeIndex(lo, hi + 1, name="offset")
    out = pd.DataFrame(index=offsets)
    end_day = pd.Timestamp(o.observation_end).normalize()
    for label, dd in (("this", day), ("last", last)):
        r = raw[raw["year"] == label].set_index("offset").reindex(offsets)
        dates = pd.DatetimeIndex([dd + pd.Timedelta(days=int(k)) for k in offsets])
        seen = np.asarray(dates <= end_day)
        out[f"date_{label}"] = dates
        out[f"sales_{label}"] = np.where(seen, r["sales"].astype(float).fillna(0.0), np.nan)
        out[f"orders_{label}"] = np.where(seen, r["orders"].astype(float).fillna(0.0), np.nan)
        out[f"old_sales_{label}"] = np.where(seen, r["old_sales"].astype(float).fillna(0.0), np.nan)
    return out


# ----------------------------------------------------------------------------- figures

def _axes(ax, w: float, h: float):
    if ax is not None:
        return ax.figure, ax
    return _fig(w, h)


def _plain(ax, axis: str = "y") -> None:
    """Whole numbers with thousands separators on ``axis``: no scientific offset (``1e6``)."""
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _shade(ax, phases, labels: dict | None, lo: float, hi: float) -> None:
    width, last_x, level = hi - lo, None, 0
    for i, p in enumerate(phases):
        ax.axvspan(p.start - 0.5, p.end + 0.5, color=COLORS[i % len(COLORS)], alpha=0.12, lw=0)
        x = (max(p.start, lo) + min(p.end, hi)) / 2
        seen = (min(p.end, hi) - max(p.start, lo) + 1) / (width + 1)
        whole = lo <= p.start and p.end <= hi
        if not ((whole and seen >= 0.04) or seen >= 0.1):  # too narrow here: the zoom names it
            continue
        level = 1 - level if last_x is not None and x - last_x < 0.15 * width else 0
        last_x = x
        ax.text(x, 0.98 - 0.065 * level, (labels or {}).get(p.name, p.name), transform=ax.get_xaxis_transform(),
                ha="center", va="top", fontsize=8, color="#444")


def season_figure(daily: pd.DataFrame, phases, labels: dict | None = None, window: tuple[int, int] | None = None,
                  ax=None, settings: Settings | None = None) -> Figure:
    """Daily paid sales over the season, this year and last year aligned on D, phases shaded.

    ``daily`` from :func:`promotion_daily`; ``window`` = (first, last) offset to zoom on;
    ``settings``: whose currency labels the sales axis (default: the session's)."""
    d = daily if window is None else daily.loc[window[0]:window[1]]
    with style():
        fig, ax = _axes(ax, 10, 4.2)
        x = d.index.to_numpy()
        ax.plot(x, d["sales_last"], color="#999999", lw=1.3, marker="." if window else None, label="去年 last year")
        ax.plot(x, d["sales_this"], color=COLORS[0], lw=1.8, marker="." if window else None, label="今年 this year")
        ax.plot(x, d["old_sales_this"], color=COLORS[1], lw=1.0, ls="--", label="今年老客 this year, old customers")
        lo, hi = float(x.min()), float(x.max())
        _shade(ax, phases, labels, lo, hi)
        ax.set_xlim(lo - 0.5, hi + 0.5)
        step = max(1, int(np.ceil((hi - lo) / 12)))
        step = 7 * int(np.ceil(step / 7)) if step > 3 else step
        ticks = [t for t in range(int(hi) - (int(hi) % step) - step * 40, int(hi) + 1, step) if lo <= t <= hi]
        dates = d["date_this"]
        ax.set_xticks(ticks, [(f"D{t:+d}" if t else "D") + f"\n{dates.loc[t]:%m-%d}" for t in ticks], fontsize=8)
        vals = d[["sales_this", "sales_last"]].to_numpy(float)
        top = np.nanmax(vals) if np.isfinite(vals).any() else 1.0
        ax.set_ylim(0, 1.3 * (top or 1.0))  # headroom for the phase names and the legend
        _plain(ax)
        ax.set_ylabel(f"paid sales per day {Formatter(settings).axis_money()}")
        what = "the whole season" if window is None else f"D{window[0]:+d} to D{window[1]:+d}"
        ax.set_title(f"大促节奏 Daily sales, this year vs last year aligned on D ({what})")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, 0.86))
    return fig


def split_figure(this_year: pd.DataFrame, last_year: pd.DataFrame, metric: str = "sales",
                 labels: dict | None = None, ax=None, settings: Settings | None = None) -> Figure:
    """New vs old per phase (stacked), last year beside this year, with the old share on top.

    ``this_year`` / ``last_year``: indexed by (phase, type) as in
    :class:`crmlab.promotion.review.PromotionResult`; ``settings``: whose currency labels a
    sales axis (default: the session's)."""
    phases = [p for p in dict.fromkeys(this_year.index.get_level_values("phase")) if p != "period"]
    with style():
        fig, ax = _axes(ax, 10, 4.2)
        x = np.arange(len(phases))
        for off, f, alpha, tag in ((-0.2, last_year, 0.45, "去年 last"), (0.2, this_year, 1.0, "今年 this")):
            new = np.array([f.at[(p, "new"), metric] for p in phases], float)
            old = np.array([f.at[(p, "old"), metric] for p in phases], float)
            ax.bar(x + off, old, 0.38, color=COLORS[1], alpha=alpha, label=f"老客 old ({tag})")
            ax.bar(x + off, new, 0.38, bottom=old, color=COLORS[0], alpha=alpha, label=f"新客 new ({tag})")
            tot = new + old
            for xi, t, o in zip(x + off, tot, old):
                if t > 0:
                    ax.text(xi, t, f"{100 * o / t:.0f}%", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, [(labels or {}).get(p, p) for p in phases])
        ax.set_ylabel(metric + (f" {Formatter(settings).axis_money()}" if metric == "sales" else ""))
        _plain(ax)
        ax.set_title(f"新老客拆分 {metric} by phase, new vs old (old share on top)")
        ax.legend(fontsize=8, ncol=2)
    return fig


def attainment_figure(review: pd.DataFrame, phases, metric: str = "sales", labels: dict | None = None,
                      ax=None, settings: Settings | None = None) -> Figure:
    """Attainment (actual / target) of ``metric`` per phase and customer type, each with its
    interval (whiskers), against the 100% line.

    ``review``: :attr:`crmlab.promotion.review.PromotionResult.review`; ``settings``: whose
    interval level names the whiskers (default: the session's)."""
    names = [p.name for p in phases] + ["period"]
    types = (("new", "新客 new", COLORS[0]), ("old", "老客 old", COLORS[1]), ("all", "all buyers", "#444444"))
    with style():
        fig, ax = _axes(ax, 10, 4.2)
        x = np.arange(len(names))
        for off, (typ, label, colour) in zip((-0.22, 0.0, 0.22), types):
            r = review.xs((typ, metric), level=("type", "metric")).reindex(names)
            a = r["attainment"].to_numpy(float)
            lo, hi = r["attainment_low"].to_numpy(float), r["attainment_high"].to_numpy(float)
            ok = np.isfinite(a)
            ax.errorbar(x[ok] + off, a[ok], yerr=[a[ok] - lo[ok], hi[ok] - a[ok]], fmt="o", color=colour,
                        capsize=3, lw=1.2, label=label)
        ax.axhline(1.0, color="#999999", lw=1, ls="--")
        ax.set_xticks(x, [(labels or {}).get(n, PHASE_LABELS.get(n, n)) for n in names], fontsize=8)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
        ax.set_ylabel(f"{metric}: actual / target")
        level = Formatter(settings).interval_name()
        ax.set_title(f"达成率 {metric.capitalize()} attainment per phase, with its {level} (100% = on target)")
        ax.legend(fontsize=8, ncol=3, loc="upper left")
    return fig


def attainment_style(review: pd.DataFrame):
    """A pandas Styler of a review table: columns naming ``attainment`` coloured (green at or
    above 100%, amber from 90%, red below) and shown as percentages, as are ``change`` columns.

    Every value and every index or column label is HTML-escaped (phase names come from a
    parameter): the Styler's HTML carries no markup from the data."""
    def colour(v):
        if pd.isna(v):
            return ""
        return ("background-color:#d9f0dd" if v >= 1 else "background-color:#fff1cc" if v >= 0.9
                else "background-color:#fbdada")

    att = [c for c in review.columns if "attainment" in str(c)]
    fmt = {c: "{:.1%}" for c in review.columns if c in att or "change" in str(c)}
    fmt.update({c: "{:,.2f}" for c in review.columns if c not in fmt})
    st = review.style.format(fmt, na_rep=MISSING, escape="html")
    st = st.format_index(escape="html", axis=0).format_index(escape="html", axis=1)
    return st.map(colour, subset=att) if att else st


# ----------------------------------------------------------------------------- tables for the report

#: the metrics and customer types in words (table headers, row labels)
WORDS = {"buyers": "buyers", "orders": "orders", "sales": "sales", "units": "units", "aov": "average order value",
         "orders_per_buyer": "orders per buyer", "units_per_buyer": "units per buyer"}
TYPE_WORDS = {"new": "新客 new customers", "old": "老客 old customers", "all": "all buyers"}


def _value(f: Formatter, m: str, v) -> str:
    """A figure as a reader sees it: money in the run's currency, counts as whole numbers."""
    if v is None or pd.isna(v):
        return MISSING
    if m in ("sales", "aov"):
        return f.money(v)
    return number(v, 2) if m.endswith("per_buyer") else integer(v)


def in_words(frame: pd.DataFrame, phases) -> pd.DataFrame:
    """``frame`` with its (phase, type) index in words."""
    names = {p.name: PHASE_LABELS.get(p.name, p.name) for p in phases} | {"period": PHASE_LABELS["period"]}
    out = frame.copy()
    out.index = pd.MultiIndex.from_tuples([(names.get(ph, ph), TYPE_WORDS.get(t, t)) for ph, t in frame.index],
                                          names=["phase", "customers"])
    return out


def plan_table(result) -> pd.DataFrame | None:
    """Per (phase, type), in words: last year's buyers, orders and sales, this year's target
    with its plan range (where the actual falls at the run's interval level if the store runs
    as planned), and the ratios that follow. None without a plan. Text cells, formatted."""
    if result.plan is None:
        return None
    ly, t, iv, f = result.last_year, result.plan, result.intervals, Formatter(result.context)
    level = f.level()
    cols = {}
    for m in ("buyers", "orders", "sales"):
        r = iv.xs(m, level="metric")
        cols[f"{WORDS[m]} last year"] = [_value(f, m, v) for v in ly[m]]
        cols[f"{WORDS[m]} target ({level} plan range)"] = [
            f"{_value(f, m, v)} ({_value(f, m, lo)}–{_value(f, m, hi)})"
            for v, lo, hi in zip(t[m], r["target_low"].reindex(t.index), r["target_high"].reindex(t.index))]
    for m in ("aov", "orders_per_buyer") + (("units_per_buyer",) if result.has_units else ()):
        cols[f"{WORDS[m]} target"] = [_value(f, m, v) for v in t[m]]
    return in_words(pd.DataFrame(cols, index=t.index), result.phases)


def review_table(result, metrics=("buyers", "orders", "sales")) -> pd.DataFrame | None:
    """Per (phase, type), in words: target, actual, attainment with its interval and the
    change vs last year of ``metrics``. None before the day or without a plan."""
    rv = result.review
    if rv is None:
        return None
    f = Formatter(result.context)
    metrics = [m for m in metrics if result.has_units or "units" not in m]
    out = {}
    for m in metrics:
        r = rv.xs(m, level="metric")
        out[f"{WORDS[m]} target"] = [_value(f, m, v) for v in r["target"]]
        out[f"{WORDS[m]} actual"] = [_value(f, m, v) for v in r["actual"]]
        out[f"{WORDS[m]} attainment ({f.interval_name()})"] = [
            MISSING if pd.isna(a) else f"{pct(a, 0)} ({pct(lo, 0)}–{pct(hi, 0)})"
            for a, lo, hi in zip(r["attainment"], r["attainment_low"], r["attainment_high"])]
        out[f"{WORDS[m]} vs last year"] = [pct(v, 0, sign=True) for v in r["change_vs_last_year"]]
    idx = rv.xs(metrics[0], level="metric").index
    return in_words(pd.DataFrame(out, index=idx), result.phases)
