"""Experiment results on the one presentation path: cards, decision texts and charts in the
currency of their context (the orders' settings, or the session's), never a literal ¥.

Every expected text below is written from the definitions:

* two arms of 1,000 customers, every buyer spends 100: A (messaged, delivered) 80 buyers,
  holdout 50; conversion 8.00% vs 5.00%, revenue per targeted 8.00 vs 5.00;
* the difference 0.03 with the Wald interval 0.03 ± 1.96·sqrt(0.08·0.92/1000 + 0.05·0.95/1000)
  = [0.84, 5.16] points; pooled z = 0.03 / sqrt(0.065·0.935·2/1000) = 2.72, p = 0.00651;
* profit per message = margin 0.3 × 100 × 0.03 − 0.05 = 0.85, so 850 per 1,000 messages, its
  interval 850 ± 1,000·1.96·30·0.011005 = [203, 1,497]; incremental revenue 0.03 × 100 × 1,000
  = 3,000 for 1,000 × 0.05 = 50 of SMS.
"""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from crmlab.engine.sources import order_table
from crmlab.experiments.decision import decide
from crmlab.experiments.design import assign, sample_size
from crmlab.experiments.plots import monitoring_figure
from crmlab.experiments.readout import analyse_experiment, key_findings
from crmlab.ingest.readers import load_orders, load_sends
from crmlab.present import formatting
from crmlab.settings import Settings, current, use

POUNDS = Settings(currency="£", timezone="Europe/London")


def _load_two_arms():
    rows = ([("holdout", f"h{i}", i < 50, "false") for i in range(1000)]
            + [("A", f"a{i}", i < 80, "true") for i in range(1000)])
    sends = pd.DataFrame({"customer_id": [r[1] for r in rows], "campaign_id": "x", "variant": [r[0] for r in rows],
                          "send_time": "2025-03-01 10:00:00", "delivered": [r[3] for r in rows]})
    buyers = [r[1] for r in rows if r[2]]
    orders = pd.DataFrame({"customer_id": buyers, "order_id": [f"o{i}" for i in range(len(buyers))],
                           "order_time": "2025-03-02 10:00:00", "amount": 100.0})
    o, _ = load_orders(orders, observation_end="2025-04-01")
    s, _ = load_sends(sends)
    return s, o


@pytest.fixture(scope="module")
def two_arms():
    return _load_two_arms()


@pytest.fixture
def session():
    """Restore the session's settings and currency after a test changes them."""
    saved = current()
    yield
    use(saved)
    formatting.set_currency(saved.currency)


DECISION_GBP = ("send A: A is the only messaged arm; £850 incremental profit per 1,000 messages [£203, £1,497] "
                "against the holdout")


def test_experiment_card_and_decision_in_the_orders_currency(two_arms):
    s, o = two_arms
    orders = dataclasses.replace(order_table(o), settings=POUNDS)
    r = analyse_experiment(s, orders, cuped_days=0)
    assert r.settings == POUNDS
    assert repr(r) == (f"<ExperimentResult: {DECISION_GBP}\n"
                       "  engine duckdb · time zone Europe/London · window 72 h>")
    assert r.headline() == DECISION_GBP
    assert r.decision["headline"] == "A: £850 profit per 1,000 messages"
    tab = r.card().table
    assert tab.loc["A"].tolist() == ["1,000", "80", "8.00%", "£8.00", "+3.00 [0.84, 5.16]", "0.00651"]
    assert tab.loc["holdout"].tolist() == ["1,000", "50", "5.00%", "£5.00", "", ""]
    assert key_findings(r) == [
        f"**Decision:** {DECISION_GBP}.",
        "Campaign against the holdout (same clock): 80 buyers from 1,000 messaged customers (8.00% vs 5.00%); "
        "incremental revenue £3,000 for £50 of SMS."]
    page = r._repr_html_()
    assert "£8.00" in page and "Europe/London" in page and "¥" not in page + repr(r) + str(r.decision)
    d = r.to_dict()
    assert d["context"]["currency"] == "£" and d["settings"]["margin"] == 0.3  # CLI JSON keeps its parameters


def test_experiment_defaults_stay_in_yuan(two_arms):
    s, o = two_arms
    r = analyse_experiment(s, dataclasses.replace(order_table(o), settings=Settings()), cuped_days=0)
    assert r.headline() == DECISION_GBP.replace("£", "¥")
    assert r.card().table.at["A", "revenue / targeted"] == "¥8.00"
    assert "time zone Asia/Shanghai" in repr(r)


def test_session_currency_reaches_the_card_and_the_decision(session):
    """After ``set_currency("£")`` the orders loaded from then on carry £, so do their results."""
    formatting.set_currency("£")
    s, o = _load_two_arms()
    r = analyse_experiment(s, o, cuped_days=0)
    assert r.headline() == DECISION_GBP
    assert r.card().table.at["A", "revenue / targeted"] == "£8.00"
    assert "¥" not in repr(r) + r._repr_html_() + " ".join(key_findings(r))


