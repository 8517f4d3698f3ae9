"""Analysis of an SMS experiment: per-arm campaign metrics, tests, factorial effects, verdict.

A targeted customer **converts** when they place a paid order within ``window_hours`` after
their send time (inclusive). Rates are over targeted customers (intention to treat: an
undelivered message still counts in its arm); the holdout arm is sends-table rows with
their own variant, ``delivered = false`` and the planned send time, where the clock starts.

Tests (each equal to R where R has it; see tests/test_experiments.py):

* two arms: pooled two-proportion z-test (z^2 = ``prop.test(correct=FALSE)`` X-squared;
  Yates' correction on request), the difference with Wald (prop.test's) and Newcomb
  hybrid-score 95% intervals, the relative lift with a log-ratio interval;
* k arms: chi-square test of independence (``chisq.test``); each arm against the control
  with Holm's correction;
* revenue per targeted customer: Welch's t-test (``t.test``) and a seeded bootstrap
  interval for the difference;
* copy x send time: binomial GLM (statsmodels) with both factors (main effects) and with
  their interaction (the interaction's test);
* sample ratio mismatch: chi-square goodness of fit of arm sizes to the planned split.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep

from crmlab.engine import order_table
from crmlab.engine.aggregates import ts
from crmlab.experiments.design import sample_size
from crmlab.io import CrmlabInputError

__all__ = ["campaign_outcomes", "arm_table", "compare_proportions", "welch_revenue", "srm_check",
           "factorial_effects", "segment_effects", "analyse_experiment", "ExperimentResult", "parse_split",
           "cumulative_conversions", "aa_false_positive_rate"]

Z975 = stats.norm.isf(0.025)
_ARM = re.compile(r"^(?P<copy>[^@]+)@(?P<time>\d{1,2}:\d{2})$")


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
    (China carrier rules); else 1 per delivered message and 0 for an undelivered one."""
    from crmlab.sms import sms_segments

    fallback = s["delivered"].astype(float)
    if "copy" in s.columns:
        txt = s["copy"].fillna("").astype(str)
        fallback = fallback.where(txt == "", txt.map(lambda t: sms_segments(t) if t else 0).astype(float))
    if "segments" in s.columns:
        return s["segments"].astype(float).fillna(fallback)
    return fallback


def _window_outcomes(o, send_time: pd.Series, W: pd.Timedelta) -> pd.DataFrame:
    """Per targeted customer, their orders in [send, send + W], aggregated in the engine.

    Only the targeted customers' sends travel to the engine; one row per customer returns.
    """
    sends_t = o.engine.register(pd.DataFrame({"customer_id": send_time.index.astype(str),
                                              "send_time": send_time.to_numpy(dtype="datetime64[ns]")}),
                                "crmlab_sends")
    t = o.table.filter(o.table.order_time <= ts(o.observation_end))
    j = t.join(sends_t, "customer_id")
    lag = j.order_time.epoch_seconds() - j.send_time.epoch_seconds()
    w = j.filter((lag >= 0) & (lag <= int(W.total_seconds())))
    paid, unpaid = w.status == "paid", w.status == "unpaid"
    agg = w.group_by("customer_id").aggregate(
        orders=w.line.count(where=paid), revenue=w.amount.sum(where=paid), first_buy=w.order_time.min(where=paid),
        ordered=w.line.count(), ordered_amount=w.amount.sum(), unpaid=w.line.count(where=unpaid),
        unpaid_amount=w.amount.sum(where=unpaid))
    got = o.engine.to_pandas(agg).set_index("customer_id").reindex(send_time.index)
    for c in ("orders", "ordered", "unpaid"):
        got[c] = got[c].fillna(0).astype(int)
    for c in ("revenue", "ordered_amount", "unpaid_amount"):
        got[c] = got[c].fillna(0.0).astype(float)
    got["first_buy"] = pd.to_datetime(got["first_buy"])
    return got


