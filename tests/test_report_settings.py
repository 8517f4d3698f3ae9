"""The run's settings travel to the notebooks as parameters (issue 23); leftovers of issue 22:
notebook 05 without a verdict, ``report --sheet/--sends-sheet``, ids that look like phone numbers."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from crmlab.cli.main import main
from crmlab.privacy import find_pii
from crmlab.simulate.store import write_sample


@pytest.fixture(scope="module")
def pound_run(tmp_path_factory):
    """Every report on a 1,500-customer store (seed 1: its experiment has no verdict), in £."""
    shop = tmp_path_factory.mktemp("shop")
    write_sample(str(shop), n_customers=1500, seed=1)
    out = tmp_path_factory.mktemp("runs") / "pound"
    rc = main(["report", "--orders", str(shop / "orders.csv"), "--sends", str(shop / "sends.csv"), "--out", str(out),
               "-p", "currency=£", "--timezone", "Asia/Shanghai", "--memory-limit", "1GB"])
    return rc, out


def test_a_pound_run_shows_no_yen(pound_run):
    rc, out = pound_run
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    # 08 skipped with its reason: the store has no payment reminders (no created time, no order_id)
    assert rc == 0 and [r["status"] for r in run["reports"]] == ["ok"] * 7 + ["skipped"], run["reports"]
    pages = sorted(out.glob("*.html"))
    assert len(pages) == 9
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "¥" not in text, f"{page.name} shows ¥ in a £ run"
    for name in ("01_store_overview", "04_clv", "05_sms_ab_test", "06_big_promotion"):
        assert "£" in (out / f"{name}.html").read_text(encoding="utf-8"), name
    assert "¥" not in json.dumps(run, ensure_ascii=False)


def test_each_notebook_installs_the_runs_settings(pound_run):
    _, out = pound_run
    for nb in sorted(out.glob("0*.ipynb")):
        cells = [c for c in json.loads(nb.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
        injected = next("".join(c["source"]) for c in cells if "injected-parameters" in c["metadata"].get("tags", []))
        given: dict = {}
        exec(injected, given)  # papermill's parameters cell: plain assignments
        assert (given["currency"], given["timezone"], given["memory_limit"]) == ("£", "Asia/Shanghai", "1GB"), nb.name
        first = "".join(cells[cells.index(next(c for c in cells if "injected-parameters" in
                                                c["metadata"].get("tags", []))) + 1]["source"])
        assert "use(Settings(engine=engine, spark_master=spark_master, timezone=timezone, currency=currency" in first


def test_an_experiment_without_a_verdict_is_a_report(pound_run):
    _, out = pound_run
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    r05 = next(r for r in run["reports"] if r["name"] == "05_sms_ab_test")
    assert r05["status"] == "ok" and r05["error"] is None
    assert r05["headlines"]["decision 决策"]["value"] == "no verdict"
    page = (out / "05_sms_ab_test.html").read_text(encoding="utf-8")
    assert "no verdict" in page.lower() and "Not computed: the experiment has no verdict" in page
    assert "What to do next" in page


def test_report_reads_the_named_excel_sheets(tmp_path, capsys):
    write_sample(str(tmp_path), n_customers=200, seed=4)
    orders = pd.read_csv(tmp_path / "orders.csv", dtype=str)
    sends = pd.read_csv(tmp_path / "sends.csv", dtype=str)
    with pd.ExcelWriter(tmp_path / "book.xlsx") as xw:
        orders.iloc[:10].to_excel(xw, sheet_name="old", index=False)
        orders.to_excel(xw, sheet_name="orders", index=False)
        sends.to_excel(xw, sheet_name="sends", index=False)
    book = str(tmp_path / "book.xlsx")
    assert main(["report", "01", "--orders", book, "--out", str(tmp_path / "r0")]) == 2  # which sheet?
    assert capsys.readouterr().err.strip().startswith("crmlab: error: ")
    assert main(["report", "01", "--orders", book, "--sheet", "nope", "--out", str(tmp_path / "r1")]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["report", "01", "--orders", book, "--sheet", "orders", "--sends", book, "--sends-sheet", "sends",
                 "--out", str(tmp_path / "r2")]) == 0
    assert (tmp_path / "r2" / "01_store_overview.html").is_file()


def test_phone_shaped_ids_are_one_notice_and_masked_lists(tmp_path, capsys):
    write_sample(str(tmp_path), n_customers=400, seed=5)
    orders = pd.read_csv(tmp_path / "orders.csv", dtype=str)
    ids = {c: f"138{i:08d}" for i, c in enumerate(orders["customer_id"].unique())}
    orders["customer_id"] = orders["customer_id"].map(ids)
    orders.to_csv(tmp_path / "phones.csv", index=False)
    out = tmp_path / "r"
    assert main(["report", "02", "--orders", str(tmp_path / "phones.csv"), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    notices = [line for line in err.splitlines() if "look like phone numbers" in line]
    assert len(notices) == 1 and notices[0].startswith("crmlab: warning: phones.csv: ")
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["reports"][0]["status"] == "ok"
    listed = (out / "wakeup_list.csv").read_text(encoding="utf-8")
    assert not find_pii(listed) and not re.search(r"138\d{8}", listed)
