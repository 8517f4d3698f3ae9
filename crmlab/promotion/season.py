"""The promotion season: its day, phases and calendar, the day-by-day series, the charts.

A promotion is a day D and phases given as whole-day offsets from it (store-local
calendar days, inclusive): build-up 蓄势 D−71…D−12, warm-up 预热 D−10…D−1, the day 冲刺 D,
after-glow 余温 D+1…D+3 by default. This module parses them (bad input raises
:class:`~crmlab.ingest.readers.CrmlabInputError` naming the argument), builds the daily sales series
around D in the engine (this year and last year aligned on D) and draws the season.
:mod:`crmlab.promotion.plan` does the plan and the review.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import ibis
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from crmlab.engine import order_table
from crmlab.engine.aggregates import day_number, paid_orders
from crmlab.present.figures import COLORS, _fig, style
from crmlab.ingest.readers import CrmlabInputError

__all__ = ["Phase", "DEFAULT_PHASES", "DEFAULT_PHASES_SPEC", "PHASE_LABELS", "parse_date", "parse_phases",
           "parse_growth", "default_date", "span", "promotion_daily", "season_figure", "split_figure"]

DEFAULT_PHASES_SPEC = "build_up=-71:-12,warm_up=-10:-1,day=0:0,after_glow=1:3"
PHASE_LABELS = {"build_up": "蓄势 build-up", "warm_up": "预热 warm-up", "day": "冲刺 the day",
                "after_glow": "余温 after-glow", "period": "整个大促 whole period"}
_RESERVED = {"period", "assumptions", "all", "new", "old"}

@dataclass(frozen=True)
class Phase:
    """A phase: ``name`` and its first and last day as offsets from the promotion day."""

    name: str
    start: int
    end: int

    def days(self, day: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
        return day + pd.Timedelta(days=self.start), day + pd.Timedelta(days=self.end)


# ----------------------------------------------------------------------------- arguments

def parse_date(value, arg: str = "--date", year: int | None = None) -> pd.Timestamp:
    """A calendar day: ``2025-11-11`` (or ``11-11`` / ``06-18`` in ``year``). Midnight, naive."""
    text = str(value).strip() if value is not None else ""
    if year is not None and re.fullmatch(r"\d{1,2}-\d{1,2}", text):
        text = f"{year}-{text}"
    try:
        t = pd.Timestamp(text)
        if pd.isna(t) or not text:
            raise ValueError
    except (ValueError, TypeError, OverflowError):
        raise CrmlabInputError(f"{arg}: cannot read {value!r} as a date (expected YYYY-MM-DD, "
                               f"e.g. 2025-11-11)") from None
    if t.tzinfo is not None:
        t = t.tz_localize(None)
    if not 1700 <= t.year <= 2200:  # phases around the day must stay inside pandas' nanosecond range
        raise CrmlabInputError(f"{arg}: {str(value)[:80]!r} is outside the years crmlab plans for (1700 to 2200)")
    return t.normalize().as_unit("ns")


def default_date(observation_end=None, today=None, month_day: str = "11-11") -> pd.Timestamp:
    """This year's 11-11: the observation end's year when the export ends before today."""
    now = pd.Timestamp(today) if today is not None else pd.Timestamp.now()
    year = now.year
    if observation_end is not None and pd.Timestamp(observation_end) < now:
        year = pd.Timestamp(observation_end).year
    return pd.Timestamp(f"{year}-{month_day}")


def parse_phases(spec=None) -> tuple[Phase, ...]:
    """``name=start:end,...`` (day offsets from D, inclusive), a mapping, or Phase objects.

    Empty or None gives :data:`DEFAULT_PHASES`. Phases are sorted by start and may not
    overlap (a day belongs to at most one phase)."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        spec = DEFAULT_PHASES_SPEC
    items: list[Phase] = []
    if isinstance(spec, str):
        for part in [x.strip() for x in spec.split(",") if x.strip()]:
            m = re.fullmatch(r"([^\s=:,]+)\s*=\s*([+-]?\d+)\s*:\s*([+-]?\d+)", part)
            if not m:
                raise CrmlabInputError(f"--phases: expected name=start:end day offsets from the promotion day "
                                       f"(e.g. warm_up=-10:-1), got {part!r}")
            items.append(Phase(m.group(1), int(m.group(2)), int(m.group(3))))
    else:
        pairs = spec.items() if isinstance(spec, dict) else spec
        for p in pairs:
            if isinstance(p, Phase):
                items.append(p)
                continue
            name, rng = (p[0], p[1:]) if len(p) == 3 else p
            items.append(Phase(str(name), int(rng[0]), int(rng[1])))
    if not items:
        raise CrmlabInputError("--phases: no phase given")
    names = [p.name for p in items]
    for p in items:
        if p.start > p.end:
            raise CrmlabInputError(f"--phases: {p.name} starts after it ends ({p.start}:{p.end})")
        if p.name in _RESERVED:
            raise CrmlabInputError(f"--phases: {p.name!r} is a reserved word; choose another phase name")
    if len(set(names)) < len(names):
        raise CrmlabInputError(f"--phases: a phase name is repeated ({', '.join(names)})")
    items.sort(key=lambda p: p.start)
    for a, b in zip(items, items[1:]):
        if b.start <= a.end:
            raise CrmlabInputError(f"--phases: {a.name} ({a.start}:{a.end}) and {b.name} ({b.start}:{b.end}) "
                                   "overlap; a day belongs to at most one phase")
    return tuple(items)


