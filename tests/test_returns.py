"""Returns and credit notes (issue 24 item 1): separate reversal documents netted against the
same customer's purchases. Every expected value is worked out by hand in the comments."""
from __future__ import annotations

import json

import pandas as pd
import pytest

import crmlab
from crmlab.cli.main import main
from crmlab.clv.summary import summary_table
from crmlab.ingest.readers import load_orders
from crmlab.schema import CrmlabInputError

# Shaped like the UK Online Retail export: one line per invoice line, cancellations as
# separate `C` invoices with negative quantities, amount = Quantity x UnitPrice.
UK = [
    # InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice, CustomerID      data row
    ("536379", "85123A", 6, "2010-12-01 09:41:00", 2.55, "17850"),   # 1: 15.30 } order 536379 = 23.80
    ("536379", "71053", 2, "2010-12-01 09:41:00", 4.25, "17850"),    # 2:  8.50 }
    ("C536379", "85123A", -6, "2010-12-01 09:49:00", 2.55, "17850"),  # 3: -15.30 } credit note minutes later:
    ("C536379", "71053", -2, "2010-12-01 09:49:00", 4.25, "17850"),   # 4:  -8.50 } 536379 fully reversed
    ("536400", "22752", 4, "2010-12-03 10:00:00", 3.00, "17850"),    # 5: 12.00
    ("536500", "85123A", 10, "2010-12-02 11:00:00", 2.55, "13047"),  # 6: 25.50 } order 536500 = 35.45
    ("536500", "84879", 1, "2010-12-02 11:00:00", 9.95, "13047"),    # 7:  9.95 }
    ("C536550", "85123A", -4, "2010-12-05 12:00:00", 2.55, "13047"),  # 8: -10.20 partial: 536500 -> 25.25
    ("C536600", "22633", -1, "2010-12-06 10:00:00", 5.00, "12583"),   # 9: purchase 66 days before: unmatched
    ("536100", "22633", 1, "2010-10-01 10:00:00", 5.00, "12583"),    # 10: 5.00 (kept)
    ("C536401", "22752", -4, "2010-12-03 11:00:00", 3.00, "14000"),   # 11: 17850's product, other customer:
    ("536450", "21730", 1, "2010-12-02 10:00:00", 20.00, "14000"),   # 12: 20.00   unmatched
]
UK_COLUMNS = ("order_id=InvoiceNo,product=StockCode,quantity=Quantity,order_time=InvoiceDate,"
              "unit_price=UnitPrice,customer_id=CustomerID")


@pytest.fixture
def uk_csv(tmp_path):
    p = tmp_path / "online_retail.csv"
    pd.DataFrame(UK, columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]
                 ).to_csv(p, index=False)
    return p


def _per_customer(o: pd.DataFrame) -> dict:
    g = o.assign(c=o["customer_id"].astype(str)).groupby("c")["amount"]
    return {c: (int(n), round(float(s), 2)) for c, n, s in zip(g.count().index, g.count(), g.sum())}


def test_credit_notes_are_netted_by_product_and_quantity(uk_csv):
    o, led = load_orders(uk_csv, columns=UK_COLUMNS, observation_end="2010-12-31")
    amounts = {r: round(a, 2) for r, a in zip(o["order_id"], o["amount"])}
    # 536379 gone (23.80 reversed 8 minutes later); 536500 35.45 - 10.20 = 25.25; the rest as bought
    assert amounts == {"536100": 5.00, "536450": 20.00, "536400": 12.00, "536500": 25.25}
    # orders and spend per customer, net of returns
    assert _per_customer(o) == {"17850": (1, 12.00), "13047": (1, 25.25), "12583": (1, 5.00), "14000": (1, 20.00)}
    # rows 3, 4, 8, 9, 11 are reversal lines; 3, 4 (-> 536379) and 8 (-> 536500) matched;
    # 9 (purchase 66 days before) and 11 (another customer's product) unmatched;
    # netted 15.30 + 8.50 + 10.20 = 34.00
    assert led.returns == {"reversal_lines": 5, "matched": 3, "unmatched": 2, "orders_fully_reversed": 1,
                           "amount_netted": 34.00}
    # the ledger balances: 12 rows = 5 used (rows 5, 6, 7, 10, 12) + 5 reversal lines + 2 lines
    # of the fully reversed order
    assert led.input_rows == 12 and led.used_rows == 5
    assert led.excluded == {"reversal_line": 5, "order_fully_reversed": 2}
    assert led.examples["reversal_line"] == [3, 4, 8, 9, 11] and led.examples["order_fully_reversed"] == [1, 2]
    assert led.used_rows + led.excluded_rows == led.input_rows
    assert led.orders == 4 and led.customers == 4
    assert led.to_dict()["returns"] == led.returns


def test_returns_ignore_keeps_todays_numbers(uk_csv):
    o, led = load_orders(uk_csv, columns=UK_COLUMNS, observation_end="2010-12-31", returns="ignore")
    # every negative line excluded as before; 536379 stays a purchase of 23.80
    assert _per_customer(o) == {"17850": (2, 35.80), "13047": (1, 35.45), "12583": (1, 5.00), "14000": (1, 20.00)}
    assert led.excluded == {"negative_amount_on_paid_order": 5} and led.used_rows == 7
    assert led.returns == {"reversal_lines": 0, "matched": 0, "unmatched": 0, "orders_fully_reversed": 0,
                           "amount_netted": 0.0}


