"""Issue 28's trust checks of the readout's precision tools: Lin's adjustment for many
assignments at once equals cuped_lin and statsmodels OLS (HC2); its A/A coverage on
Hillstrom-shaped customers; the interval after re-randomisation; BH and Holm against R.
The full A/A study (>= 200 splits per population, 2,000 in all): studies/adjustment_coverage.py."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from crmlab.experiments.balance import design_experiment
from crmlab.experiments.cuped import cuped_lin
from crmlab.experiments.metrics import holm
from crmlab.experiments.precision import benjamini_hochberg, lin_many
from crmlab.experiments.synthetic import hillstrom_like

Z95 = stats.norm.isf(0.025)


def test_lin_many_equals_cuped_lin_and_statsmodels_hc2():
    x, conv, rev = hillstrom_like(6000, 1)
    y = rev + 0.05 * x[:, 0]
    rng = np.random.default_rng(2)
    T = np.array([rng.permutation(6000) < 4000 for _ in range(3)])
    est, se = lin_many(y, x, T)
    for k in range(3):
        d = pd.DataFrame(x - x.mean(axis=0), columns=["h", "r", "n"]).assign(y=y, T=T[k].astype(float))
        ref = smf.ols("y ~ T * (h + r + n)", d).fit(cov_type="HC2")
        assert (est[k], se[k]) == pytest.approx((ref.params["T"], ref.bse["T"]), rel=1e-9)
        r = cuped_lin(y[T[k]], x[T[k]], y[~T[k]], x[~T[k]])  # its normal equations: ~1e-11 absolute
        assert (est[k], se[k]) == pytest.approx((r["diff"], r["se"]), rel=1e-9, abs=1e-9)


def test_lin_aa_coverage_on_hillstrom_shaped_customers():
    """300 A/A splits (2/3 vs 1/3) of 12,000 customers: the 95% interval holds 0 for
    conversion (~1%) and heavy-tailed revenue at a rate inside the 99.9% binomial band of 95%
    (the full study: 2,000 splits of 64,000 customers, 95.2% and 95.3%)."""
    x, conv, rev = hillstrom_like(12_000, 5)
    assert 0.005 < conv.mean() < 0.015
    rng = np.random.default_rng(6)
    S = 300
    T = np.array([rng.permutation(12_000) < 8_000 for _ in range(S)])
    lo, hi = stats.binom.ppf([0.0005, 0.9995], S, 0.95)
    for y in (conv, rev, rev + 0.05 * x[:, 0]):
        est, se = lin_many(y, x, T)
        k = int((np.abs(est) <= Z95 * se).sum())
        assert lo <= k <= hi, (k, S)


def test_rerandomised_designs_keep_the_interval_calibrated():
    """40 designs of 2,000 customers re-randomised to max |SMD| < 0.04: the balance is better
    than one draw's, the raw interval covers 0 at least at its rate (conservative, Morgan &
    Rubin 2012) and Lin's near it (99.9% binomial bands)."""
    x, conv, rev = hillstrom_like(2000, 9)
    y = rev + 0.05 * x[:, 0]
    feats = pd.DataFrame(x, columns=["history", "recency", "newbie"], index=[f"c{i}" for i in range(2000)])
    T, worst, one = [], [], []
    for s in range(40):
        d = design_experiment(feats, ["A"], holdout=1 / 3, seed=1000 * s, rerandomize=50, threshold=0.04)
        T.append((d["assignment"].set_index("customer_id")["arm"].reindex(feats.index) == "A").to_numpy())
        worst.append(d["max_abs_smd"])
        one.append(design_experiment(feats, ["A"], holdout=1 / 3, seed=1000 * s + 999)["max_abs_smd"])
    assert np.mean(worst) < np.mean(one) and max(worst) < 0.04
    T = np.array(T)
    est, se = lin_many(y, x, T)
    raw = np.array([y[t].mean() - y[~t].mean() for t in T])
    raw_se = np.array([np.sqrt(y[t].var(ddof=1) / t.sum() + y[~t].var(ddof=1) / (~t).sum()) for t in T])
    lo, hi = stats.binom.ppf([0.0005, 0.9995], len(T), 0.95)
    assert (np.abs(raw) <= Z95 * raw_se).sum() >= lo
    assert lo <= (np.abs(est) <= Z95 * se).sum() <= hi


def test_bh_and_holm_against_r():
    """R 4.2.2 (2022-11-10), run once:
        p <- c(0.01, 0.04, 0.03, 0.005, 0.04, 0.5, 0.9, 0.2, 0.01); options(digits = 17)
        p.adjust(p, "BH")
        # 0.029999999999999999 0.059999999999999998 0.059999999999999998 0.029999999999999999
        # 0.059999999999999998 0.562500000000000000 0.900000000000000022 0.257142857142857173
        # 0.029999999999999999
        p.adjust(p, "holm")
        # 0.080000000000000002 0.200000000000000011 0.179999999999999993 0.044999999999999998
        # 0.200000000000000011 1.000000000000000000 1.000000000000000000 0.600000000000000089
        # 0.080000000000000002
    Ties (0.01 twice, 0.04 twice) and Holm values above 1 before the cap (0.5 x 4, 0.9 x 3)."""
    p = [0.01, 0.04, 0.03, 0.005, 0.04, 0.5, 0.9, 0.2, 0.01]
    r_bh = [0.029999999999999999, 0.059999999999999998, 0.059999999999999998, 0.029999999999999999,
            0.059999999999999998, 0.562500000000000000, 0.900000000000000022, 0.257142857142857173,
            0.029999999999999999]
    r_holm = [0.080000000000000002, 0.200000000000000011, 0.179999999999999993, 0.044999999999999998,
              0.200000000000000011, 1.0, 1.0, 0.600000000000000089, 0.080000000000000002]
    assert benjamini_hochberg(p) == pytest.approx(r_bh, rel=1e-15, abs=1e-16)
    assert holm(p) == pytest.approx(r_holm, rel=1e-15, abs=1e-16)
