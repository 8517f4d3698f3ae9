"""Issue 24's must-show for returns: credit notes on a hand fixture (net spend, frequency and
the CLV inputs per customer worked out by hand; the ledger's reversal counts balance), and on
the simulated store with ``returns`` and ``truncate_before`` (the ledger equals the planted
truth). Every expected value is computed by hand in the comments or from the simulator's
truth files with plain pandas, never from a run of the loader."""
from __future__ import annotations

import json

import ibis
import pandas as pd
import pytest

from crmlab.cli.main import main
from crmlab.clv.fitting import rfm_summary
from crmlab.ingest.readers import load_orders
from crmlab.ingest.returns import customer_credits
from crmlab.simulate.store import StoreSpec, simulate, write_sample

# one line per document line, as an export with credit notes has them (no status column: paid)
HAND = """customer_id,order_id,order_time,amount,product,quantity
A,o1,2025-01-05 10:00:00,60.00,P1,1
A,o1,2025-01-05 10:00:00,40.00,P2,2
A,C1,2025-01-05 10:07:00,-60.00,P1,-1
A,C1,2025-01-05 10:07:00,-40.00,P2,-2
A,o2,2025-02-10 09:00:00,50.00,P1,1
A,o3,2025-03-20 18:00:00,30.00,P2,1
B,o4,2025-01-10 12:00:00,80.00,P3,2
B,o5,2025-02-01 12:00:00,45.00,P3,1
B,C2,2025-02-03 08:00:00,-15.00,P3,-1
D,o6,2025-01-01 11:00:00,70.00,P4,1
D,C3,2025-03-01 11:00:00,-25.00,P9,-1
"""
# A: o1 (100.00) reversed line by line 7 minutes later -> no purchase; o2, o3 kept.
# B: C2 returns one P3 two days after o5 (the latest P3 purchase within 30 days) -> o5 = 45 - 15 = 30.
# D: C3 is for P9, which D never bought -> unmatched: a customer-level credit of 25.00.


@pytest.fixture
def hand_csv(tmp_path):
    p = tmp_path / "orders.csv"
    p.write_text(HAND, encoding="utf-8")
    return p


def test_hand_fixture_net_spend_and_ledger_balance(hand_csv):
    o, led = load_orders(hand_csv, observation_end="2025-03-31")
    spend = o.groupby("customer_id", observed=True)["amount"].sum().round(2).to_dict()
    n = o.groupby("customer_id", observed=True)["order_id"].nunique().to_dict()
    # A: 50 + 30; B: 80 + (45 - 15); D: 70 (its credit nets against nothing)
    assert spend == {"A": 80.00, "B": 110.00, "D": 70.00}
    assert n == {"A": 2, "B": 2, "D": 1}
    # 4 credit lines: C1's two and C2 matched, C3 unmatched; netted 60 + 40 + 15
    assert led.returns == {"reversal_lines": 4, "matched": 3, "unmatched": 1, "orders_fully_reversed": 1,
                           "amount_netted": 115.00}
    r = led.returns
    assert r["reversal_lines"] == r["matched"] + r["unmatched"]
    # rows: 11 = 5 used (o2, o3, o4, o5, o6) + 4 reversal lines + o1's 2 lines
    assert led.excluded == {"reversal_line": 4, "order_fully_reversed": 2}
    assert led.used_rows == 5 and led.used_rows + led.excluded_rows == led.input_rows == 11
    assert led.excluded["order_fully_reversed"] == 2 * r["orders_fully_reversed"]  # o1 had two lines


