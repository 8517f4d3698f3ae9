"""07's and 08's skip rules (crmlab.report.applies): decided before the notebook runs, one sentence.

07 (targeting) needs a campaign with a no-message holdout: the rule must agree with what
crmlab.targeting.pipeline.target accepts (checked on the same logs). 08 (payment reminders)
needs orders with a created time and reminder sends naming their order.
"""
from __future__ import annotations

import pandas as pd
import pytest

from crmlab.report.applies import RunInputs, reminders_reason, skip_reason, targeting_reason
from crmlab.schema import CrmlabInputError
from crmlab.simulate.unpaid import ReminderSpec, simulate_reminders
from crmlab.simulate.uplift import simulate_uplift_campaign
from crmlab.targeting.pipeline import _campaign


@pytest.fixture(scope="module")
def campaign():
    o, s, _ = simulate_uplift_campaign(400, seed=2)
    return o, s


def _pipeline_accepts(orders, sends) -> bool:
    """What target() itself says about the log (its first step)."""
    try:
        _campaign(sends, orders, None, 72, 0.05, "variant")
        return True
    except CrmlabInputError:
        return False


def _reason(sends, **params):
    return skip_reason("07_targeting", None, params, RunInputs(sends=sends))


def test_holdout_applies_and_agrees_with_the_pipeline(campaign):
    orders, s = campaign
    assert _reason(s) is None and _pipeline_accepts(orders, s)


def test_no_holdout_skipped_in_one_sentence(campaign):
    orders, s = campaign
    messaged = s[s["variant"] != "holdout"]
    why = _reason(messaged)
    assert why is not None and "the send log's campaign has none" in why
    assert why.count(".") == 1 and why.endswith(".")  # one sentence
    assert not _pipeline_accepts(orders, messaged)
    # a holdout only (no messaged arm) is no comparison either
    alone = s[s["variant"] == "holdout"]
    assert _reason(alone) is not None and not _pipeline_accepts(orders, alone)


def test_unnamed_holdout_is_the_first_arm_with_nothing_delivered(campaign):
    orders, s = campaign
    renamed = s.assign(variant=s["variant"].replace({"holdout": "0 none"}))  # first by name, never delivered
    assert _reason(renamed) is None and _pipeline_accepts(orders, renamed)
    sent = renamed.assign(delivered=True)  # ...but messaged: no holdout
    assert _reason(sent) is not None and not _pipeline_accepts(orders, sent)


def test_several_campaigns(campaign):
    _, s = campaign
    messaged = s[s["variant"] != "holdout"]
    two = pd.concat([s, messaged.assign(campaign_id="other")], ignore_index=True)
    assert _reason(two) is None  # one campaign has a holdout (the notebook asks which)
    assert "campaign other of the send log has none" in _reason(two, campaign="other")  # the one named
    assert _reason(two, campaign="nowhere") is None  # unknown: the notebook names those it has
    none = pd.concat([messaged, messaged.assign(campaign_id="other")], ignore_index=True)
    assert "none of the send log's 2 campaigns has one" in _reason(none)


def test_without_the_send_log_the_rule_says_nothing(campaign):
    _, s = campaign
    assert skip_reason("07_targeting", None, {}) is None  # the runner skips 07 for the missing input
    assert targeting_reason(None, {}, RunInputs(sends=None)) is None


def test_reminders_rule(tmp_path):
    o, s = simulate_reminders(ReminderSpec(n_orders=300, days=10))
    files = {k: tmp_path / f"{k}.csv" for k in ("orders", "sends", "plain_sends", "plain_orders")}
    o.to_csv(files["orders"], index=False)
    s.to_csv(files["sends"], index=False)
    s.drop(columns="order_id").to_csv(files["plain_sends"], index=False)
    o.drop(columns=["created_time"]).to_csv(files["plain_orders"], index=False)

    def why(orders, sends):
        return skip_reason("08_payment_reminders", None, {},
                           RunInputs(orders_file=str(files[orders]), sends_file=str(files[sends])))

    assert why("orders", "sends") is None
    assert "order id" in why("orders", "plain_sends")
    assert "created time" in why("plain_orders", "sends")
    other = s.assign(order_id="X" + s["order_id"])  # reminders of orders this export does not hold
    other.to_csv(files["sends"], index=False)
    assert "none of the send log's reminders names an order" in why("orders", "sends")
    assert all(w.startswith("Payment reminders (催付) cannot be read from this data: ") and w.endswith(".")
               for w in (why("orders", "plain_sends"), why("plain_orders", "sends")))
    assert reminders_reason(None, {}, None) is None
