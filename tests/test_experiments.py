"""SMS experiments: R-equal statistics, billing boundaries, assignment, planted effects, A/A, SRM, bad input."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from crmlab.cli.main import main
from crmlab.experiments.analysis import (aa_false_positive_rate, analyse_experiment, compare_proportions,
                                         srm_check, welch_revenue)
from crmlab.experiments.design import assign, minimum_detectable_effect, sample_size
from crmlab.ingest.readers import CrmlabInputError, load_sends
from conftest import wilson_by_hand
from crmlab.experiments.sms import SmsTemplateError, check_copy, render, sms_segments

REL = 1e-6


def test_two_proportions_equal_r_prop_test():
    # R 4.2: prop.test(x=c(83,110), n=c(2500,2450), correct=FALSE)
    #   X-squared = 4.5189864064798, p-value = 0.0335206847347808,
    #   95% CI -0.022494143784504643 -0.000901774582842288
    r = compare_proportions(83, 2500, 110, 2450)
    assert r["chi2"] == pytest.approx(4.5189864064798, rel=REL)
    assert r["z"] ** 2 == pytest.approx(4.5189864064798, rel=REL)
    assert r["p_value"] == pytest.approx(0.0335206847347808, rel=REL)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((-0.022494143784504643, -0.000901774582842288), rel=REL)
    # R: prop.test(x=c(83,110), n=c(2500,2450), correct=TRUE)
    #   X-squared = 4.21218057597104, p-value = 0.0401347123991432,
    #   95% CI -0.022898225417157705 -0.000497692950189227
    y = compare_proportions(83, 2500, 110, 2450, correct=True)
    assert y["chi2"] == pytest.approx(4.21218057597104, rel=REL)
    assert y["p_value"] == pytest.approx(0.0401347123991432, rel=REL)
    assert (y["ci_low"], y["ci_high"]) == pytest.approx((-0.022898225417157705, -0.000497692950189227), rel=REL)


def test_newcomb_interval_by_hand():
    # Newcomb (1998) method 10: from the two Wilson intervals (l1,u1), (l2,u2):
    # L = d - sqrt((p1-l1)^2 + (u2-p2)^2), U = d + sqrt((u1-p1)^2 + (p2-l2)^2)
    p1, p2 = 83 / 2500, 110 / 2450
    l1, u1 = wilson_by_hand(83, 2500)
    l2, u2 = wilson_by_hand(110, 2450)
    d = p1 - p2
    r = compare_proportions(83, 2500, 110, 2450)
    assert r["newcomb_low"] == pytest.approx(d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), rel=1e-9)
    assert r["newcomb_high"] == pytest.approx(d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2), rel=1e-9)
    assert r["relative_lift"] == pytest.approx(p1 / p2 - 1)
    assert r["lift_ci_low"] < r["relative_lift"] < r["lift_ci_high"]


def test_k_arms_chi_square_equals_r_chisq_test(tmp_path):
    # R: chisq.test(matrix(c(83,2417,110,2340,95,2405), ncol=2, byrow=TRUE))
    #   X-squared = 4.6000407993878, df = 2, p-value = 0.100256798493942
    rows = []
    for arm, x, n in (("a", 83, 2500), ("b", 110, 2450), ("c", 95, 2500)):
        rows += [(arm, f"{arm}{i}", i < x) for i in range(n)]
    sends = pd.DataFrame({"customer_id": [r[1] for r in rows], "campaign_id": "x", "variant": [r[0] for r in rows],
                          "send_time": "2025-03-01 10:00:00"})
    buyers = [r[1] for r in rows if r[2]]
    orders = pd.DataFrame({"customer_id": buyers, "order_id": [f"o{i}" for i in range(len(buyers))],
                           "order_time": "2025-03-02 10:00:00", "amount": 10.0})
    from crmlab.ingest.readers import load_orders

    o, _ = load_orders(orders, observation_end="2025-04-01")
    s, _ = load_sends(sends)
    res = analyse_experiment(s, o, control="a")
    assert res.chi2_all_arms["chi2"] == pytest.approx(4.6000407993878, rel=REL)
    assert res.chi2_all_arms["df"] == 2
    assert res.chi2_all_arms["p_value"] == pytest.approx(0.100256798493942, rel=REL)
    # Holm: the smaller p is multiplied by 2, the larger kept (but not below the smaller)
    p = res.comparisons["p_value"].sort_values()
    assert res.comparisons.loc[p.index[0], "p_holm"] == pytest.approx(min(1, 2 * p.iloc[0]))


def test_welch_equals_r_t_test():
    x = [0, 0, 35.5, 0, 120, 0, 0, 58.2, 0, 0, 0, 99.9]
    y = [0, 42, 0, 0, 0, 77.7, 0, 0, 13.5, 0]
    # R: t.test(x, y): t = 0.85080461968518, df = 18.4177657448758, p-value = 0.405803782549985,
    #   95% CI -18.7757199147922 44.4023865814589
    r = welch_revenue(np.array(x), np.array(y), seed=1, n_boot=500)
    assert r["welch_t"] == pytest.approx(0.85080461968518, rel=REL)
    assert r["df"] == pytest.approx(18.4177657448758, rel=REL)
    assert r["p_value"] == pytest.approx(0.405803782549985, rel=REL)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((-18.7757199147922, 44.4023865814589), rel=REL)
    assert r["boot_low"] < r["diff"] < r["boot_high"]
    assert welch_revenue(np.array(x), np.array(y), seed=1, n_boot=500)["boot_low"] == r["boot_low"]  # seeded


def test_sample_size_equals_r_power_prop_test():
    # R: power.prop.test(p1=.10, p2=.12, power=.8)$n = 3840.84748243445
    s = sample_size(0.10, 0.12)
    assert s.n_exact == pytest.approx(3840.84748243445, rel=REL) and s.n_per_arm == 3841
    # R: power.prop.test(p1=.02, p2=.03, power=.9, sig.level=.01)$n = 7251.22910533304
    assert sample_size(0.02, 0.03, power=0.9, alpha=0.01).n_exact == pytest.approx(7251.22910533304, rel=REL)
    # R: power.prop.test(p1=.05, p2=.07, power=.8, alternative="one.sided")$n = 1742.43449739703
    assert sample_size(0.05, 0.07, alternative="one-sided").n_exact == pytest.approx(1742.43449739703, rel=REL)
    assert sample_size(0.10, relative_lift=0.2).n_exact == pytest.approx(3840.84748243445, rel=REL)
    # R: power.prop.test(n=3000, p1=.05, power=.8)$p2 = 0.0669924603252716; R solves with
    # uniroot's default tolerance (~1.2e-4), so agreement is to that tolerance
    assert 0.05 + minimum_detectable_effect(0.05, 3000) == pytest.approx(0.0669924603252716, abs=1.2e-4)


def test_sms_segments_boundaries():
    assert [sms_segments("字" * n) for n in (70, 71, 134, 135)] == [1, 2, 2, 3]
    assert sms_segments("【好物旗舰店】" + "a" * 63) == 1  # brackets count 1 each: 70
    assert [sms_segments("a" * n, "gsm") for n in (160, 161, 306, 307)] == [1, 2, 2, 3]
    assert [sms_segments("{" * n, "gsm") for n in (80, 81)] == [1, 2]  # extension characters count 2
    assert [sms_segments("a" * (n - 1) + "é", "gsm") for n in (160,)] == [1]  # é is GSM-7
    assert [sms_segments("a" * (n - 1) + "字", "gsm") for n in (70, 71)] == [1, 2]  # UCS-2
    assert main(["sms-cost", "--text", "字" * 71, "--price", "0.05", "--json"]) == 0


def test_render_and_copy_check():
    t = "亲{nickname}，{theme}！{offer}【{store}】"
    assert render(t, {"nickname": "小王", "theme": "双11", "offer": "满199减30", "store": "好物"}) == "亲小王，双11！满199减30【好物】"
    with pytest.raises(SmsTemplateError, match="'offer'"):
        render(t, {"nickname": "小王", "theme": "双11", "store": "好物"})
    seeds = "亲，双11即将来袭，每晚9点'1元秒杀'，【xx旗舰店】"
    assert check_copy(seeds)["ok"]
    assert "store signature 【店铺】" in check_copy("亲，双11来了")["missing"]


def test_assignment_is_seeded_stratified_and_balanced():
    cust = pd.DataFrame({"customer_id": [f"c{i}" for i in range(2000)], "stage": ["new"] * 1500 + ["dormant"] * 500})
    arms = ["A@10:00", "A@17:00", "B@10:00", "B@17:00"]
    a = assign(cust, arms, holdout_share=0.1, stratify_by="stage", seed=7)
    b = assign(cust, arms, holdout_share=0.1, stratify_by="stage", seed=7)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not a.table["arm"].equals(assign(cust, arms, 0.1, "stage", seed=8).table["arm"])
    assert a.balance.loc["dormant", "holdout"] == 50 and a.balance.loc["new", "holdout"] == 150
    assert (a.balance["max_share_gap"] < 0.002).all()
    assert a.table["customer_id"].is_unique and len(a.table) == 2000


# ----------------------------------------------------------------------------- the simulated campaign

@pytest.fixture(scope="module")
def campaign(store_orders, store_sends):
    return analyse_experiment(store_sends[0], store_orders[0])


def test_planted_effects_recovered_and_verdict_right(campaign, store_truth):
    truth = store_truth["campaign"]
    arms = campaign.arms
    from crmlab.stats.proportion import wilson

    lo, hi = wilson(arms["buyers"], arms["targeted"])
    inside = [lo[i] <= truth["arms"][a]["conversion_rate"] <= hi[i] for i, a in enumerate(arms.index)]
    assert sum(inside) >= 4, inside
    eff = campaign.factorial["effects"]
    t = eff["time: 17:00 vs 10:00"]
    assert t["diff_ci_low"] <= truth["effect_17_vs_10"] <= t["diff_ci_high"] and t["p_value"] < 0.05
    c = eff["copy: B vs A"]
    assert c["diff_ci_low"] <= truth["effect_copy_B_vs_A"] <= c["diff_ci_high"]
    assert campaign.srm["ok"]
    # copy has no effect and B bills two messages: the cheaper copy A, at the better time
    d = campaign.decision
    assert (d["arm"], d["copy"], d["send_time"]) == (truth["decision"]["arm"], "A", "17:00")
    assert campaign.verdict == d["reason"] and not d["blockers"]
    if d["judged"] == "factors":
        assert campaign.factorial["interaction"]["p_value"] >= 0.05
        assert d["copy_choice"]["extra_profit_ci_low"] <= 0 < d["copy_choice"]["extra_cost_per_message"]
        assert d["time"]["detected"] and d["time"]["ci_low"] > 0 and "the cheaper copy A" in d["reason"]
    else:  # a chance additive interaction (5% of samples): the arms are judged, and A@17:00 still wins
        assert campaign.factorial["interaction"]["p_value"] < 0.05 and "arms are judged" in d["reason"]
    assert d["incremental_profit_per_1000"] > 0 and d["ci_low"] < d["incremental_profit_per_1000"] < d["ci_high"]
    # the holdout is recorded on both clocks in the simulated log: each arm meets its own
    assert campaign.holdout_clock == "recorded"
    assert set(campaign.comparisons["control_clock"]) == {"10:00", "17:00"}


def test_findings_and_next_steps_come_from_the_decision(campaign):
    from crmlab.experiments.readout import key_findings

    d = campaign.decision
    lines = key_findings(campaign)
    assert lines[0] == f"**Decision:** {d['reason']}."
    assert d["headline"].startswith(f"{d['arm']}: ¥") and "per 1,000 messages" in d["headline"]
    assert d["next_steps"][0] == "Send at 17:00: it converts better for this store's customers."
    assert any(s.startswith("Use copy A") for s in d["next_steps"]) or d["judged"] == "arms"
    assert any("CUPED" in x for x in lines) and any("holdout (same clock)" in x for x in lines)


def test_too_small_campaign_says_what_the_design_detects(store_orders, store_sends):
    s = store_sends[0]
    small = s.groupby("variant").head(60)
    r = analyse_experiment(small, store_orders[0], target_effect=0.01)
    d = r.decision
    # 60 per arm at ~5%: under 5 expected buyers per arm and holdout clock, so no verdict at all
    assert d["arm"] is None and d["provisional"] is None and r.no_verdict_reason.startswith("too few conversions")
    assert r.verdict == f"no verdict: {r.no_verdict_reason}" and r.comparisons.empty
    # never the observed-power fallacy: sizes come from the design or a stated target
    assert "would be needed for this effect" not in r.verdict and "observed effect" not in r.verdict
    assert d["design"]["n"] == 60 and d["design"]["detectable_difference"] > 0.03
    assert d["design"]["needed_for_target"] == sample_size(d["design"]["baseline"], d["design"]["baseline"] + 0.01).n_per_arm
    assert any("detects" in x and "your target" in x for x in d["next_steps"])


def test_aa_false_positive_rate(store_orders):
    """A/A: random halves of the store's customers, outcome 'bought in November 2025'."""
    o = store_orders[0]
    nov = o[(o["status"] == "paid") & (o["order_time"].dt.strftime("%Y-%m") == "2025-11")]
    ids = o["customer_id"].cat.categories
    y = np.isin(ids, nov["customer_id"].astype(str).unique())
    fpr = aa_false_positive_rate(y, n_splits=1000, alpha=0.05, seed=2025)
    assert 0.035 <= fpr <= 0.065, fpr