def test_hand_fixture_clv_inputs_by_hand(hand_csv):
    """lifetimes-style frequency / recency / T / monetary value, days, observation end 03-31."""
    o, _ = load_orders(hand_csv, observation_end="2025-03-31")
    s = rfm_summary(o, observation_end="2025-03-31", time_unit="D")
    got = {c: tuple(round(float(v), 2) for v in s.loc[c, ["frequency", "recency", "T", "monetary_value"]])
           for c in s.index}
    assert got == {
        # first purchase 02-10 (o1 is gone): repeat day 03-20; recency 18 + 20 = 38; T 18 + 31 = 49; mean repeat 30
        "A": (1.0, 38.0, 49.0, 30.0),
        # 01-10, repeat 02-01 netted to 30: recency 21 + 1 = 22; T 21 + 28 + 31 = 80
        "B": (1.0, 22.0, 80.0, 30.0),
        # one purchase 01-01: T 30 + 28 + 31 = 89; no repeat, monetary 0
        "D": (0.0, 0.0, 89.0, 0.0),
    }
    # the same from lifetimes on the transactions netted by hand (an independent reference)
    from lifetimes.utils import summary_data_from_transaction_data
    tx = pd.DataFrame({"c": ["A", "A", "B", "B", "D"],
                       "t": pd.to_datetime(["2025-02-10", "2025-03-20", "2025-01-10", "2025-02-01", "2025-01-01"]),
                       "v": [50.0, 30.0, 80.0, 30.0, 70.0]})
    ref = summary_data_from_transaction_data(tx, "c", "t", monetary_value_col="v", observation_period_end="2025-03-31")
    for c in ref.index:
        assert got[c] == tuple(round(float(v), 2) for v in ref.loc[c, ["frequency", "recency", "T", "monetary_value"]])


def _hand_tables(csv) -> tuple[ibis.Table, ibis.Table, ibis.Table]:
    """The reversal lines, purchase lines and orders as the loader hands them to the matcher,
    built here with plain pandas (every line is paid; a C id with a negative amount reverses)."""
    raw = pd.read_csv(csv, dtype={"customer_id": str, "order_id": str})
    raw["order_time"] = pd.to_datetime(raw["order_time"])
    raw["row"] = range(len(raw))
    raw["status"] = "paid"
    is_rev = raw["order_id"].str.match(r"^[Cc][0-9]") & (raw["amount"] < 0)
    buys = raw[~is_rev]
    orders = buys.groupby("order_id", as_index=False).agg(customer_id=("customer_id", "first"),
                                                           order_time=("order_time", "min"),
                                                           amount=("amount", "sum"), status=("status", "first"))
    return ibis.memtable(raw[is_rev]), ibis.memtable(buys), ibis.memtable(orders)


def test_unmatched_credit_stays_a_customer_level_credit(hand_csv):
    rev, buys, orders = _hand_tables(hand_csv)
    got = ibis.duckdb.connect().to_pandas(customer_credits(rev, buys, orders))
    # only D's C3 (P9, never bought) is unmatched: 1 line, 25.00
    assert got.to_dict("records") == [{"customer_id": "D", "credit_lines": 1, "credit_amount": 25.0}]


@pytest.fixture(scope="module")
def returns_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("returns_store")
    truth = write_sample(str(d), n_customers=1500, seed=5, returns=0.06, start="2023-01-01",
                         truncate_before="2024-01-01")
    return d, truth


def test_simulated_returns_ledger_equals_planted_truth(returns_store):
    d, truth = returns_store
    _, led = load_orders(d / "orders.csv")
    t = truth["returns"]
    assert t["matched"] > 50 and t["unmatched"] > 0 and t["orders_partly_reversed"] > 5
    assert led.returns == {k: t[k] for k in ("reversal_lines", "matched", "unmatched", "orders_fully_reversed",
                                            "amount_netted")}
    # the planted truth from truth_returns.csv with plain pandas: a line whose order is in the
    # cut export is matched; one reversing an order before the cut, or no order, is not
    cr = pd.read_csv(d / "truth_returns.csv", dtype=str, keep_default_na=False)
    cr = cr[cr["credit_time"] >= "2024-01-01"]
    matched = (cr["kind"] != "unmatched") & (cr["order_time"] >= "2024-01-01")
    assert int(matched.sum()) == led.returns["matched"] and len(cr) == led.returns["reversal_lines"]
    assert round(cr.loc[matched, "amount"].astype(float).sum(), 2) == led.returns["amount_netted"]
    assert cr.loc[matched & (cr["kind"] == "full"), "reverses"].nunique() == led.returns["orders_fully_reversed"]
    # the customer-level credits equal the planted unmatched credits, customer by customer
    rev, buys, orders = _sim_tables(d / "orders.csv")
    got = ibis.duckdb.connect().to_pandas(customer_credits(rev, buys, orders))
    want = cr[~matched].assign(a=lambda x: x["amount"].astype(float)).groupby("customer_id")["a"].sum().round(2)
    assert got.set_index("customer_id")["credit_amount"].round(2).sort_index().to_dict() == want.to_dict()
    # --returns ignore: every credit line is excluded as a negative paid line, nothing netted
    _, led_i = load_orders(d / "orders.csv", returns="ignore")
    assert led_i.excluded["negative_amount_on_paid_order"] == len(cr) and led_i.returns["reversal_lines"] == 0


