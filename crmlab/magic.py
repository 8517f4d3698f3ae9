"""The repurchase magic number (复购魔法数字), computed honestly.

The X-order repurchase curve: for each order count k, of customers with k paid orders,
the share whose order k+1 comes within ``window_days``. Customers whose k-th order is
less than ``window_days`` before the observation end have not had the whole window: they
are left out of k's denominator (not counted as "did not come back", which is what the
naive curve does and why it is biased low for recent customers). A Kaplan-Meier estimate
of time to the next order (statsmodels ``SurvfuncRight``) uses those recent customers
too, censored at the observation end.

The magic number is the order count from which the curve stops rising. Four rules
(:func:`magic_number`); ``plateau`` is the default; when no order count qualifies the
answer is ``None`` with a reason that describes the curve instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import ibis
import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from crmlab.engine import order_table
from crmlab.engine.aggregates import customer_table, km_log_factors, order_sequence, ts
from crmlab.proportion import wilson

__all__ = ["RepurchaseCurve", "MagicNumber", "repurchase_curve", "magic_number", "time_to_next_order",
           "magic_sensitivity", "magic_by_group", "magic_shares", "magic_targets", "kaplan_meier", "RULES"]

RULES = ("plateau", "ztest", "segmented", "tolerance")


@dataclass(frozen=True)
class RepurchaseCurve:
    """The X-order repurchase curve.

    ``table`` has one row per k: ``customers`` (with >= k orders), ``at_risk``,
    ``repurchased``, ``rate``, ``ci_low``, ``ci_high`` (Wilson 95%), ``naive_rate``
    (customers with >= k+1 orders / customers with >= k, no window, no censoring guard:
    biased low for recent customers), ``km_rate`` (Kaplan-Meier P(next order within the
    window)) and ``enough`` (at_risk >= min_at_risk).
    """

    table: pd.DataFrame
    window_days: int
    observation_end: pd.Timestamp
    min_at_risk: int

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_records(self) -> list[dict]:
        cols = ["k", "at_risk", "repurchased", "rate", "ci_low", "ci_high", "naive_rate", "km_rate", "customers"]
        return [{c: (None if pd.isna(v) else (int(v) if c in ("k", "at_risk", "repurchased", "customers")
                                                else float(v))) for c, v in r.items()}
                for r in self.table.reset_index()[cols].to_dict("records")]


@dataclass(frozen=True)
class MagicNumber:
    """The chosen magic number, what every rule says and why."""

    magic_number: int | None
    rule: str
    reason: str | None
    rules: dict
    agree: bool
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"magic_number": self.magic_number, "rule": self.rule, "reason": self.reason,
                "rules": dict(self.rules), "rules_agree": self.agree}


def repurchase_curve(orders, window_days: int = 90, max_k: int = 10, observation_end=None,
                     min_at_risk: int = 50, engine=None) -> RepurchaseCurve:
    """The censoring-aware X-order repurchase curve for k = 1..max_k (see the module doc).

    At risk: customers with at least k paid orders whose k-th order is at least
    ``window_days`` before the observation end. Repurchased: those whose order k+1 comes
    within ``window_days`` of order k (inclusive). One aggregate per k in the engine.
    """
    o = order_table(orders, engine, observation_end)
    end = o.observation_end
    s = order_sequence(o)
    s = s.filter(s.k <= max_k)
    W = pd.Timedelta(days=window_days)
    has_next = s.next_time.notnull()
    at_risk = s.order_time <= ts(end - W)
    within = (s.next_time.epoch_seconds() - s.order_time.epoch_seconds()) <= int(W.total_seconds())
    agg = s.group_by("k").aggregate(customers=s.k.count(), at_risk=at_risk.cast("int64").sum(),
                                    repurchased=(at_risk & has_next & within).cast("int64").sum(),
                                    with_next=has_next.cast("int64").sum())
    small = o.engine.to_pandas(agg).set_index("k").reindex(range(1, max_k + 1), fill_value=0)
    km = kaplan_meier(o, max_k, window_days)
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
    return RepurchaseCurve(df, window_days, end, min_at_risk)


def kaplan_meier(orders, max_k: int, horizon_days: int, engine=None) -> pd.DataFrame:
    """Kaplan–Meier P(order k+1 by day d after order k), censored at the observation end.

    The one KM implementation: the engine returns per-(k, day) log factors
    (:func:`crmlab.engine.aggregates.km_log_factors`); here they accumulate on a daily
    grid 0..``horizon_days``. Returns a long DataFrame ``k, day, p_next`` (1 − survival).
    """
    o = order_table(orders, engine)
    f = o.engine.to_pandas(km_log_factors(o, max_k, horizon_days))
    grid = np.arange(0, int(horizon_days) + 1)
    out = []
    for kk in range(1, max_k + 1):
        g = f[f["k"] == kk]
        lf = np.zeros(len(grid))
        dead = np.zeros(len(grid), bool)
        np.add.at(lf, g["day"].to_numpy(int), g["log_factor"].to_numpy(float))
        dead[g.loc[g["all_failed"] > 0, "day"].to_numpy(int)] = True
        surv = np.where(np.maximum.accumulate(dead), 0.0, np.exp(np.cumsum(lf)))
        out.append(pd.DataFrame({"k": kk, "day": grid, "p_next": 1 - surv}))
    return pd.concat(out, ignore_index=True)


def time_to_next_order(orders, ks: Sequence[int] = (1, 2, 3, 4, 5), observation_end=None,
                       horizon_days: float = 365, engine=None) -> pd.DataFrame:
    """Kaplan-Meier P(next order by day d) after the k-th order, censored at the observation end.

    Returns a long DataFrame ``k, day, p_next`` (1 - survival) on a daily grid up to
    ``horizon_days``, for the ``ks`` with at least two customers.
    """
    o = order_table(orders, engine, observation_end)
    counts = o.engine.to_pandas(order_sequence(o).k.value_counts())
    n_k = dict(zip(counts.iloc[:, 0], counts.iloc[:, 1]))
    km = kaplan_meier(o, max(ks), int(horizon_days))
    keep = [k for k in ks if n_k.get(k, 0) >= 2]
    return km[km["k"].isin(keep)].reset_index(drop=True)


# ----------------------------------------------------------------------------- rules

def _usable(curve: RepurchaseCurve | pd.DataFrame, min_at_risk: int) -> pd.DataFrame:
    t = curve.table if isinstance(curve, RepurchaseCurve) else curve
    u = t[t["at_risk"] >= min_at_risk]
    # only the unbroken run from the smallest k: a gap in the middle ends the usable curve
    ks = u["k"].to_numpy()
    if len(ks):
        stop = np.flatnonzero(np.diff(ks) != 1)
        if len(stop):
            u = u.iloc[: stop[0] + 1]
    return u


def _homogeneous(u: pd.DataFrame, alpha: float, tolerance: float) -> tuple[bool, float]:
    x = u["repurchased"].to_numpy(float)
    n = u["at_risk"].to_numpy(float)
    table = np.vstack([x, n - x])
    if (table.sum(axis=1) == 0).any():
        p = 1.0
    else:
        p = stats.chi2_contingency(table, correction=False)[1]
    pooled = x.sum() / n.sum()
    # "within tolerance" judged with sampling error: no rate's 95% interval lies wholly
    # outside pooled +/- tolerance (a point estimate from 60 customers is +/- 0.12 anyway)
    lo, hi = wilson(x, n)
    flat = bool(np.all((hi >= pooled - tolerance) & (lo <= pooled + tolerance)))
    return (p >= alpha) and flat, float(p)


def _rule_plateau(u, alpha, tolerance):
    ks = u["k"].tolist()
    for i, k in enumerate(ks):
        rest = u.iloc[i:]
        if len(rest) < 3:
            break
        ok, p = _homogeneous(rest, alpha, tolerance)
        if ok:
            return int(k), {"p_value": p, "pooled_rate": float(rest["repurchased"].sum() / rest["at_risk"].sum()),
                            "through_k": int(ks[-1])}
    return None, {}


def _rule_ztest(u, alpha):
    for i in range(len(u) - 1):
        a, b = u.iloc[i], u.iloc[i + 1]
        _, p = proportions_ztest([b["repurchased"], a["repurchased"]], [b["at_risk"], a["at_risk"]])
        if p >= alpha:
            return int(a["k"]), {"p_value": float(p)}
    return None, {}


def _rule_segmented(u, tolerance):
    if len(u) < 4:
        return None, {}
    k = u["k"].to_numpy(float)
    y = u["rate"].to_numpy(float)
    w = u["at_risk"].to_numpy(float)
    best = None
    for b in k[1:-1]:
        X = sm.add_constant(np.column_stack([np.minimum(k, b) - b, np.maximum(k - b, 0)]))
        fit = sm.WLS(y, X, weights=w).fit()
        if best is None or fit.ssr < best[1]:
            best = (b, fit.ssr, fit.params)
    b, _, params = best
    rising, after = params[1], params[2]
    if rising > 0 and abs(after) <= tolerance:
        return int(b), {"slope_before": float(rising), "slope_after": float(after)}
    return None, {"break": int(b), "slope_before": float(rising), "slope_after": float(after)}


def _rule_tolerance(u, tolerance):
    r = u["rate"].to_numpy()
    ks = u["k"].tolist()
    steps = np.abs(np.diff(r))
    for i in range(len(ks) - 1):
        if np.all(steps[i:] <= tolerance):
            return int(ks[i]), {}
    return None, {}


def magic_number(curve: RepurchaseCurve, rule: str = "plateau", alpha: float = 0.05, tolerance: float = 0.03,
                 min_at_risk: int = 50) -> MagicNumber:
    """Choose the magic number from a repurchase curve.

    Rules
    -----
    plateau (default)
        The smallest k from which the rates at k, k+1, ..., up to the last k with
        ``min_at_risk`` customers at risk (at least three order counts) pass a chi-square
        test of homogeneity (p >= ``alpha``) and all lie within ``tolerance`` of their
        pooled rate: flat statistically and in practice. "Within tolerance" allows for
        sampling error: a rate fails only when its Wilson 95% interval lies wholly
        outside pooled +/- ``tolerance`` (a point-estimate check fails flat curves by
        noise alone where few customers are at risk).
    ztest
        The smallest k whose step to k+1 is not significant (two-sided two-proportion
        z-test at ``alpha``). It looks one step ahead only, so one noisy step moves it.
    segmented
        The break point of a two-segment linear fit of rate on k weighted by at-risk
        counts, when the segment after it is flat (|slope| <= ``tolerance`` per order).
    tolerance
        The smallest k after which no step exceeds ``tolerance``.

    Returns
    -------
    MagicNumber
        ``magic_number`` is None, with a reason describing the curve, when the chosen rule
        finds no k or there is too little data; never a guess.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, not {rule!r}")
    u = _usable(curve, min_at_risk)
    answers, details = {}, {}
    if len(u) >= 3:
        answers["plateau"], details["plateau"] = _rule_plateau(u, alpha, tolerance)
        answers["ztest"], details["ztest"] = _rule_ztest(u, alpha)
        answers["segmented"], details["segmented"] = _rule_segmented(u, tolerance)
        answers["tolerance"], details["tolerance"] = _rule_tolerance(u, tolerance)
    else:
        answers = {r: None for r in RULES}
    chosen = answers[rule]
    found = [v for v in answers.values() if v is not None]
    agree = len(set(found)) == 1 and len(found) == len(RULES)
    reason = None
    if len(u) < 3:
        reason = (f"too little data: only {len(u)} order count(s) have at least {min_at_risk} customers whose "
                  f"order had a full {curve.window_days}-day window before the observation end (need 3)")
    elif chosen is None:
        reason = _describe(u, answers, details)
    return MagicNumber(chosen, rule, reason, answers, agree, details)