def campaign_outcomes(sends: pd.DataFrame, orders, window_hours: float = 72,
                      arm_column: str = "variant", campaign: str | None = None,
                      observation_end=None, engine=None) -> pd.DataFrame:
    """One row per targeted customer with the campaign's outcomes inside the window.

    Columns: ``arm``, ``send_time`` (the customer's first send), ``delivered`` (any
    message delivered), ``sends``, ``segments`` and ``cost`` (billing sums over all the
    customer's messages), ``converted``, ``hours_to_buy``, ``orders``, ``revenue`` (paid),
    ``ordered`` and ``ordered_amount`` (all orders, 拍下), ``unpaid`` and
    ``unpaid_amount``, ``window_complete`` (the window ends before the observation end).
    """
    if arm_column not in sends.columns:
        raise CrmlabInputError(f"sends: no arm column {arm_column!r} (columns: {', '.join(sends.columns)})")
    s = sends
    camps = s["campaign_id"].unique()
    if campaign is not None:
        s = s[s["campaign_id"] == campaign]
        if s.empty:
            raise CrmlabInputError(f"sends: no campaign {campaign!r} (have: {', '.join(map(str, camps))})")
    elif len(camps) > 1:
        raise CrmlabInputError(f"sends hold {len(camps)} campaigns ({', '.join(map(str, camps[:5]))}): name one")
    s = s.assign(customer_id=s["customer_id"].astype(str))
    seg = _billed_segments(s)
    cost = s["cost"] if "cost" in s.columns else pd.Series(0.0, index=s.index)
    g = s.assign(_seg=seg, _cost=cost.fillna(0.0)).groupby("customer_id", sort=True)
    out = pd.DataFrame({"arm": g[arm_column].first(), "send_time": g["send_time"].min(), "delivered": g["delivered"].any(),
                        "sends": g.size(), "segments": g["_seg"].sum(), "cost": g["_cost"].sum()})
    o = order_table(orders, engine, observation_end)
    end = o.observation_end
    W = pd.Timedelta(hours=window_hours)
    for c, v in _window_outcomes(o, out["send_time"], W).items():
        out[c] = v
    out["hours_to_buy"] = (out.pop("first_buy") - out["send_time"]).dt.total_seconds() / 3600
    out["converted"] = out["orders"] > 0
    out["window_complete"] = (out["send_time"] + W) <= end
    out.attrs.update(window_hours=window_hours, observation_end=end)
    return out


