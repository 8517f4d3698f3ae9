"""Bad input and arguments (issue #10, parts 4 and 5): one line and exit 2, or a named exclusion.

The contract checked everywhere: a bad argument or file gives exit code 2, exactly one
non-empty stderr line ``crmlab: error: ...`` naming the argument or file, no traceback and
no output; a doubtful row is excluded under a named reason and the ledger still balances
(used + excluded == input).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from crmlab.cli.main import main
from crmlab.ingest.readers import CrmlabInputError, load_orders


def _one_line_error(capsys, rc: int, *expect: str) -> str:
    out, err = capsys.readouterr()
    assert rc == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].strip(), err
    assert lines[0].startswith("crmlab: error: ") and "Traceback" not in err
    assert out == ""  # nothing ran
    for e in expect:
        assert e in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------- every subcommand, bad values

# {O} orders file, {S} sends file, {D} a missing folder, {F} an existing file, {T} temp dir.
# The third element must appear in the message: the argument (or file) it is about.
WALK = [
    ([], "the following arguments are required"),
    (["no-such-command"], "invalid choice"),
    (["validate"], "--orders"),
    (["validate", "--orders", "{O}", "--observation-end", "not a date"], "--observation-end"),
    (["validate", "--orders", "{O}", "--observation-end", ""], "--observation-end"),
    (["validate", "--orders", "{O}", "--observation-end", "9999-12-31"], "--observation-end"),
    (["validate", "--orders", "{O}", "--timezone", "Asia/Nowhere"], "--timezone"),
    (["validate", "--orders", "{O}", "--decimal", ";"], "--decimal"),
    (["validate", "--orders", "{O}", "--dayfirst", "--monthfirst"], "--monthfirst"),
    (["validate", "--orders", "{O}", "--columns", "amount"], "--columns"),
    (["validate", "--orders", "{T}/x.parquet"], "x.parquet"),
    (["validate", "--orders", "{T}/nope.csv"], "nope.csv"),
    (["sample", "--out", "{T}/s", "--customers", "0"], "--customers"),
    (["sample", "--out", "{T}/s", "--customers", "-5"], "--customers"),
    (["sample", "--out", "{T}/s", "--seed", "-1"], "--seed"),
    (["sample", "--out", "{F}"], "--out"),
    (["report", "--orders", "{O}", "--observation-end", "not a date"], "--observation-end"),
    (["retention", "--orders", "{O}", "--days", "0,7"], "--days"),
    (["retention", "--orders", "{O}", "--days", "-1"], "--days"),
    (["retention", "--orders", "{O}", "--days", "x"], "--days"),
    (["retention", "--orders", "{O}", "--days", ""], "--days"),
    (["retention", "--orders", "{O}", "--days", "99999999"], "--days"),
    (["retention", "--orders", "{O}", "--kind", "bracket", "--brackets", "0-7"], "--brackets"),
    (["retention", "--orders", "{O}", "--kind", "bracket", "--brackets", "30-8"], "--brackets"),
    (["retention", "--orders", "{O}", "--kind", "bracket"], "--brackets"),
    (["retention", "--orders", "{O}", "--cohort", "year"], "--cohort"),
    (["lifecycle", "--orders", "{O}", "--percentile", "0"], "--percentile"),
    (["lifecycle", "--orders", "{O}", "--percentile", "100"], "--percentile"),
    (["lifecycle", "--orders", "{O}", "--percentile", "nan"], "--percentile"),
    (["lifecycle", "--orders", "{O}", "--as-of", "soon"], "--as-of"),
    (["magic-number", "--orders", "{O}", "--window-days", "0"], "--window-days"),
    (["magic-number", "--orders", "{O}", "--window-days", "-30"], "--window-days"),
    (["magic-number", "--orders", "{O}", "--window-days", "1.5"], "--window-days"),
    (["magic-number", "--orders", "{O}", "--window-days", "1000000000"], "--window-days"),
    (["magic-number", "--orders", "{O}", "--max-k", "0"], "--max-k"),
    (["magic-number", "--orders", "{O}", "--min-at-risk", "0"], "--min-at-risk"),
    (["clv", "--orders", "{O}", "--horizon-months", "-1"], "--horizon-months"),
    (["clv", "--orders", "{O}", "--horizon-months", "0"], "--horizon-months"),
    (["clv", "--orders", "{O}", "--discount-rate", "-0.01"], "--discount-rate"),
    (["clv", "--orders", "{O}", "--horizon-months", "100000000"], "--horizon-months"),
    (["clv", "--orders", "{O}", "--holdout-days", "-1"], "--holdout-days"),
    (["clv", "--orders", "{O}", "--holdout-days", "99999999"], "--holdout-days"),
    (["clv", "--orders", "{O}", "--values-out", "{D}/values.csv"], "--values-out"),
    (["promotion", "--orders", "{O}", "--growth", "new=nan"], "--growth"),
    (["promotion", "--orders", "{O}", "--timezone", "Nowhere"], "--timezone"),
    (["clv", "--orders", "{O}", "--margin", "nan"], "--margin"),
    (["clv", "--orders", "{O}", "--margin", "inf"], "--margin"),
    (["clv", "--orders", "{O}", "--summary-out", "{D}/summary.csv"], "--summary-out"),
    (["clv", "--orders", "{O}", "--calibration-end", "someday"], "--calibration-end"),
    (["abtest", "--orders", "{O}", "--sends", "{S}", "--window-hours", "nan"], "--window-hours"),
    (["abtest", "--orders", "{O}", "--sends", "{S}", "--window-hours", "0"], "--window-hours"),
    (["abtest", "--orders", "{O}", "--sends", "{S}", "--window-hours", "-24"], "--window-hours"),
    (["abtest", "--orders", "{O}", "--sends", "{S}", "--window-hours", "1e308"], "--window-hours"),
    (["abtest", "--orders", "{O}", "--sends", "{S}", "--planned-n", "0"], "--planned-n"),
    (["abtest", "--orders", "{O}", "--sends", "{S}", "--planned-split", "a=x"], "--planned-split"),
    (["abtest", "--orders", "{O}", "--sends", "{S}", "--seed", "-1"], "--seed"),
    (["abtest", "--orders", "{O}", "--sends", "{S}", "--control", "nobody"], "control arm 'nobody'"),
    (["abtest", "--orders", "{O}"], "--sends"),
    (["sample-size", "--baseline", "0", "--target", "0.1"], "--baseline"),
    (["sample-size", "--baseline", "1", "--target", "0.1"], "--baseline"),
    (["sample-size", "--baseline", "1.5", "--target", "0.1"], "--baseline"),
    (["sample-size", "--baseline", "nan", "--target", "0.1"], "--baseline"),
    (["sample-size", "--baseline", "0.1", "--target", "0.12", "--power", "1"], "--power"),
    (["sample-size", "--baseline", "0.1", "--target", "0.12", "--alpha", "0"], "--alpha"),
    (["sample-size", "--baseline", "0.1", "--target", "0.12", "--ratio", "0"], "--ratio"),
    (["sample-size", "--baseline", "0.1", "--relative-lift", "inf"], "--relative-lift"),
    (["sms-cost", "--text", "hi", "--price", "-1"], "--price"),
    (["sms-cost", "--text", "hi", "--price", "nan"], "--price"),
    (["sms-cost", "--text", "hi", "--scheme", "utf7"], "--scheme"),
]


@pytest.fixture()
def walk_paths(small_store, tmp_path):
    (tmp_path / "x.parquet").mkdir()  # a directory named like a file
    (tmp_path / "file.txt").write_text("not a folder")
    return {"{O}": str(small_store / "orders.csv"), "{S}": str(small_store / "sends.csv"),
            "{D}": str(tmp_path / "missing_folder"), "{F}": str(tmp_path / "file.txt"), "{T}": str(tmp_path)}


@pytest.mark.parametrize("argv,names", WALK, ids=[" ".join(a[:1] + a[-2:]) or "no-args" for a, _ in WALK])
def test_every_subcommand_rejects_bad_values_on_one_line(argv, names, walk_paths, capsys, tmp_path):
    argv = [walk_paths.get(a, a) for a in argv]
    argv = [a.replace("{T}", str(tmp_path)).replace("{D}", walk_paths["{D}"]) for a in argv]
    _one_line_error(capsys, main(argv), names)
    assert not (tmp_path / "s").exists()  # sample wrote nothing
    assert not (tmp_path / "missing_folder").exists()


def test_one_line_in_a_real_process(small_store):
    # Through the interpreter: no warning or usage text sneaks onto stderr either.
    for argv in (["magic-number", "--orders", str(small_store / "orders.csv"), "--max-k", "0"],
                 ["validate", "--orders", str(small_store / "orders.csv"), "--observation-end", "not a date"]):
        r = subprocess.run([sys.executable, "-m", "crmlab.cli.main", *argv], capture_output=True, text=True)
        assert r.returncode == 2 and r.stdout == ""
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("crmlab: error: --")


# ---------------------------------------------------------------- files that read wrongly before

def _frame():
    return pd.DataFrame({"买家会员名": ["张三", "李四", "张三"], "订单编号": ["1", "2", "3"],
                         "订单付款时间": ["2025-01-01 10:00:00", "2025-01-02 11:00:00", "2025-02-01 09:00:00"],
                         "买家实际支付金额": ["10.5", "20", "30"]})


def _same_as_frame(orders, led):
    assert led.used_rows == 3 and led.orders == 3 and led.customers == 2
    assert orders["amount"].tolist() == [10.5, 20.0, 30.0]
    assert sorted(orders["customer_id"].astype(str).unique()) == ["张三", "李四"]


@pytest.mark.parametrize("encoding,sep", [("utf-16", "\t"), ("utf-16-le", "\t"), ("utf-8", "\t"),
                                          ("utf-8", ";"), ("gbk", ";"), ("utf-16", ",")])
def test_utf16_and_tab_or_semicolon_files_read_like_comma_utf8(tmp_path, encoding, sep):
    # Excel's "Unicode text" is UTF-16 with a BOM and tabs; European CSVs use semicolons.
    # Before: a misleading "missing column" naming one glued-together header.
    p = tmp_path / "orders.txt"
    _frame().to_csv(p, index=False, sep=sep, encoding=encoding)
    _same_as_frame(*load_orders(p))


def test_title_rows_above_the_header_are_skipped_with_a_note(tmp_path, capsys):
    # Seller-centre exports put a report title and an export time above the header. Before:
    # a two-line pandas tokenizer error. Now the header is found and the ledger says where.
    p = tmp_path / "orders.csv"
    body = _frame().to_csv(index=False)
    p.write_text("店铺订单报表\n导出时间：2025-03-01 08:00\n" + body, encoding="utf-8")
    orders, led = load_orders(p)
    _same_as_frame(orders, led)
    assert led.warnings == ["header found on row 3; the 2 title row(s) above it were skipped"]
    assert main(["validate", "--orders", str(p)]) == 0
    assert "header found on row 3" in capsys.readouterr().out


def test_title_rows_in_excel(tmp_path):
    import openpyxl

    p = tmp_path / "orders.xlsx"
    _frame().to_excel(p, index=False, startrow=2)
    wb = openpyxl.load_workbook(p)
    wb.active["A1"] = "店铺订单报表"
    wb.save(p)
    orders, led = load_orders(p)
    _same_as_frame(orders, led)
    assert led.warnings and led.warnings[0].startswith("header found on row")


def test_unreadable_csv_is_one_line(tmp_path, capsys):
    # pandas' tokenizer message ends in a newline; the CLI still prints one line.
    p = tmp_path / "orders.csv"
    p.write_text("customer_id,order_id,order_time,amount\na,1,2025-01-01,1\nb,2,2025-01-02,1,x,y\n", encoding="utf-8")
    _one_line_error(capsys, main(["validate", "--orders", str(p)]), "orders.csv: cannot read file")


def test_directory_named_like_a_parquet_file(tmp_path, capsys):
    (tmp_path / "x.parquet").mkdir()
    with pytest.raises(CrmlabInputError, match="is a directory"):
        load_orders(tmp_path / "x.parquet")
    rc = main(["magic-number", "--orders", str(tmp_path / "x.parquet")])
    _one_line_error(capsys, rc, "x.parquet: is a directory")


# ---------------------------------------------------------------- silently wrong before

def _amounts(values, **kw):
    n = len(values)
    df = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "order_id": [f"o{i}" for i in range(n)],
                       "order_time": "2025-01-01 10:00:00", "amount": values})
    orders, led = load_orders(df, **kw)
    assert led.used_rows + led.excluded_rows == led.input_rows
    return dict(zip(orders["order_id"], orders["amount"])), led


def test_decimal_commas_are_never_guessed():
    # "12,50" was read as 1250 and "1.234,50" as 1.2345. A comma followed by exactly three
    # digits is a thousands separator (1,234 = 1234; 1,234.50 = 1234.5); any other comma in a
    # number is ambiguous under the default "." decimal mark and the row is excluded.
    got, led = _amounts(["12,50", "1.234,50", "1,234.50", "1,234", "1,234,567.5", "¥1,280.00", "7.5", "12,5"])
    assert got == {"o2": 1234.5, "o3": 1234.0, "o4": 1234567.5, "o5": 1280.0, "o6": 7.5}
    assert led.excluded == {"ambiguous_decimal_comma": 3}
    assert led.examples["ambiguous_decimal_comma"] == [1, 2, 8]


def test_explicit_decimal_comma(tmp_path, capsys):
    # With decimal="," the roles swap: 12,50 = 12.5, 1.234,50 = 1234.5, 1.234 = 1234;
    # "7.5" is now the ambiguous one.
    got, led = _amounts(["12,50", "1.234,50", "1.234", "7.5"], decimal=",")
    assert got == {"o0": 12.5, "o1": 1234.5, "o2": 1234.0}
    assert led.excluded == {"ambiguous_decimal_point": 1}
    p = tmp_path / "orders.csv"
    pd.DataFrame({"customer_id": ["a", "b"], "order_id": ["1", "2"], "order_time": ["2025-01-01", "2025-01-02"],
                  "amount": ["12,50", "3,00"]}).to_csv(p, index=False, sep=";")
    assert main(["validate", "--orders", str(p), "--decimal", ",", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["orders"]["excluded"] == {}
    assert main(["validate", "--orders", str(p), "--json"]) == 2  # both rows ambiguous: none left
    assert "ambiguous_decimal_comma" in capsys.readouterr().err


def test_non_finite_amounts_are_excluded():
    # "inf" was accepted as a paid amount ("paid sales ¥inf"); nan/inf are not money.
    got, led = _amounts(["inf", "-inf", "nan", "Infinity", "NaN", "5"])
    assert got == {"o5": 5.0}
    assert led.excluded == {"non_finite_amount": 5}


def test_explicit_mapping_wins_over_a_same_named_column(tmp_path, capsys):
    # --columns amount=实付金额 was ignored when the file also had an "amount" column.
    df = pd.DataFrame({"customer_id": ["a", "b"], "order_id": ["1", "2"], "order_time": ["2025-01-01", "2025-01-02"],
                       "amount": ["999", "999"], "实付金额": ["10", "20"]})
    orders, led = load_orders(df, columns={"amount": "实付金额"})
    assert orders["amount"].tolist() == [10.0, 20.0]
    assert any("column 'amount' ignored" in w for w in led.warnings)
    p = tmp_path / "orders.csv"
    df[["实付金额", "customer_id", "order_id", "order_time", "amount"]].to_csv(p, index=False)
    assert main(["validate", "--orders", str(p), "--columns", "amount=实付金额", "--json"]) == 0
    assert any("amount=实付金额" in w for w in json.loads(capsys.readouterr().out)["orders"]["warnings"])


def _slash(times, **kw):
    n = len(times)
    df = pd.DataFrame({"客户ID": ["a"] * n, "订单号": [str(i) for i in range(n)], "下单时间": times, "金额": "1"})
    orders, led = load_orders(df, **kw)
    return dict(zip(orders["order_id"], orders["order_time"].dt.strftime("%Y-%m-%d"))), led


def test_slash_dates_follow_the_column_never_a_per_row_guess(tmp_path, capsys):
    # 01/02/2024 was read as 2 January and 13/02/2024 as 13 February in the same column.
    # A day above 12 shows the column is day-first: 01/02/2024 is then 1 February.
    got, _ = _slash(["13/02/2024", "01/02/2024 10:00", "5.3.2024"])
    assert got == {"0": "2024-02-13", "1": "2024-02-01", "2": "2024-03-05"}
    got, _ = _slash(["02/13/2024", "01/02/2024"])  # a "day" 13 in second place: month-first
    assert got == {"0": "2024-02-13", "1": "2024-01-02"}
    # both kinds in one column: an error naming the file, the column and example rows
    with pytest.raises(CrmlabInputError, match=r"column '下单时间' \(order_time\) mixes day-first and month-first "
                                               r"dates \(row 1 '13/02/2024' is day-first, row 3 '02/13/2024'"):
        _slash(["13/02/2024", "01/02/2024", "02/13/2024"])
    # only values that read both ways: refuse, asking for the order
    with pytest.raises(CrmlabInputError, match="pass --dayfirst or --monthfirst"):
        _slash(["01/02/2024", "03/04/2024"])
    # an explicit order is followed; a row that does not fit it is unparseable, not swapped
    got, led = _slash(["01/02/2024", "03/04/2024", "02/13/2024"], dayfirst=True)
    assert got == {"0": "2024-02-01", "1": "2024-04-03"} and led.excluded == {"unparseable_order_time": 1}
    got, _ = _slash(["01/02/2024", "03/04/2024"], dayfirst=False)
    assert got == {"0": "2024-01-02", "1": "2024-03-04"}
    # ISO dates are never affected by the option
    got, _ = _slash(["2024-01-02", "2024-03-04 10:00:00"], dayfirst=True)
    assert got == {"0": "2024-01-02", "1": "2024-03-04"}
    p = tmp_path / "orders.csv"
    pd.DataFrame({"customer_id": ["a", "b"], "order_id": ["1", "2"], "order_time": ["01/02/2024", "03/04/2024"],
                  "amount": ["1", "2"]}).to_csv(p, index=False)
    _one_line_error(capsys, main(["validate", "--orders", str(p)]), "orders.csv: column 'order_time'")
    assert main(["validate", "--orders", str(p), "--dayfirst", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["orders"]["observation_end"] == "2024-04-03 00:00:00"


def test_abtest_warns_when_no_targeted_customer_is_in_the_orders(small_store, tmp_path, capsys):
    # Sends whose customer ids match no order: every conversion is 0 for a reason that has
    # nothing to do with the copy. The loaders cannot see it; abtest says so.
    sends = pd.DataFrame({"customer_id": [f"Z{i}" for i in range(40)], "campaign_id": "c1",
                          "variant": ["A", "B"] * 20, "send_time": "2025-11-01 10:00:00"})
    p = tmp_path / "sends.csv"
    sends.to_csv(p, index=False)
    argv = ["abtest", "--orders", str(small_store / "orders.csv"), "--sends", str(p)]
    assert main(argv + ["--json"]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert any("no targeted customer of sends.csv appears in orders.csv" in w for w in warnings)
    assert main(argv) == 0
    assert "warning: no targeted customer" in capsys.readouterr().out
    assert main(["abtest", "--orders", str(small_store / "orders.csv"), "--sends", str(small_store / "sends.csv"),
                 "--json"]) == 0
    assert not any("no targeted customer" in w for w in json.loads(capsys.readouterr().out)["warnings"])
