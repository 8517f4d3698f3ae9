"""Per-arm campaign metrics and the tests of an SMS experiment (the building blocks of
:mod:`crmlab.experiments.readout`; :mod:`crmlab.experiments.analysis` re-exports them with the
whole readout). The methods are described in :mod:`crmlab.experiments.analysis`.

This module imports no other analysis module that imports it back (no import cycle): the
readout, the decision, the factorial effects, the breakdowns and the monitoring all build on it.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep

from crmlab.engine.sources import order_table
from crmlab.engine.aggregates import ts
from crmlab.experiments.clocks import holdout_clocks
from crmlab.experiments.sms import sms_segments
from crmlab.schema import CrmlabInputError

__all__ = ["campaign_outcomes", "arm_table", "compare_proportions", "welch_revenue", "srm_check", "parse_split",
           "control_rows", "holm", "first_order_time", "Z975", "DEFAULT_PRICE_PER_MESSAGE", "HOLDOUT_NAMES"]

Z975 = stats.norm.isf(0.025)
DEFAULT_PRICE_PER_MESSAGE = 0.05
HOLDOUT_NAMES = ("holdout", "control", "对照", "对照组")  # an arm so named is the default control


def holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values (R ``p.adjust(p, "holm")``)."""
    p = np.asarray(p, float)
    order = np.argsort(p)
    m = len(p)
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


def parse_split(text: str | Mapping[str, float] | None) -> dict[str, float] | None:
    """``"a=0.5,b=0.5"`` -> ``{"a": 0.5, "b": 0.5}`` (normalised to sum 1)."""
    if text is None or text == "":
        return None
    if isinstance(text, Mapping):
        d = {str(k): float(v) for k, v in text.items()}
    else:
        d = {}
        for part in str(text).split(","):
            if "=" not in part:
                raise CrmlabInputError(f"--planned-split: expected arm=share, got {part!r}")
            k, v = part.rsplit("=", 1)
            try:
                d[k.strip()] = float(v)
            except ValueError:
                raise CrmlabInputError(f"--planned-split: {v!r} is not a number") from None
    s = sum(d.values())
    if s <= 0:
        raise CrmlabInputError("--planned-split: shares must be positive")
    return {k: v / s for k, v in d.items()}


# ----------------------------------------------------------------------------- outcomes

def _billed_segments(s: pd.DataFrame) -> pd.Series:
    """Billed messages per send: the log's ``segments``; else counted from ``copy``
    (China carrier rules); else 1 per delivered message and 0 for an undelivered one. A
    negative or infinite ``segments`` value is not a count: the fallback is used for it."""
    fallback = s["delivered"].astype(float)
    if "copy" in s.columns:
        txt = s["copy"].fillna("").astype(str)
        fallback = fallback.where(txt == "", txt.map(lambda t: sms_segments(t) if t else 0).astype(float))
    if "segments" in s.columns:
        seg = s["segments"].astype(float)
        return seg.where(np.isfinite(seg) & (seg >= 0)).fillna(fallback)
    return fallback


def _window_outcomes(o, send_time: pd.Series, W: pd.Timedelta, pre_days: int = 0) -> pd.DataFrame:
    """Per targeted customer, their orders in [send, send + W] (and, with ``pre_days``, their
    paid orders and spend in [send - pre_days, send)), aggregated in the engine in one scan.

    Only the targeted customers' sends travel to the engine; one row per customer returns.
    """
    sends_t = o.engine.register(pd.DataFrame({"customer_id": send_time.index.astype(str),
                                              "send_time": send_time.to_numpy(dtype="datetime64[ns]")}),
                                "crmlab_sends")
    t = o.table.filter(o.table.order_time <= ts(o.observation_end))
    j = t.join(sends_t, "customer_id")
    lag = j.order_time.epoch_seconds() - j.send_time.epoch_seconds()
    j = j.mutate(lag=lag)
    w = j.filter((j.lag >= -int(pre_days) * 86400) & (j.lag <= int(W.total_seconds())))
    inside = w.lag >= 0
    paid, unpaid = (w.status == "paid") & inside, (w.status == "unpaid") & inside
    pre = (w.status == "paid") & (w.lag < 0)
    agg = w.group_by("customer_id").aggregate(
        orders=w.line.count(where=paid), revenue=w.amount.sum(where=paid), first_buy=w.order_time.min(where=paid),
        ordered=w.line.count(where=inside), ordered_amount=w.amount.sum(where=inside), unpaid=w.line.count(where=unpaid),
        unpaid_amount=w.amount.sum(where=unpaid), pre_orders=w.line.count(where=pre), pre_spend=w.amount.sum(where=pre))
    got = o.engine.to_pandas(agg).set_index("customer_id").reindex(send_time.index)
    for c in ("orders", "ordered", "unpaid", "pre_orders"):
        got[c] = got[c].fillna(0).astype(int)
    for c in ("revenue", "ordered_amount", "unpaid_amount", "pre_spend"):
        got[c] = got[c].fillna(0.0).astype(float)
    got["first_buy"] = pd.to_datetime(got["first_buy"])
    if not pre_days:
        got = got.drop(columns=["pre_orders", "pre_spend"])
    return got