def _sim_tables(csv) -> tuple[ibis.Table, ibis.Table, ibis.Table]:
    raw = pd.read_csv(csv, dtype={"customer_id": str, "order_id": str, "phone": str})
    raw["order_time"] = pd.to_datetime(raw["order_time"])
    raw["row"] = range(len(raw))
    raw["status"] = raw["status"].replace({"交易成功": "paid"})
    raw = raw[raw["status"] == "paid"].drop(columns=["nickname", "phone", "channel", "region"])
    is_rev = raw["order_id"].str.startswith("C") & (raw["amount"] < 0)
    buys = raw[~is_rev]
    orders = buys.groupby("order_id", as_index=False).agg(customer_id=("customer_id", "first"),
                                                           order_time=("order_time", "min"),
                                                           amount=("amount", "sum"), status=("status", "first"))
    return ibis.memtable(raw[is_rev]), ibis.memtable(buys), ibis.memtable(orders)


def test_returns_and_the_cut_leave_the_store_itself_unchanged(returns_store):
    """The credits and the cut draw nothing from the store's generator: the same seed without
    them gives the same lines (the credit lines removed, the lines before the cut kept)."""
    d, truth = returns_store
    cut = pd.read_csv(d / "orders.csv", dtype=str)
    plain = simulate(StoreSpec(n_customers=1500, seed=5, start="2023-01-01"))
    full = plain.orders.astype(str)
    want = full[full["order_time"] >= "2024-01-01"].reset_index(drop=True)
    got = cut[~cut["order_id"].str.startswith("C")].reset_index(drop=True)
    pd.testing.assert_frame_equal(got[["order_id", "order_time", "customer_id", "product"]],
                                  want[["order_id", "order_time", "customer_id", "product"]])
    assert (pd.read_csv(d / "sends.csv", dtype=str)["send_time"] >= "2024-01-01").all()
    tr = truth["truncation"]
    assert tr["existing_buyers_in_export"] > 0 and tr["orders_dropped"] > 0
    # new buyers by month: first paid order ever in that month, from the whole store with plain pandas
    paid = full[full["status"].isin(["paid", "交易成功"]) & ~full["order_id"].str.startswith("C")]
    gone = set(pd.read_csv(d / "truth_returns.csv", dtype=str, keep_default_na=False)
               .query("kind == 'full'")["reverses"])
    first = paid[~paid["order_id"].isin(gone)].groupby("customer_id")["order_time"].min()
    by_month = first[first >= "2024-01-01"].str[:7].value_counts().sort_index()
    assert tr["new_buyers_by_month"] == {m: int(v) for m, v in by_month.items()}


def test_cli_sample_returns_and_truncate_before(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sample", "--out", str(out), "--customers", "300", "--seed", "2", "--returns", "0.05",
                 "--truncate-before", "2024-01-01"]) == 0
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    # the default start is not before the cut: the store starts two years before it
    assert truth["spec"]["start"] == "2022-01-01" and truth["spec"]["truncate_before"] == "2024-01-01"
    assert truth["spec"]["returns"] == 0.05 and truth["returns"]["reversal_lines"] > 0
    o = pd.read_csv(out / "orders.csv", dtype=str)
    assert (o["order_time"] >= "2024-01-01").all() and o["order_id"].str.match(r"C\d{8}$").any()
    assert "credit notes" in capsys.readouterr().err
    # defaults: no issue-24 keys, no truth_returns.csv (the sample stays as it was)
    assert main(["sample", "--out", str(tmp_path / "p"), "--customers", "300", "--seed", "2"]) == 0
    plain = json.loads((tmp_path / "p" / "truth.json").read_text(encoding="utf-8"))
    assert not {"returns", "truncation"} & set(plain) and "returns" not in plain["spec"]
    assert not (tmp_path / "p" / "truth_returns.csv").exists()
    assert main(["sample", "--out", str(tmp_path / "x"), "--customers", "300", "--truncate-before", "2030-01-01"]) == 2
