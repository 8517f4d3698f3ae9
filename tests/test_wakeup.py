"""The one wake-up list (唤醒名单) on a hand fixture: who is on it and why.

Observation end 2025-12-31; every order paid unless said; ladder rule (dormant: more than 90
days since the last paid order, lost: more than 360). Ten buyers, so the spend score M (mid-rank
quintiles of paid sales among buyers, rfm_scores) is 1,1,2,2,3,3,4,4,5,5 from the lowest sales up:

    cust  paid sales  last paid order  days  stage      M   on the list?
    j       50        2025-12-21        10   new        1   no: not dormant
    i       80        2025-07-04       180   dormant    1   no: low spend
    h      100        2025-09-01       121   dormant    2   no: low spend
    g      150        2025-11-15        46   new        2   no
    f      200        2025-08-01       152   dormant    3   no: spend just below the top 40%
    e      250        2025-12-01        30   new        3   no
    d      400 (2)    2025-01-01       364   lost       4   no: lost, not dormant
    c      500 (2)    2025-10-01        91   dormant    4   yes: top 40% by spend (M=4)
    b      900 (3)    2025-12-21        10   active     5   no: not dormant
    a     1000 (3)    2025-06-01       213   dormant    5   yes: top 20% by spend (M=5)
    p     only an unpaid order of 5,000: potential, not a buyer, no spend score

CLV evidence (values): a P(alive) 0.72, CLV 310.4 -> "likely still a customer"; c P(alive)
exactly 0.5 (not above the cutoff) but CLV 520 -> ranked first by CLV, reason spend only;
i P(alive) 0.9, CLV 999 -> still not on the list (the model never changes who is listed).
"""
from __future__ import annotations

import pandas as pd
import pytest

from crmlab import settings
from crmlab.present import formatting as fmt
from crmlab.clv.models import wakeup_candidates
from crmlab.ingest.readers import load_orders
from crmlab.analyses.lifecycle import lifecycle_stages
from crmlab.analyses.rfm import rfm_scores
from crmlab.analyses.wakeup import RULE, wakeup_list
from conftest import orders_frame

END = "2025-12-31"
ROWS = [("j", "2025-12-21", 50.0), ("i", "2025-07-04", 80.0), ("h", "2025-09-01", 100.0),
        ("g", "2025-11-15", 150.0), ("f", "2025-08-01", 200.0), ("e", "2025-12-01", 250.0),
        ("d", "2024-12-01", 150.0), ("d", "2025-01-01", 250.0),
        ("c", "2025-06-01", 200.0), ("c", "2025-10-01", 300.0),
        ("b", "2025-10-01", 300.0), ("b", "2025-11-01", 300.0), ("b", "2025-12-21", 300.0),
        ("a", "2025-01-15", 300.0), ("a", "2025-03-01", 300.0), ("a", "2025-06-01", 400.0),
        ("p", "2025-05-05", 5000.0, "unpaid")]

A_REASON = "top 20% by spend (M=5)"
C_REASON = "top 40% by spend (M=4)"


@pytest.fixture(scope="module")
def hand():
    o = load_orders(orders_frame([(c, t + " 10:00:00", a, *s) for c, t, a, *s in ROWS]), observation_end=END)[0]
    stages, scores = lifecycle_stages(o), rfm_scores(o)
    values = pd.DataFrame({"p_alive": [0.72, 0.5, 0.9, 0.1], "clv": [310.4, 520.0, 999.0, 5.0],
                           "clv_low": [280.0, 400.0, 900.0, 4.0], "clv_high": [340.0, 640.0, 1100.0, 6.0]},
                          index=pd.Index(["a", "c", "i", "j"], name="customer_id"))
    return stages, scores, values


@pytest.fixture(autouse=True)
def _yuan():
    before = settings.current()
    settings.use(settings.DEFAULT)  # the session's currency: ¥
    yield
    settings.use(before)


