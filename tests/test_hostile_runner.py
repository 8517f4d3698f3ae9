"""``crmlab report`` against hostile parameters, parameter files and crashed or concurrent runs.

Every refusal is exit 2, one line ``crmlab: error: ...``, no traceback, and nothing written:
no run folder, nothing outside the run. The parameters the runner sets (inputs, output
folder, engine, reading options, salt) cannot be set with ``-p`` / ``-f``; every other value
is checked by the rule of the flag it mirrors before any notebook runs.
"""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import crmlab.report.runner  # noqa: F401  (imported once, so the timing below is the parameter file's)
from crmlab.cli.main import main
from crmlab.report.runner import _lock_path
from crmlab.simulate.store import write_sample


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hostile_store")
    write_sample(str(d), n_customers=1500, seed=1)
    return d


def _nb(path: Path, body: str = "open('token.txt', 'w').write('ok')") -> Path:
    params = new_code_cell("orders = ''\nsends = ''\ncolumns = ''\nout_dir = '.'\nwindow = 3\n")
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, new_code_cell(body)],
                      metadata={"kernelspec": {"name": "crmlab", "display_name": "crmlab", "language": "python"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _one_error(err: str, *needles: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("crmlab: error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def _refused(capfd, tmp_path, store, args, *needles, notebook="03") -> str:
    """Run ``crmlab report`` and check the refusal: exit 2, one line, nothing written anywhere."""
    out = tmp_path / "reports" / "run"
    before, store_before = _tree(tmp_path), _tree(store)
    capfd.readouterr()
    rc = main(["report", notebook, "--orders", str(store / "orders.csv"), "--sends", str(store / "sends.csv"),
               "--out", str(out), *args])
    err = capfd.readouterr().err
    assert rc == 2, err
    line = _one_error(err, *needles)
    assert not (tmp_path / "reports").exists()  # no run folder, no lock, no temp folder
    assert _tree(tmp_path) == before and _tree(store) == store_before
    return line


# --- the runner's own parameters ------------------------------------------------------------

@pytest.mark.parametrize("param, hint", [
    ("orders=/etc/passwd", "use --orders"),
    ("sends=/etc/passwd", "use --sends"),
    ("out_dir=/tmp/elsewhere", "use --out"),
    ("out_dir=..", "use --out"),
    ("salt=0000", "random"),
    ("columns=customer_id=phone", "use --columns"),
    ("engine=spark", "use --engine"),
    ("timezone=UTC", "use --timezone"),
    ("memory_limit=100GB", "use --memory-limit"),
])
def test_p_cannot_set_what_the_runner_sets(param, hint, store, tmp_path, capfd):
    name = param.split("=", 1)[0]
    _refused(capfd, tmp_path, store, ["-p", param], f"-p {name}: set by the runner", hint)


@pytest.mark.parametrize("text, name", [
    ("orders: /etc/passwd\n", "orders"),
    ("window_days: 30\nout_dir: /tmp/elsewhere\n", "out_dir"),
    ("sends: ../../secret.csv\n", "sends"),
])
def test_parameter_file_cannot_set_what_the_runner_sets(text, name, store, tmp_path, capfd):
    y = tmp_path / "params.yaml"
    y.write_text(text)
    _refused(capfd, tmp_path, store, ["-f", str(y)], f"{y}: {name}: set by the runner")


# --- values: the rules of the flags they mirror, before anything runs -----------------------------

@pytest.mark.parametrize("param, notebook, needle", [
    ("window_days=-5", "03", "expected a whole number >= 1"),       # magic-number --window-days
    ("window_days=100000", "03", "at most"),
    ("window_days=abc", "03", "expected a whole number"),           # a string for a whole number
    ("window_days=2.5", "03", "expected a whole number"),
    ("margin=nan", "04", "finite"),
    ("margin=inf", "04", "finite"),
    ("margin=-inf", "04", "finite"),
    ("margin=0", "04", "> 0"),
    ("margin=None", "04", "cannot be None"),
    ("margin=1.5", "05", "at most 1"),                               # abtest --margin: a share
    ("discount_rate=True", "04", "expected a number"),
    ("cohort=5", "02", "expected one of"),                          # a number for a choice
    ("retention_days=0,7", "02", "days must be >= 1"),
    ("observation_end=yesterday-ish", "03", "expected a date or time"),
    ("alpha=1", "05", "strictly between 0 and 1"),
    ("monitor=maybe", "05", "expected True or False"),
    ("date=not-a-day", "06", "cannot read"),
    ("phases=day=5:1", "06", "starts after it ends"),
    ("currency=x" + "$" * 20, "04", "currency symbol"),
])
def test_bad_values_are_refused_up_front(param, notebook, needle, store, tmp_path, capfd):
    name = param.split("=", 1)[0]
    _refused(capfd, tmp_path, store, ["-p", param], name, needle, notebook=notebook)


def test_bad_value_in_a_parameter_file_names_the_file(store, tmp_path, capfd):
    y = tmp_path / "weekly.yaml"
    y.write_text("window_days: 90\nmargin: .nan\n")
    _refused(capfd, tmp_path, store, ["-f", str(y)], f"{y}: margin", "finite", notebook="04")
    y.write_text("window_days: '90 days'\n")
    _refused(capfd, tmp_path, store, ["-f", str(y)], f"{y}: window_days", "whole number")
    y.write_text("retention_days: [1, seven]\n")
    _refused(capfd, tmp_path, store, ["-f", str(y)], "retention_days", notebook="02")


# --- parameter files: small, plain YAML ---------------------------------------------------------

BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
window_days: *i
"""


def test_yaml_alias_bomb_is_refused_at_once(store, tmp_path, capfd):
    y = tmp_path / "bomb.yaml"
    y.write_text(BOMB)
    t0 = time.perf_counter()
    _refused(capfd, tmp_path, store, ["-f", str(y)], str(y), "aliases")
    assert time.perf_counter() - t0 < 2


@pytest.mark.parametrize("text, needle", [
    ("defaults: &d {window_days: 30}\nwindow_days: 60\n", "anchors"),        # an anchor, never used
    ("base: &b 30\nwindow_days: *b\n", "anchors"),
    ("window_days: 30\n<<: *missing\n", "aliases"),                         # merge key of an alias
    ("x: " + "[" * 50 + "1" + "]" * 50 + "\n", "nested"),
    ("x: [" + ", ".join(["1"] * 20_000) + "]\n", "values"),
    ("window_days: !!python/object/apply:os.system ['touch pwned']\n", "not valid YAML"),
    ("- a\n- list\n", "expected a mapping"),
    ("1: 2\n", "not a parameter name"),
    ("window_days: 30\n---\nmax_k: 3\n", "not valid YAML"),
    ("window_days: 1" + "0" * 5000 + "\n", str()),  # an int of 5,000 digits
])
def test_hostile_yaml_is_one_line(text, needle, store, tmp_path, capfd):
    y = tmp_path / "p.yaml"
    y.write_text(text)
    _refused(capfd, tmp_path, store, ["-f", str(y)], str(y), needle)
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_oversized_parameter_file_is_refused_unread(store, tmp_path, capfd):
    y = tmp_path / "big.yaml"
    y.write_text("window_days: 30\n" + "# padding\n" * 110_000)
    assert y.stat().st_size > 1_000_000
    t0 = time.perf_counter()
    _refused(capfd, tmp_path, store, ["-f", str(y)], str(y), "too big")
    assert time.perf_counter() - t0 < 2


def test_parameter_file_that_is_not_a_file(store, tmp_path, capfd):
    _refused(capfd, tmp_path, store, ["-f", "/dev/zero"], "/dev/zero", "not a regular file")
    _refused(capfd, tmp_path, store, ["-f", str(tmp_path)], str(tmp_path))


# --- one run per output folder; what killed runs leave ------------------------------------------

def test_second_run_into_the_same_out_is_refused(store, tmp_path, capfd):
    nb = _nb(tmp_path / "nbs" / "01_fake.ipynb")
    root = tmp_path / "reports"
    out = root / "run"
    root.mkdir()
    lock = _lock_path(out)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)  # another run holds it
    os.write(fd, b"4242\n")
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        capfd.readouterr()
        rc = main(["report", str(nb), "--orders", str(store / "orders.csv"), "--out", str(out)])
        err = capfd.readouterr().err
        assert rc == 2, err
        _one_error(err, str(out), "another crmlab run (pid 4242)")
        assert sorted(p.name for p in root.iterdir()) == [lock.name]  # no temp folder, nothing placed
        assert lock.read_text() == "4242\n"  # the other run's lock is left alone
    finally:
        os.close(fd)
    # once it is released, the run goes ahead and leaves no lock behind
    assert main(["report", str(nb), "--orders", str(store / "orders.csv"), "--out", str(out)]) == 0
    assert (out / "token.txt").read_text() == "ok"
    assert not [p.name for p in root.iterdir() if p.name.startswith(".")]


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_stale_temp_folder_of_a_dead_run_is_removed_with_a_warning(store, tmp_path, capfd):
    nb = _nb(tmp_path / "nbs" / "01_fake.ipynb")
    root = tmp_path / "reports"
    pid = _dead_pid()
    stale = root / f".run.tmp-{pid}-abcd1234"
    (stale / ".inputs").mkdir(parents=True)
    (stale / ".inputs" / "orders.clean.parquet").write_text("customer_id\nalice\n")
    other_stale = root / f".2025-01-01.tmp-{pid}-zzzz9999"  # a dead run into another folder
    (other_stale / ".inputs").mkdir(parents=True)
    live = root / f".other.tmp-{os.getppid()}-live0000"  # a live run into another folder: its lock is held
    (live / ".inputs").mkdir(parents=True)
    fd = os.open(_lock_path(root / "other"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        capfd.readouterr()
        assert main(["report", str(nb), "--orders", str(store / "orders.csv"), "--out", str(root / "run")]) == 0
        err = capfd.readouterr().err
    finally:
        os.close(fd)
    warnings = [x for x in err.splitlines() if x.startswith("crmlab: warning: ")]
    assert len(warnings) == 2, err
    assert any(str(stale) in w and f"pid {pid}" in w for w in warnings), warnings
    assert any(str(other_stale) in w for w in warnings), warnings
    assert "Traceback" not in err
    assert not stale.exists() and not other_stale.exists()
    assert live.exists()  # never a live run's folder
    assert not list((root / "run").rglob(".inputs")) and (root / "run" / "token.txt").exists()


def test_sigkilled_run_leaves_no_inputs_after_the_next_run(store, tmp_path, capfd):
    slow = _nb(tmp_path / "nbs" / "01_slow.ipynb", "open('started', 'w').write('x')\nimport time\ntime.sleep(120)")
    root = tmp_path / "reports"
    root.mkdir()
    args = ["report", str(slow), "--orders", str(store / "orders.csv"), "--sends", str(store / "sends.csv"),
            "--out", str(root / "run")]
    p = subprocess.Popen([sys.executable, "-m", "crmlab.cli.main", *args], stderr=subprocess.PIPE, text=True,
                         cwd=str(tmp_path), start_new_session=True)
    try:
        deadline = time.time() + 120
        while not list(root.glob(".run.tmp-*/started")):
            assert p.poll() is None and time.time() < deadline, p.stderr.read() if p.poll() is not None else ""
            time.sleep(0.2)
        left = list(root.glob(".run.tmp-*"))
        assert len(left) == 1 and list(left[0].glob(".inputs/*"))  # the copies a killed run leaves
        # a second run while this one is alive is refused, and does not touch its folder
        capfd.readouterr()
        assert main(args) == 2
        _one_error(capfd.readouterr().err, str(root / "run"), "another crmlab run")
        assert left[0].exists()
        os.killpg(p.pid, signal.SIGKILL)  # the run and its kernel
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert left[0].exists()  # SIGKILL: nothing could clean up
    _nb(slow)  # the same notebook, now quick
    capfd.readouterr()
    assert main(args) == 0
    err = capfd.readouterr().err
    warnings = [x for x in err.splitlines() if x.startswith("crmlab: warning: ")]
    assert len(warnings) == 1 and str(left[0]) in warnings[0], err
    assert not left[0].exists() and not list(root.rglob(".inputs"))
    assert not [x.name for x in root.iterdir() if x.name.startswith(".")]


# --- where the run cannot be written ------------------------------------------------------------

def test_out_under_a_regular_file_is_one_line(store, tmp_path, capfd):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    out = f / "reports" / "run"
    before = _tree(tmp_path)
    rc = main(["report", "03", "--orders", str(store / "orders.csv"), "--out", str(out)])
    err = capfd.readouterr().err
    assert rc == 2, err
    _one_error(err, str(out), "not a folder")
    assert f.read_text() == "mine" and _tree(tmp_path) == before


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes in a read-only folder")
def test_out_in_a_read_only_folder_is_one_line(store, tmp_path, capfd):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc = main(["report", "03", "--orders", str(store / "orders.csv"), "--out", str(ro / "run")])
        err = capfd.readouterr().err
        assert rc == 2, err
        _one_error(err, str(ro / "run"), "no permission")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_good_parameters_still_run(store, tmp_path, capfd):
    """The checks refuse only what the flags refuse: the weekly file's kind of values run."""
    nb = _nb(tmp_path / "nbs" / "01_fake.ipynb", "open('token.txt', 'w').write(repr(window))")
    y = tmp_path / "p.yaml"
    y.write_text("window: 5  # a parameter crmlab has no rule for: plain values\n")
    out = tmp_path / "reports" / "run"
    assert main(["report", str(nb), "--orders", str(store / "orders.csv"), "--out", str(out), "-f", str(y)]) == 0
    assert (out / "token.txt").read_text() == "5"
    capfd.readouterr()
    assert main(["report", str(nb), "--orders", str(store / "orders.csv"), "--out", str(out),
                 "-p", "window=nan"]) == 2
    _one_error(capfd.readouterr().err, "-p window", "finite")
