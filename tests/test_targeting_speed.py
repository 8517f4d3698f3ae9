"""The 1M-customer speed-ups of crmlab.targeting give what the plain computations give.

* the X-learner with outcome models shared with the DR scores equals the X-learner fitted
  from scratch on each fold (``_fit_predict``, the path ``fit_new`` uses);
* the bootstrap that sorts once (running sums per replicate) equals the public Qini/AUUC and
  uplift@k functions evaluated replicate by replicate with the same resampling counts;
* replicates drawn once and shared equal those each list would draw itself, and the budget
  curve's interval equals the running sums over the list replicate by replicate.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from crmlab.targeting.evaluation import Resampler, auuc, evaluate_scores, uplift_at_k
from crmlab.targeting.learners import _fit_predict, _folds, cross_fit
from crmlab.targeting.policy import budget_curve, choose, list_interval, replicate_weights


@pytest.fixture(scope="module")
def campaign():
    rng = np.random.default_rng(11)
    n = 2000
    X = rng.normal(size=(n, 3))
    X[rng.uniform(size=(n, 3)) < 0.1] = np.nan
    arm = rng.choice(["A", "B", "holdout"], n)
    p = 1 / (1 + np.exp(-(np.nan_to_num(X[:, 0]) - 1.5 + 0.8 * (arm == "A") * (np.nan_to_num(X[:, 1]) > 0))))
    y = (rng.uniform(size=n) < p).astype(float)
    return X, y, arm


def test_shared_outcome_models_equal_a_from_scratch_x_learner(campaign):
    X, y, arm = campaign
    tau = cross_fit(X, y, arm, ["A", "B"], "holdout", "x", seed=4)
    f = _folds(arm, 2, 4)
    p = {a: float(np.mean(arm == a)) for a in ("A", "B", "holdout")}
    for a in ("A", "B"):
        for k in (0, 1):
            fit, pred = f != k, f == k
            with threadpool_limits(limits=1):  # as cross_fit runs (more threads spin-wait on a busy machine)
                ref = _fit_predict("x", X[fit], y[fit], arm[fit], a, "holdout", p, X[pred], np.zeros(3, bool), 4)
            np.testing.assert_allclose(tau[a].to_numpy()[pred], ref, rtol=0, atol=1e-12)


def test_bootstrap_from_running_sums_equals_the_public_functions():
    rng = np.random.default_rng(3)
    n = 400
    score = np.round(rng.uniform(size=n), 2)  # ties
    t = rng.uniform(size=n) < 0.5
    y = (rng.uniform(size=n) < 0.1 + 0.2 * t * score).astype(float)
    ev = evaluate_scores(score, y, t, shares=(0.1, 0.5), n_boot=30, seed=8, level=0.8)
    order = np.argsort(-score, kind="mergesort")  # the evaluation's order (highest score first)
    rng_b, res = np.random.default_rng(8), Resampler(t[order].astype(float))
    a_b, k_b = [], []
    for _ in range(30):  # the same counts, drawn in that order
        w = np.empty(n)
        w[order] = res.weights(rng_b)
        a_b.append(auuc(score, y, t, weight=w))
        k_b.append([uplift_at_k(score, y, t, s, weight=w) for s in (0.1, 0.5)])
    a_pt = auuc(score, y, t)
    lo, hi = np.quantile(a_b, 0.1), np.quantile(a_b, 0.9)
    assert ev["auuc"] == pytest.approx(a_pt, abs=1e-12)
    assert (ev["ci_low"], ev["ci_high"]) == pytest.approx((lo, hi), abs=1e-12)
    k_b = np.array(k_b)
    for j, row in enumerate(ev["uplift_at_k"]):
        v = k_b[:, j][np.isfinite(k_b[:, j])]
        assert row["ci_low"] == pytest.approx(100 * np.quantile(v, 0.1), abs=1e-9)
        assert row["ci_high"] == pytest.approx(100 * np.quantile(v, 0.9), abs=1e-9)


def test_shared_replicates_and_the_budget_curve_interval():
    rng = np.random.default_rng(5)
    n = 300
    groups = rng.choice(["A", "B", "holdout"], n)
    psi = rng.normal(size=n)
    W = replicate_weights(groups, 50, seed=2)
    # the same counts the stratified resampler draws from the seed
    r, res = np.random.default_rng(2), Resampler(groups)
    assert all(np.array_equal(W[b], res.weights(r)) for b in range(50))
    inc = rng.uniform(size=n) < 0.4
    assert list_interval(psi, inc, groups, 50, 0.9, 2) == list_interval(psi, inc, groups, 50, 0.9, 2, W)
    prof = pd.DataFrame({"A": rng.normal(size=n), "B": rng.normal(size=n)})
    pol = choose(prof)
    curve = budget_curve(pol, {"A": 0.05, "B": 0.1}, psi, groups, points=7, n_boot=50, level=0.9, seed=2, weights=W)
    order = np.argsort(pol["rank"].to_numpy(), kind="mergesort")
    order = order[(pol["arm"] != "none").to_numpy()[order]]
    ms = curve["messages"].to_numpy()
    boot = np.array([[float((W[b][order[:m]] * psi[order[:m]]).sum()) for m in ms] for b in range(50)])
    np.testing.assert_allclose(curve["ci_low"], np.quantile(boot, 0.05, axis=0), atol=1e-9)
    np.testing.assert_allclose(curve["ci_high"], np.quantile(boot, 0.95, axis=0), atol=1e-9)
    np.testing.assert_allclose(curve["held_out"], [psi[order[:m]].sum() for m in ms], atol=1e-9)
