"""The decision without a pre-test gate (issue 25, item 9): wrong-call rates over planted factorial
stores (the full study is studies/decision_error_rates.py; docs/methods/experiments.md has its
table), and the truth each store is judged against, derived by hand."""
from __future__ import annotations

import pytest
from scipy import stats

from crmlab.experiments.decision_study import SCENARIOS, error_rates, true_profits


def test_true_profits_by_hand():
    """margin 0.3 x value 100 x extra - parts x 0.05: the additive store's B@17:00 is
    0.3·100·0.05 − 2·0.05 = 1.40 a message, A@17:00 0.3·100·0.035 − 0.05 = 1.00."""
    extra, seg = SCENARIOS["additive effects, costlier copy pays"]
    t = true_profits(extra, seg)
    assert t["B@17:00"] == pytest.approx(1.40) and t["A@17:00"] == pytest.approx(1.00)
    assert t["B@10:00"] == pytest.approx(0.95) and t["A@10:00"] == pytest.approx(0.55)


def test_wrong_call_rates_over_planted_stores():
    """12 stores in each of the no-interaction, additive, real-interaction and crossover
    scenarios (10,000 customers per arm). If the rule's wrong-call rate is at most 5%, three or
    more wrong calls of 12 happen with probability 2% (binomial): at most two are allowed.
    The crossover store has no main effects at all: the factor view would find nothing, the arms
    find the best cell."""
    assert stats.binom.sf(2, 12, 0.05) < 0.02
    names = ["no interaction, costlier copy no better", "additive effects, costlier copy pays",
             "real interaction (B works at 17:00 only)", "crossover interaction (no main effects)"]
    for r in error_rates(stores=12, n_per_arm=10000, seed0=50, scenarios=names):
        assert r["wrong"] <= 2, r
