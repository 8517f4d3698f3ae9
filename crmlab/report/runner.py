"""The report runner: validate inputs, run notebooks with papermill, export HTML, index runs.

A run is built in a hidden temporary directory next to the target and moved into place
only when complete, so ``DIR`` is never half-written; an interrupted run (SIGINT/SIGTERM)
removes it. With ``--out reports/{date}`` the run date is expanded; after a successful run
``reports/latest`` is pointed at it and ``reports/index.html`` lists past runs side by side.

The runner never deletes or replaces what it cannot prove it made: ``DIR`` must be new or a
crmlab run (``run.json`` with ``"crmlab_run": true``), ``latest`` is moved only if it is a
link crmlab made, ``index.html`` is rewritten only if it carries crmlab's generator tag;
otherwise it refuses (``DIR``) or warns and leaves them. A failed run does not replace a
good one: it is kept beside it as ``DIR.failed-HHMMSS``. Every artefact of a run is scanned
for phone-shaped strings and local paths are scrubbed from the notebooks and HTML.

One run at a time writes ``DIR``: it holds ``.DIR.lock`` beside it (``flock``) while it runs;
a second run into the same ``DIR`` is refused. A run killed outright (SIGKILL) cannot clean
up: its ``.DIR.tmp-PID-*`` folder (with the copies of the inputs in ``.inputs/``) is removed,
with a warning, by the next run beside it, once no run holds that folder's lock. The
parameters the runner sets (inputs, ``out_dir``, engine, reading options, salt) cannot be set
with ``-p`` / ``-f``; every other value is checked first (:mod:`crmlab.report.parameters`).

Exit codes (CLI): 0 all reports ran; 1 a notebook failed (its HTML shows the error);
2 bad input or arguments (one line on stderr, nothing run).
"""
from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import re
import shutil
import sys
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Mapping, Sequence

from crmlab._version import __version__
from crmlab.engine import connect
from crmlab.ingest.export import load_export
from crmlab.ingest.readers import CrmlabInputError, load_sends, parse_columns
from crmlab.present.formatting import CURRENCY_ENV
from crmlab.privacy import SALT_ENV, find_pii, redact, scrub_paths
from crmlab.report.parameters import check_parameters
from crmlab.report.html import (INDEX_MARKER, Nav, embed_cjk_font, history_page, index_page, notebook_title,
                                notice_page, period_text, report_description, to_html)

__all__ = ["NOTEBOOK_DIR", "ReportResult", "RunResult", "list_notebooks", "run_reports", "to_html",
           "embed_cjk_font", "resolve_type", "check_out_dir", "is_run_dir", "notebook_parameters",
           "notebook_requires", "REQUIRES", "INDEX_MARKER", "RUN_MARKER"]

NOTEBOOK_DIR = Path(__file__).resolve().parent / "notebooks"
KERNEL = "crmlab"


@dataclass
class ReportResult:
    name: str
    ok: bool
    seconds: float
    error: str | None = None
    headlines: dict = field(default_factory=dict)
    status: str = "ok"  # "ok", "failed" or "skipped" (then ``reason`` says why)
    reason: str | None = None


@dataclass
class RunResult:
    out: Path
    reports: list[ReportResult]

    @property
    def ok(self) -> bool:
        """No report failed (skipped ones do not count)."""
        return not any(r.status == "failed" for r in self.reports)


