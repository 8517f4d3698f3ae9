"""The engine: every analysis gives identical tables on DuckDB and on Spark (local[2]).

Independent reference: the DuckDB results are themselves pinned by the hand fixtures,
R values and planted truth in the other test files; here Spark must reproduce them
exactly (counts equal, money within 1e-9 relative: the two engines sum floats in
different orders, and 1e-9 is far above double rounding over 10^5 terms, ~1e-11).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmlab.clv.models import rfm_summary
from crmlab.engine.connection import connect
from crmlab.engine.sources import order_table, read_clean_ledger, write_clean
from crmlab.engine.aggregates import customer_frame
from crmlab.experiments.analysis import campaign_outcomes
from crmlab.ingest.readers import load_orders, load_sends
from crmlab.analyses.lifecycle import lifecycle_stages, stage_counts
from crmlab.analyses.magic import repurchase_curve, time_to_next_order
from crmlab.analyses.overview import monthly_overview, spread, status_summary
from crmlab.analyses.repurchase import next_period_repurchase, period_repurchase_rate
from crmlab.analyses.retention import retention_table
from crmlab.analyses.rfm import rfm_scores

MONEY_RTOL = 1e-9


@pytest.fixture(scope="module")
def duck():
    return connect("duckdb")


@pytest.fixture(scope="module")
def spark():
    return connect("spark", spark_master="local[2]")


@pytest.fixture(scope="module")
def loaded(small_store):
    return load_orders(small_store / "orders.csv", observation_end="2025-12-31")


@pytest.fixture(scope="module")
def both(loaded, duck, spark, tmp_path_factory):
    """The same validated orders in DuckDB (from the DataFrame) and in Spark (from the clean
    Parquet file, scanned lazily: faster than shipping a pandas frame to Spark per query)."""
    df, led = loaded
    clean = write_clean(df, led, str(tmp_path_factory.mktemp("clean") / "orders.parquet"))
    return order_table(df, duck), order_table(clean, spark)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a, b = a.copy(), b.copy()
    assert list(a.columns) == list(b.columns)
    assert list(map(str, a.index)) == list(map(str, b.index))
    for c in a.columns:
        x, y = a[c], b[c]
        if pd.api.types.is_float_dtype(x) or pd.api.types.is_float_dtype(y):
            np.testing.assert_allclose(x.to_numpy(float), y.to_numpy(float), rtol=MONEY_RTOL, atol=1e-12,
                                       err_msg=c)
        else:
            assert x.astype(str).tolist() == y.astype(str).tolist(), c


pytestmark = pytest.mark.spark


def test_retention_kinds_are_identical(both):
    d, s = both
    for kw in ({"kind": "exact", "days": [1, 7, 30], "cohort": "week"}, {"kind": "on_or_after", "days": [7, 30, 90]},
               {"kind": "bracket", "days": [(1, 7), (8, 30)], "cohort": "channel"}):
        a, b = retention_table(d, **kw), retention_table(s, **kw)
        _same(a.eligible, b.eligible)
        _same(a.retained, b.retained)
        _same(a.size.to_frame(), b.size.to_frame())


def test_repurchase_rates_are_identical(both):
    d, s = both
    _same(period_repurchase_rate(d, "month"), period_repurchase_rate(s, "month"))
    _same(period_repurchase_rate(d, "week"), period_repurchase_rate(s, "week"))
    for kind in ("next_month", "next_two_months", "next_quarter"):
        _same(next_period_repurchase(d, kind), next_period_repurchase(s, kind))


def test_magic_curve_and_kaplan_meier_are_identical(both):
    d, s = both
    _same(repurchase_curve(d, 90, 8).table, repurchase_curve(s, 90, 8).table)
    _same(time_to_next_order(d, (1, 2, 3), horizon_days=120), time_to_next_order(s, (1, 2, 3), horizon_days=120))


def test_overview_is_identical(both):
    d, s = both
    _same(monthly_overview(d), monthly_overview(s))
    _same(status_summary(d), status_summary(s))
    _same(spread(d, "region"), spread(s, "region"))


def test_customer_table_summary_lifecycle_rfm_are_identical(both):
    d, s = both
    _same(customer_frame(d), customer_frame(s))
    _same(rfm_summary(d, time_unit="W"), rfm_summary(s, time_unit="W"))
    _same(rfm_summary(d, calibration_end="2025-06-30"), rfm_summary(s, calibration_end="2025-06-30"))
    _same(stage_counts(lifecycle_stages(d)), stage_counts(lifecycle_stages(s)))
    _same(rfm_scores(d), rfm_scores(s))


def test_campaign_outcomes_are_identical(both, small_store):
    d, s = both
    sends, _ = load_sends(small_store / "sends.csv", observation_end="2025-12-31")
    _same(campaign_outcomes(sends, d), campaign_outcomes(sends, s))


def test_clean_parquet_round_trip(loaded, duck, spark, tmp_path):
    """A clean file written once is read without validating again, with its ledger, by both engines."""
    df, led = loaded
    p = write_clean(df, led, str(tmp_path / "orders.clean.parquet"))
    meta = read_clean_ledger(p)
    assert meta["input_rows"] == led.input_rows and meta["used_rows"] == led.used_rows
    a = order_table(df, duck)
    for eng in (duck, spark):
        b = order_table(p, eng)
        assert b.observation_end == a.observation_end
        _same(retention_table(a, days=[1, 30]).retained, retention_table(b, days=[1, 30]).retained)
    assert read_clean_ledger(str(tmp_path / "nothing.parquet")) is None


@pytest.mark.parametrize("fixture", ["small", "bad"])
def test_validation_in_spark_equals_duckdb(fixture, small_store, duck, spark):
    """The ledger (every reason, count and example row) and the rolled-up orders are the same
    whichever engine validates; the bad fixture exercises every exclusion reason."""
    from pathlib import Path

    from crmlab.engine.loading import load

    src = small_store / "orders.csv" if fixture == "small" else Path(__file__).parent / "fixtures" / "orders_bad.csv"
    (a, la), (b, lb) = load(str(src), duck, now="2026-01-01"), load(str(src), spark, now="2026-01-01")
    assert la.to_dict() == lb.to_dict()
    cols = ["line", "order_id", "customer_id", "order_time", "amount", "status"]
    x = duck.to_pandas(a.table.select(*cols).order_by("line"))
    y = spark.to_pandas(b.table.select(*cols).order_by("line"))
    _same(x.reset_index(drop=True), y.reset_index(drop=True))


def test_validation_in_chunks_equals_one_pass(small_store, duck, tmp_path):
    """Chunked screening (bounded memory) gives the ledger and orders of a single pass, with a
    duplicate line and a shared order id placed across a chunk boundary."""
    from crmlab.ingest.export import load_export

    raw = pd.read_csv(small_store / "orders.csv", dtype=str).head(3000)
    raw = pd.concat([raw, raw.iloc[[5]], raw.iloc[[7]].assign(customer_id="someone else")], ignore_index=True)
    p = tmp_path / "o.csv"
    raw.to_csv(p, index=False)
    one, l1 = load_export(str(p), duck, chunk_rows=10_000, now="2026-01-01")
    many, l2 = load_export(str(p), duck, chunk_rows=700, now="2026-01-01")
    assert l1.to_dict() == l2.to_dict()
    assert l1.excluded.get("exact_duplicate_line") == 1 and l1.excluded.get("order_id_shared_by_customers", 0) >= 2
    _same(duck.to_pandas(one.table.order_by("line")), duck.to_pandas(many.table.order_by("line")))


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_bad_input_is_one_line_and_exit_2_on_both_engines(engine, tmp_path, capsys):
    from crmlab.cli.main import main

    p = tmp_path / "o.csv"
    p.write_text("customer_id,order_time,amount\na,2025-01-01,3\n", encoding="utf-8")
    rc = main(["validate", "--orders", str(p), "--engine", engine, "--spark-master", "local[2]"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "missing column 'order_id'" in err[0] and "Traceback" not in err[0]
    q = tmp_path / "none.csv"
    q.write_text("customer_id,order_id,order_time,amount\n,o1,2025-01-01,3\n", encoding="utf-8")
    rc = main(["retention", "--orders", str(q), "--engine", engine, "--spark-master", "local[2]"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no usable rows" in err[0]


def test_a_big_export_suggests_validating_once(tmp_path, monkeypatch, capsys):
    """Without the cache, a command re-validating a big export says how to avoid it; with the
    cache (the default) it says it cached the clean copy; the clean file never notes anything."""
    from crmlab.cli import main as cli
    from crmlab.simulate.store import write_sample

    write_sample(str(tmp_path), n_customers=200, seed=3)
    monkeypatch.setattr(cli, "BIG_EXPORT_LINES", 10)
    orders = str(tmp_path / "orders.csv")
    assert cli.main(["retention", "--orders", orders, "--days", "1", "--no-cache"]) == 0
    assert "crmlab: note: validating" in capsys.readouterr().err
    assert cli.main(["retention", "--orders", orders, "--days", "1", "--cache-dir", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    assert "note:" not in err and "cached the clean copy" in err
    clean = str(tmp_path / "clean.parquet")
    assert cli.main(["validate", "--orders", orders, "--clean-out", clean, "--no-cache"]) == 0
    assert "note:" not in capsys.readouterr().err
    assert cli.main(["retention", "--orders", clean, "--days", "1"]) == 0
    assert "note:" not in capsys.readouterr().err
