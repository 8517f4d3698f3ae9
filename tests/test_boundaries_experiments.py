"""SMS experiments: every method choice and threshold pinned against an independent expectation
(issue #18: Holm replaced by another correction, or the SRM threshold scaled, went unnoticed).

References: R 4.2.2 (``p.adjust``, ``prop.test``, ``chisq.test``, ``t.test``; the calls are
in the comments, the values pasted), closed forms computed here (the chi-square survival
function with 1 and 2 degrees of freedom, the confidence sequence's half-width from
Waudby-Smith et al. 2023 eq. 9 as the module states it, the decision rules of
``crmlab.experiments.decision``'s docstring solved for their edge).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy import stats

from crmlab.experiments.analysis import analyse_experiment, holm, srm_check
from crmlab.experiments.cuped import cuped_welch
from crmlab.experiments.decision import decide
from crmlab.experiments.monitoring import sequence_bounds

Z975 = 1.959963984540054


# ----------------------------------------------------------------------------- Holm

def holm_by_hand(p):
    """p.adjust's definition: sorted p_(i) (m − i + 1), running maximum, capped at 1."""
    p = list(map(float, p))
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, run = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        run = max(run, (m - rank) * p[i])
        out[i] = min(1.0, run)
    return out


# vector -> R: p.adjust(p, "holm"), and "hochberg" (the step-up method Holm must not become)
HOLM_R = [
    ([0.01, 0.04, 0.03, 0.005, 0.20, 0.04], [0.05, 0.12, 0.12, 0.03, 0.20, 0.12], [0.05, 0.08, 0.08, 0.03, 0.20, 0.08]),
    ([0.30, 0.50, 0.01, 0.60], [0.90, 1.0, 0.04, 1.0], [0.60, 0.60, 0.04, 0.60]),          # capped at 1
    ([0.001, 0.001, 0.02], [0.003, 0.003, 0.02], [0.002, 0.002, 0.02]),                  # ties
    ([0.04, 0.01, 0.03], [0.06, 0.03, 0.06], [0.04, 0.03, 0.04]),
]


@pytest.mark.parametrize("p, r_holm, r_hochberg", HOLM_R)
def test_holm_equals_r_p_adjust_and_not_hochberg(p, r_holm, r_hochberg):
    assert holm(p).tolist() == pytest.approx(r_holm, abs=1e-15)
    assert holm_by_hand(p) == pytest.approx(r_holm, abs=1e-15)
    assert r_holm != pytest.approx(r_hochberg)                        # the vector tells the methods apart
    bonferroni = [min(1.0, len(p) * x) for x in p]
    assert r_holm != pytest.approx(bonferroni)
    assert holm([0.2]).tolist() == [0.2] and holm([]).tolist() == []


# ----------------------------------------------------------------------------- a hand campaign

ARMS = {"A": 78, "B": 75, "C": 73, "holdout": 50}   # converters of 1,000 targeted each
SEND = pd.Timestamp("2025-03-01 10:00:00")


def hand_campaign(sizes=None):
    sizes = sizes or {a: 1000 for a in ARMS}
    sends, orders = [], []
    for arm, conv in ARMS.items():
        for i in range(sizes[arm]):
            cid = f"{arm}{i:04d}"
            held = arm == "holdout"
            sends.append({"customer_id": cid, "campaign_id": "c1", "variant": arm, "send_time": SEND,
                          "delivered": not held, "segments": 0.0 if held else 1.0, "cost": 0.0 if held else 0.05})
            if i < conv:
                orders.append({"customer_id": cid, "order_id": f"o{cid}", "order_time": SEND + pd.Timedelta(hours=1),
                               "amount": 100.0, "status": "paid"})
    o = pd.DataFrame(orders)
    o.attrs["observation_end"] = pd.Timestamp("2025-03-10 23:59:59")
    return pd.DataFrame(sends), o


@pytest.fixture(scope="module")
def readout():
    s, o = hand_campaign()
    return analyse_experiment(s, o, cuped_days=0, planned_split="A=0.25,B=0.25,C=0.25,holdout=0.25")


