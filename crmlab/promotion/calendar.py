"""The promotion calendar: its day, phases and period, and the arguments that give them.

A promotion is a day D and phases given as whole-day offsets from it (store-local
calendar days, inclusive): build-up 蓄势 D−71…D−12, warm-up 预热 D−10…D−1, the day 冲刺 D,
after-glow 余温 D+1…D+3 by default. This module parses them (bad input raises
:class:`~crmlab.schema.CrmlabInputError` naming the argument) with pandas alone, so the
CLI and the report runner can check ``--date``, ``--phases`` and ``--growth`` without
loading the engine or matplotlib. :mod:`crmlab.promotion.season` builds the daily series
and draws the season; :mod:`crmlab.promotion.plan` does the plan and the review.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crmlab.schema import CrmlabInputError

__all__ = ["Phase", "DEFAULT_PHASES", "DEFAULT_PHASES_SPEC", "PHASE_LABELS", "parse_date", "parse_phases",
           "parse_growth", "default_date", "span"]

DEFAULT_PHASES_SPEC = "build_up=-71:-12,warm_up=-10:-1,day=0:0,after_glow=1:3"
PHASE_LABELS = {"build_up": "蓄势 build-up", "warm_up": "预热 warm-up", "day": "冲刺 the day",
                "after_glow": "余温 after-glow", "period": "整个大促 whole period"}
_RESERVED = {"period", "assumptions", "all", "new", "old"}


@dataclass(frozen=True)
class Phase:
    """A phase: ``name`` and its first and last day as offsets from the promotion day."""

    name: str
    start: int
    end: int

    def days(self, day: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
        return day + pd.Timedelta(days=self.start), day + pd.Timedelta(days=self.end)


def parse_date(value, arg: str = "--date", year: int | None = None) -> pd.Timestamp:
    """A calendar day: ``2025-11-11`` (or ``11-11`` / ``06-18`` in ``year``). Midnight, naive."""
    text = str(value).strip() if value is not None else ""
    if year is not None and re.fullmatch(r"\d{1,2}-\d{1,2}", text):
        text = f"{year}-{text}"
    try:
        t = pd.Timestamp(text)
        if pd.isna(t) or not text:
            raise ValueError
    except (ValueError, TypeError, OverflowError):
        raise CrmlabInputError(f"{arg}: cannot read {value!r} as a date (expected YYYY-MM-DD, "
                               f"e.g. 2025-11-11)") from None
    if t.tzinfo is not None:
        t = t.tz_localize(None)
    if not 1700 <= t.year <= 2200:  # phases around the day must stay inside pandas' nanosecond range
        raise CrmlabInputError(f"{arg}: {str(value)[:80]!r} is outside the years crmlab plans for (1700 to 2200)")
    return t.normalize().as_unit("ns")


def default_date(observation_end=None, today=None, month_day: str = "11-11") -> pd.Timestamp:
    """This year's 11-11: the observation end's year when the export ends before today."""
    now = pd.Timestamp(today) if today is not None else pd.Timestamp.now()
    year = now.year
    if observation_end is not None and pd.Timestamp(observation_end) < now:
        year = pd.Timestamp(observation_end).year
    return pd.Timestamp(f"{year}-{month_day}")


def parse_phases(spec=None) -> tuple[Phase, ...]:
    """``name=start:end,...`` (day offsets from D, inclusive), a mapping, or Phase objects.

    Empty or None gives :data:`DEFAULT_PHASES`. Phases are sorted by start and may not
    overlap (a day belongs to at most one phase)."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        spec = DEFAULT_PHASES_SPEC
    items: list[Phase] = []
    if isinstance(spec, str):
        for part in [x.strip() for x in spec.split(",") if x.strip()]:
            m = re.fullmatch(r"([^\s=:,]+)\s*=\s*([+-]?\d+)\s*:\s*([+-]?\d+)", part)
            if not m:
                raise CrmlabInputError(f"--phases: expected name=start:end day offsets from the promotion day "
                                       f"(e.g. warm_up=-10:-1), got {part!r}")
            items.append(Phase(m.group(1), int(m.group(2)), int(m.group(3))))
    else:
        pairs = spec.items() if isinstance(spec, dict) else spec
        for p in pairs:
            if isinstance(p, Phase):
                items.append(p)
                continue
            name, rng = (p[0], p[1:]) if len(p) == 3 else p
            items.append(Phase(str(name), int(rng[0]), int(rng[1])))
    if not items:
        raise CrmlabInputError("--phases: no phase given")
    names = [p.name for p in items]
    for p in items:
        if p.start > p.end:
            raise CrmlabInputError(f"--phases: {p.name} starts after it ends ({p.start}:{p.end})")
        if p.name in _RESERVED:
            raise CrmlabInputError(f"--phases: {p.name!r} is a reserved word; choose another phase name")
    if len(set(names)) < len(names):
        raise CrmlabInputError(f"--phases: a phase name is repeated ({', '.join(names)})")
    items.sort(key=lambda p: p.start)
    for a, b in zip(items, items[1:]):
        if b.start <= a.end:
            raise CrmlabInputError(f"--phases: {a.name} ({a.start}:{a.end}) and {b.name} ({b.start}:{b.end}) "
                                   "overlap; a day belongs to at most one phase")
    return tuple(items)


DEFAULT_PHASES = parse_phases(DEFAULT_PHASES_SPEC)


def parse_growth(spec=None) -> dict[str, float]:
    """``new=0.1,old=0.2`` (or ``new=10%``) or a mapping; types not given are estimated."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return {}
    if isinstance(spec, str):
        pairs = []
        for part in [x.strip() for x in spec.split(",") if x.strip()]:
            k, eq, v = part.partition("=")
            if not eq:
                raise CrmlabInputError(f"--growth: expected new=RATE,old=RATE (e.g. new=0.1,old=0.2), got {part!r}")
            pairs.append((k.strip(), v.strip()))
    else:
        pairs = list(dict(spec).items())
    out: dict[str, float] = {}
    for k, v in pairs:
        if k not in ("new", "old"):
            raise CrmlabInputError(f"--growth: customer type must be new or old, got {k!r}")
        try:
            s = str(v).strip()
            g = float(s[:-1]) / 100 if s.endswith("%") else float(s)
        except ValueError:
            raise CrmlabInputError(f"--growth: {k}={v!r} is not a number (e.g. {k}=0.1 or {k}=10%)") from None
        if not np.isfinite(g) or g <= -1:
            raise CrmlabInputError(f"--growth: {k}={v!r} must be a finite rate above -1 (-100%)")
        out[k] = g
    return out


def span(day, phases) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The promotion period: the first phase's first day to the last phase's last day."""
    return day + pd.Timedelta(days=phases[0].start), day + pd.Timedelta(days=max(p.end for p in phases))
