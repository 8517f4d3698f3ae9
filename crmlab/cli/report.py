"""``crmlab report`` (the notebooks into HTML), ``crmlab notebooks`` (copies to edit) and
``crmlab sample`` (the simulated store)."""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

from crmlab.report.parameters import read_parameters
from crmlab.report.paths import NOTEBOOK_DIR
from crmlab.report.runner import run_reports
from crmlab.schema import CrmlabInputError
from crmlab.simulate.store import write_sample

__all__ = ["cmd_report", "cmd_notebooks", "cmd_sample", "read_params", "MANIFEST"]

#: the list of what ``crmlab notebooks`` wrote into a folder (name -> SHA-256 of the copy)
MANIFEST = ".crmlab-notebooks.json"


def cmd_sample(a) -> int:
    truth = write_sample(a.out, n_customers=a.customers, seed=a.seed)
    print(f"wrote {a.out}/orders.csv, sends.csv, truth.json ({truth['customers']} customers, "
          f"{truth['paid_orders']} paid orders, magic number {truth['magic_number']})", file=sys.stderr)
    return 0


def read_params(a) -> dict:
    """``-f`` files, then ``-p`` (which win), then ``--observation-end``: every value checked
    (:mod:`crmlab.report.parameters`); a runner parameter or a bad value is one line, exit 2."""
    return read_parameters(a.parameters_file or [], a.param or [], a.observation_end)


def cmd_report(a) -> int:
    params = read_params(a)
    # -p names must be parameters of a selected notebook; -f keys of some notebook
    strict = {p.split("=", 1)[0].strip() for p in a.param or [] if "=" in p}
    reading = {"timezone": a.timezone, "decimal": a.decimal, "dayfirst": a.dayfirst, "returns": a.returns}
    res = run_reports(a.orders, a.sends, a.notebooks, out=a.out, columns=a.columns, parameters=params,
                      strict_parameters=strict, reading=reading, engine=a.engine, spark_master=a.spark_master,
                      memory_limit=a.memory_limit, sheet=a.sheet, sends_sheet=a.sends_sheet)
    for r in res.reports:
        if r.status == "failed":
            print(f"crmlab: error: {r.error}", file=sys.stderr)
    return 0 if res.ok else 1


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ours(dest: Path, src: Path, made: dict) -> bool:
    """Whether ``dest`` may be replaced: absent, as ``crmlab notebooks`` wrote it, or the same as ``src``."""
    if not dest.exists() and not dest.is_symlink():
        return True
    if dest.is_symlink() or not dest.is_file():
        return False
    digest = _sha(dest)
    return digest == made.get(dest.name) or digest == _sha(src)


def cmd_notebooks(a) -> int:
    """Copy the report notebooks and ``weekly.yaml`` into ``a.dir`` for editing in JupyterLab.

    A file already there is replaced only if ``crmlab notebooks`` wrote it and it was not
    edited since (or it is the same as the shipped one); otherwise nothing is copied and the
    command stops with one line (exit 2)."""
    target = Path(a.dir)
    sources = sorted(NOTEBOOK_DIR.glob("*.ipynb")) + sorted(NOTEBOOK_DIR.glob("*.yaml"))
    try:
        made = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        made = {}
    made = made if isinstance(made, dict) else {}
    for src in sources:
        if not _ours(target / src.name, src, made):
            raise CrmlabInputError(f"{target / src.name}: exists and was not written by `crmlab notebooks` (or was "
                                   "edited since); refusing to overwrite it (choose another DIR or move it away)")
    try:
        target.mkdir(parents=True, exist_ok=True)
        for src in sources:
            shutil.copyfile(src, target / src.name)
            made[src.name] = _sha(target / src.name)
        (target / MANIFEST).write_text(json.dumps(made, indent=1), encoding="utf-8")
    except OSError as e:
        raise CrmlabInputError(f"{target}: cannot write the notebooks there ({e.strerror or e})") from None
    print(f"copied {len(sources)} files into {target}: open them with `jupyter lab {target}`", file=sys.stderr)
    return 0