def test_each_arm_against_the_holdout_equals_r_prop_test_and_holm_is_applied(readout):
    c = readout.comparisons
    # R: prop.test(c(x, 50), c(1000, 1000), correct = FALSE)$p.value for x = 78, 75, 73
    r_p = {"A": 0.010525009307660876, "B": 0.020921335337794066, "C": 0.032297310672000965}
    assert {a: c.at[a, "p_value"] for a in r_p} == pytest.approx(r_p, rel=1e-10)
    # R: p.adjust(<those three>, "holm"); "hochberg" would give 0.0316, 0.0323, 0.0323
    r_holm = {"A": 0.031575027922982626, "B": 0.041842670675588133, "C": 0.041842670675588133}
    assert {a: c.at[a, "p_holm"] for a in r_holm} == pytest.approx(r_holm, rel=1e-10)
    assert c["diff"].tolist() == pytest.approx([0.028, 0.025, 0.023], abs=1e-15)
    # R: chisq.test(matrix(c(78, 922, 75, 925, 73, 927, 50, 950), ncol = 2, byrow = TRUE), correct = FALSE)
    assert readout.chi2_all_arms["chi2"] == pytest.approx(7.6900325347530316, rel=1e-10)
    assert readout.chi2_all_arms["df"] == 3
    assert readout.chi2_all_arms["p_value"] == pytest.approx(0.052871580319889637, rel=1e-10)


def test_srm_through_the_readout_blocks_the_verdict():
    s, o = hand_campaign()
    r = analyse_experiment(s, o, cuped_days=0, planned_split="A=0.3,B=0.2,C=0.25,holdout=0.25")
    # R: chisq.test(c(1000, 1000, 1000, 1000), p = c(0.3, 0.2, 0.25, 0.25))
    assert r.srm["chi2"] == pytest.approx(83.333333333333343, rel=1e-12)
    assert r.srm["p_value"] == pytest.approx(5.9138028021528215e-18, rel=1e-8)
    assert not r.srm["ok"] and "the sample ratio check failed" in r.decision["blockers"]
    assert r.decision["arm"] is None and r.decision["verdict"].startswith("inconclusive")


def test_a_clean_split_passes_srm(readout):
    assert readout.srm["p_value"] == 1.0 and readout.srm["ok"] and not readout.decision["blockers"]


# ----------------------------------------------------------------------------- SRM threshold

def chi2_sf_1(x):
    return math.erfc(math.sqrt(x / 2))


def chi2_sf_2(x):
    return math.exp(-x / 2)


def test_srm_threshold_edge_two_arms():
    """p just above 0.001 passes, just below fails (2 arms, planned 50/50, 10^6 customers)."""
    plan = {"a": 0.5, "b": 0.5}
    over = srm_check({"a": 501645, "b": 498355}, plan)
    under = srm_check({"a": 501646, "b": 498354}, plan)
    p_over = chi2_sf_1((1645 ** 2 * 2) / 500000)     # (O − E)² / E summed: 10.8241
    p_under = chi2_sf_1((1646 ** 2 * 2) / 500000)    # 10.837264
    assert 0.001 < p_over < 0.00101 and 0.00099 < p_under < 0.001
    assert over["p_value"] == pytest.approx(p_over, rel=1e-9) and over["ok"]
    assert under["p_value"] == pytest.approx(p_under, rel=1e-9) and not under["ok"]
    assert (over["chi2"], over["df"]) == (pytest.approx(10.8241, rel=1e-12), 1)
    assert not over["assumed_equal_split"]
    # no plan: an equal split is assumed, and said
    assert srm_check({"a": 501646, "b": 498354}, None)["assumed_equal_split"]
    assert not srm_check({"a": 501646, "b": 498354}, None)["ok"]


def test_srm_threshold_edge_three_arms_unequal_plan():
    plan = {"x": 0.5, "y": 0.25, "z": 0.25}
    for d, ok in ((959, True), (960, False)):
        r = srm_check({"x": 200000 + d, "y": 100000 - d, "z": 100000}, plan)
        p = chi2_sf_2(d * d / 200000 + d * d / 100000)
        assert r["p_value"] == pytest.approx(p, rel=1e-9) and r["ok"] is ok and r["df"] == 2
        assert (p > 0.001) is ok


def test_srm_p_exactly_at_the_threshold_passes():
    """ok means p >= threshold (the threshold itself is not a mismatch)."""
    counts, plan = {"a": 5100, "b": 4900}, {"a": 0.5, "b": 0.5}
    p = srm_check(counts, plan)["p_value"]
    assert srm_check(counts, plan, threshold=p)["ok"]
    assert not srm_check(counts, plan, threshold=float(np.nextafter(p, 1)))["ok"]