def _describe(u: pd.DataFrame, answers: dict, details: dict) -> str:
    r = u["rate"].to_numpy()
    ks = u["k"].to_numpy()
    first, last = f"{100 * r[0]:.0f}%", f"{100 * r[-1]:.0f}%"
    steps = np.diff(r)
    seg = details.get("segmented", {})
    slow = answers.get("segmented") or seg.get("break")
    if np.all(steps > 0):
        trend = f"the rate keeps rising through {ks[-1]} orders, {first} to {last}"
    elif r[-1] > r[0]:
        trend = f"the rate rises unevenly from {first} at 1 order to {last} at {ks[-1]} orders without levelling off"
    else:
        trend = f"the rate does not rise with order count ({first} at 1 order, {last} at {ks[-1]})"
    return trend + (f"; gains slow after {slow}" if slow else "")


# ----------------------------------------------------------------------------- what the store does with it

def magic_sensitivity(orders, windows: Sequence[int] = (30, 60, 90, 180), max_k: int = 10,
                      observation_end=None, engine=None, **kw) -> pd.DataFrame:
    """The magic number (every rule) for several repurchase windows."""
    o = order_table(orders, engine, observation_end)
    rows = []
    for w in windows:
        c = repurchase_curve(o, w, max_k)
        m = magic_number(c, **kw)
        rows.append({"window_days": w, "magic_number": m.magic_number, **{f"rule_{k}": v for k, v in m.rules.items()},
                     "k1_rate": c.table["rate"].iloc[0], "reason": m.reason or ""})
    return pd.DataFrame(rows).set_index("window_days")


