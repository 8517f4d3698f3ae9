"""Scratch space never outlives its process: removed at exit, on SIGTERM, and swept after a kill."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

from crmlab.engine.scratch import alive, keep, scratch_path, sweep

_MAKE = """
import os, sys, time
from crmlab.engine.scratch import scratch_path, exit_on_terminate
exit_on_terminate()
d = scratch_path("stage", create=True)
open(os.path.join(d, "part.parquet"), "w").write("x")
print(d, flush=True)
time.sleep(float(sys.argv[1]))
"""


def _start(seconds: float, env: dict) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen([sys.executable, "-c", _MAKE, str(seconds)], stdout=subprocess.PIPE, text=True, env=env)
    return p, p.stdout.readline().strip()


def test_removed_at_exit_on_sigterm_and_swept_after_a_kill(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    p, d = _start(0, env)
    assert p.wait(30) == 0 and d.startswith(str(tmp_path)) and not os.path.exists(d)  # a normal exit
    p, d = _start(60, env)
    assert os.path.isfile(os.path.join(d, "part.parquet"))
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 143 and not os.path.exists(d)  # terminated: cleaned up all the same
    p, d = _start(60, env)
    p.kill()  # SIGKILL: nothing of it runs; the next process of the same kind sweeps its folder
    p.wait(30)
    assert os.path.isdir(d) and not alive(p.pid)
    tempfile.tempdir = None
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp_path)
    try:
        tempfile.tempdir = None
        mine = scratch_path("stage", create=True)  # a live process's own space is never swept
        assert sweep("stage") == 0 and os.path.isdir(mine)
        assert not os.path.exists(d)
    finally:
        os.environ.pop("TMPDIR") if old is None else os.environ.__setitem__("TMPDIR", old)
        tempfile.tempdir = None


def test_a_spill_folder_is_made_only_when_duckdb_spills(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    old = tmp_path / "crmlab-duckdb-spill" / "999999999-abc"  # the former layout, two days old
    old.mkdir(parents=True)
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    other = tmp_path / "crmlab-spill-999999999-0badc0de-x"  # another container's: its pid means nothing here
    other.mkdir()
    path = scratch_path("spill")
    assert not os.path.exists(path) and os.path.basename(path).startswith(f"crmlab-spill-{os.getpid()}-")
    assert not (tmp_path / "crmlab-duckdb-spill").exists()  # swept, and the old folder with it
    assert other.is_dir()  # never swept


def test_a_kept_log_survives_the_next_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    log = scratch_path("spark", ".log")
    open(log, "w").write("Java says no")
    kept = keep(log)
    assert os.path.isfile(kept) and not os.path.exists(log)
    sweep("spark")
    assert open(kept).read() == "Java says no"
