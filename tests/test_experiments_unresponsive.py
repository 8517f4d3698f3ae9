"""Unresponsive customers by evidence (issue 25, item 10): chance alone flags few, a Beta-Binomial
posterior with the store's rate as prior, and responses net of the holdout's organic rate."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from crmlab.experiments.responses import response_evidence, response_history, unresponsive
from crmlab.ingest.readers import load_orders, load_sends


def _history(messages, responses) -> pd.DataFrame:
    h = pd.DataFrame({"messages": messages, "responses": responses},
                     index=pd.Index([f"c{i:05d}" for i in range(len(messages))], name="customer_id"))
    h.attrs["organic_rate"] = 0.0
    return h


def test_three_messages_at_five_percent_flag_nobody_by_chance():
    """Every customer responds at 5%, 3 messages each. The old rule (0 of >= 3) flags 0.95³ =
    85.7% of them. Here the prior is Beta(1, 19) (base rate 5%, worth 20 messages), the threshold
    half the rate, 2.5%. Zero responses is the most damning count, and its posterior Beta(1, 22)
    gives P(θ < 0.025) = 1 - 0.975²² = 0.427 < 0.95 (Beta(1, b) has CDF 1 - (1 - x)^b): so the
    share flagged is bounded by 0 — nobody, whatever the draw."""
    rng = np.random.default_rng(5)
    y = rng.binomial(3, 0.05, 20000)
    h = _history(np.full(20000, 3), y)
    old = float(np.mean(y == 0))
    assert abs(old - 0.95 ** 3) < 4 * math.sqrt(0.857 * 0.143 / 20000)
    assert 1 - 0.975 ** 22 < 0.95
    e = response_evidence(h, 3, base_rate=0.05)
    assert e.attrs["threshold"] == 0.025 and e["unresponsive"].sum() == 0
    assert np.allclose(e.loc[y == 0, "prob_below"].to_numpy(), 1 - 0.975 ** 22, rtol=1e-9, atol=0)


def test_flag_edge_and_true_non_responders():
    """0 responses to m messages: P(θ < 0.025) = 1 - 0.975^(19 + m) >= 0.95 from
    m >= ln 0.05 / ln 0.975 - 19 = 99.3, so 100 messages flag, 99 do not. Customers who never
    respond (rate 0) with 150 messages are all flagged; 5% responders with 150 messages are
    flagged at most at the binomial probability of the counts whose posterior passes."""
    edge = math.log(0.05) / math.log(0.975) - 19
    assert 99 < edge < 100
    e = response_evidence(_history([99, 100], [0, 0]), 3, base_rate=0.05)
    assert list(e["unresponsive"]) == [False, True]
    rng = np.random.default_rng(9)
    n = 4000
    y = np.concatenate([np.zeros(n, int), rng.binomial(150, 0.05, n)])
    e = response_evidence(_history(np.full(2 * n, 150), y), 3, base_rate=0.05)
    assert e["unresponsive"].iloc[:n].all()
    flag_counts = [k for k in range(151) if stats.beta.cdf(0.025, 1 + k, 19 + 150 - k) >= 0.95]
    bound = stats.binom.cdf(max(flag_counts), 150, 0.05)
    share = e["unresponsive"].iloc[n:].mean()
    assert bound < 0.03 and share <= bound + 4 * math.sqrt(bound * (1 - bound) / n)


def test_responses_net_of_the_holdout_rate():
    """A holdout of 1,000 undelivered rows, 100 of them followed by a paid order within the
    window: organic rate 10%. Messaged customers respond at 10% too (nothing attributable), so the
    store's attributable rate is ~0 and nobody can fall credibly short of it."""
    rows, orders = [], []
    t0 = pd.Timestamp("2025-03-01 10:00")
    for i in range(2000):
        held = i < 1000
        rows.append({"customer_id": f"u{i}", "campaign_id": "c", "variant": "holdout" if held else "A",
                     "send_time": t0, "delivered": not held})
        if i % 10 == 0:
            orders.append({"customer_id": f"u{i}", "order_id": f"o{i}", "order_time": t0 + pd.Timedelta(hours=5),
                           "amount": 10.0, "status": "paid"})
    o, _ = load_orders(pd.DataFrame(orders), observation_end="2025-03-10")
    s, _ = load_sends(pd.DataFrame(rows), observation_end="2025-03-10")
    h = response_history(s, o, window_hours=72)
    assert h.attrs["organic_rate"] == 0.1 and h.attrs["holdout_rows"] == 1000 and len(h) == 1000
    e = response_evidence(h, 1)
    assert e.attrs["organic_rate"] == 0.1 and e.attrs["base_rate"] == 0.1 and e.attrs["threshold"] == 0
    assert abs(e["attributable"].sum()) < 1e-9 and not e["unresponsive"].any()
    assert "nobody is flagged" in e.attrs["warnings"][0]
    assert len(unresponsive(h, 1)) == 0
