"""Issue 22 (class 7, silently wrong numbers), the experiment part: an SMS experiment the data
cannot carry gets NO verdict, says why, and shows the counts it has, without a warning or a
traceback. The rule is crmlab.experiments.preconditions.verdict_preconditions (module doc there):
a holdout, something delivered in every messaged arm, orders covering the windows, and at
least 5 expected buyers and non-buyers per arm and its holdout (Cochran; R's prop.test warns
below it).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from crmlab.cli.main import main
from crmlab.experiments.analysis import analyse_experiment

pytestmark = pytest.mark.filterwarnings("error")  # any warning (RuntimeWarning, overflow, ...) fails

SEND = pd.Timestamp("2025-03-01 10:00:00")
END = "2025-03-20 23:59:59"


def campaign(sizes, buyers, *, delivered=True, send=SEND, order_at=None, cost=0.05):
    """Sends and paid orders: ``sizes``/``buyers`` per arm; the holdout (named ``holdout``)
    undelivered and free. Every customer also has an order a month before (the orders'
    observation starts there) unless ``order_at`` moves every order."""
    sends, orders = [], []
    for arm, n in sizes.items():
        held = arm == "holdout"
        for i in range(n):
            cid = f"{arm[0]}{arm[-1]}{i:04d}"
            sends.append({"customer_id": cid, "campaign_id": "c1", "variant": arm, "send_time": send,
                          "delivered": bool(delivered and not held), "segments": 0 if held else 1,
                          "cost": 0.0 if held else cost})
            if i < buyers.get(arm, 0):
                t = order_at if order_at is not None else send + pd.Timedelta(hours=2)
                orders.append({"customer_id": cid, "order_id": f"o{cid}", "order_time": t, "amount": 100.0,
                               "status": "paid"})
    first = (order_at if order_at is not None else send) - pd.Timedelta(days=30)
    orders.append({"customer_id": "OLD1", "order_id": "old1", "order_time": first, "amount": 10.0, "status": "paid"})
    return pd.DataFrame(sends), pd.DataFrame(orders)


def write(tmp_path, sends, orders):
    s, o = tmp_path / "sends.csv", tmp_path / "orders.csv"
    sends.to_csv(s, index=False)
    orders.to_csv(o, index=False)
    return ["--sends", str(s), "--orders", str(o), "--observation-end", END]


def cli(capsys, argv):
    rc = main(["abtest", *argv, "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err  # no verdict is a valid answer: exit 0
    assert "Traceback" not in cap.err and "Warning" not in cap.err
    j = json.loads(cap.out)
    rc = main(["abtest", *argv])
    text = capsys.readouterr()
    assert rc == 0 and "Traceback" not in text.err
    return j, text.out


def assert_no_verdict(j, text, *words):
    # the existing keys stay; the choice is null; the reason is there and printed
    assert {"window_hours", "control", "arms", "comparisons", "chi2_all_arms", "srm", "factorial", "verdict",
            "decision"} <= set(j)
    d = j["decision"]
    assert d["arm"] is None and d["winner"] is None and d["incremental_profit_per_1000"] is None
    assert d["provisional"] is None and j["comparisons"] == [] and j["factorial"] is None
    reason = j["no_verdict_reason"]
    assert reason and d["no_verdict_reason"] == reason and j["verdict"] == f"no verdict: {reason}"
    for w in words:
        assert w in reason
    assert f"verdict: no verdict: {reason}" in text
    # the counts it has, per arm
    for a in j["arms"]:
        assert {"targeted", "sends", "delivered", "buyers"} <= set(a)
        assert a["cost"] >= 0


def test_nothing_delivered(tmp_path, capsys):
    s, o = campaign({"A": 300, "B": 300, "holdout": 300}, {"A": 30, "B": 30, "holdout": 20}, delivered=False)
    j, text = cli(capsys, write(tmp_path, s, o))
    assert_no_verdict(j, text, "no message was delivered", "0 of 600 sends")
    assert [a["delivered"] for a in j["arms"]] == [0, 0, 0]


def test_ten_sends(tmp_path, capsys):
    s, o = campaign({"A": 4, "B": 3, "holdout": 3}, {"A": 1, "B": 1})
    j, text = cli(capsys, write(tmp_path, s, o) + ["--monitor", "--cuped-days", "30"])
    assert_no_verdict(j, text, "too few conversions", "A 1/4 vs holdout 0/3")
    assert sum(a["targeted"] for a in j["arms"]) == 10 and sum(a["buyers"] for a in j["arms"]) == 2
    assert j.get("monitoring") is None


def test_all_sends_before_the_first_order(tmp_path, capsys):
    s, o = campaign({"A": 300, "B": 300, "holdout": 300}, {"A": 30, "B": 30, "holdout": 20},
                    order_at=pd.Timestamp("2025-03-15 12:00:00"))
    s["send_time"] = pd.Timestamp("2024-06-01 10:00:00")
    j, text = cli(capsys, write(tmp_path, s, o))
    assert_no_verdict(j, text, "before the first order (2025-02-13 12:00)", "the orders do not cover the campaign")


def test_no_holdout_customers(tmp_path, capsys):
    s, o = campaign({"A": 300, "B": 300}, {"A": 30, "B": 20})
    j, text = cli(capsys, write(tmp_path, s, o))
    assert_no_verdict(j, text, "no holdout", "--control")
    # naming a holdout the log does not have stays an input error (exit 2, one line)
    assert main(["abtest", *write(tmp_path, s, o), "--control", "holdout"]) == 2
    err = capsys.readouterr().err
    assert "control arm 'holdout' not in the sends" in err and "Traceback" not in err


def test_an_arm_with_zero_conversions_in_100_customers(tmp_path, capsys):
    s, o = campaign({"A": 34, "B": 33, "holdout": 33}, {"A": 0, "B": 5, "holdout": 2})
    j, text = cli(capsys, write(tmp_path, s, o))
    assert_no_verdict(j, text, "too few conversions", "A 0/34 vs holdout 2/33")
    assert {a["arm"]: a["buyers"] for a in j["arms"]} == {"A": 0, "B": 5, "holdout": 2}


def test_zero_conversions_in_a_big_arm_is_a_valid_result():
    # expected counts, not observed: 0 of 1,000 against 60 of 1,000 has 30 expected buyers each
    s, o = campaign({"A": 1000, "B": 1000, "holdout": 1000}, {"A": 0, "B": 90, "holdout": 60})
    o.attrs["observation_end"] = pd.Timestamp(END)
    r = analyse_experiment(s, o, cuped_days=0)
    assert r.no_verdict_reason is None and r.decision["arm"] == "B"


def test_negative_costs_never_make_a_negative_arm_cost():
    s, o = campaign({"A": 1000, "B": 1000, "holdout": 1000}, {"A": 90, "B": 80, "holdout": 50})
    s.loc[s["variant"] == "A", "cost"] = -5.0
    s.loc[s.index[:3], "segments"] = -2
    o.attrs["observation_end"] = pd.Timestamp(END)
    r = analyse_experiment(s, o, cuped_days=0)
    assert (r.outcomes["cost"] >= 0).all() and (r.arms["cost"] >= 0).all() and (r.arms["segments"] >= 0).all()
    assert r.arms.at["A", "cost"] == pytest.approx(1000 * 0.05)  # priced from the segments instead
    assert any("negative or infinite cost" in w for w in r.warnings)
    assert (r.incremental["cost"] >= 0).all()


def test_a_healthy_experiment_keeps_its_verdict(tmp_path, capsys):
    s, o = campaign({"A": 1000, "B": 1000, "holdout": 1000}, {"A": 90, "B": 75, "holdout": 50})
    j, text = cli(capsys, write(tmp_path, s, o))
    assert j["no_verdict_reason"] is None and j["decision"]["no_verdict_reason"] is None
    assert j["decision"]["arm"] is not None and not j["verdict"].startswith("no verdict")
    assert len(j["comparisons"]) == 2 and "no verdict" not in text


def test_the_notebook_facing_result_carries_the_reason():
    from crmlab.experiments.readout import key_findings

    s, o = campaign({"A": 300, "B": 300, "holdout": 300}, {"A": 30, "B": 30, "holdout": 20}, delivered=False)
    o.attrs["observation_end"] = pd.Timestamp(END)
    r = analyse_experiment(s, o)
    assert r.no_verdict_reason.startswith("no message was delivered")
    assert r.no_verdict_reason in repr(r) and r.no_verdict_reason in r._repr_html_()
    lines = key_findings(r)
    assert lines[0] == f"**No verdict:** {r.no_verdict_reason}."
    assert "A: 300 customers, 300 sends, 0 delivered, 30 buyers" in lines[1]
    assert r.decision["next_steps"][0] == f"No verdict: {r.no_verdict_reason}."


def test_readout_imports_first_in_a_fresh_interpreter():
    for m in ("crmlab.experiments.readout", "crmlab.experiments.decision", "crmlab.experiments.monitoring",
              "crmlab.experiments.factorial", "crmlab.experiments.analysis"):
        subprocess.run([sys.executable, "-c", f"import {m}"], check=True, capture_output=True)
