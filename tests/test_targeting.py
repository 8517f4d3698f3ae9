"""Uplift targeting (issue 27): the must-show items, on hand fixtures and simulated stores with
planted per-customer uplift (crmlab.simulate.uplift). Expected values are hand-computed, from an
independent brute-force implementation, or the planted truth."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from crmlab.cli.main import main
from crmlab.engine.sources import order_table
from crmlab.simulate.uplift import oracle_arms, simulate_uplift_campaign, true_profit
from crmlab.targeting.evaluation import auuc, calibration_table, qini_curve, uplift_at_k
from crmlab.targeting.features import feature_snapshot, snapshot_time
from crmlab.targeting.learners import segment_uplift
from crmlab.targeting.pipeline import target
from crmlab.targeting.policy import budget_curve, budget_cut, choose


# ----------------------------------------------------------------------------- Qini / AUUC

def _qini_brute(score, y, t):
    """Independent: for each distinct threshold, counts over customers with score >= it."""
    pts_n, pts_q = [0.0], [0.0]
    for thr in sorted(set(score), reverse=True):
        sel = [i for i in range(len(score)) if score[i] >= thr]
        nt = sum(t[i] for i in sel)
        nc = len(sel) - nt
        yt = sum(y[i] for i in sel if t[i])
        yc = sum(y[i] for i in sel if not t[i])
        pts_n.append(float(len(sel)))
        pts_q.append(yt - yc * nt / nc if nc else float(yt))
    return np.array(pts_n), np.array(pts_q)


def test_qini_hand_fixture():
    # sorted by score: (t,y) = (1,1) (0,0) (1,1) (0,1) ; scores distinct
    score, y, t = [0.9, 0.8, 0.7, 0.1], [1, 0, 1, 1], [1, 0, 1, 0]
    n, q = qini_curve(score, y, t)
    # k=1: nc=0 -> ratio 0 -> Q=1; k=2: 1-0*1=1; k=3: 2-0*2=2; k=4: 2-1*(2/2)=1
    assert n.tolist() == [0, 1, 2, 3, 4]
    assert q.tolist() == [0, 1, 1, 2, 1]
    # area per customer: trapezoids on x=k/4, v=Q/4, minus the random line's v(1)/2
    v = np.array([0, 1, 1, 2, 1]) / 4
    area = sum((v[i] + v[i + 1]) / 2 * 0.25 for i in range(4)) - v[-1] / 2
    assert auuc(score, y, t) == pytest.approx(area, abs=1e-12)
    assert uplift_at_k(score, y, t, 0.5) == pytest.approx(1.0 - 0.0)


def test_qini_equals_independent_implementation_with_ties():
    rng = np.random.default_rng(3)
    score = rng.integers(0, 15, 300).astype(float) / 7  # many ties
    t = rng.uniform(size=300) < 0.5
    y = rng.uniform(size=300) < 0.2 + 0.1 * t * (score > 1)
    n, q = qini_curve(score, y, t)
    bn, bq = _qini_brute(list(score), list(y.astype(int)), list(t.astype(int)))
    np.testing.assert_allclose(n, bn, atol=1e-9)
    np.testing.assert_allclose(q, bq, atol=1e-9)
    x, v = bn / bn[-1], bq / bn[-1]
    assert auuc(score, y, t) == pytest.approx(np.trapezoid(v, x) - v[-1] / 2, abs=1e-9)


def test_calibration_deciles_observed_by_hand():
    p = np.r_[np.full(10, 0.5), np.full(10, 0.0)]
    y = np.r_[[1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [1, 0, 0, 0, 0]]
    t = np.r_[[1] * 5, [0] * 5, [1] * 5, [0] * 5].astype(bool)
    c = calibration_table(p, y, t, bins=2)
    assert c.loc[1, "observed_pp"] == pytest.approx(100 * (3 / 5 - 0))
    assert c.loc[2, "observed_pp"] == pytest.approx(0.0)
    assert c.loc[1, "predicted_pp"] == pytest.approx(50.0)


# ----------------------------------------------------------------------------- policy / budget

def _brute_best(profits: pd.DataFrame, budget: int) -> float:
    best = 0.0
    options = [None, *profits.columns]
    for combo in itertools.product(options, repeat=len(profits)):
        if sum(c is not None for c in combo) > budget:
            continue
        best = max(best, sum(profits.iat[i, list(profits.columns).index(c)] for i, c in enumerate(combo) if c))
    return best


def test_budget_curve_monotone_and_equals_brute_force():
    profits = pd.DataFrame({"A": [3.0, -1.0, 0.5, 2.0, -0.2, 1.2], "B": [2.5, 0.8, 0.7, -3.0, -0.1, 1.5]},
                           index=[f"c{i}" for i in range(6)])
    pol = choose(profits)
    assert pol["arm"].tolist() == ["A", "B", "B", "A", "none", "B"]
    cost = {"A": 0.05, "B": 0.1}
    curve = budget_curve(pol, cost, points=6)
    assert (np.diff(curve["incremental_profit"]) >= 0).all()
    for m, p in zip(curve["messages"], curve["incremental_profit"]):
        assert p == pytest.approx(_brute_best(profits, m), abs=1e-12)
    cut = budget_cut(pol, cost, budget=2)
    assert sorted(cut.index[cut["arm"] != "none"]) == ["c0", "c3"]
    money = budget_cut(pol, cost, budget_money=0.15)  # A (c0) 0.05 + A (c3) 0.05; then B 0.1 does not fit
    assert money["arm"].ne("none").sum() == 2


def test_segment_shrinkage_pulls_small_cells_to_the_overall_effect():
    rng = np.random.default_rng(0)
    cells = np.r_[np.repeat([f"c{i}" for i in range(30)], 400), ["tiny"] * 20]  # no real heterogeneity
    arm = np.where(rng.uniform(size=len(cells)) < 0.5, "A", "holdout")
    y = (rng.uniform(size=len(cells)) < np.where(arm == "A", 0.10, 0.05)).astype(float)
    y[(cells == "tiny") & (arm == "A")] = 1.0  # an extreme tiny cell
    est = segment_uplift(cells, y, arm, ["A"], "holdout")
    raw_tiny = y[(cells == "tiny") & (arm == "A")].mean() - y[(cells == "tiny") & (arm == "holdout")].mean()
    tiny = est["A"][cells == "tiny"].iloc[0]
    overall = y[arm == "A"].mean() - y[arm == "holdout"].mean()
    assert min(overall, raw_tiny) <= tiny <= max(overall, raw_tiny)
    assert abs(tiny - overall) < 0.5 * abs(raw_tiny - overall)  # pulled most of the way to the pooled effect
    big = est["A"][cells == "c0"].iloc[0]
    assert abs(big - overall) < 0.03


# ----------------------------------------------------------------------------- the snapshot

def test_snapshot_never_sees_the_campaign():
    o, s, _ = simulate_uplift_campaign(600, seed=2)
    ot = order_table(o)
    as_of = snapshot_time(s["send_time"])
    a = feature_snapshot(ot, s["customer_id"], as_of, s)
    later = pd.DataFrame({"customer_id": s["customer_id"].iloc[:50], "order_id": [f"X{i}" for i in range(50)],
                          "order_time": as_of + pd.Timedelta(hours=2), "amount": 999.0, "status": "paid"})
    b = feature_snapshot(order_table(pd.concat([o, later], ignore_index=True)), s["customer_id"], as_of, s)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["as_of"] < pd.to_datetime(s["send_time"]).min()


# ----------------------------------------------------------------------------- simulated stores

def test_policy_on_planted_heterogeneous_effects():
    o, s, truth = simulate_uplift_campaign(40_000, seed=0)
    r = target(s, o, learner="x", n_boot=100, observation_end="2025-11-11")
    assert r.fallback is None and r.qini["ci_low"] > 0
    policy = r.send_list.set_index("customer_id")["arm"]
    ids = truth["customers"].index
    mine, oracle = true_profit(truth, policy), true_profit(truth, oracle_arms(truth))
    best_all = max(true_profit(truth, pd.Series(a, index=ids)) for a in truth["arms"])
    assert mine >= 0.8 * oracle and mine > best_all and mine > 0
    d = r.to_dict()
    assert set(d["policy"]["by_arm"]) == set(truth["arms"])
    assert (np.diff([p["incremental_profit"] for p in d["budget_curve"]]) >= 0).all()


def test_no_heterogeneity_falls_back():
    o, s, truth = simulate_uplift_campaign(9000, seed=1, heterogeneous=False, flat_uplift=0.02)
    r = target(s, o, learner="t", n_boot=100, observation_end="2025-11-11")
    assert r.qini["ci_low"] <= 0 <= r.qini["ci_high"]
    assert r.fallback is not None
    arms = set(r.send_list["arm"])
    assert len(arms) == 1  # everyone gets the same arm (or no one)


# ----------------------------------------------------------------------------- the command line

@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("target")
    o, s, _ = simulate_uplift_campaign(600, seed=4)
    o.loc[0, "customer_id"] = s.loc[0, "customer_id"] = "=HYPERLINK(1)"  # formula injection
    o.to_csv(d / "orders.csv", index=False)
    s.to_csv(d / "sends.csv", index=False)
    return d


def test_cli_contract(store, capsys):
    out = store / "send_list.csv"
    rc = main(["target", "--orders", str(store / "orders.csv"), "--sends", str(store / "sends.csv"), "--out", str(out),
               "--budget", "50", "--observation-end", "2025-11-11", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    for k in ("learner", "features", "fallback", "qini", "uplift_at_k", "budget_curve", "policy", "send_to_all",
              "warnings"):
        assert k in d
    assert set(d["qini"]) >= {"auuc", "ci_low", "ci_high", "curve"} and set(d["qini"]["curve"][0]) == {"share",
                                                                                                        "uplift"}
    assert set(d["uplift_at_k"][0]) == {"share", "uplift_pp", "ci_low", "ci_high"}
    assert set(d["budget_curve"][0]) >= {"messages", "cost", "incremental_profit", "ci_low", "ci_high"}
    assert set(d["policy"]) >= {"messages", "cost", "incremental_profit", "ci_low", "ci_high", "by_arm"}
    assert set(d["send_to_all"]) >= {"arm", "incremental_profit", "ci_low", "ci_high"}
    assert d["learner"] == "segments"  # a small store
    assert d["policy"]["messages"] <= 50
    sl = pd.read_csv(out, dtype=str)
    assert list(sl.columns) == ["customer_id", "arm", "expected_incremental_profit", "uplift_pp", "rank"]
    assert "'=HYPERLINK(1)" in set(sl["customer_id"])


def test_cli_bad_input_one_line(store, capsys, tmp_path):
    bad = tmp_path / "sends.csv"
    s = pd.read_csv(store / "sends.csv")
    s[s["variant"] != "holdout"].to_csv(bad, index=False)
    rc = main(["target", "--orders", str(store / "orders.csv"), "--sends", str(bad), "--out",
               str(tmp_path / "x.csv")])
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("crmlab: error:")]
    assert rc == 2 and len(errors) == 1 and "holdout" in errors[0]  # one line (notices may precede it)
