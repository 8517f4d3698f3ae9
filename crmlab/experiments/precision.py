"""More precision and trust in the readout (issue 28): regression adjustment with several
pre-period covariates, winsorised revenue, ratio metrics, segment effects with a multiplicity
correction, and the projected impact of sending the winner to the whole list.

* ``adjusted``: Lin's (2013) interacted OLS with HC2 errors
  (:func:`crmlab.experiments.cuped.cuped_lin`) on the pre-period spend and orders, for
  conversion and revenue; when it does not narrow the interval (variance reduction <= 0) the
  raw Welch difference is reported instead (``method`` says which).
* ``winsorized``: revenue capped at the pooled ``percentile`` (default 99.5%) of every targeted
  customer's window revenue, Welch's interval on the capped values beside the raw one.
* ``ratios`` (delta method, Wald): average order value per buyer R = Σ revenue / Σ buyers with
  var(R) = (s²_y - 2 R s_xy + R² s²_x) / (n x̄²) (y revenue, x converted); revenue per message
  (a mean); revenue per billed part (Σ revenue / Σ parts, the same formula). The difference
  against the holdout adds the two variances (independent groups).
* ``segments``: each messaged arm against its holdout clock within each segment (conversion,
  Wald interval), p-values adjusted over every (segment, arm) row by Holm or Benjamini-Hochberg.
* ``projection``: the decision's profit, revenue and conversion per message times the eligible
  list, with the intervals scaled alike.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from crmlab.experiments.cuped import cuped_lin
from crmlab.experiments.metrics import compare_proportions, control_rows, holm

__all__ = ["benjamini_hochberg", "lin_many", "adjusted_effects", "winsorized_revenue", "ratio_metrics", "segment_table",
           "projection"]

Z = stats.norm.isf(0.025)


def benjamini_hochberg(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (R ``p.adjust(p, "BH")``)."""
    p = np.asarray(p, float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)[::-1]
    adj = np.minimum.accumulate(p[order] * m / np.arange(m, 0, -1))
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def lin_many(y, x, treat, chunk: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Lin's (2013) estimate and HC2 standard error of arm - control for many assignments of
    the same customers at once (A/A studies, randomisation checks): ``y`` (n,), ``x`` (n, p)
    covariates, ``treat`` (S, n) booleans, one row per assignment. Returns (estimates, ses),
    each (S,), equal to :func:`crmlab.experiments.cuped.cuped_lin` on each row: the interacted
    OLS is two regressions of y on [1, x - pooled mean], one per arm, and HC2 is block-diagonal,
    so the difference of intercepts has the sum of the two arms' HC2 variances."""
    y = np.asarray(y, float)
    x = np.asarray(x, float).reshape(len(y), -1)
    xc = x - x.mean(axis=0)
    sd = xc.std(axis=0)
    xc = xc[:, sd > 0] / sd[sd > 0]  # scaled: the intercepts and their HC2 variances are unchanged, the Gram better kept
    Z = np.column_stack([np.ones(len(y)), xc])
    q = Z.shape[1]
    ZZ = (Z[:, :, None] * Z[:, None, :]).reshape(len(y), q * q)
    treat = np.atleast_2d(np.asarray(treat, bool))
    est, var = np.empty(len(treat)), np.zeros(len(treat))
    for lo in range(0, len(treat), chunk):
        T = treat[lo:lo + chunk]
        a = []
        for M in (T.astype(float), (~T).astype(float)):
            Ginv = np.linalg.inv((M @ ZZ).reshape(-1, q, q))
            beta = np.einsum("sjk,sk->sj", Ginv, M @ (Z * y[:, None]))
            e = y - beta @ Z.T
            h = Ginv.reshape(-1, q * q) @ ZZ.T
            meat = ((M * e ** 2 / np.clip(1 - h, 1e-12, None)) @ ZZ).reshape(-1, q, q)
            a.append(beta[:, 0])
            var[lo:lo + chunk] += (Ginv @ meat @ Ginv)[:, 0, 0]
        est[lo:lo + chunk] = a[0] - a[1]
    return est, np.sqrt(var)


def _pairs(outcomes: pd.DataFrame, control: str):
    for a in sorted(x for x in outcomes["arm"].unique() if x != control):
        yield a, outcomes[outcomes["arm"] == a], control_rows(outcomes, a, control)


def adjusted_effects(outcomes: pd.DataFrame, control: str, alpha: float = 0.05) -> list[dict]:
    """Per messaged arm and metric (conversion, revenue): Lin's adjusted difference (see the module doc)."""
    cov = [c for c in ("pre_spend", "pre_orders") if c in outcomes.columns]
    out = []
    for a, t, c in _pairs(outcomes, control):
        for metric, col in (("conversion", "converted"), ("revenue", "revenue")):
            ya, yc = t[col].to_numpy(float), c[col].to_numpy(float)
            xa = t[cov].to_numpy(float) if cov else np.zeros((len(t), 1))
            xc = c[cov].to_numpy(float) if cov else np.zeros((len(c), 1))
            r = cuped_lin(ya, xa, yc, xc, alpha)
            use = cov and np.isfinite(r["variance_reduction"]) and r["variance_reduction"] > 0
            est, lo, hi = ((r["diff"], r["ci_low"], r["ci_high"]) if use else
                           (float(ya.mean() - yc.mean()), r["raw_ci_low"], r["raw_ci_high"]))
            out.append({"arm": a, "metric": metric, "estimate": est, "ci_low": lo, "ci_high": hi,
                        "variance_reduction": r["variance_reduction"] if use else 0.0, "covariates": cov,
                        "method": r["method"] if use else "raw Welch (the adjustment did not narrow the interval)"})
    return out


def winsorized_revenue(outcomes: pd.DataFrame, control: str, percentile: float = 0.995) -> dict:
    """``cap`` and per arm the capped and raw revenue differences with Welch 95% intervals."""
    cap = float(np.quantile(outcomes["revenue"].to_numpy(float), percentile))
    comps = []
    for a, t, c in _pairs(outcomes, control):
        row = {"arm": a}
        for name, f in (("", lambda v: np.minimum(v, cap)), ("raw_", lambda v: v)):
            ya, yc = f(t["revenue"].to_numpy(float)), f(c["revenue"].to_numpy(float))
            ci = stats.ttest_ind(ya, yc, equal_var=False).confidence_interval(0.95)
            row.update({f"{name}diff": float(ya.mean() - yc.mean()), f"{name}ci_low": float(ci.low),
                        f"{name}ci_high": float(ci.high)})
        row["capped_customers"] = int((np.r_[t["revenue"], c["revenue"]] > cap).sum())
        comps.append(row)
    return {"percentile": percentile, "cap": cap, "comparisons": comps}


def _ratio(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Σy / Σx and its delta-method variance."""
    n, mx = len(y), x.mean()
    if n < 2 or mx <= 0:
        return float("nan"), float("nan")
    r = y.mean() / mx
    c = np.cov(y, x, ddof=1)
    v = float((c[0, 0] - 2 * r * c[0, 1] + r * r * c[1, 1]) / (n * mx * mx))
    return float(r), max(v, 0.0)  # 0 up to rounding when every buyer spends the same


def ratio_metrics(outcomes: pd.DataFrame, control: str) -> list[dict]:
    """Per messaged arm: AOV per buyer, revenue per message, revenue per billed part, each with
    its 95% interval and the difference from the holdout (where the holdout has the metric)."""
    out = []
    one = lambda g: np.ones(len(g))  # noqa: E731
    parts = (lambda g: g["segments"].to_numpy(float)) if "segments" in outcomes.columns else one
    metrics = (("aov_per_buyer", lambda g: g["converted"].to_numpy(float)), ("revenue_per_message", one),
               ("revenue_per_part", parts))
    for a, t, c in _pairs(outcomes, control):
        for name, den in metrics:
            r, v = _ratio(t["revenue"].to_numpy(float), den(t))
            row = {"arm": a, "metric": name, "value": r, "ci_low": r - Z * np.sqrt(v), "ci_high": r + Z * np.sqrt(v)}
            if name != "revenue_per_part":
                rc, vc = _ratio(c["revenue"].to_numpy(float), den(c))
                d, se = r - rc, np.sqrt(v + vc)
                row.update(diff=d, diff_ci_low=d - Z * se, diff_ci_high=d + Z * se)
            out.append(row)
    return out


def segment_table(outcomes: pd.DataFrame, labels: dict[str, pd.Series], control: str, method: str = "holm",
                  alpha: float = 0.05) -> list[dict]:
    """Rows {segment, arm, diff, ci_low, ci_high, p_value, p_adjusted, flagged}: ``labels`` maps a
    breakdown name (lifecycle, rfm, ...) to a label per customer id; ``method`` holm or bh."""
    rows = []
    for kind, lab in labels.items():
        seg = lab.reindex(outcomes.index.astype(str)).fillna("unknown").to_numpy()
        for s in sorted(set(seg)):
            sub = outcomes[seg == s]
            for a, t, c in _pairs(sub, control):
                if len(t) == 0 or len(c) == 0:
                    continue
                r = compare_proportions(int(t["converted"].sum()), len(t), int(c["converted"].sum()), len(c))
                rows.append({"segment": f"{kind}: {s}", "arm": a, "n": len(t), "control_n": len(c), "diff": r["diff"],
                             "ci_low": r["ci_low"], "ci_high": r["ci_high"], "p_value": r["p_value"]})
    p = np.array([r["p_value"] for r in rows])
    adj = (benjamini_hochberg(p) if method == "bh" else holm(p)) if len(p) else p
    for r, q in zip(rows, adj):
        r.update(p_adjusted=float(q), method=method, flagged=bool(q < alpha))
    return rows


def projection(decision: dict, eligible: int) -> dict | None:
    """The decision's arm sent to ``eligible`` customers: incremental orders (buyers), revenue,
    profit and cost, each scaled from the per-message figures (profit with its interval)."""
    if decision.get("arm") is None or decision.get("incremental_profit_per_1000") is None:
        return None
    k = eligible / 1000
    return {"arm": decision["arm"], "eligible": int(eligible),
            "incremental_buyers": decision["incremental_conversion"] * eligible,
            "incremental_revenue": decision["incremental_revenue_per_message"] * eligible,
            "cost": decision["cost_per_message"] * eligible,
            "incremental_profit": decision["incremental_profit_per_1000"] * k,
            "ci_low": decision["ci_low"] * k, "ci_high": decision["ci_high"] * k}
