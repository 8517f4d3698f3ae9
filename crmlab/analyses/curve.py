"""The X-order repurchase curve, censoring-aware, and the time to the next order.

For each order count k, of customers with k paid orders, the share whose order k+1 comes
within ``window_days``. Customers whose k-th order is less than ``window_days`` before the
observation end have not had the whole window: they are left out of k's denominator (not
counted as "did not come back", which is what the naive curve does and why it is biased
low for recent customers). A Kaplan-Meier estimate of time to the next order
(:func:`kaplan_meier`, on :mod:`crmlab.stats.survival`, the one KM in crmlab) uses those
recent customers too, censored at the observation end.

Customers first seen in a lead-in (before ``OrderTable.history_start``) are left out
(:func:`~crmlab.engine.aggregates.cohort_sequence`): the export does not show their earlier
orders, so their order counts are unknown.

The magic number read off the curve is in :mod:`crmlab.analyses.magic_rules`; everything
is importable from :mod:`crmlab.analyses.magic`.
"""
from __future__ import annotations

from dataclasses import field
from typing import Sequence

import ibis
import numpy as np
import pandas as pd

from crmlab.engine.sources import order_table
from crmlab.engine.aggregates import cohort_sequence, ts
from crmlab.present.figures import repurchase_curve_figure
from crmlab.present.formatting import interval, number, pct
from crmlab.present.result import Card, Result, result
from crmlab.settings import Settings, current
from crmlab.stats.proportion import wilson
from crmlab.stats.survival import km_factors, km_survival

__all__ = ["RepurchaseCurve", "repurchase_curve", "kaplan_meier", "time_to_next_order"]