def test_engine_load_agrees_and_frequency_spend_by_hand(uk_csv):
    """The engine path (crmlab.load) gives the same orders; the RFM summary counts a fully
    reversed order as no purchase: 17850 has one order (12.00), so frequency 0."""
    o, led = crmlab.load(str(uk_csv), columns=UK_COLUMNS, observation_end="2010-12-31")
    got = o.engine.to_pandas(o.table)
    assert {r: round(a, 2) for r, a in zip(got["order_id"], got["amount"])} == \
        {"536100": 5.00, "536450": 20.00, "536400": 12.00, "536500": 25.25}
    assert led.returns["amount_netted"] == 34.00
    s, _ = summary_table(o)
    s = o.engine.to_pandas(s).set_index("customer_id")
    assert int(s.loc["17850", "frequency"]) == 0   # one purchase left: no repeat
    # with the returns ignored 17850 bought twice (2010-12-01 and 12-03): one repeat
    oi, _ = crmlab.load(str(uk_csv), columns=UK_COLUMNS, observation_end="2010-12-31", returns="ignore")
    si = oi.engine.to_pandas(summary_table(oi)[0]).set_index("customer_id")
    assert int(si.loc["17850", "frequency"]) == 1


def test_refund_rows_matched_by_amount_with_returns_net(tmp_path):
    p = tmp_path / "orders.csv"
    p.write_text("customer_id,order_id,order_time,amount,status\n"
                 "A,o1,2025-01-01 10:00:00,100,paid\n"      # 1: fully refunded by r1
                 "A,o4,2025-01-02 10:00:00,40,paid\n"       # 2: kept (r1 prefers the exact amount)
                 "B,o2,2025-01-02 10:00:00,80,paid\n"       # 3: partial: 80 - 30 = 50
                 "C,o3,2024-11-01 10:00:00,50,paid\n"       # 4: kept (65 days before r3)
                 "A,r1,2025-01-03 10:00:00,-100,refunded\n"  # 5
                 "B,r2,2025-01-10 10:00:00,-30,paid\n"       # 6
                 "C,r3,2025-01-05 10:00:00,-20,refunded\n",  # 7: unmatched
                 encoding="utf-8")
    o, led = load_orders(p, observation_end="2025-01-31", returns="net")
    assert {r: a for r, a in zip(o["order_id"], o["amount"])} == {"o3": 50.0, "o4": 40.0, "o2": 50.0}
    assert _per_customer(o) == {"A": (1, 40.0), "B": (1, 50.0), "C": (1, 50.0)}
    assert led.returns == {"reversal_lines": 3, "matched": 2, "unmatched": 1, "orders_fully_reversed": 1,
                           "amount_netted": 130.0}
    assert led.excluded == {"reversal_line": 3, "order_fully_reversed": 1} and led.used_rows == 3
    # by default only ids that say so are reversals: here none, as today (r2 negative paid
    # excluded, r1 and r3 kept as refunded orders)
    o, led = load_orders(p, observation_end="2025-01-31")
    assert led.excluded == {"negative_amount_on_paid_order": 1} and led.returns["reversal_lines"] == 0
    assert sorted(o["order_id"]) == ["o1", "o2", "o3", "o4", "r1", "r3"]


def test_a_reversal_never_matches_another_customers_order(tmp_path):
    p = tmp_path / "orders.csv"
    p.write_text("customer_id,order_id,order_time,amount\n"
                 "A,536379,2025-01-01 10:00:00,60\n"
                 "B,C536379,2025-01-01 10:05:00,-60\n", encoding="utf-8")  # A's id and amount, B's credit
    o, led = load_orders(p, observation_end="2025-01-31")
    assert list(o["order_id"]) == ["536379"] and list(o["amount"]) == [60.0]
    assert led.returns == {"reversal_lines": 1, "matched": 0, "unmatched": 1, "orders_fully_reversed": 0,
                           "amount_netted": 0.0}


def test_bad_returns_mode_is_an_input_error(uk_csv):
    with pytest.raises(CrmlabInputError, match="returns"):
        load_orders(uk_csv, columns=UK_COLUMNS, returns="gross")


def test_validate_json_has_the_returns_contract(uk_csv, capsys):
    rc = main(["validate", "--orders", str(uk_csv), "--columns", UK_COLUMNS, "--observation-end", "2010-12-31",
               "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["orders"]["returns"] == {"reversal_lines": 5, "matched": 3, "unmatched": 2,
                                        "orders_fully_reversed": 1, "amount_netted": 34.0}
    rc = main(["validate", "--orders", str(uk_csv), "--columns", UK_COLUMNS, "--observation-end", "2010-12-31",
               "--returns", "ignore", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["orders"]["returns"]["reversal_lines"] == 0 and out["orders"]["orders"] == 5


def test_clean_file_keeps_the_returns_counts(uk_csv, tmp_path, capsys):
    clean = tmp_path / "clean.parquet"
    assert main(["validate", "--orders", str(uk_csv), "--columns", UK_COLUMNS, "--clean-out", str(clean)]) == 0
    capsys.readouterr()
    _, led = crmlab.load(str(clean))
    assert led.returns["orders_fully_reversed"] == 1 and led.returns["amount_netted"] == 34.0
