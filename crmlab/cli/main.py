"""The ``crmlab`` command line.

The commands and their flags are a table (:data:`crmlab.cli.parser.COMMANDS`); each names the
function that runs it (``crmlab.cli.orders:cmd_retention`` ...), imported only when that
command runs, so ``crmlab --help`` does not load the analyses.

Exit codes: 0 success; 1 a report notebook failed; 2 bad input or arguments (one line
``crmlab: error: ...`` on stderr, no traceback).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable

from crmlab.cli.parser import build_parser
from crmlab.engine.scratch import exit_on_terminate
from crmlab.schema import CrmlabInputError

__all__ = ["main", "build_parser", "BIG_EXPORT_LINES"]

#: Lines of an export above which a command other than ``validate`` suggests validating once.
BIG_EXPORT_LINES = 20_000_000

def command(run: str) -> Callable[[argparse.Namespace], int]:
    """The function a :data:`~crmlab.cli.parser.COMMANDS` entry names (``module:function``)."""
    module, _, name = run.partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    """Run ``crmlab ARGV``; returns the exit code."""
    if argv is None:  # the command line itself: SIGTERM exits cleanly (scratch space removed)
        exit_on_terminate()
    ap = build_parser()
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:  # a bad argument (one line printed), --help or --version
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    a.big_export_lines = BIG_EXPORT_LINES
    a.after_success = []  # notes said only when the command succeeds (an error stays one line)
    try:
        rc = command(a.run)(a)
        for note in a.after_success if rc == 0 else ():
            print(note, file=sys.stderr)
        return rc
    except CrmlabInputError as e:
        print(f"crmlab: error: {' '.join(str(e).split())}", file=sys.stderr)  # always one line
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
