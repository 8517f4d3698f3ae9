"""Where the screened lines wait for the set-level checks: in DuckDB's memory, or as Parquet
parts on disk when they would take more than a share of its memory limit. Both give the same
orders and the same ledger (the export has every set-level case: an exact duplicate line, an
order id shared by two customers, a credit note netted, a line after the observation end)."""
from __future__ import annotations

import pandas as pd

import crmlab
from crmlab.ingest import export

from test_returns import UK, UK_COLUMNS

EXTRA = [
    ("536379", "85123A", 6, "2010-12-01 09:41:00", 2.55, "17850"),   # exact copy of line 1
    ("536700", "22633", 1, "2010-12-07 10:00:00", 5.00, "12583"),    # } one order id,
    ("536700", "22633", 1, "2010-12-07 10:00:00", 5.00, "99999"),    # } two customers
    ("536800", "22633", 1, "2011-02-01 10:00:00", 5.00, "12583"),    # after the observation end
]


def _load(path):
    o, led = crmlab.load(str(path), columns=UK_COLUMNS, observation_end="2010-12-31", cache=False)
    got = o.engine.to_pandas(o.table).sort_values("order_id").reset_index(drop=True)
    return got, led.to_dict()


def test_lines_on_disk_give_the_same_orders_and_ledger(tmp_path, monkeypatch):
    p = tmp_path / "export.csv"
    pd.DataFrame(UK + EXTRA, columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice",
                                      "CustomerID"]).to_csv(p, index=False)
    staged = []
    on_disk = export._lines_on_disk
    monkeypatch.setattr(export, "_lines_on_disk", lambda raw, out: staged.append(out) or on_disk(raw, out))
    in_memory, led_memory = _load(p)
    assert staged == []                                    # a small export stays in memory
    monkeypatch.setattr(export, "LINES_MEMORY_SHARE", 0.0)
    disk, led_disk = _load(p)
    assert len(staged) == 1                                # the same export, staged on disk
    pd.testing.assert_frame_equal(in_memory, disk)
    assert led_memory == led_disk
    ex = led_disk["excluded"]
    assert ex["exact_duplicate_line"] == 1 and ex["order_id_shared_by_customers"] == 2
    assert ex["after_observation_end"] == 1 and ex["order_fully_reversed"] == 2


def test_the_memory_share_reads_every_limit_duckdb_prints():
    """DuckDB prints its limit as text ('61.0 MiB', '909.4 TiB', '16383.9 PiB' when unlimited):
    each is read, so a big limit keeps the lines in memory and a tiny one sends them to disk."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE lines AS SELECT range AS row, 'customer ' || range AS c FROM range(200000)")
        for limit, fits in (("-1", True), ("1000TB", True), ("9000TB", True), ("4GB", True), ("64MB", True),
                            ("2MB", False)):
            con.execute(f"SET memory_limit = '{limit}'")
            assert export._lines_fit(con) is fits, limit
    finally:
        con.close()