def resolve_type(value: str):
    """Type a ``-p name=value`` string as papermill's CLI does (bool, None, int, float, str)."""
    if value in ("True", "true"):
        return True
    if value in ("False", "false"):
        return False
    if value in ("None", "none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def list_notebooks(names: Sequence[str] | None = None, directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks, or those named (``02``, ``02_retention_repurchase`` or a path).

    ``00_*`` notebooks (the quick-start) are for reading in JupyterLab, not reports: never run."""
    all_nb = sorted(p for p in Path(directory).glob("[0-9][0-9]_*.ipynb") if not p.name.startswith("00_"))
    if not names:
        return all_nb
    out = []
    for n in names:
        p = Path(n)
        if p.suffix == ".ipynb" and p.exists():
            out.append(p.resolve())
            continue
        hits = [q for q in all_nb if q.stem == n or q.stem.startswith(n)]
        if not hits:
            raise CrmlabInputError(f"no notebook named {n!r} (have: {', '.join(q.stem for q in all_nb)})")
        out.extend(hits)
    return out


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
               "the current directory": Path.cwd().resolve(), "the crmlab checkout": NOTEBOOK_DIR.parent}
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except (OverflowError, ValueError):
        return False
    return True


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
            if fd < 0 and not (pid and not _pid_alive(pid)):
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


# --- notebooks' parameters and needs -------------------------------------------------------

#: inputs a notebook needs, when its parameters cell does not say (``requires = ["sends"]``)
REQUIRES: dict[str, tuple[str, ...]] = {"05_sms_ab_test": ("sends",)}
_MISSING = {"sends": "no SMS send log given (--sends)", "orders": "no orders given (--orders)"}
_NOT_SETTABLE = {"requires"}


def notebook_parameters(nb: Path) -> dict[str, str]:
    """The parameters cell of ``nb`` as ``{name: default source}`` (papermill's inspect)."""
    import papermill as pm

    try:
        return {k: v["default"] for k, v in pm.inspect_notebook(str(nb)).items()}
    except Exception as e:  # unreadable notebook
        raise CrmlabInputError(f"{Path(nb).name}: cannot read its parameters ({type(e).__name__}: {e})") from None


def notebook_requires(nb: Path, declared: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The inputs ``nb`` needs: ``requires = [...]`` in its parameters cell, else :data:`REQUIRES`."""
    import ast

    declared = notebook_parameters(nb) if declared is None else declared
    if "requires" not in declared:
        return REQUIRES.get(Path(nb).stem, ())
    try:
        v = ast.literal_eval(declared["requires"])
    except (ValueError, SyntaxError):
        v = None
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        raise CrmlabInputError(f"{Path(nb).name}: requires must be a list of input names, "
                               f"got {declared['requires']}")
    return tuple(v)


def _check_parameters(params: Mapping[str, object], declared: Mapping[str, Mapping[str, str]],
                      strict: Collection[str] | None, notebook_dir: Path) -> None:
    """Every parameter must be one a selected notebook has; names not in ``strict`` (when
    given) need only be one that some notebook in ``notebook_dir`` has."""
    have = set().union(*(set(d) for d in declared.values())) - _NOT_SETTABLE
    unknown = [k for k in params if k not in have]
    if strict is not None and unknown:
        loose = [k for k in unknown if k not in strict]
        if loose:
            anywhere = set()
            for nb in list_notebooks(None, notebook_dir):
                anywhere |= set(notebook_parameters(nb))
            unknown = [k for k in unknown if k in strict or k not in anywhere - _NOT_SETTABLE]
    if unknown:
        raise CrmlabInputError(
            f"unknown parameter {', '.join(map(repr, unknown))}: none of the selected notebooks "
            f"({', '.join(declared)}) has it; their parameters: {', '.join(sorted(have))}")


# --- running ---------------------------------------------------------------------------------

def _ipc_kernel_manager(log: Path | None = None):
    """The kernel over IPC (Unix sockets), not unencrypted TCP on localhost; its own
    stdout/stderr (log lines, shutdown noise) go to ``log`` rather than the runner's stderr."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IpcKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self):
            return "ipc" if os.name == "posix" else "tcp"

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            if log is None:
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            with open(log, "ab") as fh:
                kw.setdefault("stdout", fh)
                kw.setdefault("stderr", fh)
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return IpcKernelManager


def _install_signal_handlers():
    """SIGINT/SIGTERM raise (KeyboardInterrupt / SystemExit(143)) so ``finally`` cleans up;
    a second signal during the clean-up is ignored. Returns the function that restores."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    sigs = [signal.SIGINT, signal.SIGTERM]
    old = {s: signal.getsignal(s) for s in sigs}

    def handler(signum, frame):
        for s in sigs:
            signal.signal(s, signal.SIG_IGN)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    for s in sigs:
        signal.signal(s, handler)

    def restore():
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)

    return restore


def _local_roots(tmp: Path, target: Path, inputs: Mapping[str, str],
                 notebooks: Sequence[Path] = ()) -> list[tuple[str, str]]:
    """Local directories that must not appear in a report, with their stand-ins."""
    roots = [(str(tmp), "."), (str(tmp.resolve()), "."), (str(Path.home()), "~"),
             (str(Path.home().resolve()), "~")]
    for d in [target.parent.absolute(), target.parent.resolve(), Path.cwd(), NOTEBOOK_DIR.parent,
              *[Path(p).parent for p in inputs.values() if p], *[Path(nb).absolute().parent for nb in notebooks]]:
        roots.append((str(d), "…"))
    return [(r, s) for r, s in roots if r not in ("/", "") and len(r) > 1]


def _write_clean_orders(tmp: Path, orders, ledger) -> str:
    """The validated orders as a clean Parquet file in ``.inputs/`` (path relative to the run)."""
    from crmlab.engine.sources import write_clean

    rel = Path(".inputs") / "orders.clean.parquet"
    (tmp / rel).parent.mkdir(mode=0o700, exist_ok=True)
    write_clean(orders, ledger, str(tmp / rel))
    return rel.as_posix()


def _link_inputs(tmp: Path, inputs: Mapping[str, str]) -> dict[str, str]:
    """Inputs as paths relative to the run (links in ``.inputs/``, removed before the run is
    placed), so no absolute local path reaches a notebook's parameters."""
    rel, used = {}, set()
    for key, path in inputs.items():
        if not path:
            rel[key] = ""
            continue
        name = os.path.basename(path)
        sub = Path(".inputs") / (name if name not in used else f"{key}-{name}")
        used.add(sub.name)
        (tmp / sub).parent.mkdir(mode=0o700, exist_ok=True)
        try:
            (tmp / sub).symlink_to(path)
        except OSError:  # no symlinks here: a copy, gone with .inputs/ (notebooks read only the run's)
            shutil.copyfile(path, tmp / sub)
        rel[key] = sub.as_posix()
    return rel


def _scrub_obj(obj, fn):
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, list):
        return [_scrub_obj(x, fn) for x in obj]
    if isinstance(obj, dict):
        for k in list(obj):
            obj[k] = _scrub_obj(obj[k], fn)
    return obj


def _scrub_notebook(path: Path, roots) -> None:
    """Local paths out of an executed notebook (parameters cell, outputs, tracebacks, metadata)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    _scrub_obj(nb, lambda s: scrub_paths(s, roots))
    nbformat.write(nb, str(path))


def _strip_outputs(path: Path) -> None:
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    nbformat.write(nb, str(path))


def _read_text(f: Path) -> str:
    try:
        return f.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _withhold_pii(name: str, tmp: Path, made: Sequence[Path], error: str | None,
                  heads: dict, nav: Nav | None = None) -> tuple[str | None, dict]:
    """If any file the notebook made (or its message, headlines) shows a phone-shaped string:
    the report fails, its HTML becomes a notice, its notebook loses its outputs, other leaky
    files go. Returns the (error, headlines) to record."""
    leaky = [f for f in made if f.is_file() and find_pii(_read_text(f))]
    err_leaks = bool(error and find_pii(error))
    head_leaks = bool(find_pii(json.dumps(heads, ensure_ascii=False)))
    if not (leaky or err_leaks or head_leaks):
        return error, heads
    where = ", ".join(f.name for f in leaky) or "its messages"
    notice = f"{name}: the report shows personal data (phone-shaped strings in {where}); not shared"
    if error:
        notice += f"; it also failed: {redact(error)}"
    for f in leaky:
        if f.suffix == ".ipynb":
            _strip_outputs(f)
            if find_pii(_read_text(f)):
                f.unlink()
        elif f.suffix != ".html":
            f.unlink()
    (tmp / f"{name}.html").write_text(notice_page(name, notice, nav), encoding="utf-8")
    return notice, ({} if head_leaks else heads)


def run_reports(orders: str, sends: str | None = None, notebooks: Sequence[str] | None = None,
                out: str = "reports/latest", columns: str | Mapping[str, str] | None = None,
                parameters: Mapping[str, object] | None = None, quiet: bool = False,
                kernel_name: str = KERNEL, notebook_dir: Path = NOTEBOOK_DIR,
                strict_parameters: Collection[str] | None = None, reading: Mapping[str, object] | None = None,
                engine: str | None = None) -> RunResult:
    """Validate the inputs, run each notebook with papermill, write HTML and the index.

    Parameters
    ----------
    orders, sends : str
        Input files (validated with :func:`crmlab.ingest.readers.load_orders` / ``load_sends`` first).
        A notebook whose needed inputs are absent (05 needs ``sends``) is skipped.
    notebooks : list of str, optional
        Names or prefixes (default: every numbered notebook).
    out : str
        Output directory; ``{date}`` expands to the run date. It must be new, a crmlab run
        directory or a link crmlab made (see :func:`check_out_dir`).
    columns : str or dict
        Column mapping passed to the loaders and the notebooks.
    parameters : dict
        Extra notebook parameters (``-p`` / ``-f``); ``observation_end`` is also used for
        validation. Each must be a parameter of a selected notebook; names not in
        ``strict_parameters`` (when given; the CLI's ``-f`` keys) need only be one of some
        notebook in ``notebook_dir``. Each notebook gets the parameters it has.
    reading : dict, optional
        How to read the exports (``timezone``, ``decimal``, ``dayfirst``; see
        :func:`crmlab.ingest.readers.load_orders`); also passed to the notebooks that declare them.
    engine : str, optional
        ``duckdb`` or ``spark``, passed as the notebooks' ``engine`` parameter.

    The orders are validated once, into a clean Parquet file (with the ledger in its
    metadata) that every notebook reads through :func:`crmlab.engine.load`; it lives in the
    run's hidden ``.inputs/`` while the notebooks run and is not kept (it holds customer ids).

    Raises
    ------
    CrmlabInputError
        Bad input, unknown parameter or refused ``out``: nothing is run and nothing is written.
    """
    import papermill as pm

    params = dict(parameters or {})
    nbs = list_notebooks(notebooks, notebook_dir)
    target = _expand(out)
    check_out_dir(target)
    _check_writable(target)
    declared = {nb.stem: notebook_parameters(nb) for nb in nbs}
    params = check_parameters(params, "parameter", declared)  # the runner's own refused, values checked
    _check_parameters(params, declared, strict_parameters, Path(notebook_dir))
    needs = {nb.stem: notebook_requires(nb, declared[nb.stem]) for nb in nbs}
    cols = parse_columns(columns)
    colspec = ",".join(f"{k}={v}" for k, v in cols.items())
    obs_end = params.get("observation_end")
    reading = {k: v for k, v in dict(reading or {}).items() if v is not None}
    orders = str(Path(orders).resolve())
    orders_t, orders_led = load_export(orders, connect("duckdb"), columns=cols or None, observation_end=obs_end,
                                       **reading)
    if sends:
        sends = str(Path(sends).resolve())
        load_sends(sends, columns=cols or None, observation_end=obs_end, **reading)
    inputs = {"orders": orders, "sends": sends or ""}
    period = _data_period(orders_t, orders_led)
    titles = {nb.stem: notebook_title(nb) for nb in nbs}
    descriptions = {nb.stem: report_description(nb) for nb in nbs}
    pages = [nb.stem for nb in nbs if all(inputs.get(k) for k in needs[nb.stem])]  # the reports with HTML
    shared = {**reading, "engine": engine}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CrmlabInputError(f"{target}: cannot write reports there ({e.strerror or e})") from None
    results: list[ReportResult] = []
    started = time.time()
    lock: int | None = None
    restore_signals = _install_signal_handlers()
    old_salt = os.environ.get(SALT_ENV)
    os.environ[SALT_ENV] = secrets.token_hex(8)  # one mask_ids salt for every notebook of this run
    old_currency = os.environ.get(CURRENCY_ENV)
    if params.get("currency"):  # every notebook's money in the store's currency, 02/03 too
        os.environ[CURRENCY_ENV] = str(params["currency"])
    tmp: Path | None = None
    try:
        lock = _lock_run(target)  # one run per output folder; a second one: exit 2
        _remove_dead_runs(target.parent, target, locked=lock >= 0)
        try:  # the pid in the name: what a killed run leaves is known as dead by the next
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent)).resolve()
        except OSError as e:  # papermill chdirs: absolute
            raise CrmlabInputError(f"{target}: cannot write reports there ({e.strerror or e})") from None
        tmp.chmod(0o755)
        roots = _local_roots(tmp, target, inputs, nbs)
        rel = _link_inputs(tmp, {"sends": inputs["sends"]})  # orders: the validated copy, below
        rel["orders"] = _write_clean_orders(tmp, orders_t, orders_led)
        for i, nb in enumerate(nbs, 1):
            name = nb.stem
            missing = [k for k in needs[name] if not inputs.get(k)]
            if missing:
                reason = "; ".join(_MISSING.get(k, f"no {k} given") for k in missing)
                results.append(ReportResult(name, False, 0.0, None, {}, status="skipped", reason=reason))
                _log(f"[{i}/{len(nbs)}] {name} skipped: {reason}", quiet)
                continue
            _log(f"[{i}/{len(nbs)}] {name} ...", quiet)
            t0 = time.time()
            nb_params = {"orders": rel["orders"], "sends": rel["sends"], "columns": colspec, "out_dir": ".",
                         **{k: v for k, v in shared.items() if k in declared[name] and v is not None},
                         **{k: v for k, v in params.items() if k in declared[name]}}
            out_nb = tmp / f"{name}.ipynb"
            before = set(tmp.iterdir())
            error = None
            try:
                pm.execute_notebook(str(nb), str(out_nb), parameters=nb_params, kernel_name=kernel_name,
                                    cwd=str(tmp), progress_bar=False, log_output=False,
                                    kernel_manager_class=_ipc_kernel_manager(tmp / ".kernel.log"))
            except pm.PapermillExecutionError as e:
                error = f"{name}: failed in cell {e.cell_index}: {e.ename}: {e.evalue}"
            except Exception as e:  # kernel died, notebook unreadable, ...
                error = f"{name}: {type(e).__name__}: {e}"
            error = scrub_paths(error, roots) if error else None
            html_path = tmp / f"{name}.html"
            nav = _nav(name, pages, titles)
            if out_nb.exists():
                _scrub_notebook(out_nb, roots)
                to_html(out_nb, html_path, nav=nav, period=period_text(period), title=titles[name])
            heads_file = tmp / f"{name}.headlines.json"
            try:
                heads = json.loads(heads_file.read_text(encoding="utf-8")) if heads_file.exists() else {}
            except ValueError:
                heads = {}
            made = sorted(f for f in set(tmp.iterdir()) - before if f.name != ".kernel.log")
            error, heads = _withhold_pii(name, tmp, made, error, heads, nav)
            secs = time.time() - t0
            results.append(ReportResult(name, error is None, secs, error, heads,
                                        status="ok" if error is None else "failed"))
            _log(f"[{i}/{len(nbs)}] {name} {'ok' if error is None else 'FAILED'} in {secs:.1f} s"
                 + (f"\n    {error}" if error else ""), quiet)
        ok = not any(r.status == "failed" for r in results)
        run = {RUN_MARKER: True,
               "run_at": _dt.datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S"),
               "seconds": round(time.time() - started, 1), "crmlab": __version__,
               "orders": redact(os.path.basename(orders)),
               "sends": redact(os.path.basename(sends)) if sends else None,
               "ok": ok, "period": period,
               "reports": [{"name": r.name, "title": titles.get(r.name, r.name),
                            "description": descriptions.get(r.name, ""),
                            "status": r.status, "ok": r.ok, "seconds": round(r.seconds, 1),
                            "error": r.error, **({"reason": r.reason} if r.reason else {}),
                            "headlines": r.headlines} for r in results]}
        run_text = json.dumps(run, ensure_ascii=False, indent=1)
        index_text = index_page(run)
        (tmp / "run.json").write_text(redact(run_text) if find_pii(run_text) else run_text, encoding="utf-8")
        (tmp / "index.html").write_text(embed_cjk_font(redact(index_text) if find_pii(index_text) else index_text),
                                        encoding="utf-8")
        shutil.rmtree(tmp / ".inputs", ignore_errors=True)
        if os.path.lexists(tmp / ".inputs"):  # copies of the inputs never outlive the run
            raise CrmlabInputError(f"{target}: could not remove the run's copies of the inputs; nothing placed")
        (tmp / ".kernel.log").unlink(missing_ok=True)
        placed = _place(tmp, target, ok, quiet)
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if lock is not None:
            _unlock(_lock_path(target), lock)
        for key, old in ((SALT_ENV, old_salt), (CURRENCY_ENV, old_currency)):
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        restore_signals()
    result = RunResult(placed, results)
    if result.ok and placed == target and target.name != "latest":
        _point_latest(target)
    _write_history(target.parent)
    _log(f"reports in {placed}/index.html ({time.time() - started:.0f} s)", quiet)
    return result


def _nav(name: str, pages: Sequence[str], titles: Mapping[str, str]) -> Nav:
    """The links of report ``name``: the run's index, the previous and the next report with HTML."""
    i = pages.index(name) if name in pages else -1
    prev = pages[i - 1] if i > 0 else None
    nxt = pages[i + 1] if 0 <= i < len(pages) - 1 else None
    return Nav(index="index.html", prev=(f"{prev}.html", titles.get(prev, prev)) if prev else None,
               next=(f"{nxt}.html", titles.get(nxt, nxt)) if nxt else None, here=titles.get(name, name))


def _data_period(orders_t, ledger) -> dict:
    """The dates the paid orders cover: the first paid order's date and the observation end."""
    first = None
    try:
        t = getattr(orders_t, "table", orders_t)
        end = getattr(orders_t, "observation_end", None)
        t = t.filter(t.status == "paid") if "status" in t.columns else t
        t = t.filter(t.order_time <= end) if end is not None else t
        first = t.order_time.min().execute()
    except Exception:  # a backend that cannot say: the period is left out
        first = None
    end = getattr(ledger, "observation_end", None)
    fmt = lambda x: None if x is None or x != x else str(x)[:10]  # noqa: E731
    return {"first": fmt(first), "last": fmt(end)}


def _free_name(p: Path) -> Path:
    q, n = p, 1
    while os.path.lexists(q):
        n += 1
        q = p.with_name(f"{p.name}-{n}")
    return q


def _place(tmp: Path, target: Path, ok: bool, quiet: bool) -> Path:
    """Move the finished run to ``target``; only a successful run replaces an existing one
    (a failed run is then kept beside as ``{target}.failed-HHMMSS``). Returns where the run is."""
    stamp = _dt.datetime.now().strftime("%H%M%S")
    if not ok and os.path.lexists(target):
        kept = _free_name(target.with_name(f"{target.name}.failed-{stamp}"))
        tmp.rename(kept)
        _log(f"the failed run is kept in {kept}; {target} is left as it was", quiet)
        return kept
    try:
        check_out_dir(target)  # again: it may have changed during the run
    except CrmlabInputError as e:
        kept = _free_name(target.with_name(f"{target.name}.run-{stamp}"))
        tmp.rename(kept)
        _warn(f"{e}; this run is in {kept}")
        return kept
    _move_into_place(tmp, target)
    return target


def _move_into_place(tmp: Path, target: Path) -> None:
    if target.is_symlink():  # a link crmlab made (checked): the link goes, not what it points at
        target.unlink()
        tmp.rename(target)
    elif target.exists():  # a crmlab run directory (checked)
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(target)


def _point_latest(target: Path) -> None:
    latest = target.parent / "latest"
    if os.path.lexists(latest) and not _is_crmlab_link(latest):
        _warn(f"{latest}: not a link crmlab made; left as it is (it does not point at {target.name})")
        return
    tmp_link = target.parent / f".latest.tmp-{os.getpid()}"
    try:
        if tmp_link.is_symlink():
            tmp_link.unlink()
        tmp_link.symlink_to(target.name)
        os.replace(tmp_link, latest)
    except OSError as e:
        if tmp_link.is_symlink():
            tmp_link.unlink()
        _warn(f"{latest}: could not point it at {target.name} ({e.strerror}); left as it is")


def _write_history(parent: Path) -> None:
    """``reports/index.html``: every run under ``parent`` with its headline numbers side by
    side. An ``index.html`` crmlab did not write is left as it is (with a warning)."""
    index = parent / "index.html"
    if os.path.lexists(index) and not _is_crmlab_index(index):
        _warn(f"{index}: not written by crmlab; left as it is (the list of runs is not updated)")
        return
    runs = []
    for d in sorted(parent.iterdir()):
        if d.is_dir() and not d.is_symlink() and not d.name.startswith("."):
            r = _read_run(d)
            if r and isinstance(r.get("reports"), list) and all(isinstance(x, dict) for x in r["reports"]):
                r.setdefault("run_at", "")
                for x in r["reports"]:
                    x.setdefault("name", "?")
                    if not isinstance(x.get("headlines"), dict):
                        x["headlines"] = {}
                runs.append((d.name, r))
    if not runs:
        return
    doc = history_page(runs)
    doc = redact(doc) if find_pii(doc) else doc
    part = parent / f".index.html.tmp-{os.getpid()}"
    try:
        part.write_text(embed_cjk_font(doc), encoding="utf-8")
        os.replace(part, index)
    except OSError as e:
        part.unlink(missing_ok=True)
        _warn(f"{index}: could not write it ({e.strerror}); left as it is")
