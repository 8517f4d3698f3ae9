"""The report runner end to end on a small sample: HTML, parameters, ledger, PII, failures, history."""
from __future__ import annotations

import json
import re

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from crmlab.cli.main import main
from crmlab.privacy import find_pii
from crmlab.report.runner import list_notebooks, resolve_type


def test_every_notebook_ran_and_index_lists_them(small_report):
    res, root = small_report
    assert res.ok, [r.error for r in res.reports]
    names = [p.stem for p in list_notebooks()]
    assert [r.name for r in res.reports] == names and len(names) >= 1
    index = (res.out / "index.html").read_text(encoding="utf-8")
    for n in names:
        assert (res.out / f"{n}.html").exists() and f"{n}.html" in index
    assert (root / "latest").resolve() == res.out.resolve()
    assert (root / "index.html").exists()


def test_html_hides_code_and_shows_findings_parameters_ledger(small_report):
    res, _ = small_report
    for r in res.reports:
        h = (res.out / f"{r.name}.html").read_text(encoding="utf-8")
        if r.status == "skipped":  # a page that says why (08 on a store without payment reminders): no findings
            assert "load_orders(" not in h and "import crmlab" not in h and r.reason
            continue
        assert "load_orders(" not in h and "import crmlab" not in h and "from crmlab" not in h
        kf, par, led = h.find("Key findings"), h.find("Parameters"), h.find("Ledger")
        assert 0 < kf < par < led, r.name
        assert "data:image/png;base64" in h  # figures embedded
        assert not re.search(r'<script[^>]+src="https?://', h)  # no network needed


def test_no_phone_or_nickname_in_any_html(small_report, small_store):
    res, root = small_report
    raw = pd.read_csv(small_store / "orders.csv", dtype=str)
    sends = pd.read_csv(small_store / "sends.csv", dtype=str)
    names = set(raw["nickname"]) | set()
    phones = set(raw["phone"]) | set(sends["phone"])
    for f in list(res.out.glob("*.html")) + [root / "index.html"]:
        h = f.read_text(encoding="utf-8")
        assert find_pii(h, names) == [], f.name
        assert not any(p in h for p in phones), f.name
    for f in res.out.glob("*.csv"):  # lists for operations: ids and numbers only
        head = f.read_text(encoding="utf-8")
        assert find_pii(head, names) == [], f.name


def test_pii_scan_finds_what_it_should():
    assert find_pii("call 138 1234 5678 now") and find_pii("<td>10012345678</td>") and find_pii("139****1234")
    assert find_pii("昵称 王晓月呀", ["王晓月呀"]) == ["王晓月呀"]
    assert not find_pii("order O00012345 amount 12345.67 sha 3f10012345678ab")


def _failing_notebook(path):
    params = new_code_cell("orders = ''\nsends = ''\ncolumns = ''\nout_dir = '.'")
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, new_code_cell("print('fine')"), new_code_cell("raise ValueError('boom')")],
                      metadata={"kernelspec": {"name": "crmlab", "display_name": "crmlab", "language": "python"}})
    nbformat.write(nb, str(path))


def test_failing_notebook_exit_code_message_and_latest_kept(small_store, tmp_path, capsys):
    nb = tmp_path / "99_broken.ipynb"
    _failing_notebook(nb)
    root = tmp_path / "reports"
    ok_run = root / "2025-01-01"
    ok_run.mkdir(parents=True)
    (ok_run / "run.json").write_text(json.dumps({"run_at": "2025-01-01", "ok": True, "reports": []}))
    (root / "latest").symlink_to("2025-01-01")
    rc = main(["report", str(nb), "--orders", str(small_store / "orders.csv"), "--out", str(root / "run2")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "99_broken: failed in cell 3" in err and "ValueError: boom" in err
    html = (root / "run2" / "99_broken.html").read_text(encoding="utf-8")
    assert "boom" in html  # the error is shown
    assert (root / "latest").resolve().name == "2025-01-01"
    assert not [p for p in root.iterdir() if ".tmp-" in p.name]  # nothing half-written left behind


def test_bad_input_runs_nothing(tmp_path, capsys):
    p = tmp_path / "orders.csv"
    pd.DataFrame({"customer_id": ["a"]}).to_csv(p, index=False)
    assert main(["report", "--orders", str(p), "--out", str(tmp_path / "out")]) == 2
    assert "missing column" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_parameters_typed_as_papermill_does(tmp_path):
    assert [resolve_type(v) for v in ["True", "None", "3", "0.5", "2025-12-31"]] == [True, None, 3, 0.5, "2025-12-31"]


def test_parameter_file_and_p_override(tmp_path):
    import argparse

    from crmlab.cli.report import read_params as _read_params

    from pathlib import Path

    weekly = Path(__file__).resolve().parent.parent / "notebooks" / "weekly.yaml"
    a = argparse.Namespace(parameters_file=[str(weekly)], param=["window_days=60", "model=None"],
                           observation_end="2025-12-31")
    p = _read_params(a)
    assert p["cohort"] == "week" and p["retention_days"] == [1, 7, 14, 30, 60]
    assert p["window_days"] == 60 and p["model"] is None and p["observation_end"] == "2025-12-31"
    assert p["margin"] == 0.35  # from the file: -p did not name it
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    a.parameters_file = [str(bad)]
    with pytest.raises(Exception, match="expected a mapping"):
        _read_params(a)


def test_html_embeds_the_cjk_glyphs_it_uses(small_report):
    """Chinese text renders on a reader's machine without CJK fonts: the page carries a
    subset of Noto Sans CJK SC with a glyph for every CJK character it shows."""
    import base64
    import io

    from fontTools.ttLib import TTFont

    res, root = small_report
    for f in [res.out / "02_retention_repurchase.html", res.out / "index.html", root / "index.html"]:
        h = f.read_text(encoding="utf-8")
        m = re.search(r"font-family:'crmlab CJK';src:url\(data:font/otf;base64,([A-Za-z0-9+/=]+)\)", h)
        assert m, f.name
        cmap = TTFont(io.BytesIO(base64.b64decode(m.group(1)))).getBestCmap()
        text = re.sub(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=]+", "", h)
        cjk = {c for c in text if 0x2E80 <= ord(c) <= 0x9FFF}
        assert cjk and all(ord(c) in cmap for c in cjk), f.name
