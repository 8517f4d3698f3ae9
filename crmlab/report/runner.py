"""The report runner: validate inputs, run notebooks with papermill, export HTML, index runs.

A run is built in a hidden temporary directory next to the target and moved into place
only when complete, so ``DIR`` is never half-written; an interrupted run (SIGINT/SIGTERM)
removes it. With ``--out reports/{date}`` the run date is expanded; after a successful run
``reports/latest`` is pointed at it and ``reports/index.html`` lists past runs side by side; its
``run.json`` gets ``since_last_run`` (:mod:`crmlab.report.changes`) and ``keep`` prunes older runs.

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

A report that does not apply to the data (:mod:`crmlab.report.applies`) is not run: it is
``skipped`` with a one-sentence ``reason`` in ``run.json``, on the index and on its page.

Exit codes (CLI): 0 all reports ran or were skipped; 1 a notebook failed (its HTML shows the error);
2 bad input or arguments (one line on stderr, nothing run).
"""
from __future__ import annotations

import ast
import datetime as _dt
import json
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Mapping, Sequence

from crmlab._version import __version__
from crmlab.ingest.readers import CrmlabInputError, parse_columns
from crmlab.privacy import SALT_ENV, find_pii, redact, scrub_paths
from crmlab.report.applies import RunInputs, skip_reason
from crmlab.report.changes import since_record
from crmlab.report.html import (INDEX_MARKER, embed_cjk_font, index_page, notebook_title, period_text,
                                report_description, skipped_page, to_html)
from crmlab.report.index import _nav, _place, _point_latest, _write_history, prune_runs
from crmlab.report.kernel import _execute, _install_signal_handlers
from crmlab.report.inputs import (_link_inputs, _load_inputs, _local_roots, _Plan, _scrub_notebook, _withhold_pii,
                                  _write_clean_orders)
from crmlab.report.lock import (RUN_MARKER, _check_writable, _expand, _lock_path, _lock_run, _log,
                                _remove_dead_runs, _unlock, check_out_dir, is_run_dir)
from crmlab.report.parameters import check_parameters, resolve_type
from crmlab.report.paths import KERNEL, NOTEBOOK_DIR

__all__ = ["NOTEBOOK_DIR", "ReportResult", "RunResult", "list_notebooks", "run_reports", "to_html",
           "embed_cjk_font", "resolve_type", "check_out_dir", "is_run_dir", "notebook_parameters",
           "notebook_requires", "REQUIRES", "INDEX_MARKER", "RUN_MARKER", "SETTINGS_PARAMETERS"]

@dataclass
class ReportResult:
    name: str
    ok: bool
    seconds: float
    error: str | None = None
    headlines: dict = field(default_factory=dict)
    status: str = "ok"  # "ok", "failed" or "skipped" (then ``reason`` says why)
    reason: str | None = None
    page: bool = True  # False: skipped for a missing input, no page written


@dataclass
class RunResult:
    out: Path
    reports: list[ReportResult]

    @property
    def ok(self) -> bool:
        """No report failed (skipped ones do not count)."""
        return not any(r.status == "failed" for r in self.reports)


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


# --- notebooks' parameters and needs -------------------------------------------------------

#: inputs a notebook needs, when its parameters cell does not say (``requires = ["sends"]``)
REQUIRES: dict[str, tuple[str, ...]] = {"05_sms_ab_test": ("sends",), "07_targeting": ("sends",)}


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




#: the run's settings (:class:`crmlab.settings.Settings`) each notebook gets as parameters when
#: it has them; its first code cell installs them with ``crmlab.settings.use(Settings(...))``
SETTINGS_PARAMETERS = ("engine", "spark_master", "memory_limit", "timezone")