def _default_control(arms: Sequence[str]) -> str:
    for a in arms:
        if str(a).lower() in HOLDOUT_NAMES:
            return a
    return sorted(arms)[0]


def _one_campaign(sends: pd.DataFrame, campaign: str | None) -> pd.DataFrame:
    """The sends of ``campaign`` (the only one when None), customer ids as text."""
    s = sends
    camps = s["campaign_id"].unique()
    if campaign is not None:
        s = s[s["campaign_id"].astype(str) == str(campaign)]
        if s.empty:
            raise CrmlabInputError(f"sends: no campaign {campaign!r} (have: {', '.join(map(str, camps))})")
    elif len(camps) > 1:
        raise CrmlabInputError(f"sends hold {len(camps)} campaigns ({', '.join(map(str, camps[:5]))}): name one")
    return s.assign(customer_id=s["customer_id"].astype(str))


def _billing(s: pd.DataFrame, price_per_message: float | None) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Per message: billed segments, cost (the log's when valid, else segments x price) and
    whether the log's cost or segments was invalid (negative or infinite)."""
    seg = _billed_segments(s)
    priced = seg * (price_per_message or 0.0)
    bad = pd.Series(False, index=s.index)
    for c in ("cost", "segments"):
        if c in s.columns:
            v = s[c].astype(float)
            bad |= v.notna() & ~(np.isfinite(v) & (v >= 0))
    if "cost" in s.columns:
        logged = s["cost"].astype(float)
        cost = logged.where(np.isfinite(logged) & (logged >= 0)).fillna(priced)
    else:
        cost = priced
    return seg, cost, bad


def campaign_outcomes(sends: pd.DataFrame, orders, window_hours: float = 72,
                      arm_column: str = "variant", campaign: str | None = None,
                      observation_end=None, engine=None, *, control: str | None = None,
                      price_per_message: float | None = DEFAULT_PRICE_PER_MESSAGE, cuped_days: int = 0,
                      seed: int = 0) -> pd.DataFrame:
    """One row per targeted customer with the campaign's outcomes inside the window.

    Columns: ``arm``, ``clock`` (the tested send time the customer is measured from),
    ``logged_send_time`` (the customer's first send in the log), ``send_time`` (the same, or
    a holdout customer's virtual send time), ``delivered`` (any message delivered),
    ``sends``, ``segments`` and ``cost`` (billing sums over the customer's messages: the
    log's ``cost``, else billed segments x ``price_per_message``), ``converted``,
    ``hours_to_buy``, ``orders``, ``revenue`` (paid), ``ordered`` and ``ordered_amount`` (all
    orders, 拍下), ``unpaid`` and ``unpaid_amount``, ``window_complete`` (the window ends
    before the observation end); with ``cuped_days`` also ``pre_orders`` and ``pre_spend``
    (paid, in the ``cuped_days`` before the send). ``attrs``: ``control`` (``control_given``: named by the caller), ``holdout_clock``,
    ``invalid_billing`` (messages whose ``cost`` or ``segments`` was negative or infinite: priced
    or counted instead, so no cost is ever below 0).
    """
    if price_per_message is not None and not (math.isfinite(price_per_message) and price_per_message >= 0):
        raise CrmlabInputError(f"price per message must be a number >= 0, not {price_per_message!r}")
    if arm_column not in sends.columns:
        raise CrmlabInputError(f"sends: no arm column {arm_column!r} (columns: {', '.join(sends.columns)})")
    s = _one_campaign(sends, campaign)
    seg, cost, bad = _billing(s, price_per_message)
    g = s.assign(_seg=seg, _cost=cost).groupby("customer_id", sort=True)
    out = pd.DataFrame({"arm": g[arm_column].first().astype(str), "send_time": g["send_time"].min(),
                        "delivered": g["delivered"].any(), "sends": g.size(), "segments": g["_seg"].sum(),
                        "cost": g["_cost"].sum()})
    names = sorted(out["arm"].unique())
    given = control is not None
    control = control if control is not None else _default_control(names)
    out["logged_send_time"] = out["send_time"]
    mode = "none"
    if control in names:
        out["clock"], out["send_time"], mode = holdout_clocks(out, control, seed)
    else:
        out["clock"] = "all"
    o = order_table(orders, engine, observation_end)
    end = o.observation_end
    W = pd.Timedelta(hours=window_hours)
    for c, v in _window_outcomes(o, out["send_time"], W, cuped_days).items():
        out[c] = v
    out["hours_to_buy"] = (out.pop("first_buy") - out["send_time"]).dt.total_seconds() / 3600
    out["converted"] = out["orders"] > 0
    out["window_complete"] = (out["send_time"] + W) <= end
    out.attrs.update(window_hours=window_hours, observation_end=end, control=control, holdout_clock=mode,
                     cuped_days=cuped_days, invalid_billing=int(bad.sum()), control_given=given)
    return out


def first_order_time(o) -> pd.Timestamp | None:
    """The first order in the orders ``o`` (an OrderTable) up to its observation end: where the
    orders' observation starts (None without orders)."""
    t = o.table.filter(o.table.order_time <= ts(o.observation_end))
    got = o.engine.to_pandas(t.aggregate(first=t.order_time.min()))["first"].iloc[0]
    return None if pd.isna(got) else pd.Timestamp(got)


def control_rows(outcomes: pd.DataFrame, arm: str, control: str) -> pd.DataFrame:
    """The control customers ``arm`` is compared with: those on the arm's clock."""
    is_ctl = outcomes["arm"].to_numpy() == control
    c = outcomes[is_ctl]
    first = np.flatnonzero(outcomes["arm"].to_numpy() == arm)
    clock = outcomes["clock"].iat[first[0]] if len(first) else "all"
    if clock != "all":
        same = c[c["clock"].to_numpy() == clock]
        if len(same):
            return same
    return c


def arm_table(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The seeds' campaign metrics per arm.

    目标客户数 targeted, messages sent ``sends``, 发送成功数 delivered (customers with a delivered message), 计费条数 segments, 购买客户数 buyers,
    转化率 conversion_rate, orders, 活动销售额 revenue, 客单价 aov (revenue / buyers),
    revenue_per_targeted, 投入成本 cost, 投入产出比 roi (revenue / cost), and ordered vs
    paid vs unpaid counts and amounts (拍下 / 付款 / 未付款).
    """
    g = outcomes.groupby("arm", sort=True)
    t = pd.DataFrame({"targeted": g.size(), "sends": g["sends"].sum(), "delivered": g["delivered"].sum(),
                      "segments": g["segments"].sum(),
                      "buyers": g["converted"].sum(), "orders": g["orders"].sum(), "revenue": g["revenue"].sum(),
                      "cost": g["cost"].sum(), "ordered": g["ordered"].sum(), "ordered_amount": g["ordered_amount"].sum(),
                      "unpaid": g["unpaid"].sum(), "unpaid_amount": g["unpaid_amount"].sum()})
    t["conversion_rate"] = t["buyers"] / t["targeted"]
    t["aov"] = t["revenue"] / t["buyers"].where(t["buyers"] > 0)
    t["revenue_per_targeted"] = t["revenue"] / t["targeted"]
    t["roi"] = t["revenue"] / t["cost"].where(t["cost"] > 0)
    return t


# ----------------------------------------------------------------------------- tests

def compare_proportions(x1: int, n1: int, x2: int, n2: int, correct: bool = False) -> dict:
    """Arm 1 against arm 2 (the control).

    Returns ``diff`` (p1 - p2), Wald ``ci_low``/``ci_high`` (R ``prop.test``'s interval,
    widened by Yates' term when ``correct``), Newcomb hybrid-score ``newcomb_low``/``high``
    (statsmodels), pooled ``z``, ``chi2`` (z^2, or Yates-corrected), two-sided
    ``p_value`` (of chi2), ``relative_lift`` (p1/p2 - 1) with a log-ratio interval.
    """
    if min(n1, n2) <= 0:
        raise ValueError("both arms need customers")
    p1, p2 = x1 / n1, x2 / n2
    d = p1 - p2
    pooled = (x1 + x2) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = d / se0 if se0 > 0 else 0.0
    yates = min(0.5, abs(d) / (1 / n1 + 1 / n2)) if correct else 0.0
    if correct:
        table = np.array([[x1, n1 - x1], [x2, n2 - x2]], float)
        E = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
        chi2 = float(((np.abs(table - E) - yates) ** 2 / E).sum()) if (E > 0).all() else 0.0
    else:
        chi2 = z * z
    p = float(stats.chi2.sf(chi2, 1))
    width = Z975 * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2) + yates * (1 / n1 + 1 / n2)
    nl, nh = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff")
    if x1 > 0 and x2 > 0:
        rl, rh = confint_proportions_2indep(x1, n1, x2, n2, method="log", compare="ratio")
        lift, lift_lo, lift_hi = p1 / p2 - 1, rl - 1, rh - 1
    else:
        lift = lift_lo = lift_hi = float("nan")
    return {"rate": p1, "control_rate": p2, "diff": d, "ci_low": max(-1.0, d - width), "ci_high": min(1.0, d + width),
            "newcomb_low": float(nl), "newcomb_high": float(nh), "z": z, "chi2": chi2, "p_value": p,
            "relative_lift": lift, "lift_ci_low": float(lift_lo), "lift_ci_high": float(lift_hi)}


def _boot_means(y: np.ndarray, n_boot: int, rng: np.random.Generator, budget: int = 1 << 20) -> np.ndarray:
    """``n_boot`` means of resamples (with replacement) of ``y``, in memory O(len(y)).

    A resample of n draws holds K ~ Binomial(n, k/n) of the k non-zero values, each drawn
    uniformly from them; the rest are zeros. So each replicate draws only its K non-zero
    values (revenue is mostly zeros), and replicates are drawn in chunks of at most
    ``budget`` values: the same distribution as resampling all n, without an n_boot x n array.
    """
    n = len(y)
    nz = y[y != 0]
    k = len(nz)
    out = np.zeros(n_boot)
    if n == 0 or k == 0:
        return out
    K = rng.binomial(n, k / n, n_boot)
    i = 0
    while i < n_boot:
        j = i + max(1, int(np.searchsorted(np.cumsum(K[i:]), budget, side="right")))
        rep = np.repeat(np.arange(j - i), K[i:j])
        out[i:j] = np.bincount(rep, weights=nz[rng.integers(0, k, len(rep))], minlength=j - i) / n
        i = j
    return out


def welch_revenue(a: np.ndarray, b: np.ndarray, seed: int = 0, n_boot: int = 2000) -> dict:
    """Revenue per targeted customer, arm ``a`` minus control ``b``: Welch's t-test (R ``t.test``)
    and a seeded percentile-bootstrap 95% interval for the difference in means (memory O(n))."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    r = stats.ttest_ind(a, b, equal_var=False)
    ci = r.confidence_interval(0.95)
    rng = np.random.default_rng(seed)
    boots = _boot_means(a, n_boot, rng) - _boot_means(b, n_boot, rng)
    return {"diff": float(a.mean() - b.mean()), "welch_t": float(r.statistic), "df": float(r.df),
            "p_value": float(r.pvalue), "ci_low": float(ci.low), "ci_high": float(ci.high),
            "boot_low": float(np.quantile(boots, 0.025)), "boot_high": float(np.quantile(boots, 0.975)),
            "boot_seed": seed, "boot_n": n_boot}


def srm_check(counts: Mapping[str, int], planned: Mapping[str, float] | None, threshold: float = 0.001) -> dict:
    """Sample ratio mismatch: chi-square goodness of fit of arm sizes to the planned split.

    Without a plan, an equal split is assumed (and said so). ``ok`` is False when p <
    ``threshold`` (0.001): the randomisation or the send log is broken.
    """
    arms = list(counts)
    assumed = planned is None
    plan = {a: 1 / len(arms) for a in arms} if assumed else dict(planned)
    missing = [a for a in plan if a not in counts or counts[a] == 0]
    if missing:
        raise CrmlabInputError(f"planned arm(s) {missing} have no sends (arms in the log: {arms})")
    extra = [a for a in arms if a not in plan]
    if extra:
        raise CrmlabInputError(f"arm(s) {extra} are not in the planned split {list(plan)}")
    obs = np.array([counts[a] for a in arms], float)
    exp = np.array([plan[a] for a in arms]) * obs.sum()
    r = stats.chisquare(obs, exp)
    return {"chi2": float(r.statistic), "df": len(arms) - 1, "p_value": float(r.pvalue),
            "ok": bool(r.pvalue >= threshold), "planned_split": plan, "assumed_equal_split": assumed}
