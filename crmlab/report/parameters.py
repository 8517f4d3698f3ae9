"""Notebook parameters of ``crmlab report`` (``-p NAME=VALUE``, ``-f PARAMS.yaml``): read and checked.

Every value is checked before any notebook runs, by the same rules as the command-line
flag it mirrors (``window_days`` as ``magic-number --window-days``, ``margin`` as
``clv --margin`` / ``abtest --margin``, dates as ``--observation-end`` ...): a bad one is
one line ``crmlab: error: -p NAME: ...`` and exit 2.

The parameters the runner sets itself (:data:`RUNNER_PARAMETERS`: the inputs, the output
folder, the engine and reading options, the masking salt) cannot be set with ``-p`` / ``-f``:
a notebook reads its inputs only from the run's own ``.inputs/`` and writes only into the run.

Parameter files are small YAML mappings: at most :data:`MAX_FILE_BYTES`, no anchors or
aliases (``&a`` / ``*a``: a ten-line "billion laughs" file would otherwise expand for
minutes), at most :data:`MAX_NODES` values nested at most :data:`MAX_DEPTH` deep.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import stat
from typing import Callable, Iterable, Mapping

import yaml

from crmlab.report.arguments import (MAX_DAYS, at_most, day_list, moment, nonneg_float, nonneg_int, positive_float,
                                     positive_int, probability, split_spec)
from crmlab.promotion.season import parse_date, parse_growth, parse_phases
from crmlab.schema import CrmlabInputError
from crmlab.settings import Settings

__all__ = ["RUNNER_PARAMETERS", "RULES", "NOTEBOOK_RULES", "MAX_FILE_BYTES", "MAX_DEPTH", "MAX_NODES",
           "NoAliasLoader", "load_parameter_file", "parse_param", "resolve_type", "check_parameter", "check_parameters",
           "read_parameters"]

#: parameters the runner sets (name -> how to set it instead); never from -p / -f
RUNNER_PARAMETERS: dict[str, str] = {
    "orders": "use --orders", "sends": "use --sends", "orders_file": "use --orders",
    "sends_file": "use --sends", "columns": "use --columns", "out_dir": "use --out", "out": "use --out",
    "engine": "use --engine", "spark_master": "use --spark-master", "memory_limit": "use --memory-limit",
    "timezone": "use --timezone", "decimal": "use --decimal", "dayfirst": "use --dayfirst or --monthfirst",
    "returns": "use --returns",
    "salt": "every run has a new random one", "mask_salt": "every run has a new random one",
    "requires": "the notebook declares it", "kernel_name": "the runner uses the crmlab kernel",
}

MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 8
MAX_NODES = 10_000
MAX_TEXT = 10_000  # characters of one text value


# --- rules: the command-line flag each parameter mirrors ---------------------------------------

class _Bad(Exception):
    """A value a rule refuses (the message, without the parameter's name)."""


def _text(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Bad(f"expected a number, got {_show(value)}")
    return str(value)


def _cli(kind: Callable[[str], object]) -> Callable[[object], object]:
    """A command-line type (:mod:`crmlab.report.arguments`) as a rule for a typed value."""
    def rule(value):
        try:
            typed = kind(_text(value))
        except argparse.ArgumentTypeError as e:
            raise _Bad(str(e)) from None
        return value if isinstance(value, (int, float)) else typed  # 72 stays 72, not 72.0
    return rule


def _choice(*options: str) -> Callable[[object], str]:
    def rule(value):
        if not isinstance(value, str) or value not in options:
            raise _Bad(f"expected one of {', '.join(options)}, got {_show(value)}")
        return value
    return rule


def _flag(value) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"expected True or False, got {_show(value)}")
    return value


def _string(value, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise _Bad(f"expected text, got {_show(value)}")
    if not empty and not value.strip():
        raise _Bad("expected a non-empty text")
    return value


def _currency(value) -> str:
    v = _string(value)
    if len(v) > 8 or any(not c.isprintable() for c in v):
        raise _Bad(f"expected a currency symbol such as ¥, £ or US$ (at most 8 characters), got {_show(value)}")
    try:  # what every notebook's Settings takes: plain characters, no markup
        Settings(currency=v)
    except CrmlabInputError:
        raise _Bad(f"expected a currency symbol of plain characters (no < > & \" '), got {_show(value)}") from None
    return v


def _moment(value):
    return _cli(moment)(_date_text(value))


def _day(value):
    v = _date_text(value)
    if not isinstance(v, str):
        raise _Bad(f"expected a date such as 2025-11-11 or 11-11, got {_show(value)}")
    try:
        parse_date(v, "", 2000)
    except CrmlabInputError as e:
        raise _Bad(str(e).removeprefix(": ")) from None
    return v


def _days(value):
    if isinstance(value, (list, tuple)):
        if not value or any(isinstance(x, bool) or not isinstance(x, int) for x in value):
            raise _Bad(f"expected a list of whole numbers of days, got {_show(value)}")
        value = ",".join(map(str, value))
    elif isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _Bad(f"expected days such as [1, 7, 30] or 1,7,30, got {_show(value)}")
    return _cli(day_list)(str(value))


def _parsed(parse: Callable, what: str):
    """A promotion spec (phases, growth): text or a mapping, checked by its parser."""
    def rule(value):
        if not isinstance(value, (str, dict)):
            raise _Bad(f"expected {what}, got {_show(value)}")
        try:
            parse(value)
        except CrmlabInputError as e:
            raise _Bad(str(e).split(": ", 1)[-1]) from None
        except (TypeError, ValueError, IndexError, KeyError):
            raise _Bad(f"expected {what}, got {_show(value)}") from None
        return value
    return rule


def _phases(value):
    return _parsed(parse_phases, "phases such as warm_up=-10:-1,day=0:0")(value)


def _growth(value):
    return _parsed(parse_growth, "growth such as new=0.1,old=0.2")(value)


def _split(value):
    if value == "":
        return value
    if not isinstance(value, str):
        raise _Bad(f"expected arm=share pairs such as a=0.5,b=0.5, got {_show(value)}")
    return _cli(split_spec)(value)


#: name -> (rule, None allowed): the flag each mirrors
RULES: dict[str, tuple[Callable[[object], object], bool]] = {
    "observation_end": (_moment, True),                                   # --observation-end
    "history_start": (_moment, True),                                     # --history-start (lead-in)
    "lead_in_days": (_cli(at_most(nonneg_int, MAX_DAYS)), True),          # --lead-in-days
    "currency": (_currency, True),
    "interval_level": (_cli(probability), False),                         # 04: the CLV intervals' level
    "mask_ids": (_flag, False),                                           # customer lists written masked
    # 02 (retention, lifecycle)
    "cohort": (_choice("day", "week", "month", "channel"), False),        # retention --cohort
    "retention_days": (_days, False),                                     # retention --days
    "retention_kind": (_choice("exact", "on_or_after", "bracket"), False),  # retention --kind
    "retention_horizon_days": (_cli(at_most(positive_int, MAX_DAYS)), True),  # retention --horizon-days
    "dormancy_rule": (_choice("ladder", "percentile"), False),            # lifecycle --rule
    # 03 (magic number)
    "window_days": (_cli(at_most(positive_int, MAX_DAYS)), False),
    "max_k": (_cli(at_most(positive_int, 1000)), False),
    "rule": (_choice("plateau", "ztest", "segmented", "tolerance"), False),
    "min_at_risk": (_cli(positive_int), False),
    # 04 (CLV)
    "time_unit": (_choice("D", "W"), False),
    "calibration_end": (_moment, True),
    "holdout_days": (_cli(at_most(nonneg_int, MAX_DAYS)), False),
    "model": (_choice("bgnbd", "pareto_nbd", "mbgnbd"), True),
    "horizon_months": (_cli(at_most(positive_int, 1200)), False),
    "discount_rate": (_cli(at_most(nonneg_float, 1)), False),
    "margin": (_cli(positive_float), False),  # clv --margin; 05 (abtest --margin) at most 1, below
    "p_alive_cutoff": (_cli(probability), False),
    # 05 (SMS A/B test)
    "window_hours": (_cli(at_most(positive_float, 24 * MAX_DAYS)), False),
    "arm_column": (lambda v: _string(v, empty=False), False),
    "control": (lambda v: _string(v, empty=False), True),
    "planned_split": (_split, True),
    "planned_n_per_arm": (_cli(positive_int), True),
    "price_per_message": (_cli(nonneg_float), False),
    "alpha": (_cli(probability), False),
    "seed": (_cli(nonneg_int), False),
    "current_copy": (lambda v: _string(v, empty=False), True),
    "target_effect": (_cli(probability), True),
    "cuped_days": (_cli(at_most(nonneg_int, MAX_DAYS)), False),
    "monitor": (_flag, False),
    "cs_tuning": (_cli(positive_float), True),
    "min_messages": (_cli(positive_int), False),
    "program_holdout_share": (_cli(at_most(nonneg_float, 0.5)), False),   # design --program-holdout (0: none)
    "program_salt": (lambda v: _string(v, empty=False), False),            # program --salt
    # 06 (big promotion)
    "date": (_day, True),
    "last_year_date": (_day, True),
    "phases": (_phases, True),
    "growth": (_growth, True),
}

#: notebook -> {name: rule} where a notebook's flag is stricter than :data:`RULES`
NOTEBOOK_RULES: dict[str, dict[str, Callable[[object], object]]] = {
    "05_sms_ab_test": {"margin": _cli(at_most(positive_float, 1))},  # abtest --margin: a share, 0 to 1
}


def _show(value) -> str:
    s = repr(value)
    return s if len(s) <= 60 else s[:57] + "..."


def _date_text(value):
    """YAML reads 2025-12-31 as a date: back to the text the command line would have."""
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    return value


def _plain(value, depth: int = 0):
    """Any other parameter: text, a finite number, True/False, None, or lists/mappings of them."""
    value = _date_text(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad(f"expected a finite number, got {_show(value)}")
        return value
    if isinstance(value, str):
        if len(value) > MAX_TEXT or "\x00" in value:
            raise _Bad(f"expected text of at most {MAX_TEXT:,} characters without NUL")
        return value
    if depth < MAX_DEPTH and isinstance(value, (list, tuple)):
        return [_plain(x, depth + 1) for x in value]
    if depth < MAX_DEPTH and isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _Bad("expected a mapping with text keys")
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    raise _Bad(f"expected text, a number, True/False, None or a list of them, got {type(value).__name__}")


def check_parameter(name: str, value, where: str = "parameter", notebooks: Iterable[str] = ()):
    """``value`` of parameter ``name`` checked (and typed: ``retention_days`` as a list, dates
    as text) by the rule of the flag it mirrors; ``notebooks`` (stems) add their stricter rules.

    Raises CrmlabInputError ``{where} {name}: ...``: a runner parameter, a bad value."""
    label = f"{where} {name}".strip()
    if not isinstance(name, str) or not name.isidentifier():
        raise CrmlabInputError(f"{where} {name!r}: not a parameter name".strip())
    if name in RUNNER_PARAMETERS:
        raise CrmlabInputError(f"{label}: set by the runner; {RUNNER_PARAMETERS[name]}")
    try:
        if name not in RULES:
            return _plain(value)
        rule, nullable = RULES[name]
        if value is None:
            if nullable:
                return None
            raise _Bad("cannot be None (leave it out for the notebook's default)")
        value = rule(value)
        for nb in notebooks:
            stricter = NOTEBOOK_RULES.get(nb, {}).get(name)
            if stricter is not None:
                try:
                    stricter(value)
                except _Bad as e:
                    raise _Bad(f"{e} (for {nb})") from None
        return value
    except _Bad as e:
        raise CrmlabInputError(f"{label}: {e}") from None


def check_parameters(params: Mapping[str, object], where: str = "parameter",
                     notebooks: Iterable[str] = ()) -> dict:
    """Every parameter checked by :func:`check_parameter`; returns them typed."""
    notebooks = list(notebooks)
    return {k: check_parameter(k, v, where, notebooks) for k, v in params.items()}


# --- reading ---------------------------------------------------------------------------------

class _Refused(yaml.YAMLError):
    pass


class NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses anchors and aliases, deep nesting and many values."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        line = event.start_mark.line + 1 if event.start_mark else "?"
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(f"anchors and aliases (&name, *name) are not allowed (line {line})")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _Refused(f"more than {MAX_NODES:,} values")
        if self._depth >= MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} levels deep (line {line})")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_parameter_file(path: str) -> dict:
    """A parameter file: a YAML mapping of ``name: value`` (values not yet checked)."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise CrmlabInputError(f"{path}: not a regular file (expected a YAML parameter file)")
        if st.st_size > MAX_FILE_BYTES:
            raise CrmlabInputError(f"{path}: parameter file too big ({st.st_size:,} bytes; at most "
                                   f"{MAX_FILE_BYTES:,})")
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise CrmlabInputError(f"{path}: cannot read parameter file ({e.strerror or e})") from None
    if len(data) > MAX_FILE_BYTES:
        raise CrmlabInputError(f"{path}: parameter file too big (more than {MAX_FILE_BYTES:,} bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CrmlabInputError(f"{path}: not UTF-8 text (save the parameter file as UTF-8)") from None
    try:
        y = yaml.load(text, Loader=NoAliasLoader)
    except _Refused as e:
        raise CrmlabInputError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        first = " ".join(str(e).split("\n")[0].split())
        raise CrmlabInputError(f"{path}: not valid YAML ({first})") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as e:  # e.g. an int of 5,000 digits
        raise CrmlabInputError(f"{path}: cannot read a value ({type(e).__name__})") from None
    if y is None:
        return {}
    if not isinstance(y, dict):
        raise CrmlabInputError(f"{path}: expected a mapping of name: value")
    bad = [k for k in y if not isinstance(k, str) or not k.isidentifier()]
    if bad:
        raise CrmlabInputError(f"{path}: {_show(bad[0])} is not a parameter name (expected name: value)")
    return y


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


def parse_param(text: str) -> tuple[str, object]:
    """``-p name=value``: the name and the value typed as papermill's CLI does."""
    if "=" not in text:
        raise CrmlabInputError(f"-p: expected name=value, got {_show(text)}")
    k, v = text.split("=", 1)
    k = k.strip()
    if not k.isidentifier():
        raise CrmlabInputError(f"-p {_show(k)}: not a parameter name (expected name=value)")
    return k, resolve_type(v.strip())


def read_parameters(files: Iterable[str] = (), params: Iterable[str] = (),
                    observation_end: str | None = None, history_start: str | None = None,
                    lead_in_days: int | None = None) -> dict:
    """The parameters of ``crmlab report``: each ``-f`` file in turn, then ``-p`` (which win),
    then ``--observation-end``, ``--history-start`` and ``--lead-in-days``; every value checked
    where it was given; a lead-in given both ways is refused."""
    out: dict = {}
    for f in files or []:
        for k, v in load_parameter_file(f).items():
            out[k] = check_parameter(k, v, f"{f}:")
    for p in params or []:
        k, v = parse_param(p)
        out[k] = check_parameter(k, v, "-p")
    if observation_end:
        out["observation_end"] = observation_end  # checked by the flag's own type
    for k, v in (("history_start", history_start), ("lead_in_days", lead_in_days)):
        if v is not None:  # the flags win over -p / -f, as --observation-end does
            out[k] = v
    if out.get("history_start") is not None and out.get("lead_in_days") is not None:
        raise CrmlabInputError("history_start and lead_in_days: give one of them (the lead-in ends at a date, "
                               "or after a number of days), not both")
    return out
