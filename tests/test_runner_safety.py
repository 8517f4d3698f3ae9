"""The report runner never deletes or replaces what it did not make; skips notebooks whose
inputs are absent; leaves no personal data and no local path in any artefact of a run.

Runner mechanics use tiny parametrised notebooks (a second or two each); real notebooks
only where the behaviour is theirs (05's needs, phone-shaped ids, paths in the parameters).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from crmlab.cli.main import main
from crmlab.privacy import PHONE_PATTERN, find_pii, mask_id, mask_ids
from crmlab.report.runner import INDEX_MARKER, RUN_MARKER

REPO = Path(__file__).resolve().parent.parent


def _nb(path: Path, body: str = "print('fine')", extra: str = "") -> Path:
    params = new_code_cell("orders = ''\nsends = ''\ncolumns = ''\nout_dir = '.'\nwindow = 3\n" + extra)
    params.metadata["tags"] = ["parameters"]
    cells = [params] + [new_code_cell(b) for b in ([body] if isinstance(body, str) else body)]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "crmlab", "display_name": "crmlab",
                                                            "language": "python"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def _one_error(err: str, *needles: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("crmlab: error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def _hidden(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


@pytest.fixture
def fake(tmp_path):
    """A notebook that records it ran (a file outside the run) and writes a token."""
    ran = tmp_path / "ran"
    return _nb(tmp_path / "nbs" / "01_fake.ipynb",
               f"open({str(ran)!r}, 'a').write('x')\nopen('token.txt', 'w').write(str(window))"), ran


def _report(nb, orders, out, *more) -> int:
    return main(["report", str(nb), "--orders", str(orders), "--out", str(out), *more])


# --- never delete or replace what crmlab did not make ------------------------------------------

def test_existing_dir_that_is_not_a_run_is_refused_before_running(fake, small_store, tmp_path, capfd):
    nb, ran = fake
    out = tmp_path / "reports" / "mine"
    out.mkdir(parents=True)
    (out / "thesis.docx").write_text("years of work")
    (out / "run.json").write_text(json.dumps({"reports": []}))  # a run.json without crmlab's marker
    assert _report(nb, small_store / "orders.csv", out) == 2
    _one_error(capfd.readouterr().err, str(out), "not a crmlab run")
    assert (out / "thesis.docx").read_text() == "years of work"
    assert not ran.exists() and _hidden(out.parent) == []


def test_foreign_link_or_file_as_out_is_refused(fake, small_store, tmp_path, capfd):
    nb, ran = fake
    root = tmp_path / "reports"
    (root / "photos").mkdir(parents=True)
    (root / "link").symlink_to("photos")
    (root / "file").write_text("data")
    for out in (root / "link", root / "file"):
        assert _report(nb, small_store / "orders.csv", out) == 2
        _one_error(capfd.readouterr().err, str(out))
    assert (root / "link").is_symlink() and (root / "file").read_text() == "data" and not ran.exists()


@pytest.mark.parametrize("where", ["dot", "repo", "home", "root", "git", "pyproject"])
def test_project_home_root_and_cwd_are_refused(where, fake, small_store, tmp_path, capfd, monkeypatch):
    nb, ran = fake
    work = tmp_path / "work"
    work.mkdir()
    marked = json.dumps({RUN_MARKER: True, "ok": True, "reports": []})
    (work / "run.json").write_text(marked)  # even a crmlab-marked dir is refused here
    out = {"dot": ".", "repo": str(REPO), "home": str(Path.home()), "root": "/", "git": str(work),
           "pyproject": str(work)}[where]
    if where == "dot":
        monkeypatch.chdir(work)
    if where == "git":
        (work / ".git").mkdir()
    if where == "pyproject":
        (work / "pyproject.toml").write_text("[project]\n")
    before = sorted(os.listdir(out))
    assert _report(nb, small_store / "orders.csv", out) == 2
    _one_error(capfd.readouterr().err, f"{out}: refusing")
    assert sorted(os.listdir(out)) == before and not ran.exists()


def test_a_crmlab_run_dir_is_replaced_only_by_a_successful_run(fake, small_store, tmp_path, capfd):
    nb, _ = fake
    root = tmp_path / "reports"
    out = root / "weekly"
    assert _report(nb, small_store / "orders.csv", out, "-p", "window=5") == 0
    run = json.loads((out / "run.json").read_text())
    assert run[RUN_MARKER] is True and (out / "token.txt").read_text() == "5"
    assert _report(nb, small_store / "orders.csv", out, "-p", "window=7") == 0  # a crmlab run: replaced
    assert (out / "token.txt").read_text() == "7"
    assert (root / "latest").resolve() == out.resolve() and _hidden(root) == []

    broken = _nb(tmp_path / "nbs" / "01_fake.ipynb", "raise ValueError('boom')")
    capfd.readouterr()
    assert _report(broken, small_store / "orders.csv", out, "-p", "window=9") == 1
    err = capfd.readouterr().err
    assert "crmlab: error: 01_fake: failed in cell" in err and "Traceback" not in err
    assert (out / "token.txt").read_text() == "7" and json.loads((out / "run.json").read_text())["ok"] is True
    failed = [p for p in root.iterdir() if p.name.startswith("weekly.failed-")]
    assert len(failed) == 1 and len(failed[0].name) == len("weekly.failed-HHMMSS")
    assert "boom" in (failed[0] / "01_fake.html").read_text(encoding="utf-8")
    assert json.loads((failed[0] / "run.json").read_text())["reports"][0]["status"] == "failed"
    assert (root / "latest").resolve() == out.resolve() and _hidden(root) == []


def test_failed_run_does_not_replace_good_run_behind_latest_link(fake, small_store, tmp_path, capfd):
    nb, _ = fake
    root = tmp_path / "reports"
    assert _report(nb, small_store / "orders.csv", root / "2025-01-06") == 0
    broken = _nb(tmp_path / "nbs" / "01_fake.ipynb", "raise ValueError('boom')")
    assert _report(broken, small_store / "orders.csv", root / "latest") == 1  # --out reports/latest
    assert (root / "latest").is_symlink() and (root / "latest").resolve().name == "2025-01-06"
    assert [p.name for p in root.iterdir() if p.name.startswith("latest.failed-")]


def test_real_latest_folder_and_foreign_index_are_never_touched(fake, small_store, tmp_path, capfd):
    nb, _ = fake
    root = tmp_path / "reports"
    (root / "latest").mkdir(parents=True)
    (root / "latest" / "notes.txt").write_text("mine")
    (root / "index.html").write_text("<html>my own page</html>")
    assert _report(nb, small_store / "orders.csv", root / "run1") == 0
    err = capfd.readouterr().err
    assert (root / "latest" / "notes.txt").read_text() == "mine" and not (root / "latest").is_symlink()
    assert (root / "index.html").read_text() == "<html>my own page</html>"
    warnings = [x for x in err.splitlines() if x.startswith("crmlab: warning: ")]
    assert len(warnings) == 2 and any("latest" in w for w in warnings) and any("index.html" in w for w in warnings)
    assert "Traceback" not in err and (root / "run1" / "index.html").exists()


def test_links_and_pages_crmlab_made_are_updated(fake, small_store, tmp_path, capfd):
    nb, _ = fake
    root = tmp_path / "reports"
    assert _report(nb, small_store / "orders.csv", root / "a") == 0
    assert INDEX_MARKER in (root / "index.html").read_text(encoding="utf-8")
    assert INDEX_MARKER in (root / "a" / "index.html").read_text(encoding="utf-8")
    assert _report(nb, small_store / "orders.csv", root / "b") == 0
    assert os.readlink(root / "latest") == "b"
    page = (root / "index.html").read_text(encoding="utf-8")
    assert "a/index.html" in page and "b/index.html" in page
    assert "crmlab: warning" not in capfd.readouterr().err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_run_removes_the_temp_dir(sig, small_store, tmp_path):
    nb = _nb(tmp_path / "nbs" / "01_slow.ipynb", "open('started', 'w').write('x')\nimport time\ntime.sleep(120)")
    root = tmp_path / "reports"
    root.mkdir()
    p = subprocess.Popen([sys.executable, "-m", "crmlab.cli.main", "report", str(nb), "--orders",
                          str(small_store / "orders.csv"), "--out", str(root / "run")],
                         stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
    try:
        deadline = time.time() + 90
        while not list(root.glob(".run.tmp-*/started")):
            assert p.poll() is None and time.time() < deadline, p.stderr.read() if p.poll() is not None else ""
            time.sleep(0.2)
        p.send_signal(sig)
        rc = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    err = p.stderr.read()
    assert rc == 128 + sig, err
    assert "Traceback" not in err, err
    assert list(root.iterdir()) == []


# --- skip what lacks its inputs -------------------------------------------------------------

def test_notebook_without_its_inputs_is_skipped_and_latest_moves(small_store, tmp_path, capfd):
    root = tmp_path / "reports"
    a = _nb(tmp_path / "nbs" / "01_a.ipynb")
    b = _nb(tmp_path / "nbs" / "02_b.ipynb", "assert sends", extra="requires = ['sends']")  # declared need
    assert main(["report", str(a), str(b), "05", "--orders", str(small_store / "orders.csv"),
                 "--out", str(root / "run")]) == 0
    err = capfd.readouterr().err
    assert "crmlab: error" not in err
    run = json.loads((root / "run" / "run.json").read_text())
    st = {r["name"]: (r["status"], r.get("reason"), r["ok"]) for r in run["reports"]}
    assert st == {"01_a": ("ok", None, True),
                  "02_b": ("skipped", "no SMS send log given (--sends)", False),
                  "05_sms_ab_test": ("skipped", "no SMS send log given (--sends)", False)}
    assert run["ok"] is True and not (root / "run" / "05_sms_ab_test.html").exists()
    index = (root / "run" / "index.html").read_text(encoding="utf-8")
    assert "skipped" in index and "no SMS send log given (--sends)" in index
    assert (root / "latest").resolve() == (root / "run").resolve()


# --- the kernel, parameters, parameter files ---------------------------------------------------

def test_kernel_runs_over_ipc_without_the_tcp_warning(small_store, tmp_path, capfd):
    nb = _nb(tmp_path / "nbs" / "01_transport.ipynb",
             "import json\nfrom ipykernel import get_connection_info\n"
             "open('transport.txt', 'w').write(json.loads(get_connection_info())['transport'])")
    out = tmp_path / "reports" / "run"
    assert _report(nb, small_store / "orders.csv", out) == 0
    err = capfd.readouterr().err
    assert "without encryption" not in err and "01_transport ok" in err
    assert (out / "transport.txt").read_text() == "ipc"


def test_unknown_parameter_is_refused_with_the_known_ones(fake, small_store, tmp_path, capfd):
    nb, ran = fake
    out = tmp_path / "reports" / "run"
    assert _report(nb, small_store / "orders.csv", out, "-p", "windw=3") == 2
    _one_error(capfd.readouterr().err, "'windw'", "window", "orders", "01_fake")
    # a parameter of a notebook that is not selected (05 has window_hours, 01 does not)
    assert main(["report", "01", "--orders", str(small_store / "orders.csv"), "--out", str(out),
                 "-p", "window_hours=24"]) == 2
    _one_error(capfd.readouterr().err, "'window_hours'", "01_store_overview", "observation_end")
    y = tmp_path / "p.yaml"
    y.write_text("windw: 3\n")
    assert _report(nb, small_store / "orders.csv", out, "-f", str(y)) == 2
    _one_error(capfd.readouterr().err, "'windw'")
    assert not ran.exists() and not out.exists()


def test_non_utf8_parameter_file_is_one_line_error(fake, small_store, tmp_path, capfd):
    nb, ran = fake
    y = tmp_path / "weekly_gbk.yaml"
    y.write_bytes("# 每周参数\nwindow: 3\n".encode("gbk"))
    assert _report(nb, small_store / "orders.csv", tmp_path / "out", "-f", str(y)) == 2
    _one_error(capfd.readouterr().err, str(y), "UTF-8")
    assert not ran.exists() and not (tmp_path / "out").exists()


# --- personal data and local paths -----------------------------------------------------------

def _artefacts(d: Path):
    return [f for f in d.rglob("*") if f.is_file()]


def test_phone_in_notebook_outputs_fails_the_report_and_leaves_nothing(small_store, tmp_path, capfd):
    # the HTML shows only the text/html part; the executed .ipynb keeps text/plain too
    body = ["from IPython.display import display\n"
            "display({'text/plain': 'customer 13812345678', 'text/html': '<b>customer</b>'}, raw=True)",
            "import pandas as pd\npd.DataFrame({'customer_id': ['13912345678']}).to_csv('call_list.csv')"]
    nb = _nb(tmp_path / "nbs" / "01_leaky.ipynb", body)
    ok = _nb(tmp_path / "nbs" / "02_fine.ipynb")
    root = tmp_path / "reports"
    assert main(["report", str(nb), str(ok), "--orders", str(small_store / "orders.csv"),
                 "--out", str(root / "run")]) == 1
    err = capfd.readouterr().err
    assert "crmlab: error: 01_leaky: the report shows personal data" in err and "13812345678" not in err
    run = root / "run"
    for f in _artefacts(root):
        assert find_pii(f.read_text(encoding="utf-8", errors="replace")) == [], f
    assert "personal data" in (run / "01_leaky.html").read_text(encoding="utf-8")
    assert not (run / "call_list.csv").exists()
    if (run / "01_leaky.ipynb").exists():  # kept only as a copy without outputs
        kept = nbformat.read(str(run / "01_leaky.ipynb"), as_version=4)
        assert all(not c.get("outputs") for c in kept.cells)
    statuses = {r["name"]: r["status"] for r in json.loads((run / "run.json").read_text())["reports"]}
    assert statuses == {"01_leaky": "failed", "02_fine": "ok"}


@pytest.fixture(scope="module")
def phone_id_run(small_store, tmp_path_factory):
    """Notebooks 01 and 02 on the small store with phone-shaped customer ids."""
    d = tmp_path_factory.mktemp("phone ids")
    orders = pd.read_csv(small_store / "orders.csv", dtype=str, keep_default_na=False)
    ids = {c: f"138{i:08d}" for i, c in enumerate(sorted(set(orders["customer_id"])))}
    orders["customer_id"] = orders["customer_id"].map(ids)
    orders.to_csv(d / "orders.csv", index=False)
    root = d / "reports"
    rc = main(["report", "01", "02", "--orders", str(d / "orders.csv"), "--out", str(root / "run")])
    return rc, d, root


def test_phone_shaped_customer_ids_leave_no_trace_in_any_artefact(phone_id_run):
    """Issue 23 (left from 22): the ledger's notice makes the notebooks mask the ids in the lists
    they write (``mask_ids``), so 02 runs instead of being withheld for personal data."""
    rc, _, root = phone_id_run
    assert rc == 0
    assert PHONE_PATTERN.search("13800000001")
    for f in _artefacts(root):
        assert find_pii(f.read_text(encoding="utf-8", errors="replace")) == [], f
    run = json.loads((root / "run" / "run.json").read_text())
    st = {r["name"]: r for r in run["reports"]}
    assert st["02_retention_repurchase"]["status"] == "ok" and st["02_retention_repurchase"]["error"] is None
    assert (root / "run" / "wakeup_list.csv").is_file()  # written, with masked ids


def test_no_absolute_local_path_in_any_artefact(phone_id_run, small_store, tmp_path, capfd):
    _, d, root = phone_id_run
    html = (root / "run" / "01_store_overview.html").read_text(encoding="utf-8")
    assert "orders.csv" in html  # the parameters table names the input, relative to the run
    # a failing notebook whose traceback and output name local directories
    nb = _nb(tmp_path / "nbs" / "01_paths.ipynb",
             ["import os\nprint(os.getcwd(), os.path.realpath(orders))", "open(os.path.abspath('nope.csv'))"])
    out = tmp_path / "reports" / "run"
    assert _report(nb, small_store / "orders.csv", out) == 1
    errors = [x for x in capfd.readouterr().err.splitlines() if x.startswith("crmlab: error: ")]
    assert errors and all(str(tmp_path) not in x for x in errors)
    for base, files in ((d, _artefacts(root)), (tmp_path, _artefacts(out))):
        for f in files:
            text = f.read_text(encoding="utf-8", errors="replace")
            for local in {str(base), str(base.resolve()), str(Path.home()), str(REPO)}:
                assert local not in text, (f, local)
    assert "FileNotFoundError" in (out / "01_paths.html").read_text(encoding="utf-8")


def test_mask_id_is_stable_salted_and_never_phone_shaped():
    a = mask_id("13812345678", "run-1")
    assert a == mask_id("13812345678", "run-1") != mask_id("13812345678", "run-2")
    assert a != mask_id("13812345679", "run-1") and find_pii(a) == [] and "1381234" not in a
    s = pd.Series(["13812345678", "alice", "13812345678", None])
    m = mask_ids(s, "run-1")
    assert m.iloc[0] == m.iloc[2] == a and m.iloc[1] == mask_id("alice", "run-1") and pd.isna(m.iloc[3])
    assert find_pii(" ".join(m.dropna())) == []


def test_relative_out_as_make_report_writes_it(small_store, tmp_path, monkeypatch):
    """`make report` passes a relative --out ('reports/{date}'): papermill changes the working
    folder while a notebook runs, so every path the runner keeps must be absolute."""
    from crmlab.cli.main import main

    monkeypatch.chdir(tmp_path)
    rc = main(["report", "01", "--orders", str(small_store / "orders.csv"), "--out", "reports/{date}"])
    assert rc == 0
    runs = [d for d in (tmp_path / "reports").iterdir() if d.is_dir() and not d.is_symlink()]
    assert len(runs) == 1 and (runs[0] / "01_store_overview.html").exists()
    assert (tmp_path / "reports" / "latest").is_symlink()