def _outcomes(rates: dict, cost: dict, n: int = 200) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-customer outcomes (every buyer spends 100) and the arm table for ``decide``."""
    rows = []
    for arm, rate in rates.items():
        k = int(round(rate * n))
        for i in range(n):
            rows.append({"arm": arm, "converted": i < k, "revenue": 100.0 if i < k else 0.0,
                         "cost": cost.get(arm, 0.0),
                         "clock": arm.split("@")[1] if "@" in arm else ("10:00" if i % 2 else "17:00")})
    out = pd.DataFrame(rows, index=[f"u{i}" for i in range(len(rows))])
    g = out.groupby("arm")
    return out, pd.DataFrame({"targeted": g.size(), "buyers": g["converted"].sum(), "cost": g["cost"].sum()})


def test_decision_copy_text_in_the_context_currency():
    """B bills 0.10 a message, A 0.05; cells of 10,000, A converts 5%, B 6%; every buyer spends
    100, margin 0.3: B's extra revenue per message 100·0.01 = 1.00, extra profit 0.3·1.00 − 0.05
    = 0.25, se 30·sqrt(0.05·0.95/(2·9,999) + 0.06·0.94/(2·9,999)) = 0.0684 (cell means' variance
    with ddof 1), 97.5% interval (z = 2.2414, the factor view's two claims at α/2 each)
    0.25 ± 0.153 = [0.10, 0.40]. The send times convert alike, so B@any against the
    holdout (B's 20,000 at 6%, the holdout's 200 at 4%): 0.3·100·0.02 − 0.10 = 0.50 a message,
    500 per 1,000, interval 500 ± 1,000·1.96·30·sqrt(0.06·0.94/19,999 + 0.04·0.96/199)."""
    cost = {"A@10:00": 0.05, "A@17:00": 0.05, "B@10:00": 0.10, "B@17:00": 0.10}
    rates = {"A@10:00": 0.05, "A@17:00": 0.05, "B@10:00": 0.06, "B@17:00": 0.06}
    (msg, _), (hold, _) = _outcomes(rates, cost, n=10000), _outcomes({"holdout": 0.04}, cost, n=200)
    out = pd.concat([msg, hold.set_axis([f"h{i}" for i in range(len(hold))])])
    g = out.groupby("arm")
    arms = pd.DataFrame({"targeted": g.size(), "buyers": g["converted"].sum(), "cost": g["cost"].sum()})
    cells = {a: {"rate": r, "n": 10000, "buyers": r * 10000, "cost_per_message": cost[a]} for a, r in rates.items()}
    fact = {"copies": ["A", "B"], "times": ["10:00", "17:00"], "cells": cells,
            "interaction": {"p_value": 0.5, "scale": "additive"}}
    d = decide(out, arms, fact, {"ok": True}, "holdout", settings=POUNDS)
    assert d["judged"] == "factors"
    assert d["copy_choice"]["text"] == (
        "copy B's extra profit per message, £0.25 [£0.10, £0.40] (margin 0.3 x £1.00 extra revenue per message - "
        "£0.050 extra cost; +1.00 pp conversion) is above zero: the costlier copy B pays for itself")
    half = 1000 * 1.959963984540054 * 30 * (0.06 * 0.94 / 19999 + 0.04 * 0.96 / 199) ** 0.5
    assert d["incremental_profit_per_1000"] == pytest.approx(500, abs=1e-9)
    assert d["ci_low"] == pytest.approx(500 - half, rel=1e-9) and d["ci_high"] == pytest.approx(500 + half, rel=1e-9)
    lo, hi = formatting.money(500 - half, currency="£"), formatting.money(500 + half, currency="£")
    assert d["reason"].endswith(f"; £500 incremental profit per 1,000 messages [{lo}, {hi}] against the holdout")
    assert d["headline"] == "B@any: £500 profit per 1,000 messages"
    assert "¥" not in d["reason"] + d["verdict"] + " ".join(d["next_steps"])
    yuan = decide(out, arms, fact, {"ok": True}, "holdout", settings=Settings())
    assert yuan["headline"] == "B@any: ¥500 profit per 1,000 messages"


def test_sample_size_card():
    """R: power.prop.test(p1 = 0.10, p2 = 0.12, power = 0.8) gives n = 3840.847."""
    s = sample_size(0.10, 0.12, settings=POUNDS)
    assert repr(s) == "<SampleSize: 3,841 customers per arm to detect 10.0% → 12.0% (two-sided, α = 0.05, power 0.8)>"
    assert s.card().table["value"].tolist() == ["3,840.85", "10.00%", "12.00%", "+2.00 pp", "1"]
    assert s.to_dict()["n_per_arm"] == 3841 and s.to_dict()["settings"]["currency"] == "£"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.n_per_arm = 1


def test_assignment_card():
    """103 customers, arms A and B sharing 90%, a 10% holdout: largest remainders give
    46.35 -> 47 (A: the larger remainder comes first), 46.35 -> 46, 10.3 -> 10."""
    a = assign([f"c{i}" for i in range(103)], ["A", "B"], holdout_share=0.1, seed=1)
    assert repr(a) == "<Assignment: 103 customers in 3 arms (A 47, B 46, holdout 10), seed 1>"
    assert a.to_frame().shape == (103, 3) and a.settings == current()
    row = a.card().table.loc["all"]
    assert row[["A", "B", "holdout", "customers"]].tolist() == ["47", "46", "10", "103"]


def test_monitoring_chart_labels_money_in_the_context_currency(two_arms):
    s, o = two_arms
    r = analyse_experiment(s, dataclasses.replace(order_table(o), settings=POUNDS), cuped_days=0, monitor=True)
    fig = monitoring_figure(r.monitoring, "revenue", r.settings)
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    assert "£ per targeted customer" in texts and not any("¥" in t for t in texts)
