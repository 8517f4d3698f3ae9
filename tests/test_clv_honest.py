"""Issue 25 (items 1–4, 11) and 24 (item 3): CLV that stays honest when the model is off.

Every expected value comes from truth planted outside the code under test: crmlab's own
simulator (its repurchase chain, not BG/NBD), BG/NBD stores with planted parameters, and
customers' simulated futures. The full coverage study (40 + 40 stores) is
studies/clv_coverage.py; here a small version with bounds honest for its size.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, spearmanr

from crmlab.analyses.wakeup import wakeup_list
from crmlab.clv import expectations as ex
from crmlab.clv.checks import NO_DROPOUT, spend_frequency_check
from crmlab.clv.fitting import choose_model, fit_clv_models, holdout_scores
from crmlab.clv.gamma_gamma import fit_gamma_gamma
from crmlab.clv.pipeline import _holdout, clv_pipeline, default_calibration_end
from crmlab.clv.predictive import value_distribution
from crmlab.engine.sources import order_table
from crmlab.ingest.readers import load_orders
from crmlab.simulate.bgnbd import simulate_bgnbd
from crmlab.simulate.spec import StoreSpec
from crmlab.simulate.store import simulate_store

warnings.filterwarnings("ignore", module="lifetimes")
BGNBD = ("r", "alpha", "a", "b")


def _chosen_holdout(orders: pd.DataFrame, **kw) -> pd.Series:
    """The pipeline's holdout step (fits, choice, backtests) on a store; the chosen model's row."""
    o = order_table(load_orders(orders, **kw)[0])
    hold = _holdout(o, "W", default_calibration_end(o, 182), None, ("bgnbd", "pareto_nbd", "mbgnbd"), None, 0.9,
                    0.10, 0, [])
    return hold["metrics"].loc[hold["chosen"]]


def _covers(row: pd.Series, low: str = "predicted_low", high: str = "predicted_high") -> bool:
    return bool(row[low] <= row["actual_total"] <= row[high])


def test_holdout_interval_covers_on_the_simulators_stores():
    """6 stores of 3,000 customers from crmlab's simulator (not BG/NBD): the chosen model's 90%
    interval incl. model error covers the actual holdout total in at least 4 of 6 (a 90%
    interval fails this with probability 0.016, one covering 80% with 0.10), and more often
    than the model's own interval (parameters + purchase noise: 16/40 in the full study).
    Full study, 40 + 40 stores: studies/clv_coverage.py (39/40 and 39/40)."""
    rows = [_chosen_holdout(simulate_store(StoreSpec(n_customers=3000, seed=500 + s))[0]) for s in range(6)]
    covered = sum(_covers(r) for r in rows)
    today = sum(_covers(r, "within_model_low", "within_model_high") for r in rows)
    assert binom.cdf(3, 6, 0.9) < 0.02
    assert covered >= 4 and covered > today, (covered, today)
    ratio = np.median([(r["predicted_high"] - r["predicted_low"]) / (r["within_model_high"] - r["within_model_low"])
                       for r in rows])
    assert 1 < ratio < 6, ratio  # the full study's median (3.4x) is the acceptance number (< 4x); 6 stores are noisier


def test_holdout_interval_covers_on_bgnbd_stores():
    """5 BG/NBD stores (planted CDNOW parameters, 3,000 customers, 104 + 26 weeks): coverage >= 3
    of 5 (a 90% interval fails this with probability 0.009)."""
    rows = []
    for s in range(5):
        sim = simulate_bgnbd(3000, 700 + s, calibration_weeks=104.0, holdout_weeks=26.0)
        end = pd.Timestamp(sim["truth"]["start"]) + pd.Timedelta(weeks=130)
        rows.append(_chosen_holdout(sim["orders"], observation_end=end.strftime("%Y-%m-%d")))
    assert binom.cdf(2, 5, 0.9) < 0.01
    assert sum(_covers(r) for r in rows) >= 3


def test_proper_score_picks_the_right_model_where_mae_rewards_under_prediction():
    """Planted BG/NBD store: the planted model's expected holdout purchases against the same
    shrunk by 8%. MAE prefers the shrunk (under-predicting) one — the conditional median of most
    customers is 0 — while the Poisson deviance, a proper score for the mean, prefers the truth;
    the holdout rule (both within its band) picks the truth."""
    sim = simulate_bgnbd(8000, 3, calibration_weeks=39.0, holdout_weeks=39.0)
    s = sim["summary"]
    x, tx, T = (s[f"{c}_cal"].to_numpy(float) for c in ("frequency", "recency", "T"))
    truth = ex.expected_purchases("bgnbd", [sim["truth"][k] for k in BGNBD], 39.0, x, tx, T)
    y = s["frequency_holdout"].to_numpy(float)
    sc = {"truth": holdout_scores(truth, y), "shrunk": holdout_scores(0.92 * truth, y)}
    assert sc["shrunk"]["mae"] < sc["truth"]["mae"]
    assert sc["truth"]["deviance"] < sc["shrunk"]["deviance"]
    met = pd.DataFrame({k: {**v, "total_error": f * truth.sum() / y.sum() - 1}
                        for (k, v), f in zip(sc.items(), (1.0, 0.92))}).T
    assert (met["total_error"].abs() <= 0.15).all(), met
    best, why, tracks = choose_model(met.rename(index={"truth": "bgnbd", "shrunk": "mbgnbd"}), band=0.15)
    assert best == "bgnbd" and tracks and "Poisson deviance" in why


def test_per_customer_predictive_distribution_is_calibrated():
    """BG/NBD + Gamma-Gamma store (6,000 customers): models fitted on 39 weeks; each customer's
    stated P(no purchase) and 90th percentile of 12-month value against what the planted process
    did next (52.14 weeks = 12 months): mean stated P(no purchase) within 3 pp of the observed
    share; among customers with a positive 90th percentile, 10% ± 3 pp above it."""
    sim = simulate_bgnbd(6000, 11, calibration_weeks=39.0, holdout_weeks=12 * 4.345)
    now = sim["summary"].rename(columns=lambda c: c.replace("_cal", ""))
    m, gg = fit_clv_models(now, ("bgnbd",))["bgnbd"], fit_gamma_gamma(now)
    d = value_distribution(now, m, gg, 12)
    o = sim["orders"]
    cut = pd.Timestamp(sim["truth"]["start"]) + pd.Timedelta(weeks=39)
    future = o[o["order_time"] > cut].groupby("customer_id")["amount"].sum().reindex(now.index, fill_value=0.0)
    assert abs(d["p_no_purchase"].mean() - (future == 0).mean()) < 0.03
    pos = d["value_p90"] > 0
    assert pos.sum() > 1000
    assert abs((future[pos] > d.loc[pos, "value_p90"]).mean() - 0.10) < 0.03


@pytest.fixture(scope="module")
def misfit_run():
    """A store from crmlab's simulator (its repurchase chain is not a buy-till-you-die model)."""
    orders, _, _, _ = simulate_store(StoreSpec(n_customers=4000, seed=1))
    return clv_pipeline(load_orders(orders)[0])


