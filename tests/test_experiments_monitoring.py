"""Always-valid daily monitoring: the confidence sequence's formula, the looks until the campaign
end + 1 day, and A/A campaigns read every morning (fixed-horizon intervals inflate false
positives, the confidence sequence does not), through the whole pipeline."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crmlab.engine.sources import order_table
from crmlab.experiments.analysis import analyse_experiment
from crmlab.experiments.monitoring import cs_rho, daily_panel, sequence_bounds
from crmlab.experiments.synthetic import planted_campaign


def test_confidence_sequence_half_width_by_hand():
    # GrowthBook's asymptotic CS (Waudby-Smith et al. 2023 eq. 9, rho from eq. 161), written out:
    # at N = N*: rho^2 N = -2 ln .05 + ln(1 - 2 ln .05) = 5.99146 + 1.94470 = 7.93616;
    # half-width / SE = sqrt(2 * 8.93616 / 7.93616 * ln(sqrt(8.93616) / .05)) = 3.03520
    n_t, s_t, ss_t = 5000, 250.0, 250.0  # conversions: ss = s
    n_c, s_c, ss_c = 5000, 200.0, 200.0
    b = sequence_bounds(n_t, s_t, ss_t, n_c, s_c, ss_c, alpha=0.05, tuning=10_000)
    pt, pc = s_t / n_t, s_c / n_c
    se = math.sqrt(pt * (1 - pt) / (n_t - 1) + pc * (1 - pc) / (n_c - 1))  # ddof 1 variances
    assert b["diff"] == pytest.approx(0.01)
    assert (b["cs_high"] - b["diff"]) / se == pytest.approx(3.03520, rel=1e-5)
    assert (b["ci_high"] - b["diff"]) / se == pytest.approx(stats.norm.isf(0.025), rel=1e-12)
    assert cs_rho(0.05, 10_000) ** 2 * 10_000 == pytest.approx(7.93616, rel=1e-5)
    # far from N* the sequence is wider still; it is never narrower than the fixed-horizon interval
    early = sequence_bounds(500, 25, 25, 500, 20, 20, alpha=0.05, tuning=10_000)
    assert (early["cs_high"] - early["diff"]) / (early["ci_high"] - early["diff"]) > 3.03520 / 1.96


@pytest.fixture(scope="module")
def aa():
    """An A/A drip campaign: 8,000 customers sent over 10 days (one arm and a holdout, no effect),
    24-hour window, customers buying at their own rate (about 3% a day on average)."""
    s, o, _ = planted_campaign({"A": 0.0}, n_per_arm=4000, base_rate=0.03, window_hours=24, drip_days=10, pre_days=1,
                               response_weight=False, seed=7)
    r = analyse_experiment(s, o, window_hours=24, cuped_days=0, monitor=True)
    return s, o, r


def test_looks_run_until_one_day_after_the_campaign_end(aa):
    s, o, r = aa
    m = r.monitoring
    end = (r.outcomes["send_time"] + pd.Timedelta(hours=24)).max() + pd.Timedelta(days=1)
    looks = pd.to_datetime(m["look_time"])
    assert looks.max() >= end and looks.max() - pd.Timedelta(days=1) < end
    assert list(m["day"]) == list(range(1, len(m) + 1)) and len(m) >= 11
    assert m["targeted"].is_monotonic_increasing and m["targeted"].iloc[-1] == 4000
    cut = analyse_experiment(s, o, window_hours=24, cuped_days=0, monitor=True,
                             observation_end=pd.Timestamp("2025-03-06 12:00"))
    assert pd.to_datetime(cut.monitoring["look_time"]).max() <= pd.Timestamp("2025-03-06 12:00")


def test_aa_daily_looks(aa):
    """2,000 random re-splits of the A/A campaign's 8,000 customers (vectorised over the same
    per-customer panel the pipeline builds), read every morning over the campaign's ~12 days.

    * fixed-horizon 95% interval: excludes 0 on some day in a share k/2000 whose one-sided 99.9%
      Clopper-Pearson lower bound is above 5% (clearly more than 5%);
    * confidence sequence: excludes 0 on some day in at most 5% of the splits; with 2,000
      splits a true rate of 5% would exceed 6.6% with probability < 0.001 (binomial).
    """
    s, o, r = aa
    out = r.outcomes
    p = daily_panel(order_table(o), out, 24)
    # the pipeline's own monitoring is this panel's statistic for the real split
    arm = (out["arm"] == "A").to_numpy(float)
    st, sc = p.sums(arm), p.sums(1 - arm)
    b = sequence_bounds(st["n"], st["s_conv"], st["s_conv"], sc["n"], sc["s_conv"], sc["s_conv"], 0.05,
                        st["n"][-1] + sc["n"][-1])
    np.testing.assert_allclose(b["cs_low"], r.monitoring["cs_low"], rtol=1e-12)
    np.testing.assert_allclose(b["ci_high"], r.monitoring["ci_high"], rtol=1e-12)
    rng = np.random.default_rng(2024)
    tot = p.sums(np.ones(len(out)))
    R, hits = 2000, {"fixed_conv": 0, "cs_conv": 0, "fixed_rev": 0, "cs_rev": 0}
    for _ in range(R // 500):
        M = rng.permuted(np.tile(arm, (500, 1)), axis=1)
        a = p.sums(M)
        c = {k: tot[k] - a[k] for k in a}
        N = a["n"][:, -1:] + c["n"][:, -1:]
        conv = sequence_bounds(a["n"], a["s_conv"], a["s_conv"], c["n"], c["s_conv"], c["s_conv"], 0.05, N)
        rev = sequence_bounds(a["n"], a["s_rev"], a["ss_rev"], c["n"], c["s_rev"], c["ss_rev"], 0.05, N)
        for name, bb in (("conv", conv), ("rev", rev)):
            hits[f"fixed_{name}"] += int(((bb["ci_low"] > 0) | (bb["ci_high"] < 0)).any(axis=1).sum())
            hits[f"cs_{name}"] += int(((bb["cs_low"] > 0) | (bb["cs_high"] < 0)).any(axis=1).sum())
    for name in ("conv", "rev"):
        k = hits[f"fixed_{name}"]
        assert stats.beta.ppf(0.001, k, R - k + 1) > 0.05, hits  # Clopper-Pearson lower bound
        assert hits[f"cs_{name}"] / R <= 0.05, hits
    assert stats.binom.sf(int(0.066 * R), R, 0.05) < 0.001
