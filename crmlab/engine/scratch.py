"""Scratch space of a crmlab process: gone when the process ends, even when it was killed.

DuckDB's spill folder, the screened lines staged as Parquet when they would take more than
:data:`crmlab.ingest.export.LINES_MEMORY_SHARE` of DuckDB's memory limit, and Spark's start-up log live in the
system's temporary folder under ``crmlab-<kind>-<pid>-<random>``. Each is removed when the
process exits (also on SIGTERM, which :func:`exit_on_terminate` turns into a normal exit);
what a process killed outright (SIGKILL, a lost machine) left behind is removed by the next
crmlab process that makes scratch space of the same kind, once no process of that pid runs.
Names carry a tag of the machine and pid namespace: a temporary folder shared by containers
or machines holds pids that mean other processes, so only this namespace's are swept. Folders
on a shared stage folder (``CRMLAB_STAGE_DIR``) are never swept.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["scratch_path", "alive", "sweep", "exit_on_terminate", "remove_at_exit", "keep"]

_NAME = re.compile(r"crmlab-(?P<kind>[a-z]+)-(?P<pid>\d+)-(?P<where>[0-9a-f]{8})-")


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


#: this machine and pid namespace: a pid is only checked where it means the same process (a
#: temporary folder shared by containers or machines holds other namespaces' live pids)
_WHERE = hashlib.blake2b(f"{socket.gethostname()}|{_pid_namespace()}".encode(), digest_size=4).hexdigest()
#: a folder of the former layout is swept only when this old (its owner cannot be checked)
_OLD_AGE = 24 * 3600
#: the spill folders' former home (one folder per process inside it)
_OLD_SPILL = "crmlab-duckdb-spill"


def alive(pid: int) -> bool:
    """Whether a process with this pid runs (a pid of another user's process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except (OverflowError, ValueError):  # not a pid
        return False
    return True


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.remove(path)
        except OSError:
            pass


#: what this process removes when it exits
_OWNED: set[str] = set()


def _remove_owned() -> None:
    for path in list(_OWNED):
        _remove(path)


atexit.register(_remove_owned)


def remove_at_exit(path: str) -> str:
    """``path`` (a file or folder) removed when this process exits; returns it."""
    _OWNED.add(path)
    return path


def keep(path: str) -> str:
    """``path`` stays after this process (e.g. a log an error message names), under a name no
    sweep matches; returns its path."""
    _OWNED.discard(path)
    kept = os.path.join(os.path.dirname(path), "kept-" + os.path.basename(path))
    try:
        os.replace(path, kept)
    except OSError:
        return path
    return kept


def sweep(kind: str, directory: str | None = None) -> int:
    """Remove the scratch space of ``kind`` left by processes that no longer run; returns how
    many entries went."""
    base = Path(directory or tempfile.gettempdir())
    gone = 0
    candidates = list(base.glob(f"crmlab-{kind}-*"))
    if kind == "spill" and (base / _OLD_SPILL).is_dir():
        candidates += [p for p in (base / _OLD_SPILL).iterdir() if p.name.split("-")[0].isdigit()]
    for p in candidates:
        m = _NAME.match(p.name)
        if m and m.group("where") == _WHERE:  # ours: gone when its process is
            dead = int(m.group("pid")) != os.getpid() and not alive(int(m.group("pid")))
        elif p.parent.name == _OLD_SPILL:  # the former layout: by age
            dead = time.time() - p.stat().st_mtime > _OLD_AGE
        else:  # another machine's or container's (or not crmlab's): never
            dead = False
        if dead:
            _remove(str(p))
            gone += 1
    try:
        (base / _OLD_SPILL).rmdir()  # empty now: the old layout is gone
    except OSError:
        pass
    return gone


def scratch_path(kind: str, suffix: str = "", create: bool = False) -> str:
    """A new path ``<tmp>/crmlab-<kind>-<pid>-<random><suffix>`` of this process, removed at
    exit (made as a folder when ``create``; else left for its user to make, e.g. DuckDB makes
    its spill folder only when it spills). Sweeps what dead processes left of ``kind`` first."""
    sweep(kind)
    path = tempfile.mkdtemp(prefix=f"crmlab-{kind}-{os.getpid()}-{_WHERE}-", suffix=suffix)
    if not create:
        os.rmdir(path)  # the name is this process's (pid and random part): its user makes it
    return remove_at_exit(path)


def exit_on_terminate() -> None:
    """SIGTERM ends the process as an exit (status 143), so the clean-up at exit runs (the
    default action would kill it and leave its scratch space behind). Main thread only."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        def handler(signum, frame):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, handler)