def magic_by_group(orders, by: str = "cohort_year", window_days: int = 90, max_k: int = 10,
                   observation_end=None, min_customers: int = 1000, engine=None, **kw) -> pd.DataFrame:
    """The magic number per first-order cohort year (``by="cohort_year"``) or first channel.

    Groups with fewer than ``min_customers`` buyers are listed with no magic number.
    """
    o = order_table(orders, engine, observation_end)
    c = customer_table(o)
    c = c.filter(c.paid_orders > 0)
    if by == "cohort_year":
        c = c.mutate(group=c.first_time.year().cast("string"))
    elif by == "channel":
        if not o.has("channel"):
            raise ValueError("orders have no 'channel' column")
        c = c.mutate(group=c.first_channel.cast("string").fill_null("(none)"))
    else:
        raise ValueError("by must be 'cohort_year' or 'channel'")
    sizes = o.engine.to_pandas(c.group_by("group").aggregate(customers=c.customer_id.count())).sort_values("group")
    rows = []
    for name, n in zip(sizes["group"], sizes["customers"]):
        row = {"group": name, "customers": int(n)}
        if n >= min_customers:
            members = c.filter(c.group == name).select("customer_id")
            sub = replace(o, table=o.table.semi_join(members, "customer_id"))
            m = magic_number(repurchase_curve(sub, window_days, max_k), **kw)
            row.update(magic_number=m.magic_number, **{f"rule_{k}": v for k, v in m.rules.items()},
                       reason=m.reason or "")
        else:
            row.update(magic_number=None, reason=f"fewer than {min_customers} customers")
        rows.append(row)
    return pd.DataFrame(rows).set_index("group")


