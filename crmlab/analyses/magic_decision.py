"""What the magic number means for a decision when its rules or windows disagree.

Four rules (:data:`crmlab.analyses.magic_rules.RULES`) read the repurchase curve at several
repurchase windows (:func:`crmlab.analyses.magic.magic_sensitivity`): each (rule, window) is one
*reading*. :func:`readings` lays them out as one small table, rule × window; :func:`decision`
says in one sentence what the readings mean for acting on the chosen magic number — how many
agree, who disagrees and why (a rule that finds none, a window with too few customers), and
whether to act on the number or read it as a range. The words come from the results, with the
formatter's numbers; nothing here computes a rate.
"""
from __future__ import annotations

import math

import pandas as pd

from crmlab.analyses.magic_rules import RULES, MagicNumber

__all__ = ["readings", "readings_table", "decision", "RULE_WORDS", "SHORT", "why_none"]

#: each rule in words (the table's rows)
RULE_WORDS = {"plateau": "plateau", "ztest": "z-test", "segmented": "two-line fit", "tolerance": "tolerance"}

#: each rule's short name in a sentence ("the z-test rule")
SHORT = {"plateau": "plateau", "ztest": "z-test", "segmented": "two-line-fit", "tolerance": "tolerance"}

#: why a rule finds no order count, when it is not the plateau rule (whose reason is its own)
_RULE_NONE = {"ztest": "every step up to the last is significant",
              "segmented": "no two-line fit ends flat",
              "tolerance": "a step between thin later order counts exceeds {tol} points"}


def _value(v) -> int | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return int(v)


