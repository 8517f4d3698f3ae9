"""Retention with one follow-up (issue 25 item 6): "on or after day N" counts a paid order on
days N to H, and a customer without H days of follow-up is censored.

The store: crmlab's simulator with no promotion pulls and no campaign effect (8,000 customers,
seed 0), so nothing in the purchase process depends on the calendar: every monthly cohort has
the same day-30-to-180 retention in truth. Expected counts are recomputed here in pandas from
the simulated orders. On seeds 0 and 1 the chi-square homogeneity p-values across the 18
cohorts with full follow-up are 0.56 and 0.74, while the old rule (orders up to the
observation end) falls from 49% to 8% (chi-square p < 0.0001) (benchmarks/study_lead_in_retention.py).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency

import crmlab
from crmlab.analyses.retention import HORIZON_DAYS, retention_table
from crmlab.cli.main import main
from crmlab.engine.sources import write_clean
from crmlab.simulate.store import StoreSpec, simulate_store

H = 180


@pytest.fixture(scope="module")
def stationary(tmp_path_factory):
    orders, *_ = simulate_store(StoreSpec(n_customers=8000, seed=0, promotions=(),
                                          extra_conversion=(0.0, 0.0, 0.0, 0.0)))
    orders["order_time"] = pd.to_datetime(orders["order_time"])
    o, led = crmlab.load(orders)
    paid = orders[orders["status"].isin(["paid", "交易成功"])]
    p = paid.groupby("order_id").agg(customer_id=("customer_id", "first"), order_time=("order_time", "first"))
    clean = tmp_path_factory.mktemp("stationary") / "clean.parquet"
    write_clean(o, led, str(clean))
    return o, p, pd.Timestamp(led.observation_end), clean


def _by_hand(p: pd.DataFrame, end: pd.Timestamp, day: int, horizon: int | None) -> pd.DataFrame:
    """Per monthly cohort: eligible and retained for "a paid order on days ``day``..``horizon``"
    (``horizon=None``: the old rule, any later order up to the observation end)."""
    first = p.groupby("customer_id")["order_time"].min().rename("first")
    j = p.join(first, on="customer_id")
    j["day"] = (j["order_time"].dt.normalize() - j["first"].dt.normalize()).dt.days
    top = np.inf if horizon is None else horizon
    hit = j[(j["day"] >= day) & (j["day"] <= top)].groupby("customer_id").size().reindex(first.index).fillna(0) > 0
    last_full = (end + pd.Timedelta(microseconds=1)).normalize() - pd.Timedelta(days=1)
    observed = (last_full - first.dt.normalize()).dt.days >= (day if horizon is None else horizon)
    df = pd.DataFrame({"cohort": first.dt.strftime("%Y-%m"), "hit": hit & observed, "eligible": observed,
                       "size": 1})
    return df.groupby("cohort")[["size", "eligible", "hit"]].sum()


def _p_homogeneous(retained, eligible) -> float:
    retained, eligible = np.asarray(retained), np.asarray(eligible)
    return float(chi2_contingency(np.vstack([retained, eligible - retained]))[1])


def test_on_or_after_counts_days_n_to_h_and_censors_the_rest(stationary):
    o, p, end, _ = stationary
    t = retention_table(o, cohort="month", days=(30, 90), kind="on_or_after", horizon_days=H)
    assert t.horizon_days == H and HORIZON_DAYS == 180
    for d in (30, 90):
        hand = _by_hand(p, end, d, H)
        cohorts = [c for c in t.rates.index if c != "all cohorts"]
        assert cohorts == hand.index.tolist()
        assert t.eligible.loc[cohorts, d].tolist() == hand["eligible"].tolist()
        assert t.retained.loc[cohorts, d].tolist() == hand["hit"].tolist()
        # the all-cohorts row: only customers followed for H days, one follow-up for all
        assert t.eligible.at["all cohorts", d] == hand["eligible"].sum()
    young = [c for c in cohorts if hand.at[c, "eligible"] == 0]
    assert young and t.rates.loc[young, 30].isna().all()  # censored: missing, never 0


def test_full_follow_up_cohorts_agree_where_the_old_rule_falls(stationary):
    o, p, end, _ = stationary
    t = retention_table(o, cohort="month", days=(30,), kind="on_or_after", horizon_days=H)
    full = [c for c in t.rates.index if c != "all cohorts" and t.eligible.at[c, 30] == t.size[c]]
    assert len(full) >= 12
    assert _p_homogeneous(t.retained.loc[full, 30], t.eligible.loc[full, 30]) > 0.01
    pooled = t.retained.loc[full, 30].sum() / t.eligible.loc[full, 30].sum()
    se = np.sqrt(pooled * (1 - pooled) / t.eligible.loc[full, 30])
    assert (np.abs(t.rates.loc[full, 30] - pooled) <= 3 * se).all()  # each within 3 binomial SE of the pool
    old = _by_hand(p, end, 30, None)
    old = old[old["eligible"] > 0]
    rate = old["hit"] / old["eligible"]
    assert rate.iloc[0] > 3 * rate.iloc[-1]  # the old rule: young cohorts fall by construction
    assert _p_homogeneous(old["hit"], old["eligible"]) < 1e-6


def test_cli_horizon_days(stationary, capsys):
    *_, clean = stationary
    assert main(["retention", "--orders", str(clean), "--kind", "on_or_after", "--days", "30",
                 "--horizon-days", "60", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["horizon_days"] == 60 and out["kind"] == "on_or_after"
    assert main(["retention", "--orders", str(clean), "--kind", "on_or_after", "--days", "90",
                 "--horizon-days", "60"]) == 2  # day 90 after the horizon: one line, exit 2
    assert "horizon_days" in capsys.readouterr().err
