"""CUPED (Deng, Xu, Kohavi & Walker 2013): equal to R's t.test on the adjusted outcome, to an
independent pandas/scipy computation through the whole pipeline, and it narrows the intervals."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from crmlab.experiments.analysis import analyse_experiment
from crmlab.experiments.cuped import cuped_welch
from crmlab.experiments.synthetic import planted_campaign

REL = 1e-6
YA = [0, 0, 35.5, 0, 120, 0, 0, 58.2, 0, 0, 0, 99.9]
XA = [10, 0, 80, 0, 300, 25, 0, 110, 0, 40, 0, 150]
YC = [0, 42, 0, 0, 0, 77.7, 0, 0, 13.5, 0]
XC = [0, 95, 20, 0, 0, 160, 5, 0, 60, 0]


def test_cuped_equals_r_t_test_on_the_adjusted_outcome():
    # R 4.2:
    #   x <- c(xa, xc); y <- c(ya, yc); theta <- cov(x, y) / var(x); m <- mean(x)
    #   theta = 0.461620903039778
    #   t.test(ya - theta * (xa - m), yc - theta * (xc - m)): t = 0.246714513091636,
    #     df = 15.2020492243194, p-value = 0.8084297438576, 95% CI -7.65629179793836 9.66335559240304,
    #     difference of means 1.00353189723234
    #   t.test(ya, yc)$conf.int = -18.7757199147922 44.4023865814589
    #   coef(lm(y ~ arm + x))["arm"] = 1.03394152452157 (the regression-adjusted estimate)
    r = cuped_welch(YA, XA, YC, XC)
    assert r["theta"] == pytest.approx(0.461620903039778, rel=REL)
    assert r["welch_t"] == pytest.approx(0.246714513091636, rel=REL)
    assert r["df"] == pytest.approx(15.2020492243194, rel=REL)
    assert r["p_value"] == pytest.approx(0.8084297438576, rel=REL)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((-7.65629179793836, 9.66335559240304), rel=REL)
    assert r["diff"] == pytest.approx(1.00353189723234, rel=REL)
    assert (r["raw_ci_low"], r["raw_ci_high"]) == pytest.approx((-18.7757199147922, 44.4023865814589), rel=REL)
    w, w0 = r["ci_high"] - r["ci_low"], r["raw_ci_high"] - r["raw_ci_low"]
    assert r["variance_reduction"] == pytest.approx(1 - (w / w0) ** 2)
    # statsmodels OLS of Y on the arm and X: R's lm, and close to CUPED (not identical: the
    # regression fits theta within the arms)
    d = pd.DataFrame({"y": YA + YC, "x": XA + XC, "arm": [1] * len(YA) + [0] * len(YC)})
    ols = smf.ols("y ~ arm + x", d).fit()
    assert ols.params["arm"] == pytest.approx(1.03394152452157, rel=REL)
    assert abs(ols.params["arm"] - r["diff"]) < 0.01 * w0
    # no pre-period variation: nothing to remove
    flat = cuped_welch(YA, [5] * len(YA), YC, [5] * len(YC))
    assert flat["theta"] == 0 and flat["variance_reduction"] == pytest.approx(0, abs=1e-12)


@pytest.fixture(scope="module")
def planted():
    # customers who buy every ~20 days on average (base rate 0.05 a day), levels persist
    s, o, _ = planted_campaign({"A@10:00": 0.02, "A@17:00": 0.04}, n_per_arm=3000, base_rate=0.05, seed=31)
    return s, o, analyse_experiment(s, o, cuped_days=60)


def test_cuped_through_the_pipeline_equals_an_independent_computation(planted):
    """X and Y computed here with plain pandas from the two frames (not the engine); the readout's
    adjustment (Lin's interacted regression) against statsmodels OLS with HC2 errors."""
    s, o, r = planted
    out = r.outcomes
    send = out["send_time"]  # the holdout's clock is tested in test_experiments_decision
    j = o.merge(send.rename("send").reset_index(), on="customer_id")
    lag = (j["order_time"] - j["send"]).dt.total_seconds()
    y = j[(lag >= 0) & (lag <= 72 * 3600)].groupby("customer_id")["amount"].sum().reindex(out.index, fill_value=0)
    x = j[(lag < 0) & (lag >= -60 * 86400)].groupby("customer_id")["amount"].sum().reindex(out.index, fill_value=0)
    xn = j[(lag < 0) & (lag >= -60 * 86400)].groupby("customer_id").size().reindex(out.index, fill_value=0)
    for arm in ("A@10:00", "A@17:00"):
        clock = arm[2:]
        a = out.index[out["arm"] == arm]
        c = out.index[(out["arm"] == "holdout") & (out["clock"] == clock)]
        # Lin (2013): statsmodels OLS y ~ T * xc (xc centred at the pooled mean), HC2, normal intervals
        for yv, xv, got in ((y, x, r.comparisons.at[arm, "revenue"]["cuped"]),
                            (out["converted"].astype(float), xn, r.comparisons.at[arm, "cuped"])):
            d = pd.DataFrame({"y": np.r_[yv[a], yv[c]], "x": np.r_[xv[a], xv[c]].astype(float),
                              "T": np.r_[np.ones(len(a)), np.zeros(len(c))]})
            d["x"] -= d["x"].mean()
            ref = smf.ols("y ~ T * x", d).fit(cov_type="HC2")
            assert got["diff"] == pytest.approx(ref.params["T"], rel=1e-9, abs=1e-12)
            assert got["p_value"] == pytest.approx(ref.pvalues["T"], rel=1e-9)
            assert (got["ci_low"], got["ci_high"]) == pytest.approx(tuple(ref.conf_int().loc["T"]), rel=1e-9)
            raw = stats.ttest_ind(d["y"][d["T"] == 1], d["y"][d["T"] == 0], equal_var=False).confidence_interval()
            assert got["variance_reduction"] == pytest.approx(
                1 - (2 * stats.norm.isf(0.025) * ref.bse["T"] / (raw.high - raw.low)) ** 2, rel=1e-9)


def test_cuped_narrows_the_intervals_when_levels_persist(planted, store_orders, store_sends):
    _, _, r = planted
    for arm in ("A@10:00", "A@17:00"):
        assert r.comparisons.at[arm, "revenue"]["cuped"]["variance_reduction"] > 0.05
        assert r.comparisons.at[arm, "cuped"]["variance_reduction"] > 0.05
    # the simulated store: customers who bought more in the 90 days before respond more
    vr = [c["cuped"]["variance_reduction"] for c in analyse_experiment(store_sends[0], store_orders[0]).comparisons["revenue"]]
    assert np.mean(vr) > 0.02 and max(vr) > 0.04, vr
