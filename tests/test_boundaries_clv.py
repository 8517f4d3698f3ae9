"""CLV's discount rate and margin, pinned (issue #18: either could be dropped and every test passed).

Independent references: a hand computation from the papers' closed forms (BG/NBD conditional
expectation, Fader, Hardie & Lee 2005, eq. 10; Gamma-Gamma conditional mean spend, Fader,
Hardie & Lee 2005b, eq. 5; lifetimes' monthly discounting: month i is 4.345 weeks, divided
by (1 + d)^i) for two customers, and lifetimes' own ``customer_lifetime_value`` on them.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from crmlab.clv.models import FittedModel, clv_pipeline, customer_value

BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}      # CDNOW (Fader, Hardie & Lee 2005)
GG = {"p": 6.25, "q": 3.74, "v": 15.44}                        # lifetimes' Gamma-Gamma example
# two customers, weeks: a repeat buyer and a one-time buyer (lifetimes' CDNOW rows 0 and 1 style)
CUSTOMERS = pd.DataFrame({"frequency": [2.0, 0.0], "recency": [30.43, 0.0], "T": [38.86, 38.86],
                          "monetary_value": [22.35, 0.0]}, index=pd.Index(["c1", "c2"], name="customer_id"))


def bgnbd_expected(t, x, tx, T, r, alpha, a, b):
    """E[purchases in (T, T + t] | x, tx, T], FHL 2005 eq. 10."""
    head = (a + b + x - 1) / (a - 1)
    z = t / (alpha + T + t)
    body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    den = 1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x)
    return head * body / den


def gg_mean_spend(x, m, p, q, v):
    """E[spend per purchase | x, mean m]: weighted population mean p v / (q − 1) and m."""
    w = p * x / (p * x + q - 1)
    return (1 - w) * p * v / (q - 1) + w * m


def clv_by_hand(row, months, d, margin, bg=BG, gg=GG, month=4.345):
    spend = gg_mean_spend(row.frequency, row.monetary_value, **gg)
    total = 0.0
    for i in range(1, months + 1):
        step = (bgnbd_expected(i * month, row.frequency, row.recency, row.T, **bg)
                - bgnbd_expected((i - 1) * month, row.frequency, row.recency, row.T, **bg))
        total += spend * step / (1 + d) ** i
    return margin * total


def model(name, params):
    k = len(params)
    return FittedModel(name, pd.Series(params, dtype=float), standard_errors=pd.Series(0.0, index=list(params)),
                       cov_log=np.zeros((k, k)))


def summary(df=CUSTOMERS, unit="W"):
    s = df.copy()
    s.attrs["time_unit"] = unit
    return s


@pytest.mark.parametrize("d, margin", [(0.0, 1.0), (0.01, 1.0), (0.05, 0.3), (0.2, 0.55)])
def test_customer_value_discount_and_margin_by_hand_and_lifetimes(d, margin):
    v = customer_value(summary(), model("bgnbd", BG), model("gamma_gamma", GG), horizon_months=12,
                       discount_rate=d, margin=margin)
    hand = [clv_by_hand(r, 12, d, margin) for r in CUSTOMERS.itertuples()]
    assert v["clv"].tolist() == pytest.approx(hand, rel=1e-9)
    assert v.attrs["total"] == pytest.approx(sum(hand), rel=1e-9)
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    bgf, ggf = BetaGeoFitter(), GammaGammaFitter()
    bgf.params_, ggf.params_ = pd.Series(BG), pd.Series(GG)
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time  # what lifetimes' fit() sets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ggf.customer_lifetime_value(bgf, CUSTOMERS["frequency"], CUSTOMERS["recency"], CUSTOMERS["T"],
                                             CUSTOMERS["monetary_value"], time=12, discount_rate=d, freq="W")
    assert v["clv"].tolist() == pytest.approx((margin * theirs).tolist(), rel=1e-9)
    assert v["expected_spend"].tolist() == pytest.approx(
        [gg_mean_spend(r.frequency, r.monetary_value, **GG) for r in CUSTOMERS.itertuples()], rel=1e-12)


def test_discounting_and_margin_each_move_the_value():
    """Not only equal to the hand computation: each parameter matters, in the stated way."""
    def total(**kw):
        return customer_value(summary(), model("bgnbd", BG), model("gamma_gamma", GG), **kw).attrs["total"]

    base = total(horizon_months=12, discount_rate=0.0, margin=1.0)
    assert total(horizon_months=12, discount_rate=0.0, margin=0.25) == pytest.approx(0.25 * base, rel=1e-12)
    assert total(horizon_months=12, discount_rate=0.1, margin=1.0) < base
    # one month: the whole value is divided by (1 + d) exactly once
    one = total(horizon_months=1, discount_rate=0.0, margin=1.0)
    assert total(horizon_months=1, discount_rate=0.1, margin=1.0) == pytest.approx(one / 1.1, rel=1e-12)
    # daily units: a month is 30 days; a week-based store expressed in days gives the same value
    days = CUSTOMERS.assign(recency=CUSTOMERS["recency"] * 7, T=CUSTOMERS["T"] * 7)
    bg_days = {**BG, "alpha": BG["alpha"] * 7}
    v = customer_value(summary(days, "D"), model("bgnbd", bg_days), model("gamma_gamma", GG), horizon_months=12,
                       discount_rate=0.05, margin=0.3)
    hand = [clv_by_hand(r, 12, 0.05, 0.3, bg=bg_days, month=30.0) for r in days.itertuples()]
    assert v["clv"].tolist() == pytest.approx(hand, rel=1e-9)


def test_clv_pipeline_passes_discount_and_margin_through():
    """The pipeline's values equal the hand computation at its own fitted parameters."""
    from crmlab.simulate.store import simulate_bgnbd

    orders = simulate_bgnbd(n_customers=600, seed=3)["orders"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = clv_pipeline(orders, model="bgnbd", discount_rate=0.05, margin=0.4, horizon_months=6)
    bg = res.model.params_.to_dict()
    gg = res.gamma_gamma.params_.to_dict()
    vals = res.values.iloc[:2]
    hand = [clv_by_hand(r, 6, 0.05, 0.4, bg=bg, gg=gg) for r in vals.itertuples()]
    assert vals["clv"].tolist() == pytest.approx(hand, rel=1e-8)
    assert res.parameters["discount_rate"] == 0.05 and res.parameters["margin"] == 0.4
    assert res.parameters["horizon_months"] == 6