def _plan(orders: str, sends: str | None, notebooks: Sequence[str] | None, out: str, columns,
          parameters: Mapping[str, object] | None, notebook_dir: Path, strict: Collection[str] | None,
          reading: Mapping[str, object] | None, run_settings: Mapping[str, object], sheets: Mapping[str, str | None],
          quiet: bool) -> _Plan:
    """Check everything a run needs (notebooks, ``out``, parameters, inputs); nothing written."""
    nbs = list_notebooks(notebooks, notebook_dir)
    target = _expand(out)
    check_out_dir(target)
    _check_writable(target)
    declared = {nb.stem: notebook_parameters(nb) for nb in nbs}
    params = check_parameters(dict(parameters or {}), "parameter", declared)  # the runner's own refused
    _check_parameters(params, declared, strict, Path(notebook_dir))
    reading = {k: v for k, v in dict(reading or {}).items() if v is not None}
    colspec = ",".join(f"{k}={v}" for k, v in parse_columns(columns).items())
    plan = _Plan(target, nbs, declared, params, {nb.stem: notebook_requires(nb, declared[nb.stem]) for nb in nbs},
                 colspec, {}, {**reading, **run_settings})
    _load_inputs(plan, orders, sends, reading, sheets, run_settings.get("memory_limit"))
    plan.titles = {nb.stem: notebook_title(nb) for nb in nbs}
    plan.descriptions = {nb.stem: report_description(nb) for nb in nbs}
    plan.pages = [nb.stem for nb in nbs if all(plan.inputs.get(k) for k in plan.needs[nb.stem])]
    for name in plan.pages:  # does each report apply to this store? (cheap aggregates, before anything runs)
        reason = skip_reason(name, plan.orders_t, {k: v for k, v in params.items() if k in declared[name]},
                             RunInputs(sends=plan.sends_df, orders_file=plan.inputs["orders"],
                                       sends_file=plan.inputs["sends"] or None, columns=plan.colspec or None,
                                       reading=reading))
        if reason:
            plan.skips[name] = reason
    plan.sends_df = None  # only the checks read it: not held while the notebooks run
    return plan


def _notebook_parameters(plan: _Plan, name: str, rel: Mapping[str, str]) -> dict:
    """The parameters notebook ``name`` gets: its inputs, the run's settings and reading options
    it has, ``mask_ids`` when the ids look like phone numbers, and the ``-p`` / ``-f`` values."""
    have = plan.declared[name]
    return {"orders": rel["orders"], "sends": rel["sends"], "columns": plan.colspec, "out_dir": ".",
            **{k: v for k, v in plan.shared.items() if k in have and v is not None},
            **({"mask_ids": True} if plan.phone_ids and "mask_ids" in have else {}),
            **({"orders_file": rel["orders_file"]} if rel.get("orders_file") and "orders_file" in have else {}),
            **{k: v for k, v in plan.params.items() if k in have}}


def _run_one(plan: _Plan, nb: Path, tmp: Path, rel: Mapping[str, str], roots, kernel_name: str) -> ReportResult:
    """Run notebook ``nb`` into the run folder ``tmp``: its HTML, its headlines, personal data withheld."""
    name = nb.stem
    t0 = time.time()
    out_nb = tmp / f"{name}.ipynb"
    before = set(tmp.iterdir())
    error = _execute(nb, out_nb, _notebook_parameters(plan, name, rel), kernel_name, tmp, name)
    error = scrub_paths(error, roots) if error else None
    nav = _nav(name, plan.pages, plan.titles)
    if out_nb.exists():
        _scrub_notebook(out_nb, roots)
        to_html(out_nb, tmp / f"{name}.html", nav=nav, period=period_text(plan.period), title=plan.titles[name])
    heads_file = tmp / f"{name}.headlines.json"
    try:
        heads = json.loads(heads_file.read_text(encoding="utf-8")) if heads_file.exists() else {}
    except ValueError:
        heads = {}
    made = sorted(f for f in set(tmp.iterdir()) - before if f.name != ".kernel.log")
    error, heads = _withhold_pii(name, tmp, made, error, heads, nav)
    return ReportResult(name, error is None, time.time() - t0, error, heads,
                        status="ok" if error is None else "failed")


