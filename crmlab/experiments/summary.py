"""Notebook 05's first screen, from the decision the result already carries (never a second
computation): the status banner, one results table and the next steps beside it.

* :func:`status` — ``"ship"``, ``"no winner"`` (the best arm's profit interval includes zero:
  keep running), ``"do not send"`` (the best arm loses money against the holdout), ``"keep
  running"`` (a blocker: sample ratio, planned sample, open window) or ``"no verdict"`` (the
  data cannot carry the tests). Only ``"ship"`` names an arm to send.
* :func:`banner` — the one-line verdict in words and the run's currency and interval level.
* :func:`results_rows` — a row per arm against the holdout (and the holdout itself): customers,
  buyers, conversion, lift in points with its interval, incremental profit per 1,000 messages
  with its interval (the decision's own figure, ``arm_profits``), Holm-adjusted p.
* :func:`next_steps` — the decision's next steps made consistent with the banner and the
  response history: no arm to send unless the status is ``"ship"``, and the unresponsive
  customers counted (none: nobody to drop).
"""
from __future__ import annotations

import re

import pandas as pd

from crmlab.experiments.readout import ExperimentResult, key_findings
from crmlab.present.formatting import Formatter, integer, number, pct, pp, pvalue

__all__ = ["status", "choice_words", "banner", "results_rows", "next_steps", "why_findings", "TONES"]

#: the banner's tone per status (crmlab.report.notebook.verdict)
TONES = {"ship": "good", "no winner": "wait", "keep running": "wait", "do not send": "bad", "no verdict": "bad"}
_SEND = ("Send ", "Use copy ")
_RESPONSE = "Leave out customers whose response rate"


def _lit(value) -> str:
    """A value from the data as literal text inside the banner's inline markdown."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", str(value))


def status(res: ExperimentResult) -> str:
    """What the decision says to do: ship / no winner / do not send / keep running / no verdict."""
    d = res.decision
    if res.no_verdict_reason is not None and res.comparisons.empty:
        return "no verdict"
    if d.get("blockers"):
        return "keep running"
    worth = d.get("worth_sending")
    return "ship" if worth is True else "do not send" if worth is False else "no winner"


def _level(res: ExperimentResult) -> str:
    return Formatter(res.settings).level(1 - float(res.decision.get("alpha") or 0.05))


def _profit(res: ExperimentResult, d: dict) -> str:
    f = Formatter(res.settings)
    return (f"{f.money(d['incremental_profit_per_1000'], sign=True)} incremental profit per 1,000 messages "
            f"({_level(res)} CI {f.money(d['ci_low'])} to {f.money(d['ci_high'])})")


def choice_words(d: dict) -> str:
    """The chosen copy and send time in words (``"copy A at 17:00"``, ``"copy A at any send time"``);
    empty when the arms are not copy × send-time cells."""
    arm = str(d.get("arm") or "")
    if "@" not in arm:
        return ""
    if d.get("send_time"):
        return f"copy {d['copy']} at {d['send_time']}"
    return f"copy {d['copy']} at any send time (the send times made no detectable difference)"


def banner(res: ExperimentResult) -> tuple[str, str]:
    """The verdict banner's text (inline markdown) and tone, from :func:`status` and the decision."""
    d, s = res.decision, status(res)
    if s == "no verdict":
        return f"**No verdict:** {_lit(res.no_verdict_reason)}. Nothing to ship; the counts per arm are below.", TONES[s]
    if s == "keep running":
        return (f"**Keep running — no verdict yet:** {_lit('; '.join(d['blockers']))}. No arm is shipped until this is "
                "fixed.", TONES[s])
    if s == "ship":
        what = _lit(choice_words(d))
        return (f"**Ship {_lit(d['arm'])}:** {what + ' — ' if what else ''}{_profit(res, d)} against the no-message "
                "holdout.", "good")
    if s == "do not send":
        return (f"**Do not send:** the best arm, {_lit(d['arm'])}, loses money against the holdout — {_profit(res, d)}. "
                "Rethink the offer or the targeting.", TONES[s])
    return (f"**No winner — keep running:** the best arm, {_lit(d['arm'])}, is not shown to pay against the holdout "
            f"({_profit(res, d)}: the interval includes zero).", TONES[s])