def arm_table(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The seeds' campaign metrics per arm.

    目标客户数 targeted, 发送成功数 delivered, 计费条数 segments, 购买客户数 buyers,
    转化率 conversion_rate, orders, 活动销售额 revenue, 客单价 aov (revenue / buyers),
    revenue_per_targeted, 投入成本 cost, 投入产出比 roi (revenue / cost), and ordered vs
    paid vs unpaid counts and amounts (拍下 / 付款 / 未付款).
    """
    g = outcomes.groupby("arm", sort=True)
    t = pd.DataFrame({"targeted": g.size(), "delivered": g["delivered"].sum(), "segments": g["segments"].sum(),
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


def welch_revenue(a: np.ndarray, b: np.ndarray, seed: int = 0, n_boot: int = 2000) -> dict:
    """Revenue per targeted customer, arm ``a`` minus control ``b``: Welch's t-test (R ``t.test``)
    and a seeded percentile-bootstrap 95% interval for the difference in means."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    r = stats.ttest_ind(a, b, equal_var=False)
    ci = r.confidence_interval(0.95)
    rng = np.random.default_rng(seed)
    boots = (rng.choice(a, (n_boot, len(a))).mean(axis=1) - rng.choice(b, (n_boot, len(b))).mean(axis=1))
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


def _factors(arms: pd.Series) -> pd.DataFrame | None:
    m = arms.str.extract(_ARM)
    if m.isna().any().any():
        return None
    return m


def factorial_effects(outcomes: pd.DataFrame, control: str) -> dict | None:
    """Copy x send time, from arms named ``COPY@HH:MM`` (the control arm left out).

    A binomial GLM with both factors gives the main effects (odds ratios with 95%
    intervals); a second GLM adds their interaction and tests it. Pooled differences in
    conversion (percentage points, Newcomb intervals) say the same in the analyst's units.
    Returns None when the arms are not a two-factor design.
    """
    df = outcomes[outcomes["arm"] != control]
    f = _factors(df["arm"])
    if f is None or f["copy"].nunique() < 2 or f["time"].nunique() < 2:
        return None
    d = pd.DataFrame({"y": df["converted"].astype(int).to_numpy(), "copy": f["copy"].to_numpy(),
                      "time": f["time"].to_numpy()})
    copies, times = sorted(d["copy"].unique()), sorted(d["time"].unique())
    main = smf.glm("y ~ C(copy) + C(time)", d, family=sm.families.Binomial()).fit()
    full = smf.glm("y ~ C(copy) * C(time)", d, family=sm.families.Binomial()).fit()
    ci = main.conf_int()
    effects = {}
    for name, levels in (("copy", copies), ("time", times)):
        for lev in levels[1:]:
            term = f"C({name})[T.{lev}]"
            x1 = int(d.loc[d[name] == lev, "y"].sum())
            n1 = int((d[name] == lev).sum())
            x0 = int(d.loc[d[name] == levels[0], "y"].sum())
            n0 = int((d[name] == levels[0]).sum())
            pooled = compare_proportions(x1, n1, x0, n0)
            effects[f"{name}: {lev} vs {levels[0]}"] = {
                "odds_ratio": float(np.exp(main.params[term])), "or_ci_low": float(np.exp(ci.loc[term, 0])),
                "or_ci_high": float(np.exp(ci.loc[term, 1])), "p_value": float(main.pvalues[term]),
                "rate": pooled["rate"], "reference_rate": pooled["control_rate"], "diff": pooled["diff"],
                "diff_ci_low": pooled["newcomb_low"], "diff_ci_high": pooled["newcomb_high"], "n": n1, "reference_n": n0}
    inter = [t for t in full.params.index if "]:C(" in t]  # level names like 17:00 contain ':' too
    lr = 2 * (full.llf - main.llf)
    inter_p = float(stats.chi2.sf(lr, len(inter)))
    effects["interaction copy x time"] = {
        "odds_ratio": float(np.exp(full.params[inter[0]])) if len(inter) == 1 else None,
        "or_ci_low": float(np.exp(full.conf_int().loc[inter[0], 0])) if len(inter) == 1 else None,
        "or_ci_high": float(np.exp(full.conf_int().loc[inter[0], 1])) if len(inter) == 1 else None,
        "p_value": inter_p, "lr_chi2": float(lr)}
    return {"copies": copies, "times": times, "effects": effects}


def segment_effects(outcomes: pd.DataFrame, segments: pd.Series, control: str) -> pd.DataFrame:
    """Per segment (e.g. lifecycle stage at send time): all messaged arms pooled vs the control,
    difference with Newcomb interval, p-value and Holm-adjusted p across segments."""
    seg = segments.reindex(outcomes.index.astype(str)).fillna("unknown").to_numpy()
    rows = []
    for s in sorted(set(seg)):
        m = seg == s
        t = outcomes[m & (outcomes["arm"] != control).to_numpy()]
        c = outcomes[m & (outcomes["arm"] == control).to_numpy()]
        if len(t) == 0 or len(c) == 0:
            continue
        r = compare_proportions(int(t["converted"].sum()), len(t), int(c["converted"].sum()), len(c))
        rows.append({"segment": s, "messaged": len(t), "control": len(c), "messaged_rate": r["rate"],
                     "control_rate": r["control_rate"], "diff": r["diff"], "ci_low": r["newcomb_low"],
                     "ci_high": r["newcomb_high"], "p_value": r["p_value"]})
    out = pd.DataFrame(rows).set_index("segment") if rows else pd.DataFrame()
    if len(out):
        out["p_holm"] = multipletests(out["p_value"], method="holm")[1]
    return out


def cumulative_conversions(outcomes: pd.DataFrame, window_hours: float, step: float = 1.0) -> pd.DataFrame:
    """Share of targeted customers converted by hour h after the send, per arm (for the figure)."""
    hours = np.arange(0, window_hours + step, step)
    out = {}
    for arm, g in outcomes.groupby("arm"):
        h = np.sort(g["hours_to_buy"].dropna().to_numpy())
        out[arm] = np.searchsorted(h, hours, side="right") / len(g)
    return pd.DataFrame(out, index=pd.Index(hours, name="hours"))


def aa_false_positive_rate(converted: np.ndarray, n_splits: int = 1000, alpha: float = 0.05, seed: int = 0) -> float:
    """Split customers at random in halves ``n_splits`` times; share of splits where the
    two-proportion z-test rejects at ``alpha`` (should be about ``alpha``)."""
    y = np.asarray(converted, bool)
    rng = np.random.default_rng(seed)
    n = len(y)
    half = n // 2
    rejections = 0
    for _ in range(n_splits):
        idx = rng.permutation(n)
        a, b = y[idx[:half]], y[idx[half:]]
        r = compare_proportions(int(a.sum()), len(a), int(b.sum()), len(b))
        rejections += r["p_value"] < alpha
    return rejections / n_splits


# ----------------------------------------------------------------------------- the whole analysis

@dataclass
class ExperimentResult:
    """Everything the report and the CLI show (``to_dict()`` is the CLI's JSON)."""

    window_hours: float
    control: str
    arms: pd.DataFrame
    comparisons: pd.DataFrame
    chi2_all_arms: dict
    srm: dict
    factorial: dict | None
    verdict: str
    decision: dict
    incremental: pd.DataFrame
    window_complete_share: float
    warnings: list = field(default_factory=list)
    outcomes: pd.DataFrame | None = None  # one row per targeted customer (campaign_outcomes)

    def to_dict(self) -> dict:
        arms = []
        for a, r in self.arms.iterrows():
            arms.append({"arm": a, **{k: (None if pd.isna(v) else (int(v) if k in (
                "targeted", "delivered", "buyers", "orders", "ordered", "unpaid") else float(v)))
                for k, v in r.items()}})
        comps = []
        for a, r in self.comparisons.iterrows():
            d = {"arm": a, "vs": self.control}
            d.update({k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items() if k != "revenue"})
            d["revenue"] = r["revenue"]
            comps.append(d)
        return {"window_hours": self.window_hours, "control": self.control, "arms": arms, "comparisons": comps,
                "chi2_all_arms": self.chi2_all_arms, "srm": self.srm, "factorial": self.factorial,
                "verdict": self.verdict, "decision": self.decision,
                "incremental": self.incremental.reset_index().to_dict("records"),
                "window_complete_share": self.window_complete_share, "warnings": self.warnings}


def _default_control(arms: Sequence[str]) -> str:
    for a in arms:
        if a.lower() in ("holdout", "control", "对照", "对照组"):
            return a
    return sorted(arms)[0]


def analyse_experiment(sends: pd.DataFrame, orders, window_hours: float = 72,
                       arm_column: str = "variant", control: str | None = None,
                       planned_split: Mapping[str, float] | str | None = None, planned_n_per_arm: int | None = None,
                       alpha: float = 0.05, correct: bool = False, campaign: str | None = None, seed: int = 0,
                       observation_end=None, engine=None) -> ExperimentResult:
    """The full analysis behind notebook 05 and ``crmlab abtest``.

    The verdict names a winner only when its effect against the control is significant
    after Holm's correction, the SRM check passes and the planned sample (if given) was
    reached; otherwise it says "inconclusive" and how many customers per arm the observed
    effect would need.
    """
    outcomes = campaign_outcomes(sends, orders, window_hours, arm_column, campaign, observation_end, engine)
    arms = arm_table(outcomes)
    names = list(arms.index)
    control = control or _default_control(names)
    if control not in names:
        raise CrmlabInputError(f"control arm {control!r} not in the sends (arms: {', '.join(names)})")
    if len(names) < 2:
        raise CrmlabInputError(f"only one arm in the sends ({names[0]}): nothing to compare")
    plan = parse_split(planned_split)
    srm = srm_check(arms["targeted"].to_dict(), plan)
    c = arms.loc[control]
    comps = {}
    y = {a: g["revenue"].to_numpy() for a, g in outcomes.groupby("arm")}
    for a in names:
        if a == control:
            continue
        r = arms.loc[a]
        d = compare_proportions(int(r["buyers"]), int(r["targeted"]), int(c["buyers"]), int(c["targeted"]), correct)
        d["revenue"] = welch_revenue(y[a], y[control], seed=seed)
        comps[a] = d
    comparisons = pd.DataFrame(comps).T
    for col in comparisons.columns:
        if col != "revenue":
            comparisons[col] = comparisons[col].astype(float)
    comparisons["p_holm"] = multipletests(comparisons["p_value"].to_numpy(float), method="holm")[1]
    table = np.column_stack([arms["buyers"], arms["targeted"] - arms["buyers"]]).astype(float)
    chi = stats.chi2_contingency(table, correction=False) if (table.sum(axis=0) > 0).all() else None
    chi2_all = ({"chi2": float(chi[0]), "df": int(chi[2]), "p_value": float(chi[1])} if chi is not None
                else {"chi2": 0.0, "df": len(names) - 1, "p_value": 1.0})
    fact = factorial_effects(outcomes, control)
    inc = pd.DataFrame({
        "incremental_conversion": arms["conversion_rate"] - c["conversion_rate"],
        "incremental_revenue": (arms["revenue_per_targeted"] - c["revenue_per_targeted"]) * arms["targeted"],
        "cost": arms["cost"]})
    inc["incremental_roi"] = inc["incremental_revenue"] / inc["cost"].where(inc["cost"] > 0)
    inc = inc.drop(index=control)
    complete = float(outcomes["window_complete"].mean())
    warnings = []
    if complete < 1:
        warnings.append(f"the {window_hours:g}-hour window is not over for {1 - complete:.0%} of targeted customers "
                        "at the observation end: their conversions are undercounted")
    if not srm["ok"]:
        warnings.append(f"sample ratio mismatch (p = {srm['p_value']:.2g}): arm sizes do not match the planned split"
                        + (" (an equal split was assumed; pass the planned split)" if srm["assumed_equal_split"] else ""))
    verdict, decision = _verdict(arms, comparisons, fact, srm, control, planned_n_per_arm, alpha, complete)
    return ExperimentResult(window_hours, control, arms, comparisons, chi2_all, srm, fact, verdict, decision, inc,
                            complete, warnings, outcomes)


def _needed(p_control: float, diff: float, alpha: float) -> int | None:
    target = p_control + diff
    if diff == 0 or not (0 < p_control < 1) or not (0 < target < 1):
        return None
    return sample_size(p_control, target, alpha=alpha, power=0.8).n_per_arm


def _verdict(arms, comps, fact, srm, control, planned_n, alpha, complete) -> tuple[str, dict]:
    sig = comps[comps["p_holm"] < alpha]
    better = sig[sig["diff"] > 0]
    n_min = int(arms.drop(index=control)["targeted"].min())
    reached = planned_n is None or n_min >= planned_n
    blockers = []
    if not srm["ok"]:
        blockers.append("the sample ratio check failed")
    if not reached:
        blockers.append(f"the planned sample ({planned_n:,} per arm) was not reached (smallest arm {n_min:,})")
    if complete < 1:
        blockers.append("the attribution window is not over for every customer")
    decision = {"winner": None, "blockers": blockers, "significant_vs_control": list(sig.index)}
    parts = []
    if blockers:
        head = "inconclusive: " + "; ".join(blockers)
    elif len(better):
        best = better["diff"].astype(float).idxmax()
        r = better.loc[best]
        decision["winner"] = best
        head = (f"{best} wins against {control}: {100 * r['rate']:.2f}% vs {100 * r['control_rate']:.2f}%, "
                f"{100 * r['diff']:+.2f} pp [{100 * r['newcomb_low']:.2f}, {100 * r['newcomb_high']:.2f}], "
                f"Holm p = {r['p_holm']:.2g} ({len(better)} of {len(comps)} arms beat {control})")
    else:
        best = comps["diff"].astype(float).idxmax()
        r = comps.loc[best]
        need = _needed(float(r["control_rate"]), float(r["diff"]), alpha)
        head = (f"inconclusive: no arm beats {control} after Holm's correction (best {best}, "
                f"{100 * r['diff']:+.2f} pp, p = {r['p_holm']:.2g})"
                + (f"; the observed effect would need about {need:,} customers per arm" if need else ""))
        decision["needed_per_arm"] = need
    parts.append(head)
    if fact is not None and not blockers:
        for name, e in fact["effects"].items():
            if name.startswith("interaction"):
                if e["p_value"] < alpha:
                    parts.append(f"copy and send time interact (p = {e['p_value']:.2g}): judge the arms, not the factors")
                continue
            if e["p_value"] < alpha:
                parts.append(f"{name}: {100 * e['diff']:+.2f} pp [{100 * e['diff_ci_low']:.2f}, "
                             f"{100 * e['diff_ci_high']:.2f}], p = {e['p_value']:.2g}")
            else:
                need = _needed(e["reference_rate"], e["diff"], alpha)
                parts.append(f"{name}: no detectable difference ({100 * e['diff']:+.2f} pp, p = {e['p_value']:.2g}"
                             + (f"; about {need:,} per level would be needed for this effect" if need else "") + ")")
        decision["factorial"] = {k: v["p_value"] < alpha for k, v in fact["effects"].items()}
    return "; ".join(parts), decision
