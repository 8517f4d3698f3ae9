"""``crmlab report`` (the notebooks into HTML), ``crmlab deliver`` (a run's notice, again),
``crmlab notebooks`` (copies to edit) and ``crmlab sample`` (the simulated store).

Exit codes of ``crmlab report`` / ``crmlab deliver``: 0 ok; 1 a notebook failed (the failure
notice is sent with ``-d``); 2 bad input, arguments or delivery file (nothing run); 3 the run
is fine but a notice could not be delivered (one line each: unreachable host, refused login,
webhook error), the run is kept and ``crmlab deliver RUN -d FILE`` sends it again."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pandas as pd

from crmlab.report.delivery import load_delivery
from crmlab.report.notify import EXIT_NOT_DELIVERED, deliver_not_run, deliver_run
from crmlab.report.parameters import read_parameters
from crmlab.report.paths import NOTEBOOK_DIR
from crmlab.report.runner import run_reports
from crmlab.schema import CrmlabInputError
from crmlab.simulate.store import StoreSpec, write_sample
from crmlab.simulate.program import write_program_sample
from crmlab.simulate.unpaid import write_reminder_sample

__all__ = ["cmd_report", "cmd_deliver", "cmd_notebooks", "cmd_sample", "read_params", "MANIFEST"]

#: the list of what ``crmlab notebooks`` wrote into a folder (name -> SHA-256 of the copy)
MANIFEST = ".crmlab-notebooks.json"


def _sample_options(a) -> dict:
    """The simulator's issue-24 options from ``crmlab sample``'s flags (none: today's sample).

    Without ``--start``, a ``--truncate-before`` not after the default start moves the start
    two years before the cut, so the export still has history before it."""
    kw: dict = {}
    if getattr(a, "returns", None):
        kw["returns"] = a.returns
    start = getattr(a, "start", None)
    cut = getattr(a, "truncate_before", None)
    if cut is not None:
        cut_day = pd.Timestamp(cut).normalize()
        kw["truncate_before"] = f"{cut_day:%Y-%m-%d}"
        if start is None and cut_day <= pd.Timestamp(StoreSpec.start):
            start = f"{cut_day - pd.DateOffset(years=2):%Y-%m-%d}"
    if start is not None:
        kw["start"] = f"{pd.Timestamp(start):%Y-%m-%d}"
    return kw


def _program_sample(a) -> int:
    """``crmlab sample --program-holdout SHARE``: the programme store (:mod:`crmlab.simulate.program`)."""
    if getattr(a, "returns", None) or getattr(a, "truncate_before", None) or getattr(a, "start", None):
        raise CrmlabInputError("--program-holdout writes the programme store: without --returns, "
                               "--truncate-before or --start")
    truth = write_program_sample(a.out, n_customers=a.customers, seed=a.seed, holdout_share=a.program_holdout)
    last = truth["months"][-1]
    print(f"wrote {a.out}/orders.csv, sends.csv, truth.json (programme store: {a.customers} customers, "
          f"{a.program_holdout:g} held out by salt {truth['holdout']['salt']!r}; planted cumulative repurchase "
          f"effect after {last['month']} months {100 * last['cumulative_diff']:+.1f} points)", file=sys.stderr)
    return 0


def cmd_sample(a) -> int:
    if getattr(a, "program_holdout", None):
        return _program_sample(a)
    kw = _sample_options(a)
    try:
        write = write_reminder_sample if getattr(a, "reminders", False) else write_sample
        truth = write(a.out, n_customers=a.customers, seed=a.seed, **kw)
    except ValueError as e:
        raise CrmlabInputError(str(e)) from None
    extra = ""
    if "returns" in truth:
        r = truth["returns"]
        extra += (f", {r['credit_notes']} credit notes ({r['orders_fully_reversed']} orders fully and "
                  f"{r['orders_partly_reversed']} partly reversed, {r['unmatched']} unmatched credit lines)")
    if "truncation" in truth:
        t = truth["truncation"]
        extra += (f", simulated from {t['simulated_from']} and cut before {t['truncate_before'][:10]} "
                  f"({t['existing_buyers_in_export']} of its {t['buyers_in_export']} buyers bought before the cut)")
    if "reminders" in truth:
        r = truth["reminders"]
        extra += f", a payment-reminder experiment of {r['orders']:,} unpaid orders (planted best delay {r['best_arm']})"
    print(f"wrote {a.out}/orders.csv, sends.csv, truth.json ({truth['customers']} customers, "
          f"{truth['paid_orders']} paid orders, magic number {truth['magic_number']}{extra})", file=sys.stderr)
    return 0


def read_params(a) -> dict:
    """``-f`` files, then ``-p`` (which win), then ``--observation-end``: every value checked
    (:mod:`crmlab.report.parameters`); a runner parameter or a bad value is one line, exit 2."""
    return read_parameters(a.parameters_file or [], a.param or [], a.observation_end,
                           history_start=getattr(a, "history_start", None), lead_in_days=getattr(a, "lead_in_days", None))


def cmd_report(a) -> int:
    """Run the reports; with ``-d`` tell the delivery file's lists and robots (exit 3 when a notice
    could not be delivered: the run itself is kept)."""
    params = read_params(a)
    delivery = load_delivery(a.delivery) if getattr(a, "delivery", None) else None  # malformed: exit 2 first
    # -p names must be parameters of a selected notebook; -f keys of some notebook
    strict = {p.split("=", 1)[0].strip() for p in a.param or [] if "=" in p}
    reading = {"timezone": a.timezone, "decimal": a.decimal, "dayfirst": a.dayfirst, "returns": a.returns}
    # the validation cache (crmlab.engine.cache) of the run's one validation: its documented variables
    if getattr(a, "no_cache", False):
        os.environ["CRMLAB_NO_CACHE"] = "1"
    elif getattr(a, "cache_dir", None):
        os.environ["CRMLAB_CACHE_DIR"] = a.cache_dir
    try:
        res = run_reports(a.orders, a.sends, a.notebooks, out=a.out, columns=a.columns, parameters=params,
                          strict_parameters=strict, reading=reading, engine=a.engine, spark_master=a.spark_master,
                          memory_limit=a.memory_limit, sheet=a.sheet, sends_sheet=a.sends_sheet,
                          keep=getattr(a, "keep", None))
    except CrmlabInputError as e:  # bad input: nothing ran; the failure list hears it (still exit 2)
        for p in deliver_not_run(delivery, str(e)) if delivery is not None else ():
            print(f"crmlab: warning: {p}", file=sys.stderr)
        raise
    for r in res.reports:
        if r.status == "failed":
            print(f"crmlab: error: {r.error}", file=sys.stderr)
    delivered = _deliver(res.out, delivery) if delivery is not None else 0
    return 1 if not res.ok else delivered


def _deliver(run_dir: Path, delivery) -> int:
    """Send the run's notice; each problem one line on stderr. 0, or :data:`EXIT_NOT_DELIVERED`."""
    problems = deliver_run(run_dir, delivery, warn=lambda m: print(f"crmlab: warning: {m}", file=sys.stderr))
    for p in problems:
        print(f"crmlab: error: {p} (the run is kept in {Path(run_dir).name})", file=sys.stderr)
    return EXIT_NOT_DELIVERED if problems else 0


def cmd_deliver(a) -> int:
    """``crmlab deliver RUN -d delivery.yaml``: send a finished run's notice again."""
    delivery = load_delivery(a.delivery)
    run_dir = Path(a.run_dir)
    run_dir = run_dir.parent / os.readlink(run_dir) if run_dir.is_symlink() else run_dir
    return _deliver(run_dir, delivery)


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