def test_the_fixture_is_what_the_docstring_says(hand):
    stages, scores, _ = hand
    assert scores["M"].to_dict() == {"a": 5, "b": 5, "c": 4, "d": 4, "e": 3, "f": 3, "g": 2, "h": 2, "i": 1, "j": 1}
    assert stages.loc[["a", "c", "f", "h", "i"], "stage"].eq("dormant").all()
    assert stages.at["d", "stage"] == "lost" and stages.at["p", "stage"] == "potential"
    assert stages.at["c", "days_since_last"] == 91 and stages.at["b", "stage"] in ("returning", "fan")


def test_dormant_top_two_spend_scores_with_the_reason_ranked_by_sales(hand):
    stages, scores, _ = hand
    w = wakeup_list(stages, scores)
    assert list(w.index) == ["a", "c"]  # by paid sales: 1,000 then 500
    assert w["reason"].to_dict() == {"a": A_REASON, "c": C_REASON}
    assert w.loc["a", ["paid_orders", "sales", "M", "R", "F"]].tolist() == [3, 1000.0, 5, *scores.loc["a", ["R", "F"]]]
    assert w.attrs["likely_alive"] is None and w.attrs["rule"] == RULE


def test_without_rfm_scores_the_same_list_from_the_stages_sales(hand):
    stages, scores, _ = hand
    a, b = wakeup_list(stages, scores), wakeup_list(stages)
    assert list(b.index) == list(a.index) and b["reason"].equals(a["reason"]) and b["M"].equals(a["M"])


def test_clv_evidence_enriches_and_reorders_but_never_changes_who_is_listed(hand):
    stages, scores, values = hand
    w = wakeup_list(stages, scores, values)
    assert list(w.index) == ["c", "a"]  # by CLV: 520 then 310
    # a: P(alive) 0.72 > 0.5, CLV ¥310 (rounded to the yuan); c: P(alive) 0.5 is not above the cutoff
    assert w["reason"].to_dict() == {"a": A_REASON + "; likely still a customer (P(alive) 72%), CLV ¥310",
                                     "c": C_REASON}
    assert w.attrs["likely_alive"] == 1 and "i" not in w.index  # likely alive, CLV 999, but low spend
    assert w.loc["c", ["p_alive", "clv", "clv_low", "clv_high"]].tolist() == [0.5, 520.0, 400.0, 640.0]
    # a lower cutoff: c is likely alive too; membership and order unchanged
    w2 = wakeup_list(stages, scores, values, p_alive_cutoff=0.4)
    assert list(w2.index) == ["c", "a"] and w2.at["c", "reason"] == C_REASON + (
        "; likely still a customer (P(alive) 50%), CLV ¥520")


def test_the_clv_in_the_reason_is_in_the_currency_of_the_given_settings(hand):
    stages, scores, values = hand
    w = wakeup_list(stages, scores, values, settings=settings.Settings(currency="£"))
    assert w.at["a", "reason"] == "top 20% by spend (M=5); likely still a customer (P(alive) 72%), CLV £310"
    assert "¥" not in "".join(w["reason"])


def test_a_customer_without_clv_values_stays_on_the_list_after_those_with(hand):
    stages, scores, values = hand
    w = wakeup_list(stages, scores, values.drop(index="c"))
    assert list(w.index) == ["a", "c"] and w.at["c", "reason"] == C_REASON
    assert pd.isna(w.at["c", "clv"])


def test_wakeup_candidates_is_the_same_list(hand):
    stages, scores, values = hand
    a = wakeup_candidates(values, stages, 0.5, scores=scores)
    b = wakeup_candidates(values, stages)  # the old signature: M from the stages' sales
    ref = wakeup_list(stages, scores, values)
    assert list(a.index) == list(b.index) == list(ref.index)
    assert a["reason"].equals(ref["reason"]) and b["reason"].equals(ref["reason"])


def test_the_glossary_states_the_one_rule():
    text = fmt.GLOSSARY["wake-up"][2]
    assert text == RULE and "top 40%" in text and "02 and 04" in text and "reason" in text
