"""The data contract: readers, mapping, ledger, roll-up, fatal errors (crmlab.ingest.readers, crmlab validate)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crmlab.cli.main import main
from crmlab.ingest.readers import CrmlabInputError, load_orders, load_sends, parse_observation_end
from conftest import FIXTURES

BAD = FIXTURES / "orders_bad.csv"


def test_every_exclusion_reason_counted_exactly():
    # Worked out by hand, row by row (1-based data rows of orders_bad.csv):
    # 3 duplicates 2; 4 no customer; 5 no order id; 6 bad time; 7 amount 'abc';
    # 8 negative paid amount; 10 unknown status; 11+12 order o8 shared by c4 and c5;
    # 14 after the observation end. Used: 1, 2 (two lines of o1), 9 (refund), 13.
    orders, led = load_orders(BAD, observation_end="2025-02-28")
    assert led.input_rows == 14
    assert led.excluded == {
        "exact_duplicate_line": 1, "missing_customer_id": 1, "missing_order_id": 1,
        "unparseable_order_time": 1, "unknown_status": 1, "non_numeric_amount": 1,
        "negative_amount_on_paid_order": 1, "order_id_shared_by_customers": 2, "after_observation_end": 1,
    }
    assert led.used_rows == 4 and led.used_rows + led.excluded_rows == led.input_rows
    assert led.examples["order_id_shared_by_customers"] == [11, 12]
    assert led.examples["negative_amount_on_paid_order"] == [8]
    assert led.orders == 3 and led.customers == 3
    o1 = orders.set_index("order_id").loc["o1"]
    assert o1["amount"] == 150 and o1["order_time"] == pd.Timestamp("2025-01-01 10:00:00")
    assert set(orders["status"].astype(str)) == {"paid", "refunded"}
    assert "phone" not in orders.columns  # personal data dropped by default


def test_observation_end_default_is_latest_order_and_bare_date_is_end_of_day():
    _, led = load_orders(BAD)
    assert led.observation_end == pd.Timestamp("2025-03-01 09:00:00")
    assert "after_observation_end" not in led.excluded
    assert parse_observation_end("2025-12-31") == pd.Timestamp("2025-12-31 23:59:59.999999")
    assert parse_observation_end("2025-12-31 12:00:00") == pd.Timestamp("2025-12-31 12:00:00")


def _sample_frame():
    return pd.DataFrame({"买家会员名": ["张三", "李四", "张三"], "订单编号": ["1", "2", "3"],
                         "订单付款时间": ["2025-01-01 10:00:00", "2025-01-02 11:00:00", "2025-02-01 09:00:00"],
                         "买家实际支付金额": ["10.5", "20", "30"], "订单状态": ["交易成功", "等待买家付款", "退款成功"]})


@pytest.mark.parametrize("fmt", ["utf-8", "utf-8-sig", "gbk", "parquet", "xlsx", "frame"])
def test_each_format_and_encoding_reads_the_same(tmp_path, fmt):
    df = _sample_frame()
    if fmt == "frame":
        src = df
    elif fmt == "parquet":
        src = tmp_path / "o.parquet"
        df.to_parquet(src)
    elif fmt == "xlsx":
        src = tmp_path / "o.xlsx"
        df.to_excel(src, index=False)
    else:
        src = tmp_path / "o.csv"
        df.to_csv(src, index=False, encoding=fmt)
    orders, led = load_orders(src)
    assert led.used_rows == 3 and led.orders == 3 and led.customers == 2
    assert list(orders["status"].astype(str)) == ["paid", "unpaid", "refunded"]
    assert orders["amount"].tolist() == [10.5, 20.0, 30.0]
    assert sorted(orders["customer_id"].astype(str).unique()) == ["张三", "李四"]


def test_gbk_file_larger_than_the_sniffed_block(tmp_path):
    n = 6000  # > 64 KiB of GBK text
    df = pd.DataFrame({"客户ID": [f"顾客{i}" for i in range(n)], "订单号": range(n),
                       "下单时间": "2025-01-01 10:00:00", "金额": 1.0})
    df.to_csv(tmp_path / "big.csv", index=False, encoding="gbk")
    orders, led = load_orders(tmp_path / "big.csv")
    assert led.orders == n and orders["customer_id"].iloc[0].startswith("顾客")


def test_mapping_dict_and_cli_string(tmp_path):
    df = pd.DataFrame({"buyer": ["a", "b"], "no": ["1", "2"], "paid_at": ["2025-01-01", "2025-01-02"],
                       "qty": ["2", "1"], "price": ["5", "7.5"]})
    mapping = {"customer_id": "buyer", "order_id": "no", "order_time": "paid_at", "quantity": "qty",
               "unit_price": "price"}
    orders, _ = load_orders(df, columns=mapping)
    assert orders["amount"].tolist() == [10.0, 7.5]  # quantity x unit_price
    orders2, _ = load_orders(df, columns="customer_id=buyer,order_id=no,order_time=paid_at,quantity=qty,unit_price=price")
    pd.testing.assert_frame_equal(orders, orders2)


def test_missing_column_is_one_line_error_and_exit_2(tmp_path, capsys):
    p = tmp_path / "orders.csv"
    pd.DataFrame({"customer_id": ["a"], "order_id": ["1"], "amount": [1]}).to_csv(p, index=False)
    with pytest.raises(CrmlabInputError, match=r"orders.csv: missing column 'order_time' \(columns found: customer_id, order_id, amount\)"):
        load_orders(p)
    assert main(["validate", "--orders", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crmlab: error: orders.csv: missing column 'order_time'") and "Traceback" not in err
    assert err.count("\n") == 1


def test_missing_file_and_nothing_left(tmp_path, capsys):
    assert main(["validate", "--orders", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv: file not found" in capsys.readouterr().err
    p = tmp_path / "orders.csv"
    pd.DataFrame({"customer_id": [""], "order_id": ["1"], "order_time": ["2025-01-01"], "amount": [1]}).to_csv(p, index=False)
    assert main(["validate", "--orders", str(p)]) == 2
    assert "no usable rows left" in capsys.readouterr().err


def test_validate_json_contract(small_store, capsys):
    assert main(["validate", "--orders", str(small_store / "orders.csv"), "--sends", str(small_store / "sends.csv"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    o = out["orders"]
    assert {"file", "input_rows", "used_rows", "orders", "customers", "excluded"} <= set(o)
    assert o["used_rows"] + sum(o["excluded"].values()) == o["input_rows"]
    assert out["sends"]["input_rows"] == len(pd.read_csv(small_store / "sends.csv"))


def test_sends_ledger(tmp_path):
    df = pd.DataFrame({
        "customer_id": ["a", "a", "", "b", "c", "c", "d", "e"],
        "campaign_id": ["x"] * 8,
        "variant": ["A", "A", "A", "B", "A", "B", "A", "A"],
        "send_time": ["2025-11-01 10:00:00"] * 6 + ["bad", "2026-01-05 10:00:00"],
        "delivered": ["true", "true", "true", "false", "1", "0", "是", "否"],
    })
    sends, led = load_sends(df, observation_end="2025-12-31")
    # row 2 duplicates row 1; row 3 no customer; rows 5-6 customer c in two variants;
    # row 7 bad time; row 8 after the observation end. Used: rows 1 and 4.
    assert led.excluded == {"exact_duplicate_line": 1, "missing_customer_id": 1, "unparseable_send_time": 1,
                            "after_observation_end": 1, "customer_in_several_variants": 2}
    assert led.used_rows == 2 and list(sends["delivered"]) == [True, False]


def test_sample_store_loads_without_exclusions(small_store):
    orders, led = load_orders(small_store / "orders.csv")
    truth = json.loads((small_store / "truth.json").read_text(encoding="utf-8"))
    assert led.excluded == {}
    assert int((orders["status"] == "paid").sum()) == truth["paid_orders"]
    assert isinstance(orders["customer_id"].dtype, pd.CategoricalDtype)
    assert np.all(np.diff(orders["order_time"].to_numpy().astype(np.int64)) >= 0)