# ----------------------------------------------------------------------------- CUPED

YA = [0, 120.5, 0, 35, 0, 80, 0, 0, 210, 15]
XA = [0, 300, 20, 60, 0, 150, 10, 0, 400, 40]
YC = [0, 0, 95, 0, 20, 0, 0, 160, 0, 5, 0, 30]
XC = [10, 0, 250, 0, 80, 5, 0, 330, 0, 20, 0, 90]


def test_cuped_equals_r():
    """R: x <- c(xa, xc); y <- c(ya, yc); theta <- cov(x, y) / var(x)
    aa <- ya - theta * (xa - mean(x)); ac <- yc - theta * (xc - mean(x)); t.test(aa, ac)
    (and conf.level = 0.9; the raw interval t.test(ya, yc)). The pooled mean of x, not each
    group's: with the arm's own mean the difference would be the raw one."""
    r = cuped_welch(YA, XA, YC, XC)
    assert r["theta"] == pytest.approx(0.47669817526850322, rel=1e-12)
    assert r["diff"] == pytest.approx(4.6842511225012728, rel=1e-12)
    assert r["welch_t"] == pytest.approx(1.0910012011978205, rel=1e-10)
    assert r["df"] == pytest.approx(16.620277870715729, rel=1e-10)
    assert r["p_value"] == pytest.approx(0.29083686343145326, rel=1e-9)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((-4.3901056494460269, 13.758607894448572), rel=1e-10)
    assert (r["raw_ci_low"], r["raw_ci_high"]) == pytest.approx((-36.49096814871217, 76.924301482045507), rel=1e-10)
    w, raw = 13.758607894448572 + 4.3901056494460269, 76.924301482045507 + 36.49096814871217
    assert r["variance_reduction"] == pytest.approx(1 - (w / raw) ** 2, rel=1e-10)
    r90 = cuped_welch(YA, XA, YC, XC, alpha=0.10)
    assert (r90["ci_low"], r90["ci_high"]) == pytest.approx((-2.7946401447656992, 12.163142389768245), rel=1e-10)


def test_cuped_needs_two_customers_a_side_and_a_constant_covariate_changes_nothing():
    two = cuped_welch([1.0, 3.0], [1.0, 2.0], [0.0, 2.0], [0.0, 1.0])
    assert np.isfinite(two["diff"]) and np.isfinite(two["ci_low"])
    one = cuped_welch([1.0], [1.0], [0.0, 2.0], [0.0, 1.0])
    assert all(np.isnan(v) for v in one.values())
    flat = cuped_welch(YA, [5.0] * len(YA), YC, [5.0] * len(YC))
    assert flat["theta"] == 0.0 and flat["variance_reduction"] == pytest.approx(0.0, abs=1e-12)
    assert flat["diff"] == pytest.approx(np.mean(YA) - np.mean(YC), rel=1e-12)


# ----------------------------------------------------------------------------- confidence sequences

def cs_by_hand(n_t, s_t, ss_t, n_c, s_c, ss_c, alpha, tuning):
    mt, mc = s_t / n_t, s_c / n_c
    vt = (ss_t - n_t * mt ** 2) / (n_t - 1)
    vc = (ss_c - n_c * mc ** 2) / (n_c - 1)
    se2 = vt / n_t + vc / n_c
    N = n_t + n_c
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    hw = math.sqrt(se2 * N) * math.sqrt(2 * (N * rho2 + 1) / (N ** 2 * rho2) * math.log(math.sqrt(N * rho2 + 1) / alpha))
    return mt - mc, hw