def _run_all(plan: _Plan, tmp: Path, kernel_name: str, quiet: bool) -> list[ReportResult]:
    """Every selected notebook in turn (skipped when an input it needs is absent)."""
    roots = _local_roots(tmp, plan.target, plan.inputs, plan.notebooks)
    # orders: the validated copy, below; orders_file: the export as given, for a notebook that reads
    # columns validation drops (08: created and paid times)
    wanted = any("orders_file" in plan.declared[n] for n in plan.pages)
    rel = _link_inputs(tmp, {"sends": plan.inputs["sends"], "orders_file": plan.inputs["orders"] if wanted else ""})
    rel["orders"] = _write_clean_orders(tmp, plan.orders_t, plan.orders_led)
    results, n = [], len(plan.notebooks)
    for i, nb in enumerate(plan.notebooks, 1):
        missing = [k for k in plan.needs[nb.stem] if not plan.inputs.get(k)]
        if missing:
            reason = "; ".join(_MISSING.get(k, f"no {k} given") for k in missing)
            results.append(ReportResult(nb.stem, False, 0.0, None, {}, status="skipped", reason=reason, page=False))
            _log(f"[{i}/{n}] {nb.stem} skipped: {reason}", quiet)
            continue
        if nb.stem in plan.skips:  # the data cannot answer its question: a page saying why, no notebook run
            reason = plan.skips[nb.stem]
            (tmp / f"{nb.stem}.html").write_text(embed_cjk_font(skipped_page(
                plan.titles[nb.stem], reason, _nav(nb.stem, plan.pages, plan.titles), period_text(plan.period))),
                encoding="utf-8")
            results.append(ReportResult(nb.stem, False, 0.0, None, {}, status="skipped", reason=reason))
            _log(f"[{i}/{n}] {nb.stem} skipped: {reason}", quiet)
            continue
        _log(f"[{i}/{n}] {nb.stem} ...", quiet)
        r = _run_one(plan, nb, tmp, rel, roots, kernel_name)
        results.append(r)
        _log(f"[{i}/{n}] {r.name} {'ok' if r.error is None else 'FAILED'} in {r.seconds:.1f} s"
             + (f"\n    {r.error}" if r.error else ""), quiet)
    return results


def _run_record(plan: _Plan, results: Sequence[ReportResult], started: float, sends: str | None) -> dict:
    """``run.json``: what ran, when, on which inputs (file names only), with each report's headlines."""
    return {RUN_MARKER: True,
            "run_at": _dt.datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S"),
            "seconds": round(time.time() - started, 1), "crmlab": __version__,
            "orders": redact(os.path.basename(plan.inputs["orders"])),
            "sends": redact(os.path.basename(sends)) if sends else None,
            "ok": not any(r.status == "failed" for r in results), "period": plan.period,
            "reports": [{"name": r.name, "title": plan.titles.get(r.name, r.name),
                         "description": plan.descriptions.get(r.name, ""),
                         "status": r.status, "ok": r.ok, "seconds": round(r.seconds, 1),
                         "error": r.error, **({"reason": r.reason} if r.reason else {}),
                         **({"page": r.page} if r.status == "skipped" else {}),
                         "headlines": r.headlines} for r in results]}


def _finish(plan: _Plan, tmp: Path, results: Sequence[ReportResult], started: float, sends: str | None,
            quiet: bool) -> Path:
    """Write ``run.json`` and the run's index, remove the inputs' copies, place the run."""
    run = _run_record(plan, results, started, sends)
    since, since_html = since_record(run, plan.target.parent) if run["ok"] else (None, "")
    if since is not None:  # each headline vs the previous successful run of the same inputs
        run["since_last_run"] = since
    run_text = json.dumps(run, ensure_ascii=False, indent=1)
    index_text = index_page(run).replace("</main>", since_html + "</main>", 1)
    (tmp / "run.json").write_text(redact(run_text) if find_pii(run_text) else run_text, encoding="utf-8")
    (tmp / "index.html").write_text(embed_cjk_font(redact(index_text) if find_pii(index_text) else index_text),
                                    encoding="utf-8")
    shutil.rmtree(tmp / ".inputs", ignore_errors=True)
    if os.path.lexists(tmp / ".inputs"):  # copies of the inputs never outlive the run
        raise CrmlabInputError(f"{plan.target}: could not remove the run's copies of the inputs; nothing placed")
    (tmp / ".kernel.log").unlink(missing_ok=True)
    return _place(tmp, plan.target, run["ok"], quiet)


def _make_run_folder(target: Path) -> Path:
    """The hidden folder the run is built in, beside ``target`` (the pid in its name: what a
    killed run leaves is known as dead by the next)."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent)).resolve()
    except OSError as e:  # papermill chdirs: absolute
        raise CrmlabInputError(f"{target}: cannot write reports there ({e.strerror or e})") from None
    tmp.chmod(0o755)
    return tmp


def _build_run(plan: _Plan, kernel_name: str, quiet: bool, sends: str | None,
               started: float) -> tuple[Path, list[ReportResult]]:
    """Hold the target's lock, build the run in a hidden folder beside it and place it; on any
    exit (a signal too) the folder, the lock and the run's salt go. Returns where the run is."""
    target, lock, tmp = plan.target, None, None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CrmlabInputError(f"{target}: cannot write reports there ({e.strerror or e})") from None
    restore_signals = _install_signal_handlers()
    old_salt = os.environ.get(SALT_ENV)
    os.environ[SALT_ENV] = secrets.token_hex(8)  # one mask_ids salt for every notebook of this run
    try:
        lock = _lock_run(target)  # one run per output folder; a second one: exit 2
        _remove_dead_runs(target.parent, target, locked=lock >= 0)
        tmp = _make_run_folder(target)
        results = _run_all(plan, tmp, kernel_name, quiet)
        return _finish(plan, tmp, results, started, sends, quiet), results
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if lock is not None:
            _unlock(_lock_path(target), lock)
        if old_salt is None:
            os.environ.pop(SALT_ENV, None)
        else:
            os.environ[SALT_ENV] = old_salt
        restore_signals()