def magic_shares(orders, magic: int, observation_end=None, engine=None) -> pd.DataFrame:
    """Customers below the magic number vs at or above it: counts and share of sales."""
    o = order_table(orders, engine, observation_end)
    c = customer_table(o)
    c = c.filter(c.paid_orders > 0)
    c = c.mutate(group=ibis.ifelse(c.paid_orders < magic, f"below {magic} orders", f"{magic}+ orders"))
    out = o.engine.to_pandas(c.group_by("group").aggregate(customers=c.customer_id.count(), sales=c.sales.sum()))
    out = out.set_index("group").sort_index()
    out.index.name = None
    out["customer_share"] = out["customers"] / out["customers"].sum()
    out["sales_share"] = out["sales"] / out["sales"].sum()
    out["sales_per_customer"] = out["sales"] / out["customers"]
    return out


def magic_targets(orders, magic: int, window_days: int = 90, observation_end=None, engine=None) -> pd.DataFrame:
    """Active customers (last paid order within the window) with fewer orders than the magic number.

    Ranked by how close they are (most orders first), then most recent. Ids and numbers only.
    """
    o = order_table(orders, engine, observation_end)
    c = customer_table(o)
    c = c.filter((c.paid_orders > 0) & (c.paid_orders < magic) & (c.recency_days <= window_days))
    t = o.engine.to_pandas(c.select("customer_id", "paid_orders", "recency_days", "sales")).set_index("customer_id")
    t = t.sort_index()
    t["orders_to_magic"] = magic - t["paid_orders"]
    t["days_left_in_window"] = window_days - t["recency_days"]
    t = t.sort_values(["orders_to_magic", "recency_days"], ascending=[True, True])
    t.insert(0, "rank", np.arange(1, len(t) + 1))
    return t
