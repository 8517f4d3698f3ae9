"""CLV results carry their context (issue 23): the interval level and currency they name, the
store's time zone for the calibration end; and the lifelines-style model classes."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from crmlab.clv.base import FittedModel
from crmlab.clv.bgnbd import BetaGeoModel
from crmlab.clv.gamma_gamma import GammaGammaModel
from crmlab.clv.mbgnbd import ModifiedBetaGeoModel
from crmlab.clv.models import clv_pipeline, fit_clv_models, fit_gamma_gamma, rfm_summary
from crmlab.clv.pareto_nbd import ParetoNBDModel
from crmlab.engine.sources import order_table
from crmlab.ingest.readers import load_orders
from crmlab.settings import Settings


@pytest.fixture(scope="module")
def orders(small_store):
    return order_table(load_orders(small_store / "orders.csv")[0])


def _with(o, **settings):
    return dataclasses.replace(o, settings=Settings(**settings))


def test_headline_names_the_runs_interval_level_and_the_stores_currency(orders):
    r = clv_pipeline(_with(orders, currency="£"), model="bgnbd", holdout_days=0, interval_level=0.5)
    c = r.clv
    # no holdout, no backtests: the interval is named for what it is (issue 25 item 1), after a misfit if any
    expected = ((f"{c['misfit']}. " if c["misfit"] else "")
                + f"Expected 12-month revenue of today's {r.customers:,} customers: £{c['total']:,.0f} "
                f"(50% interval of the expected value, parameter uncertainty only: "
                f"£{c['total_low']:,.0f}–£{c['total_high']:,.0f}), at margin 1.")
    assert r.headline() == expected
    assert "90%" not in repr(r) and "¥" not in r._repr_html_()
    assert r.settings.interval_level == 0.5 and r.to_dict()["clv"]["interval_level"] == 0.5
    # the default run says 90%
    d = clv_pipeline(orders, model="bgnbd", holdout_days=0)
    assert "(90% interval of the expected value, parameter uncertainty only: ¥" in d.headline()


def test_calibration_end_is_read_in_the_orders_time_zone_and_stays_a_timestamp(orders):
    london = _with(orders, timezone="Europe/London")
    # 22:30 UTC on 30 June is 23:30 in London (BST) but 06:30 on 1 July in Shanghai
    r = clv_pipeline(london, model="bgnbd", calibration_end="2025-06-30T22:30:00+00:00")
    end = r.holdout["calibration_end"]
    assert isinstance(end, pd.Timestamp) and end == pd.Timestamp("2025-06-30 23:30:00")
    assert r.to_dict()["holdout"]["calibration_end"] == "2025-06-30 23:30:00"
    card = repr(r)
    assert "time zone Europe/London" in card and "Asia/Shanghai" not in card
    summary = rfm_summary(london, time_unit="W", calibration_end="2025-06-30T22:30:00+00:00")
    assert summary.attrs["calibration_end"] == pd.Timestamp("2025-06-30 23:30:00")


def test_default_calibration_end_is_the_end_of_a_store_day(orders):
    r = clv_pipeline(orders, model="bgnbd", holdout_days=182)
    end = r.holdout["calibration_end"]
    day = pd.Timestamp(orders.observation_end).normalize() - pd.Timedelta(days=182)
    assert isinstance(end, pd.Timestamp) and end == day + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)


def test_one_class_per_model_in_lifelines_shape(orders):
    s = rfm_summary(orders, time_unit="W")
    ref = fit_clv_models(s)
    for cls, name in ((BetaGeoModel, "bgnbd"), (ParetoNBDModel, "pareto_nbd"), (ModifiedBetaGeoModel, "mbgnbd")):
        m = cls()
        assert isinstance(m, FittedModel) and m.name == name and "not fitted" in repr(m)
        assert m.fit(s) is m
        pd.testing.assert_series_equal(m.params_, ref[name].params_)
        assert m.log_likelihood_ == ref[name].log_likelihood
        assert list(m.summary.columns) == ["estimate", "std_error", "ci_low", "ci_high"]
        assert repr(m).startswith(f"<{cls.__name__} ")
    gg = GammaGammaModel().fit(s)
    np.testing.assert_array_equal(gg.params_.to_numpy(), fit_gamma_gamma(s).params_.to_numpy())
    # the summary carries the orders' settings; the fitted model its context
    assert ref["bgnbd"].settings == orders.settings and ref["bgnbd"].to_dict()["ci_level"] == 0.95
