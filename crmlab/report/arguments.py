"""The argument types of the command line and of the report parameters: every value checked
up front, one-line errors.

Each type raises ``argparse.ArgumentTypeError`` with a short message; the parser
(:class:`CrmlabArgumentParser`) prints it as one line ``crmlab: error: --arg: ...`` and
exits 2, before anything is read or run.
"""
from __future__ import annotations

import argparse
import math
import os
import stat
from typing import Callable

from crmlab.engine.connection import master_hosts, memory_limit_of
from crmlab.ingest.columns import parse_columns
from crmlab.ingest.values import parse_observation_end
from crmlab.ingest.values import _zone
from crmlab.schema import CrmlabInputError

# Each raises argparse.ArgumentTypeError: argparse then names the argument in one line.

def _number(text: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def finite_float(text: str) -> float:
    """Any finite number (not nan or inf)."""
    return _number(text)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    v = _number(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def nonneg_float(text: str) -> float:
    """A finite number >= 0."""
    v = _number(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


def probability(text: str) -> float:
    """A number strictly between 0 and 1."""
    v = _number(text)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"expected a proportion strictly between 0 and 1, got {text!r}")
    return v


def percentile(text: str) -> float:
    """A percentile strictly between 0 and 100."""
    v = _number(text)
    if not 0 < v < 100:
        raise argparse.ArgumentTypeError(f"expected a percentile strictly between 0 and 100, got {text!r}")
    return v


def _whole(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    v = _whole(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return v


def nonneg_int(text: str) -> int:
    """A whole number >= 0."""
    v = _whole(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return v


def at_most(kind: Callable[[str], float], hi: float) -> Callable[[str], float]:
    """``kind`` with an upper bound (a window of 10**9 days is a typo, and would overflow)."""
    def check(text: str):
        v = kind(text)
        if v > hi:
            raise argparse.ArgumentTypeError(f"expected at most {hi:g}, got {text!r}")
        return v
    check.__name__ = kind.__name__
    return check


MAX_DAYS = 36_500  # 100 years: any longer day window or horizon is a typo


def day_list(text: str) -> list[int]:
    """``1,3,7``: comma-separated whole numbers of days, each >= 1."""
    parts = [x.strip() for x in str(text).split(",") if x.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected comma-separated days >= 1, got {text!r}")
    try:
        days = [int(x) for x in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if min(days) < 1:
        raise argparse.ArgumentTypeError(f"days must be >= 1 (day 0 is the first order itself), got {text!r}")
    if max(days) > MAX_DAYS:
        raise argparse.ArgumentTypeError(f"days must be at most {MAX_DAYS}, got {text!r}")
    return days


def bracket_list(text: str) -> list[tuple[int, int]]:
    """``1-7,8-30``: comma-separated start-end day ranges, 1 <= start <= end."""
    out = []
    for b in [x.strip() for x in str(text).split(",") if x.strip()] or [""]:
        try:
            start, end = (int(v) for v in b.split("-"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected start-end pairs such as 1-7,8-30, got {text!r}") from None
        if not 1 <= start <= end <= MAX_DAYS:
            raise argparse.ArgumentTypeError(f"each bracket needs 1 <= start <= end <= {MAX_DAYS}, got {b!r}")
        out.append((start, end))
    return out


def moment(text: str) -> str:
    """A date or time (a bare date = the end of that day); kept as text for the loader."""
    if not str(text).strip():
        raise argparse.ArgumentTypeError("expected a date or time, got an empty value")
    try:
        parse_observation_end(text, timezone="UTC")
    except CrmlabInputError:
        raise argparse.ArgumentTypeError(f"expected a date or time between 1678 and 2261 (e.g. 2025-12-31 or "
                                         f"2025-12-31T18:00:00+08:00), got {text!r}") from None
    return str(text).strip()


def timezone_name(text: str) -> str:
    """An IANA time zone name such as Asia/Shanghai."""
    try:
        return _zone(text)[1]
    except CrmlabInputError:
        raise argparse.ArgumentTypeError(
            f"unknown time zone {text!r} (use an IANA name such as Asia/Shanghai or UTC)") from None


def memory_size(text: str) -> str:
    """A DuckDB memory limit: ``600MB``, ``4GB``, ``1.5GiB`` or a share of RAM, ``40%``."""
    try:
        return memory_limit_of(text)
    except CrmlabInputError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("memory_limit ")) from None


def column_spec(text: str) -> str:
    """``canonical=header,...`` (checked against the file by the loader)."""
    try:
        cols = parse_columns(text)
    except CrmlabInputError as e:
        raise argparse.ArgumentTypeError(str(e).split(": ", 1)[-1]) from None
    if any(not k or not v for k, v in cols.items()):
        raise argparse.ArgumentTypeError(f"expected name=header pairs, got {text!r}")
    return text


def split_spec(text: str) -> str:
    """``a=0.5,b=0.5``: arm=share pairs, shares finite and > 0."""
    parts = [x.strip() for x in str(text).split(",") if x.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected arm=share pairs, got {text!r}")
    for part in parts:
        arm, eq, share = part.partition("=")
        if not eq or not arm.strip():
            raise argparse.ArgumentTypeError(f"expected arm=share, got {part!r}")
        try:
            positive_float(share)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"share of {arm.strip()!r} must be a number > 0, got {share!r}") from None
    return text


def out_file(text: str) -> str:
    """A file to write: its folder must exist and it must not be a folder."""
    path = os.path.abspath(os.path.expanduser(text))
    if not str(text).strip() or os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{text!r} is not a file name")
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        parent = folder
        while parent and not os.path.exists(parent) and os.path.dirname(parent) != parent:
            parent = os.path.dirname(parent)
        if os.path.exists(parent) and not os.path.isdir(parent):
            raise argparse.ArgumentTypeError(f"{parent!r} is a file, not a folder")
        raise argparse.ArgumentTypeError(f"folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"folder {folder!r} is not writable")
    if os.path.exists(path) and not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular file")
    return text


def in_file(text: str) -> str:
    """An input: not empty, and never a device, FIFO or socket (``/dev/zero`` would be read
    for ever). A missing file, a folder, ``duckdb:FILE:TABLE`` and ``spark:DB.TABLE`` are
    left to the loader, which names them."""
    if not str(text).strip():
        raise argparse.ArgumentTypeError("expected a file name, got an empty value")
    try:
        mode = os.stat(text).st_mode
    except (OSError, ValueError):
        return text
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = ("a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a FIFO (named pipe)"
                if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is {kind}, not a regular file")
    return text


def spark_master(text: str) -> str:
    """A Spark master URL: ``local[*]``, ``local[N]``, ``spark://HOST:PORT``, ``yarn``, ``k8s://HOST:PORT``
    (shape only; whether it answers is checked when Spark starts)."""
    try:
        master_hosts(text)
    except CrmlabInputError as e:
        raise argparse.ArgumentTypeError(str(e).split(": ", 1)[-1]) from None
    return str(text).strip()


def out_dir(text: str) -> str:
    """A folder to write into (created if missing): not an existing file."""
    if not str(text).strip() or (os.path.exists(text) and not os.path.isdir(text)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder")
    return text


class CrmlabArgumentParser(argparse.ArgumentParser):
    """argparse with crmlab's error format: one line ``crmlab: error: ...`` and exit 2."""

    def error(self, message: str):
        msg = " ".join(str(message).split())
        if msg.startswith("argument "):
            msg = msg[len("argument "):]
        self.exit(2, f"crmlab: error: {msg}\n")