DEFAULT_PHASES = parse_phases(DEFAULT_PHASES_SPEC)


def parse_growth(spec=None) -> dict[str, float]:
    """``new=0.1,old=0.2`` (or ``new=10%``) or a mapping; types not given are estimated."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return {}
    if isinstance(spec, str):
        pairs = []
        for part in [x.strip() for x in spec.split(",") if x.strip()]:
            k, eq, v = part.partition("=")
            if not eq:
                raise CrmlabInputError(f"--growth: expected new=RATE,old=RATE (e.g. new=0.1,old=0.2), got {part!r}")
            pairs.append((k.strip(), v.strip()))
    else:
        pairs = list(dict(spec).items())
    out: dict[str, float] = {}
    for k, v in pairs:
        if k not in ("new", "old"):
            raise CrmlabInputError(f"--growth: customer type must be new or old, got {k!r}")
        try:
            s = str(v).strip()
            g = float(s[:-1]) / 100 if s.endswith("%") else float(s)
        except ValueError:
            raise CrmlabInputError(f"--growth: {k}={v!r} is not a number (e.g. {k}=0.1 or {k}=10%)") from None
        if not np.isfinite(g) or g <= -1:
            raise CrmlabInputError(f"--growth: {k}={v!r} must be a finite rate above -1 (-100%)")
        out[k] = g
    return out


# ----------------------------------------------------------------------------- engine aggregates

def _d(t) -> ibis.Expr:
    return day_number(t)


def _paid_with_first(o) -> ibis.Table:
    """Paid orders with ``day`` (calendar date) and the customer's ``first_day`` (first paid order ever)."""
    p = paid_orders(o)
    first = p.group_by("customer_id").aggregate(first_day=p.order_time.min().date())
    j = p.join(first, "customer_id")
    return j.mutate(day=j.order_time.date())


def span(day, phases) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The promotion period: the first phase's first day to the last phase's last day."""
    return day + pd.Timedelta(days=phases[0].start), day + pd.Timedelta(days=max(p.end for p in phases))


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
                  ax=None) -> Figure:
    """Daily paid sales over the season, this year and last year aligned on D, phases shaded.

    ``daily`` from :func:`promotion_daily`; ``window`` = (first, last) offset to zoom on."""
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
        ax.set_ylabel("paid sales per day ¥")
        what = "the whole season" if window is None else f"D{window[0]:+d} to D{window[1]:+d}"
        ax.set_title(f"大促节奏 Daily sales, this year vs last year aligned on D ({what})")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, 0.86))
    return fig


def split_figure(this_year: pd.DataFrame, last_year: pd.DataFrame, metric: str = "sales",
                 labels: dict | None = None, ax=None) -> Figure:
    """New vs old per phase (stacked), last year beside this year, with the old share on top.

    ``this_year`` / ``last_year``: indexed by (phase, type) as in
    :class:`crmlab.promotion.plan.PromotionResult`."""
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
        ax.set_ylabel(metric + (" ¥" if metric == "sales" else ""))
        ax.set_title(f"新老客拆分 {metric} by phase, new vs old (old share on top)")
        ax.legend(fontsize=8, ncol=2)
    return fig


def attainment_style(review: pd.DataFrame):
    """A pandas Styler of a review table: columns naming ``attainment`` coloured (green at or
    above 100%, amber from 90%, red below) and shown as percentages, as are ``change`` columns."""
    def colour(v):
        if pd.isna(v):
            return ""
        return ("background-color:#d9f0dd" if v >= 1 else "background-color:#fff1cc" if v >= 0.9
                else "background-color:#fbdada")

    att = [c for c in review.columns if "attainment" in str(c)]
    fmt = {c: "{:.1%}" for c in review.columns if c in att or "change" in str(c)}
    fmt.update({c: "{:,.2f}" for c in review.columns if c not in fmt})
    st = review.style.format(fmt, na_rep="—")
    return st.map(colour, subset=att) if att else st


# ----------------------------------------------------------------------------- tables for the report

def plan_table(result) -> pd.DataFrame:
    """Last year and this year's target per (phase, type): buyers, orders, sales, AOV, per-buyer figures."""
    ly, t = result.last_year, result.plan
    cols = {}
    for m in ("buyers", "orders", "sales"):
        cols[f"{m} last year"], cols[f"{m} target"] = ly[m], t[m]
    for m in ("aov", "orders_per_buyer", "units_per_buyer"):
        cols[m] = t[m]
    out = pd.DataFrame(cols)
    return out if result.has_units else out.drop(columns=["units_per_buyer"])


def review_table(result, metrics=("buyers", "orders", "sales")) -> pd.DataFrame | None:
    """Per (phase, type): target, actual, attainment and change vs last year of ``metrics``."""
    rv = result.review
    if rv is None:
        return None
    metrics = [m for m in metrics if result.has_units or "units" not in m]
    out = {}
    for m in metrics:
        r = rv.xs(m, level="metric")
        for c, name in (("target", "target"), ("actual", "actual"), ("attainment", "attainment"),
                        ("change_vs_last_year", "change vs last year")):
            out[f"{m} {name}"] = r[c]
    return pd.DataFrame(out)