def test_a_misfit_is_said_first_and_the_interval_names_its_model_error(misfit_run):
    r = misfit_run
    c, d = r.clv, r.to_dict()
    assert not c["fits"] and r.headline().startswith(c["misfit"])
    assert "prediction interval incl. model error from" in r.headline()
    assert c["backtests"] >= 2 and c["total_low"] < c["within_model_low"] and c["total_high"] > c["within_model_high"]
    assert "rolling-origin" in d["holdout"]["interval_method"] and d["holdout"]["backtests"]
    assert any("period-transactions test rejects" in w for w in r.warnings)
    # one model: CLV, P(alive) and the wake-up ranking
    assert c["p_alive_model"] == c["model"] == r.chosen_model
    th = r.model.params_.to_numpy(float)
    s = r.summary
    pa = ex.p_alive(r.chosen_model, th, *(s[k].to_numpy(float) for k in ("frequency", "recency", "T")))
    np.testing.assert_allclose(r.values["p_alive"].to_numpy(), pa)
    for k in ("p_no_purchase", "value_median", "value_p90"):
        assert k in r.values.columns
    assert (r.values["value_median"] <= r.values["value_p90"]).all()


def test_spend_frequency_evidence_is_spearman_with_its_p_value():
    """Planted dependence (spend rises with frequency) is found; the statistic is scipy's."""
    rng = np.random.default_rng(4)
    f = rng.poisson(3, 800) + 1.0
    s = pd.DataFrame({"frequency": np.r_[f, np.zeros(50)],
                      "monetary_value": np.r_[20 * f ** 0.3 * rng.gamma(5, 0.2, 800), np.zeros(50)]})
    out = spend_frequency_check(s)
    rho, p = spearmanr(f, s["monetary_value"].to_numpy()[:800])
    assert out["spearman_rho"] == pytest.approx(rho) and out["p_value"] == pytest.approx(p)
    assert out["n"] == 800 and out["p_value"] < 1e-6


def test_a_store_without_dropout_labels_nobody():
    """A BG/NBD store with dropout probability ~0 planted (Beta(0.01, 1000)): the chosen model
    finds no dropout, the result says the data cannot tell who is gone and gives no "likely
    still a customer" count; the wake-up list is ordered by silence in own purchase gaps."""
    sim = simulate_bgnbd(3000, 5, a=0.01, b=1000.0, calibration_weeks=78.0, holdout_weeks=26.0)
    end = pd.Timestamp(sim["truth"]["start"]) + pd.Timedelta(weeks=104)
    r = clv_pipeline(load_orders(sim["orders"], observation_end=end.strftime("%Y-%m-%d"))[0])
    assert r.clv["dropout_evidence"] is False, (r.chosen_model, r.model.params_.to_dict())
    assert NO_DROPOUT in r.warnings[0].lower()
    v = r.values
    stages = pd.DataFrame({"stage": "dormant", "paid_orders": v["frequency"] + 1, "sales": 100.0 + v["frequency"],
                           "days_since_last": 7 * (v["T"] - v["recency"])}, index=v.index)
    w = wakeup_list(stages, values=v, min_spend_score=1, dropout_evidence=False)
    assert w.attrs["likely_alive"] is None
    assert not w["reason"].str.contains("likely still").any()
    rr = w["rhythm_ratio"].dropna().to_numpy()
    assert len(rr) > 100 and (np.diff(rr) >= 0).all() and w["rhythm_ratio"].iloc[-1:].isna().all()