def run_reports(orders: str, sends: str | None = None, notebooks: Sequence[str] | None = None,
                out: str = "reports/latest", columns: str | Mapping[str, str] | None = None,
                parameters: Mapping[str, object] | None = None, quiet: bool = False,
                kernel_name: str = KERNEL, notebook_dir: Path = NOTEBOOK_DIR,
                strict_parameters: Collection[str] | None = None, reading: Mapping[str, object] | None = None,
                engine: str | None = None, spark_master: str | None = None, memory_limit: str | None = None,
                sheet: str | None = None, sends_sheet: str | None = None, keep: int | None = None) -> RunResult:
    """Validate the inputs, run each notebook with papermill, write HTML and the index.

    Parameters
    ----------
    orders, sends : str
        Input files (validated with :func:`crmlab.ingest.readers.load_orders` / ``load_sends`` first).
        A notebook whose needed inputs are absent (05 needs ``sends``) is skipped, and so is one
        whose question the data cannot answer (:mod:`crmlab.report.applies`: 06 without last
        year's season, 04 without enough repeat customers): ``status`` skipped with a ``reason``.
    notebooks : list of str, optional
        Names or prefixes (default: every numbered notebook).
    out : str
        Output directory; ``{date}`` expands to the run date. It must be new, a crmlab run
        directory or a link crmlab made (see :func:`check_out_dir`).
    columns : str or dict
        Column mapping passed to the loaders and the notebooks.
    parameters : dict
        Extra notebook parameters (``-p`` / ``-f``, ``currency`` among them); ``observation_end``
        is also used for validation. Each must be a parameter of a selected notebook; names not in
        ``strict_parameters`` (when given; the CLI's ``-f`` keys) need only be one of some
        notebook in ``notebook_dir``. Each notebook gets the parameters it has.
    reading : dict, optional
        How to read the exports (``timezone``, ``decimal``, ``dayfirst``, ``returns``; see
        :func:`crmlab.ingest.readers.load_orders`); also passed to the notebooks that declare them.
    engine, spark_master, memory_limit : str, optional
        The run's settings (:data:`SETTINGS_PARAMETERS`, with ``timezone`` and the ``currency``
        parameter), passed to every notebook as parameters; its first cell installs them.
    sheet, sends_sheet : str, optional
        The sheet of an Excel workbook holding the orders / the send log.
    keep : int, optional
        After a successful run, keep only the newest ``keep`` successful runs beside it
        (:func:`crmlab.report.index.prune_runs`: never a folder crmlab did not make, never ``latest``'s).

    The orders are validated once, into a clean Parquet file (with the ledger in its
    metadata) that every notebook reads through :func:`crmlab.engine.loading.load`; it lives in the
    run's hidden ``.inputs/`` while the notebooks run and is not kept (it holds customer ids).

    Raises
    ------
    CrmlabInputError
        Bad input, unknown parameter or refused ``out``: nothing is run and nothing is written.
    """
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise CrmlabInputError(f"keep must be a whole number of runs, at least 1, got {keep!r}")
    plan = _plan(orders, sends, notebooks, out, columns, parameters, notebook_dir, strict_parameters, reading,
                 {"engine": engine, "spark_master": spark_master, "memory_limit": memory_limit},
                 {"orders": sheet, "sends": sends_sheet}, quiet)
    started = time.time()
    placed, results = _build_run(plan, kernel_name, quiet, sends, started)
    target = plan.target
    result = RunResult(placed, results)
    if result.ok and placed == target and target.name != "latest":
        _point_latest(target)
    if result.ok and keep is not None:
        prune_runs(target.parent, keep, quiet)
    _write_history(target.parent)
    _log(f"reports in {placed}/index.html ({time.time() - started:.0f} s)", quiet)
    return result
