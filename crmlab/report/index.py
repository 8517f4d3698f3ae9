"""Placing a finished run: ``DIR`` replaced only by a good run, ``latest`` pointed at it, and
``reports/index.html`` listing every run with its headline numbers side by side."""
from __future__ import annotations

import datetime as _dt
import os
import shutil
from pathlib import Path
from typing import Mapping, Sequence

from crmlab.privacy import find_pii, redact
from crmlab.report.html import Nav, embed_cjk_font, history_page
from crmlab.report.lock import _is_crmlab_index, _is_crmlab_link, _log, _read_run, _warn, check_out_dir, is_run_dir
from crmlab.schema import CrmlabInputError

__all__ = ["prune_runs"]  # and the runner's own steps (crmlab.report.runner)


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


def prune_runs(parent: Path, keep: int, quiet: bool = True) -> list[str]:
    """``--keep N``: remove the successful runs under ``parent`` beyond the newest ``keep`` (by
    ``run_at``). Only folders crmlab made (``run.json`` with the marker) are candidates; the run
    ``latest`` points at, failed runs and anything else are never removed. Returns the removed names."""
    if keep < 1:
        raise CrmlabInputError(f"--keep must be at least 1, got {keep}")
    latest = parent / "latest"
    protected = os.readlink(latest) if latest.is_symlink() else None
    runs = []
    for d in parent.iterdir():
        if d.name.startswith(".") or d.name == protected or not is_run_dir(d):
            continue
        r = _read_run(d) or {}
        if r.get("ok") is True:
            runs.append((str(r.get("run_at", "")), d.name, d))
    runs.sort(reverse=True)
    kept = 1 if protected and is_run_dir(parent / protected) else 0  # latest's run counts as one kept
    removed = []
    for _, name, d in runs[max(keep - kept, 0):]:
        shutil.rmtree(d, ignore_errors=True)
        if os.path.lexists(d):
            _warn(f"{d.name}: could not remove it (--keep {keep}); left as it is")
        else:
            removed.append(name)
    if removed:
        _log(f"--keep {keep}: removed {len(removed)} older run(s): {', '.join(sorted(removed))}", quiet)
    return removed