def test_srm_flags_a_broken_split_and_passes_a_clean_one(store_orders, store_sends):
    s = store_sends[0]
    broken = s.drop(s[s["variant"] == "B@17:00"].index[:400])
    r = analyse_experiment(broken, store_orders[0])
    assert not r.srm["ok"] and r.srm["p_value"] < 0.001
    assert r.verdict.startswith("inconclusive") and "sample ratio" in r.verdict
    assert r.decision["arm"] is None and r.decision["provisional"]["arm"] is not None
    assert srm_check({"a": 1000, "b": 1010}, {"a": 0.5, "b": 0.5})["ok"]


def test_bad_input(store_orders, tmp_path):
    o = store_orders[0]
    base = pd.DataFrame({"customer_id": ["C000002", "C000004", "C000004", "", "C000009", "C000011"],
                         "campaign_id": "x", "variant": ["A", "B", "B", "A", "A", "B"],
                         "send_time": ["2025-11-01 10:00:00"] * 4 + ["2025-11-01 10:00:00", "2026-02-01 10:00:00"]})
    s, led = load_sends(base, observation_end="2025-12-31")
    assert led.excluded == {"exact_duplicate_line": 1, "missing_customer_id": 1, "after_observation_end": 1}
    with pytest.raises(CrmlabInputError, match="control arm 'Z' not in the sends"):
        analyse_experiment(s, o, control="Z")
    with pytest.raises(CrmlabInputError, match=r"planned arm\(s\) \['C'\] have no sends"):
        analyse_experiment(s, o, planned_split="A=0.4,B=0.4,C=0.2")
    # a repeat send to the same customer: one targeted customer, both messages billed
    rep = pd.DataFrame({"customer_id": ["C000002", "C000002", "C000004"], "campaign_id": "x", "variant": ["A", "A", "B"],
                        "send_time": ["2025-11-01 10:00:00", "2025-11-02 10:00:00", "2025-11-01 10:00:00"],
                        "segments": [1, 1, 2]})
    r = analyse_experiment(load_sends(rep)[0], o, control="B")
    assert r.arms.loc["A", "targeted"] == 1 and r.arms.loc["A", "segments"] == 2