@pytest.mark.parametrize("alpha, tuning", [(0.05, None), (0.05, 5000.0), (0.10, 800.0)])
def test_confidence_sequence_half_width_by_hand(alpha, tuning):
    n_t, s_t, ss_t, n_c, s_c, ss_c = 400.0, 30.0, 30.0, 380.0, 19.0, 19.0   # conversions: s = ss
    r = sequence_bounds(n_t, s_t, ss_t, n_c, s_c, ss_c, alpha=alpha, tuning=tuning)
    diff, hw = cs_by_hand(n_t, s_t, ss_t, n_c, s_c, ss_c, alpha, tuning or n_t + n_c)
    assert float(r["diff"]) == pytest.approx(diff, rel=1e-12)
    assert (float(r["cs_low"]), float(r["cs_high"])) == pytest.approx((diff - hw, diff + hw), rel=1e-10)
    z = {0.05: Z975, 0.10: 1.6448536269514722}[alpha]
    se = math.sqrt((s_t - s_t ** 2 / n_t) / (n_t - 1) / n_t + (s_c - s_c ** 2 / n_c) / (n_c - 1) / n_c)
    assert (float(r["ci_low"]), float(r["ci_high"])) == pytest.approx((diff - z * se, diff + z * se), rel=1e-10)
    assert float(r["cs_high"]) - float(r["cs_low"]) > float(r["ci_high"]) - float(r["ci_low"])


def test_confidence_sequence_needs_two_customers_a_side():
    r = sequence_bounds([1, 2], [1, 1], [1, 1], [2, 2], [0, 1], [0, 1])
    assert np.isnan(r["cs_low"][0]) and np.isnan(r["ci_low"][0])
    assert np.isfinite(r["cs_low"][1]) and np.isfinite(r["ci_low"][1])


# ----------------------------------------------------------------------------- the decision rule

N_CELL = 10000


