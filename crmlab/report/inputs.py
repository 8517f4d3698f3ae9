"""A run's inputs: the notebooks read only the run's own copies (``.inputs/``), no local path
reaches a report, and a report showing phone-shaped strings is withheld."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import nbformat

from crmlab.engine.connection import connect
from crmlab.engine.lead_in import lead_in_sentence
from crmlab.engine.loading import load
from crmlab.engine.sources import write_clean
from crmlab.ingest.readers import NOTICE_PREFIXES, load_sends, parse_columns
from crmlab.privacy import find_pii, redact, scrub_paths
from crmlab.report.html import Nav, notice_page
from crmlab.report.index import _data_period
from crmlab.report.lock import _warn
from crmlab.report.paths import PACKAGE_HOME

__all__: list[str] = []  # the runner's own steps (crmlab.report.runner)


def _local_roots(tmp: Path, target: Path, inputs: Mapping[str, str],
                 notebooks: Sequence[Path] = ()) -> list[tuple[str, str]]:
    """Local directories that must not appear in a report, with their stand-ins."""
    roots = [(str(tmp), "."), (str(tmp.resolve()), "."), (str(Path.home()), "~"),
             (str(Path.home().resolve()), "~")]
    for d in [target.parent.absolute(), target.parent.resolve(), Path.cwd(), PACKAGE_HOME,
              *[Path(p).parent for p in inputs.values() if p], *[Path(nb).absolute().parent for nb in notebooks]]:
        roots.append((str(d), "…"))
    return [(r, s) for r, s in roots if r not in ("/", "") and len(r) > 1]


def _write_clean_orders(tmp: Path, orders, ledger) -> str:
    """The validated orders as a clean Parquet file in ``.inputs/`` (path relative to the run)."""
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
    nb = nbformat.read(str(path), as_version=4)
    _scrub_obj(nb, lambda s: scrub_paths(s, roots))
    nbformat.write(nb, str(path))


def _strip_outputs(path: Path) -> None:
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


@dataclass
class _Plan:
    """What a run will do, every input checked before anything is written."""

    target: Path
    notebooks: list[Path]
    declared: dict[str, dict[str, str]]
    params: dict[str, object]
    needs: dict[str, tuple[str, ...]]
    colspec: str
    inputs: dict[str, str]
    shared: dict[str, object]
    orders_t: object = None
    orders_led: object = None
    titles: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    pages: list[str] = field(default_factory=list)
    skips: dict[str, str] = field(default_factory=dict)  # notebook -> why it does not apply to the data
    sends_df: object = None  # the validated send log, for crmlab.report.applies' checks (then dropped)
    period: dict = field(default_factory=dict)
    phone_ids: bool = False


def _phone_notice(ledger) -> bool:
    """The orders' ledger notices (ids that look like phone numbers, the sheet read): one line
    each on stderr. True when the customer ids look like phone numbers: the notebooks then get
    ``mask_ids=True`` and write their customer lists masked, so no report has to be withheld."""
    phone = False
    for w in getattr(ledger, "warnings", []):
        if w.startswith(NOTICE_PREFIXES):
            ids = w.startswith("customer ids look like phone numbers")
            _warn(f"{os.path.basename(str(ledger.file))}: {' '.join(w.split())}"
                  + ("; the reports' customer lists (CSV) are written with masked ids too" if ids else ""))
            phone = phone or ids
    return phone


def _load_inputs(plan: _Plan, orders: str, sends: str | None, reading: Mapping[str, object],
                 sheets: Mapping[str, str | None], memory_limit: str | None) -> None:
    """Validate the orders (kept for the run's clean copy) and the send log, as the notebooks
    will read them."""
    cols = parse_columns(plan.colspec) or None
    obs_end = plan.params.get("observation_end")
    orders = str(Path(orders).resolve())
    # through the validation cache (an unchanged export is not validated again), with the lead-in
    # applied once: the clean copy's ledger carries it to every notebook
    plan.orders_t, plan.orders_led = load(orders, connect("duckdb", memory_limit=memory_limit), columns=cols,
                                          observation_end=obs_end, sheet=sheets.get("orders"),
                                          history_start=plan.params.get("history_start"),
                                          lead_in_days=plan.params.get("lead_in_days"), **reading)
    if plan.orders_led.truncation.get("lead_in") == "default":
        _warn(f"{os.path.basename(orders)}: {lead_in_sentence(plan.orders_led.truncation)}")
    if sends:
        sends = str(Path(sends).resolve())
        plan.sends_df = load_sends(sends, columns=cols, observation_end=obs_end, sheet=sheets.get("sends"),
                                   **{k: v for k, v in reading.items() if k != "returns"})[0]
    plan.inputs = {"orders": orders, "sends": sends or ""}
    plan.phone_ids = _phone_notice(plan.orders_led)
    plan.period = _data_period(plan.orders_t, plan.orders_led)