def test_cli_contracts(small_store, capsys):
    assert main(["abtest", "--sends", str(small_store / "sends.csv"), "--orders", str(small_store / "orders.csv"),
                 "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert {"window_hours", "control", "arms", "comparisons", "chi2_all_arms", "srm", "factorial", "verdict"} <= set(j)
    assert {"arm", "targeted", "delivered", "buyers", "conversion_rate", "revenue", "revenue_per_targeted",
            "segments", "cost", "roi"} <= set(j["arms"][0])
    assert {"arm", "vs", "diff", "ci_low", "ci_high", "newcomb_low", "newcomb_high", "z", "chi2", "p_value", "p_holm",
            "relative_lift", "revenue"} <= set(j["comparisons"][0])
    assert {"diff", "welch_t", "df", "p_value", "ci_low", "ci_high"} <= set(j["comparisons"][0]["revenue"])
    assert main(["sample-size", "--baseline", "0.10", "--target", "0.12", "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["n_per_arm"] == 3841 and j["n_exact"] == pytest.approx(3840.85, abs=0.005)
    assert main(["sms-cost", "--text", "亲，双11来了【好物旗舰店】", "--scheme", "cn", "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert (j["characters"], j["segments"], j["cost"]) == (14, 1, 0.05)


def test_design_summary_and_billing_without_a_segments_column(store_orders):
    from crmlab.experiments.design import design_summary

    d = design_summary(["A", "B", "holdout"], 3000, 0.05, 0.05, segments={"A": 1, "B": 2})
    assert d.loc["B", "expected_cost"] == pytest.approx(3000 * 2 * 0.05)
    # R: power.prop.test(n = 3000, p1 = 0.05, power = 0.8, tol = 1e-12)$p2 - 0.05
    assert d.loc["A", "detectable_difference"] == pytest.approx(0.016971127770908, rel=1e-9)
    assert d.loc["holdout", "expected_cost"] == 0
    log = pd.DataFrame({"customer_id": ["C000002", "C000004", "C000005"], "campaign_id": "x",
                        "variant": ["A", "B", "holdout"], "send_time": "2025-11-01 10:00:00",
                        "delivered": ["true", "true", "false"], "copy": ["字" * 70, "字" * 71, ""]})
    r = analyse_experiment(load_sends(log)[0], store_orders[0])
    assert r.arms["segments"].to_dict() == {"A": 1.0, "B": 2.0, "holdout": 0.0}
