"""Issue 28: the design's balance and re-randomisation, BH, ratio metrics, winsorised revenue and
the projection, each against a hand formula or an independent computation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from crmlab.experiments.balance import design_experiment, smd_table
from crmlab.experiments.precision import benjamini_hochberg, projection, ratio_metrics, winsorized_revenue


def test_bh_by_hand_and_statsmodels():
    # sorted 0.005, 0.01, 0.03, 0.04 (m = 4): p·m/i = 0.02, 0.02, 0.04, 0.04, running minimum from the top;
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "BH") = 0.02 0.04 0.04 0.02
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02], rel=1e-12)
    p = np.random.default_rng(1).uniform(0, 0.2, 37)
    assert benjamini_hochberg(p) == pytest.approx(multipletests(p, method="fdr_bh")[1], rel=1e-12)


def _features(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"recency": rng.exponential(100, n), "frequency": rng.poisson(2, n) + 1.0,
                         "monetary": rng.gamma(1, 200, n)}, index=[f"c{i}" for i in range(n)])


def test_smd_by_hand_and_rerandomisation_lowers_it():
    f = _features()
    d = design_experiment(f, ["A@10:00", "B@17:00"], holdout=0.2, seed=3)
    t = d["assignment"]
    a, h = t.loc[t["arm"] == "A@10:00", "customer_id"], t.loc[t["arm"] == "holdout", "customer_id"]
    xa, xh = f.loc[a, "monetary"], f.loc[h, "monetary"]
    hand = (xa.mean() - xh.mean()) / np.sqrt((xa.var(ddof=1) + xh.var(ddof=1)) / 2)
    got = {b["covariate"]: b["smd"] for b in d["balance"]}
    assert got["monetary"]["A@10:00"] == pytest.approx(hand, rel=1e-12)
    assert d["max_abs_smd"] == pytest.approx(max(abs(v) for b in d["balance"] for v in b["smd"].values()))
    assert d["arms"] == {"A@10:00": 2400, "B@17:00": 2400, "holdout": 1200}
    assert list(t.columns) == ["customer_id", "arm", "copy", "send_time"]
    assert set(t.loc[t["arm"] == "holdout", "copy"]) == {""} and set(t.loc[t["arm"] == "B@17:00", "send_time"]) == {"17:00"}
    worst = [design_experiment(f, ["A@10:00", "B@17:00"], seed=s)["max_abs_smd"] for s in range(3, 13)]
    rr = design_experiment(f, ["A@10:00", "B@17:00"], seed=3, rerandomize=200, threshold=0.02)
    assert rr["max_abs_smd"] <= min(worst[0], 0.02) or rr["max_abs_smd"] <= min(worst)
    assert rr["rerandomized"]["draws"] >= 1 and rr["rerandomized"]["threshold"] == 0.02
    assert d["cost"]["messages"] == 4800 and d["cost"]["total"] == pytest.approx(4800 * 0.05)


def _outcomes():
    rng = np.random.default_rng(4)
    rows = []
    for arm, p, n in (("A@10:00", 0.08, 3000), ("holdout", 0.05, 1500)):
        conv = rng.uniform(size=n) < p
        rev = np.where(conv, rng.gamma(2, 60, n), 0.0)
        rev[0] = 50000.0 if arm == "A@10:00" else rev[0]  # one huge order
        rows.append(pd.DataFrame({"arm": arm, "converted": conv | (rev > 0), "revenue": rev,
                                  "clock": "10:00", "segments": 1.0 if arm != "holdout" else 0.0}))
    return pd.concat(rows, ignore_index=True)


def test_ratio_metrics_and_winsorised_revenue_by_hand():
    o = _outcomes()
    r = {m["metric"]: m for m in ratio_metrics(o, "holdout")}
    t = o[o["arm"] == "A@10:00"]
    y, x = t["revenue"].to_numpy(), t["converted"].to_numpy(float)
    R = y.sum() / x.sum()
    # delta method written out: Var(ȳ/x̄) ≈ (var y − 2R cov(y, x) + R² var x) / (n x̄²)
    v = (np.var(y, ddof=1) - 2 * R * np.cov(y, x)[0, 1] + R ** 2 * np.var(x, ddof=1)) / (len(y) * x.mean() ** 2)
    assert r["aov_per_buyer"]["value"] == pytest.approx(R, rel=1e-12)
    assert r["aov_per_buyer"]["ci_high"] - R == pytest.approx(1.959963984540054 * np.sqrt(v), rel=1e-9)
    assert r["revenue_per_message"]["value"] == pytest.approx(y.mean(), rel=1e-12)
    w = winsorized_revenue(o, "holdout", 0.995)
    cap = np.quantile(o["revenue"], 0.995)
    c = w["comparisons"][0]
    assert w["cap"] == pytest.approx(cap)
    h = o.loc[o["arm"] == "holdout", "revenue"].to_numpy()
    assert c["diff"] == pytest.approx(np.minimum(y, cap).mean() - np.minimum(h, cap).mean(), rel=1e-12)
    assert c["raw_diff"] > c["diff"] + 10  # the ¥50,000 order no longer decides the comparison


def test_projection_scales_the_decision():
    d = {"arm": "A@17:00", "incremental_profit_per_1000": 500.0, "ci_low": 100.0, "ci_high": 900.0,
         "incremental_conversion": 0.02, "incremental_revenue_per_message": 2.0, "cost_per_message": 0.05}
    p = projection(d, 20000)
    assert (p["incremental_profit"], p["ci_low"], p["ci_high"]) == (10000.0, 2000.0, 18000.0)
    assert (p["incremental_buyers"], p["incremental_revenue"], p["cost"]) == (400.0, 40000.0, 1000.0)
    assert projection({"arm": None}, 10) is None
    assert smd_table(pd.DataFrame({"x": [1.0, 1.0]}, index=["a", "b"]),
                     pd.DataFrame({"customer_id": ["a", "b"], "arm": ["A", "holdout"]}), "holdout")[1] == 0.0