def results_rows(res: ExperimentResult) -> dict:
    """The results table's columns (header -> formatted text Series, or (estimate, low, high,
    writer[, bar]) for an interval), its row order (messaged arms, then the holdout), the chosen
    row and the row notes: arguments of :func:`crmlab.report.notebook.results_table`.

    A choice of a copy at any send time (``COPY@any``) gets its own row, pooled over the copy's
    arms against the whole holdout: the decision's profit figure and interval, the banner's."""
    f, ctl, c = Formatter(res.settings), res.control, res.comparisons
    arms = res.arms[["targeted", "buyers", "conversion_rate"]].astype(float)
    inc = res.incremental[["profit_per_1000", "profit_ci_low", "profit_ci_high"]].astype(float)
    lift = pd.DataFrame({"diff": c["diff"], "low": c["newcomb_low"], "high": c["newcomb_high"]}, dtype=float)
    order = [a for a in arms.index if a != ctl]
    d = res.decision
    arm = d.get("arm") if status(res) == "ship" else None
    if arm and arm not in arms.index and arm.endswith("@any"):
        parts = [a for a in order if str(a).startswith(arm[:-3])]
        t, b = arms.loc[parts, "targeted"].sum(), arms.loc[parts, "buyers"].sum()
        arms.loc[arm] = [t, b, b / t]
        inc.loc[arm] = [d["incremental_profit_per_1000"], d["ci_low"], d["ci_high"]]
        lift.loc[arm] = [d["incremental_conversion"], float("nan"), float("nan")]
        order.insert(order.index(parts[-1]) + 1, arm)
    order.append(ctl)
    cols = {"customers": arms["targeted"].map(integer), "buyers": arms["buyers"].map(integer),
            "conversion": arms["conversion_rate"].map(lambda x: pct(x, 2))}
    if len(c):
        cols[f"lift vs {ctl}, pp ({_level(res)} CI)"] = (lift["diff"], lift["low"], lift["high"],
                                                          lambda v: number(100 * v, 2, sign=True), False)
        cols[f"incremental profit per 1,000 messages ({_level(res)} CI)"] = (
            inc["profit_per_1000"], inc["profit_ci_low"], inc["profit_ci_high"], f.money)
        cols["p (Holm)"] = c["p_holm"].map(pvalue)
    notes = {ctl: f"no message ({res.holdout_clock} clock)" if res.holdout_clock != "none" else "no message"}
    if arm and arm not in res.arms.index:
        notes[arm] = "pooled over its send times"
    return {"columns": cols, "index": order, "highlight": [arm] if arm else [], "notes": notes}


def next_steps(res: ExperimentResult, unresponsive: int | None = None) -> list[str]:
    """The decision's next steps, consistent with :func:`banner`: the steps that send an arm only
    when the status is ``"ship"``; ``unresponsive`` (the credibly unresponsive customers, None
    without a response history) replaces the generic leave-out step with its count."""
    d, s = res.decision, status(res)
    # the banner already says why there is no verdict; the response step is replaced by its count below
    steps = [x for x in d["next_steps"] if not x.startswith((_RESPONSE, "No verdict: "))]
    if s in ("no winner", "do not send"):
        steps = [x for x in steps if not x.startswith(_SEND)]
        des = d.get("design") or {}
        if s == "no winner":
            mde = des.get("detectable_difference")
            steps.insert(0, "Keep running (or rerun with more customers) before shipping any arm"
                         + (f": this campaign ({integer(des['n'])} customers per {des['per']}) detects "
                            f"{pp(mde, 2, sign=False)} at 80% power." if mde == mde and mde is not None else "."))
    if s == "ship" and f"Send {d['arm']}." in steps:  # judged by arms: one line names the copy and the time
        steps = [x for x in steps if not x.startswith("Send at ")]
        what = choice_words(d).split(" (")[0]
        steps[steps.index(f"Send {d['arm']}.")] = f"Send {d['arm']}" + (f": {what}." if what else ".")
    keep = [x for x in steps if x.startswith("Keep a no-message holdout")]
    steps = [x for x in steps if x not in keep]
    if unresponsive is not None and s != "no verdict":
        steps.append(f"Leave out the {integer(unresponsive)} customers whose response rate is credibly below the "
                     "threshold (sms_drop_list.csv)." if unresponsive else
                     "Nobody to leave out yet: no customer responds credibly below the threshold (a few messages "
                     "without a response are not evidence).")
    return steps + keep


def why_findings(res: ExperimentResult) -> list[str]:
    """The key findings under the banner: :func:`~crmlab.experiments.readout.key_findings` without
    what the banner already says — the decision's reason becomes "Why" (its profit figure, in the
    banner, is not repeated); with a blocker or no verdict the banner's sentence is not repeated."""
    lines = key_findings(res)
    s, d = status(res), res.decision
    if s in ("no verdict", "keep running"):
        return lines[1:] or lines
    reason = d["reason"]
    cut = reason.rfind("; ")
    core = reason[:cut] if cut > 0 and "incremental profit per 1,000 messages" in reason[cut:] else reason
    core = core.split(": ", 1)[1] if core.startswith("send ") and ": " in core else core
    return [f"**Why:** {_lit(core[0].upper() + core[1:])}."] + lines[1:]