def readings(magic: MagicNumber, sensitivity: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """Rule × window: the magic number each rule finds at each window (None: none).

    Parameters
    ----------
    magic : MagicNumber
        The result at ``window_days`` (its ``rules``).
    sensitivity : DataFrame
        :func:`~crmlab.analyses.magic.magic_sensitivity` (indexed by ``window_days``, columns
        ``rule_<name>``); the window ``window_days`` is taken from ``magic`` itself.
    window_days : int

    Returns
    -------
    DataFrame
        Index: the rules (:data:`RULES` order); columns: the windows in days, ascending; cells
        int or None. ``attrs["levels"]``: the plateau rule's level per window.
    """
    windows = sorted({int(w) for w in sensitivity.index} | {int(window_days)})
    cols, levels = {}, {}
    for w in windows:
        if w == int(window_days):
            cols[w] = [_value(magic.rules.get(r)) for r in RULES]
            levels[w] = magic.level
        else:
            cols[w] = [_value(sensitivity.at[w, f"rule_{r}"]) for r in RULES]
            levels[w] = str(sensitivity.at[w, "plateau_level"]) if "plateau_level" in sensitivity else "none"
    out = pd.DataFrame(cols, index=pd.Index(list(RULES), name="rule"), dtype=object)
    out.attrs["levels"] = levels
    return out


def readings_table(grid: pd.DataFrame, chosen_rule: str = "plateau") -> pd.DataFrame:
    """:func:`readings` as text for a reader: rows the rules in words (the chosen one marked
    ``(default)``), columns ``30 days`` …, cells the order count or ``none``; a plateau only
    indicated (not shown) is marked ``*``."""
    levels = grid.attrs.get("levels", {})
    rows = {}
    for rule in grid.index:
        cells = []
        for w in grid.columns:
            v = grid.at[rule, w]
            text = "none" if v is None else str(v)
            if rule == "plateau" and v is not None and levels.get(w) == "indicated":
                text += "*"
            cells.append(text)
        name = RULE_WORDS.get(rule, rule) + (" (default)" if rule == chosen_rule else "")
        rows[name] = cells
    out = pd.DataFrame.from_dict(rows, orient="index", columns=[f"{w} days" for w in grid.columns])
    out.index.name = "rule"
    return out


def why_none(reason: str | None) -> str:
    """A plateau rule's reason for no magic number, in a few words."""
    r = (reason or "").lower()
    if r.startswith("too little data"):
        return "too few customers reach three order counts in it"
    if "moves again" in r or "no plateau" in r:
        return "the rate moves again at a later order count"
    if "not enough customers" in r or "look flat" in r:
        return "too few customers reach the later order counts to tell"
    if "rising" in r or "rises" in r:
        return "the rate keeps rising"
    return "the rate does not level off"


def _ks(values) -> str:
    values = list(values)
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def _dissent(grid: pd.DataFrame, M, reasons: dict, rule: str, tol: float) -> list[str]:
    """Per rule, the readings that differ from ``M``, grouped: "the tolerance rule finds none at
    30, 60 and 90 days (why)", "the z-test says 4 at 180 days"."""
    out = []
    every = len(grid.columns)
    for r in grid.index:
        nones = [w for w in grid.columns if grid.at[r, w] is None and M is not None]
        other = {}
        for w in grid.columns:
            v = grid.at[r, w]
            if v is not None and v != M:
                other.setdefault(v, []).append(w)
        name = f"the default ({SHORT.get(r, r)}) rule" if r == rule else f"the {SHORT.get(r, r)} rule"
        parts = []
        if nones:
            why = (why_none(reasons.get(nones[0])) if r == rule else
                   _RULE_NONE.get(r, "it finds no order count").format(tol=f"{100 * tol:g}"))
            where = "at every window" if len(nones) == every else f"at {_ks([str(w) for w in nones])} days"
            parts.append(f"finds none {where} ({why})")
        for v, ws in other.items():
            where = "at every window" if len(ws) == every else f"at {_ks([str(w) for w in ws])} days"
            parts.append(f"says {v} {where}")
        if parts:
            out.append(f"{name} " + " and ".join(parts))
    return out


def decision(magic: MagicNumber, grid: pd.DataFrame, reasons: dict | None = None) -> tuple[str, str]:
    """One sentence on what the readings mean for the decision, and its tone.

    Parameters
    ----------
    magic : MagicNumber
        The chosen rule's result at the page's window.
    grid : DataFrame
        :func:`readings`.
    reasons : dict, optional
        Window -> the chosen rule's reason for no magic number there (the sensitivity's ``reason``).

    Returns
    -------
    (str, str)
        The sentence (markdown) and a tone for :func:`crmlab.report.notebook.verdict`:
        ``"good"`` (act on the number), ``"wait"`` (a range, or nothing to act on).
    """
    reasons = reasons or {}
    cells = [grid.at[r, w] for r in grid.index for w in grid.columns]
    found = [v for v in cells if v is not None]
    total, M = len(cells), magic.magic_number
    shape = f"{len(grid.index)} rules × {len(grid.columns)} windows"
    if M is None:
        if not found:
            return (f"No rule at any window finds a magic number ({shape}): there is no order count to act on; "
                    "judge a nudge to the next order by a holdout, not by a threshold.", "wait")
        lo, hi = min(found), max(found)
        span = str(lo) if lo == hi else f"{lo}–{hi}"
        return (f"No magic number by the default rule ({why_none(magic.reason)}), while {len(found)} of {total} "
                f"other readings ({shape}) say {span}: treat {span} orders as a guess at most and judge a nudge to "
                "the next order by a holdout.", "wait")
    support = sum(v == M for v in found)
    if support == total:
        return f"All {total} readings ({shape}) put the magic number at {M}: act on {M}.", "good"
    tol = magic.details.get("plateau", {}).get("tolerance", 0.03)
    dissent = _dissent(grid, M, reasons, magic.rule, tol)
    lo, hi = min(found), max(found)
    head = f"{support} of {total} readings ({shape}) put the magic number at {M}; " + "; ".join(dissent)
    steady = [r for r in grid.index if all(grid.at[r, w] == M for w in grid.columns)]
    if len(steady) >= 2:
        names = _ks([SHORT.get(r, r) for r in steady])
        return f"{head} — the {names} rules say {M} at every window, so act on {M}.", "good"
    if support * 2 >= total:
        what = (f"where a rule finds a number it is {M}" if lo == hi else
                f"the answers span {lo}–{hi} orders, most of them {M}")
        return f"{head} — {what}, so act on {M}.", "good"
    return (f"{head} — the answers span {lo}–{hi} orders: read {M} as the middle of that range and judge any "
            "nudge by a holdout, not by customers crossing one threshold.", "wait")
