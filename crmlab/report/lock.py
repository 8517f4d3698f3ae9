"""What the runner may write over, and one run at a time per output folder.

The runner never deletes or replaces what it cannot prove it made (:func:`check_out_dir`);
a run holds ``.DIR.lock`` beside its ``DIR`` (``flock``) while it writes; the folders runs
killed outright left beside it are removed by the next run (:func:`_remove_dead_runs`).
"""
from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import re
import shutil
import sys
from pathlib import Path

from crmlab.engine.scratch import alive
from crmlab.report.html import INDEX_MARKER
from crmlab.report.paths import PACKAGE_HOME
from crmlab.schema import CrmlabInputError

__all__ = ["RUN_MARKER", "is_run_dir", "check_out_dir"]


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _warn(msg: str) -> None:
    print(f"crmlab: warning: {msg}", file=sys.stderr, flush=True)


def _expand(out: str) -> Path:
    now = _dt.datetime.now()
    return Path(out.replace("{date}", now.strftime("%Y-%m-%d")).replace("{datetime}", now.strftime("%Y-%m-%d_%H%M")))


# --- what crmlab can prove it made -------------------------------------------------------

#: key in ``run.json`` marking a directory the runner wrote
RUN_MARKER = "crmlab_run"


def _read_run(d: Path) -> dict | None:
    try:
        run = json.loads((d / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return run if isinstance(run, dict) else None


def is_run_dir(d: Path) -> bool:
    """A real directory the runner wrote: its ``run.json`` says ``"crmlab_run": true``."""
    d = Path(d)
    if d.is_symlink() or not d.is_dir():
        return False
    run = _read_run(d)
    return run is not None and run.get(RUN_MARKER) is True


def _is_crmlab_link(link: Path) -> bool:
    """A link crmlab made: it names a sibling (no path) that is a crmlab run, or is gone."""
    if not link.is_symlink():
        return False
    dest = os.readlink(link)
    if not dest or "/" in dest or (os.altsep and os.altsep in dest) or dest in (".", ".."):
        return False
    sibling = link.parent / dest
    return not os.path.lexists(sibling) or is_run_dir(sibling)


def _is_crmlab_index(f: Path) -> bool:
    if f.is_symlink() or not f.is_file():
        return False
    try:
        with open(f, encoding="utf-8", errors="replace") as fh:
            return INDEX_MARKER in fh.read(4096)
    except OSError:
        return False


def check_out_dir(target: Path) -> None:
    """Refuse an output directory the runner might not replace (raises CrmlabInputError).

    Refused: ``/``, the home directory, the current directory, the crmlab checkout, any of
    their parents, any directory holding ``.git`` or ``pyproject.toml``, and any existing
    path that is not a crmlab run directory or a link crmlab made.
    """
    target = Path(target)
    t = target.resolve()
    guarded = {"the file-system root": Path(t.anchor), "your home directory": Path.home().resolve(),
               "the current directory": Path.cwd().resolve(), "the crmlab checkout": PACKAGE_HOME}
    why = None
    for label, g in guarded.items():
        if t == g:
            why = f"it is {label}"
        elif why is None and g.is_relative_to(t):
            why = f"it holds {label}"
    if why is None and t.is_dir():
        marks = [m for m in (".git", "pyproject.toml") if (t / m).exists()]
        if marks:
            why = f"it holds {marks[0]}, a project"
    if why:
        raise CrmlabInputError(f"{target}: refusing to write reports there ({why}); "
                               f"choose a new directory, e.g. --out reports/{{date}}")
    if target.is_symlink():
        if not _is_crmlab_link(target):
            raise CrmlabInputError(f"{target}: is a link crmlab did not make; refusing to replace it "
                                   f"(choose a new --out or remove it yourself)")
    elif os.path.lexists(target) and not is_run_dir(target):
        raise CrmlabInputError(f"{target}: exists and is not a crmlab run directory (no run.json marked "
                               f"{RUN_MARKER}); refusing to replace it (choose a new --out or remove it yourself)")


def _check_writable(target: Path) -> None:
    """Refuse an ``--out`` whose nearest existing parent is not a folder crmlab may write in."""
    p = target.absolute().parent
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    if not p.is_dir():
        raise CrmlabInputError(f"{target}: cannot write reports there ({p} is not a folder)")
    if not os.access(p, os.W_OK | os.X_OK):
        raise CrmlabInputError(f"{target}: cannot write reports there (no permission to write in {p})")


# --- one run at a time per output folder; what dead runs left -----------------------------

def _lock_path(target: Path) -> Path:
    """The lock a run holds while it writes ``target``: ``.NAME.lock`` beside it."""
    return target.parent / f".{target.name}.lock"


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive ``flock`` on ``path`` (made if missing); ``None``
    if another process holds it; ``-1`` where files cannot be locked. OSError if it cannot be made."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return -1
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        fd = os.open(path, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return -1
            raise
        try:  # the holder may have removed the file as we opened it: lock the one at ``path``
            same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
        except OSError:
            same = False
        if same:
            return fd
        os.close(fd)
    return None  # pragma: no cover - the file kept changing under us


def _unlock(path: Path, fd: int | None) -> None:
    """Release a lock of :func:`_try_lock`: the file goes first (while still held)."""
    if fd is None or fd < 0:
        return
    try:
        os.unlink(path)
    except OSError:
        pass
    os.close(fd)


def _lock_run(target: Path) -> int:
    """Hold ``target``'s lock for this run; another live run holding it: CrmlabInputError."""
    path = _lock_path(target)
    try:
        fd = _try_lock(path)
    except OSError as e:
        raise CrmlabInputError(f"{target}: cannot write reports there ({e.strerror or e})") from None
    if fd is None:
        try:
            pid = int(path.read_text(encoding="ascii", errors="replace").strip() or 0)
        except (OSError, ValueError):
            pid = 0
        raise CrmlabInputError(f"{target}: another crmlab run{f' (pid {pid})' if pid else ''} is writing "
                               f"reports there; wait for it to finish or choose another --out")
    if fd >= 0:
        st = os.fstat(fd)
        if st.st_nlink == 1:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    return fd


#: hidden folders a run makes beside its target: ``.NAME.tmp-PID-XXXXXXXX`` while it runs
#: (``.NAME.tmp-XXXXXXXX`` from runners that did not name the pid), ``.NAME.old-PID`` while it
#: replaces a previous run
_RUN_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?:tmp-(?:(?P<pid>\d+)-)?[a-z0-9_]{8}|old-(?P<old>\d+))$")



def _remove_dead_runs(parent: Path, target: Path, locked: bool) -> None:
    """Remove the folders runs killed outright (SIGKILL, power loss) left beside their target:
    they hold copies of the inputs. A folder is a dead run's when no run holds its target's
    lock (else, where files cannot be locked, when its pid is dead); one warning each."""
    for d in sorted(parent.iterdir()):
        m = _RUN_LEFTOVER.match(d.name)
        if not m or d.is_symlink() or not d.is_dir():
            continue
        pid = int(m["pid"] or m["old"] or 0)
        if pid == os.getpid():
            continue
        if m["old"] and not is_run_dir(d):  # what crmlab can prove it made, only
            continue
        if not (m["pid"] or m["old"]) and not any(os.path.lexists(d / x) for x in (".inputs", ".kernel.log")):
            continue
        other, fd = None, (1 if locked else -1)  # this run holds its own target's lock
        if m["name"] != target.name:
            other = _lock_path(parent / m["name"])
            try:
                fd = _try_lock(other)
            except OSError:
                fd = -1
            if fd is None:  # a live run holds it
                continue
        try:
            if fd < 0 and not (pid and not alive(pid)):
                continue  # no lock to ask and no dead pid to prove it dead: left as it is
            try:
                shutil.rmtree(d)
                _warn(f"{d}: removed; an interrupted crmlab run{f' (pid {pid})' if pid else ''} left it"
                      + ("" if m["old"] else " (with copies of its inputs)"))
            except OSError as e:
                _warn(f"{d}: an interrupted crmlab run left it; could not remove it ({e.strerror or e})")
        finally:
            if other is not None:
                _unlock(other, fd)