def _outcomes(rates: dict, cost: dict, value: float = 100.0, n: int = 200) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-customer outcomes (every buyer spends ``value``) and the arm table for ``decide``."""
    rows = []
    for arm, rate in rates.items():
        k = int(round(rate * n))
        clock = arm.split("@")[1] if "@" in arm else None
        for i in range(n):
            rows.append({"arm": arm, "converted": i < k, "revenue": value if i < k else 0.0,
                         "cost": cost.get(arm, 0.0), "clock": clock or ("10:00" if i % 2 else "17:00")})
    out = pd.DataFrame(rows, index=[f"u{i}" for i in range(len(rows))])
    g = out.groupby("arm")
    arms = pd.DataFrame({"targeted": g.size(), "buyers": g["converted"].sum(), "cost": g["cost"].sum()})
    return out, arms


def _fact(cell_rates: dict, cost: dict, p_interaction: float = 0.5) -> dict:
    cells = {a: {"rate": r, "n": N_CELL, "buyers": r * N_CELL, "cost_per_message": cost[a]} for a, r in cell_rates.items()}
    return {"copies": ["A", "B"], "times": ["10:00", "17:00"], "cells": cells,
            "interaction": {"p_value": p_interaction, "scale": "additive"}}


def test_send_time_is_chosen_only_when_its_interval_is_above_zero():
    """17:00 converts p in every cell, 10:00 converts 5%. Main effect difference d = p − 0.05,
    variance p(1 − p)/(2n) + 0.05·0.95/(2n) (two cells of n per time, equal weights); the time is
    chosen when d − z·se > 0, z = z_{1 − α/4} = 2.2414 (the factor view's two claims at α/2 each,
    two-sided). Solved for p, then one millionth either side."""
    se = lambda p: math.sqrt(p * (1 - p) / (2 * N_CELL) + 0.05 * 0.95 / (2 * N_CELL))  # noqa: E731
    ZF = stats.norm.isf(0.05 / 4)
    assert ZF == pytest.approx(2.241402727604947, rel=1e-12)
    edge = brentq(lambda p: (p - 0.05) - ZF * se(p), 0.05, 0.2, xtol=1e-14)
    cost = {a: 0.05 for a in ("A@10:00", "A@17:00", "B@10:00", "B@17:00")}
    out, arms = _outcomes({**{a: 0.06 for a in cost}, "holdout": 0.04}, cost)
    for p, chosen in ((edge + 1e-6, "17:00"), (edge - 1e-6, None)):
        fact = _fact({"A@10:00": 0.05, "B@10:00": 0.05, "A@17:00": p, "B@17:00": p}, cost)
        d = decide(out, arms, fact, {"ok": True}, "holdout")
        assert d["judged"] == "factors" and d["send_time"] == chosen, (p, d["reason"])
        assert d["time"]["ci_low"] == pytest.approx((p - 0.05) - ZF * se(p), abs=1e-12)


def test_costlier_copy_only_when_its_extra_profit_interval_is_above_zero():
    """B bills ¥0.10 a message, A ¥0.05; cells of N_CELL, A converts 5%, B 6%, every buyer spends
    ¥100 (no spread). Each copy's revenue per message is 100 r averaged over its two cells; the
    variance of a cell's mean (sample variance, ddof 1) is 100² r (1 − r) / (N − 1), so the
    copy level's is 100² r (1 − r) / (2 (N − 1)). Extra profit = m·100·(rB − rA) − 0.05 with
    se = m·100·sqrt(vA + vB): B is chosen exactly when m·(100 d − z·100·se₀) > 0.05, i.e. above
    the margin m* = 0.05 / (100 (d − z se₀)), z = z_{1 − α/4} (the factor view's two claims at α/2
    each). One millionth either side of m*."""
    cost = {"A@10:00": 0.05, "A@17:00": 0.05, "B@10:00": 0.10, "B@17:00": 0.10}
    rA, rB = 0.05, 0.06
    rates = {"A@10:00": rA, "A@17:00": rA, "B@10:00": rB, "B@17:00": rB}
    out, arms = _outcomes({**rates, "holdout": 0.04}, cost, n=N_CELL)
    se0 = math.sqrt(rA * (1 - rA) / (2 * (N_CELL - 1)) + rB * (1 - rB) / (2 * (N_CELL - 1)))
    zf = stats.norm.isf(0.05 / 4)
    edge = 0.05 / (100 * ((rB - rA) - zf * se0))
    for m, copy in ((edge * (1 + 1e-6), "B"), (edge * (1 - 1e-6), "A")):
        d = decide(out, arms, _fact(rates, cost), {"ok": True}, "holdout", margin=m)
        assert d["judged"] == "factors" and d["copy"] == copy, (m, d["reason"])
        assert d["copy_choice"]["extra_profit_ci_low"] == pytest.approx(m * 100 * ((rB - rA) - zf * se0) - 0.05,
                                                                         abs=1e-10)


def test_factors_only_when_the_interaction_is_shown_within_its_margin():
    """No pre-test gate: the factors are judged exactly when the interaction contrast's
    100(1 − 2α)% interval lies inside ± interaction_margin (TOST). Equal cell rates 6% of N:
    the contrast is 0 with se = sqrt(4 · 0.06 · 0.94 / N); the edge margin is z_{1−α} · se."""
    cost = {a: 0.05 for a in ("A@10:00", "A@17:00", "B@10:00", "B@17:00")}
    out, arms = _outcomes({**{a: 0.06 for a in cost}, "holdout": 0.04}, cost)
    rates = {a: 0.06 for a in cost}
    se = math.sqrt(4 * 0.06 * 0.94 / N_CELL)
    for alpha in (0.05, 0.1):
        edge = stats.norm.isf(alpha) * se
        kw = {"alpha": alpha}
        above = decide(out, arms, _fact(rates, cost, 1e-9), {"ok": True}, "holdout", interaction_margin=edge * (1 + 1e-9), **kw)
        assert above["judged"] == "factors"  # even at an interaction p-value of 1e-9: the p-value is not the rule
        below = decide(out, arms, _fact(rates, cost, 0.9), {"ok": True}, "holdout", interaction_margin=edge * (1 - 1e-9), **kw)
        assert below["judged"] == "arms" and "not shown to be within" in below["reason"]
        assert below["interaction_equivalence"]["contrasts"][0]["se"] == pytest.approx(se, rel=1e-12)


def test_blockers_planned_sample_edge_and_window():
    cost = {a: 0.05 for a in ("A@10:00", "A@17:00", "B@10:00", "B@17:00")}
    out, arms = _outcomes({**{a: 0.06 for a in cost}, "holdout": 0.04}, cost, n=200)
    fact = _fact({a: 0.06 for a in cost}, cost)
    assert decide(out, arms, fact, {"ok": True}, "holdout", planned_n=200)["blockers"] == []
    d = decide(out, arms, fact, {"ok": True}, "holdout", planned_n=201)
    assert len(d["blockers"]) == 1 and "planned sample" in d["blockers"][0] and d["arm"] is None
    assert decide(out, arms, fact, {"ok": True}, "holdout", complete=0.999)["blockers"] == [
        "the attribution window is not over for every customer"]
    assert decide(out, arms, fact, {"ok": False}, "holdout")["blockers"] == ["the sample ratio check failed"]