@result
class RepurchaseCurve(Result):
    """The X-order repurchase curve.

    ``table`` has one row per k: ``customers`` (with >= k orders), ``at_risk``,
    ``repurchased``, ``rate``, ``ci_low``, ``ci_high`` (Wilson 95%), ``naive_rate``
    (customers with >= k+1 orders / customers with >= k, no window, no censoring guard:
    biased low for recent customers), ``km_rate`` (Kaplan-Meier P(next order within the
    window)) and ``enough`` (at_risk >= min_at_risk). ``settings``: the context it was
    computed under (the orders' :class:`~crmlab.settings.Settings`).
    """

    about = "repurchase by order count"

    table: pd.DataFrame
    window_days: int
    observation_end: pd.Timestamp
    min_at_risk: int
    settings: Settings = field(default_factory=current, compare=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per order count k (a copy of ``table``)."""
        return self.table.copy()

    def plot(self, ax=None, magic: int | None = None):
        """The curve with its intervals, the naive curve and Kaplan-Meier
        (:func:`crmlab.present.figures.repurchase_curve_figure`); the new Figure, or ``ax`` when given."""
        return repurchase_curve_figure(self, magic, ax=ax)

    def to_records(self) -> list[dict]:
        """The curve as JSON-ready records (``k``, counts as int, rates as float or None)."""
        cols = ["k", "at_risk", "repurchased", "rate", "ci_low", "ci_high", "naive_rate", "km_rate", "customers"]
        return [{c: (None if pd.isna(v) else (int(v) if c in ("k", "at_risk", "repurchased", "customers")
                                                else float(v))) for c, v in r.items()}
                for r in self.table.reset_index()[cols].to_dict("records")]

    def _as_dict(self) -> dict:
        return {"window_days": self.window_days, "observation_end": self.observation_end,
                "min_at_risk": self.min_at_risk, "curve": self.to_records()}

    def _card(self) -> Card:
        t = self.table
        ok = t[t["enough"] & t["rate"].notna()]
        head = ", ".join(f"{pct(r, 0)} after {int(k)} order{'s' if k > 1 else ''}"
                         for k, r in zip(ok["k"].head(3), ok["rate"].head(3)))
        finding = (f"P(order k+1 within {self.window_days} days): {head} (censoring-aware)" if len(ok) else
                   f"no order count has {self.min_at_risk} customers with a full {self.window_days}-day window")
        shown = t[t["at_risk"] > 0]
        tab = pd.DataFrame({"at risk": shown["at_risk"].map(number), "repurchased": shown["repurchased"].map(number),
                            "rate": shown["rate"].map(pct),
                            f"{self.fmt.level(0.95)} CI": [interval(a, b) for a, b in
                                                          zip(shown["ci_low"], shown["ci_high"])],
                            "naive": shown["naive_rate"].map(pct), "Kaplan-Meier": shown["km_rate"].map(pct)},
                           index=pd.Index(shown["k"].astype(int), name="k orders"))
        few = int((~shown["enough"]).sum())
        cap = "naive: ≥k+1 / ≥k orders, biased low for recent customers" + (
            f"; {few} order count(s) with fewer than {self.min_at_risk} at risk" if few else "")
        return Card("RepurchaseCurve", f"repurchase within {self.window_days} days by order count", finding, tab,
                    cap, settings=self.footer(self.observation_end),
                    hint=".plot(); crmlab.magic_number(curve)")


def repurchase_curve(orders, window_days: int = 90, max_k: int = 10, observation_end=None,
                     min_at_risk: int = 50, engine=None) -> RepurchaseCurve:
    """The censoring-aware X-order repurchase curve for k = 1..max_k (see the module doc).

    At risk: customers with at least k paid orders whose k-th order is at least
    ``window_days`` before the observation end. Repurchased: those whose order k+1 comes
    within ``window_days`` of order k (inclusive). One aggregate per k in the engine.
    """
    o = order_table(orders, engine, observation_end)
    end = o.observation_end
    s = cohort_sequence(o)  # customers first seen in a lead-in have unknown order counts
    # the sequence (a window over every paid order) once, for the counts and for the KM
    s = s.filter(s.k <= max_k).select("k", "order_time", "next_time").cache()
    try:
        return _curve(o, s, end, window_days, max_k, min_at_risk)
    finally:
        s.release()


def _curve(o, s: ibis.Table, end, window_days: int, max_k: int, min_at_risk: int) -> RepurchaseCurve:
    W = pd.Timedelta(days=window_days)
    has_next = s.next_time.notnull()
    at_risk = s.order_time <= ts(end - W)
    within = (s.next_time.epoch_seconds() - s.order_time.epoch_seconds()) <= int(W.total_seconds())
    agg = s.group_by("k").aggregate(customers=s.k.count(), at_risk=at_risk.cast("int64").sum(),
                                    repurchased=(at_risk & has_next & within).cast("int64").sum(),
                                    with_next=has_next.cast("int64").sum())
    small = o.engine.to_pandas(agg).set_index("k").reindex(range(1, max_k + 1), fill_value=0)
    km = _km_of_sequence(o, s, max_k, window_days)
    df = pd.DataFrame({"k": small.index.to_numpy(), "customers": small["customers"].to_numpy()})
    for c in ("at_risk", "repurchased"):
        df[c] = small[c].to_numpy()
    n = df["customers"].to_numpy()
    df["naive_rate"] = np.where(n > 0, small["with_next"].to_numpy() / np.maximum(n, 1), np.nan)
    at_w = km[km["day"] == window_days].set_index("k")["p_next"]
    df["km_rate"] = np.where(n >= 2, at_w.reindex(df["k"]).to_numpy(), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        df["rate"] = np.where(df["at_risk"] > 0, df["repurchased"] / df["at_risk"].where(df["at_risk"] > 0), np.nan)
    df["ci_low"], df["ci_high"] = wilson(df["repurchased"], df["at_risk"])
    df["enough"] = df["at_risk"] >= min_at_risk
    df = df[["k", "customers", "at_risk", "repurchased", "rate", "ci_low", "ci_high", "naive_rate", "km_rate",
             "enough"]].set_index("k", drop=False).rename_axis(None)
    return RepurchaseCurve(df, window_days, end, min_at_risk, o.settings)


def kaplan_meier(orders, max_k: int, horizon_days: int, engine=None) -> pd.DataFrame:
    """Kaplan–Meier P(order k+1 by day d after order k), censored at the observation end.

    The one KM in crmlab: subjects from the engine's order sequence (each paid order
    k <= ``max_k``; its duration the gap to the next order, an event, or to the observation
    end, censored), per-(k, day) log factors in the engine (:func:`km_factors`), and the
    product on a daily grid 0..``horizon_days`` here (:func:`km_survival`). Returns a long
    DataFrame ``k, day, p_next`` (1 − survival).
    """
    o = order_table(orders, engine)
    s = cohort_sequence(o)  # customers first seen in a lead-in have unknown order counts
    return _km_of_sequence(o, s.filter(s.k <= max_k), max_k, horizon_days)


def _km_of_sequence(o, s: ibis.Table, max_k: int, horizon_days: int) -> pd.DataFrame:
    event = s.next_time.notnull()
    secs = ibis.ifelse(event, s.next_time.epoch_seconds(), ts(o.observation_end).epoch_seconds()) \
        - s.order_time.epoch_seconds()
    subj = s.select(group=s.k, dur=secs.cast("float64") / 86400.0, event=event.cast("int64"))
    f = o.engine.to_pandas(km_factors(subj, horizon_days))
    return km_survival(f, range(1, max_k + 1), horizon_days).rename(columns={"group": "k"})



def time_to_next_order(orders, ks: Sequence[int] = (1, 2, 3, 4, 5), observation_end=None,
                       horizon_days: float = 365, engine=None) -> pd.DataFrame:
    """Kaplan-Meier P(next order by day d) after the k-th order, censored at the observation end.

    Returns a long DataFrame ``k, day, p_next`` (1 - survival) on a daily grid up to
    ``horizon_days``, for the ``ks`` with at least two customers.
    """
    o = order_table(orders, engine, observation_end)
    counts = o.engine.to_pandas(cohort_sequence(o).k.value_counts())
    n_k = dict(zip(counts.iloc[:, 0], counts.iloc[:, 1]))
    km = kaplan_meier(o, max(ks), int(horizon_days))
    keep = [k for k in ks if n_k.get(k, 0) >= 2]
    return km[km["k"].isin(keep)].reset_index(drop=True)
