"""What changed since the last run: each report's headline numbers against the previous
successful run of the same inputs, and the alerts a delivery file sets.

The headlines in ``run.json`` are the texts the reports show (``"¥218,318"``, ``"2,378"``,
``"56.5%"``); :func:`parse_number` reads them back (a percentage as a fraction). A change is
the new value minus the old one: percentage points for a percentage, otherwise the amount in
the headline's own unit with the relative change. Where the headline carries an interval
(``"90% range ¥1,200 to ¥1,900"``), the change *exceeds the interval* when the previous value
lies outside this run's interval: the two runs' numbers differ by more than this run's
uncertainty. Non-numeric headlines (``"none"``, ``"no verdict"``) have no change.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

from crmlab.present import formatting as fmt
from crmlab.report.lock import RUN_MARKER, _read_run

__all__ = ["Change", "parse_number", "parse_interval", "previous_run", "since_last_run", "check_alerts",
           "changes_html", "changes_text", "since_record", "headline_stem"]

_NUM = re.compile(r"^(?P<pre>[^\d+\-−.]*)(?P<sign>[+\-−]?)(?P<pre2>[^\d.]{0,3})(?P<num>\d[\d,]*(?:\.\d+)?|\.\d+)"
                  r"\s*(?P<post>%|pp)?\s*$")
_RANGE = re.compile(r"(?:range|interval)\s+(?P<lo>\S+)\s+(?:to|–|-)\s+(?P<hi>\S+)")


@dataclass(frozen=True)
class Change:
    """One headline's change since the previous run."""

    report: str
    headline: str
    before: str
    now: str
    change: str  # as a reader reads it: "+¥1,204 (+3%)", "+2.1 pp"
    direction: str  # "up", "down", "same" or "n/a" (not a number)
    beyond_interval: bool | None = None  # None: the headline has no interval
    delta: float | None = None  # now − before (a percentage as a fraction)
    previous_headline: str | None = None  # the previous run's name, when its period differs


def parse_number(text) -> tuple[float, str, str] | None:
    """``"¥1,234"`` -> ``(1234.0, "¥", "")``; ``"56.5%"`` -> ``(0.565, "", "%")``; else None."""
    if isinstance(text, Mapping):
        text = text.get("value")
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text), "", ""
    if not isinstance(text, str):
        return None
    m = _NUM.match(text.strip())
    if not m or (m["pre"] and m["pre2"]):
        return None
    x = float(m["num"].replace(",", ""))
    x = -x if m["sign"] in ("-", "−") else x
    unit = m["post"] or ""
    return (x / 100 if unit == "%" else x), (m["pre"] or m["pre2"]).strip(), unit


def parse_interval(compare) -> tuple[float, float] | None:
    """The interval a headline's comparison text names (``"90% range ¥1 to ¥2"``), else None."""
    if not isinstance(compare, str):
        return None
    m = _RANGE.search(compare)
    lo, hi = (parse_number(m["lo"].rstrip(",;)")), parse_number(m["hi"].rstrip(",;)"))) if m else (None, None)
    return (lo[0], hi[0]) if lo and hi else None


def _runs(parent: Path) -> list[tuple[str, dict]]:
    out = []
    for d in sorted(Path(parent).iterdir()) if Path(parent).is_dir() else []:
        if d.is_dir() and not d.is_symlink() and not d.name.startswith("."):
            r = _read_run(d)
            if r and r.get(RUN_MARKER) is True and isinstance(r.get("reports"), list):
                out.append((d.name, r))
    return out


def previous_run(parent: Path, run: Mapping, exclude: str | None = None) -> tuple[str, dict] | None:
    """The newest successful run under ``parent`` of the same inputs (file names), made before
    ``run``; ``exclude`` names the run's own folder."""
    same = [(n, r) for n, r in _runs(parent) if n != exclude and r.get("ok") is True
            and r.get("orders") == run.get("orders") and r.get("sends") == run.get("sends")
            and str(r.get("run_at", "")) < str(run.get("run_at", "~"))]
    return max(same, key=lambda nr: (str(nr[1].get("run_at", "")), nr[0])) if same else None


def _heads(run: Mapping) -> dict[tuple[str, str], object]:
    reports = run.get("reports") if isinstance(run.get("reports"), list) else []
    return {(str(r.get("name", "?")), str(k)): v for r in reports if isinstance(r, Mapping)
            and isinstance(r.get("headlines"), Mapping) for k, v in r["headlines"].items()}


def _say(new: tuple[float, str, str], old: tuple[float, str, str]) -> str:
    d = new[0] - old[0]
    if new[2] == "%":
        return fmt.pp(d)
    whole = float(old[0]).is_integer() and float(new[0]).is_integer()
    amount = fmt.money(d, 0 if whole else 2, currency=new[1], sign=True) if new[1] else \
        fmt.number(d, 0 if whole else 2, sign=True)
    rel = fmt.change(new[0], old[0])
    return amount + (f" ({rel})" if rel != fmt.MISSING else "")


def _one(key: tuple[str, str], now, before) -> Change:
    new, old = parse_number(now), parse_number(before)
    show = lambda v: str(v.get("value", "") if isinstance(v, Mapping) else v)  # noqa: E731
    if not new or not old or new[1:] != old[1:]:
        return Change(key[0], key[1], show(before), show(now), fmt.MISSING, "n/a")
    d = new[0] - old[0]
    ivl = parse_interval(now.get("compare") if isinstance(now, Mapping) else None)
    beyond = None if ivl is None else not (min(ivl) <= old[0] <= max(ivl))
    return Change(key[0], key[1], show(before), show(now), _say(new, old) if d else "0",
                  "up" if d > 0 else "down" if d < 0 else "same", beyond, d)


_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_SPAN = re.compile(rf"\b(?:19|20)\d{{2}}\b|\b{_MONTH}(?:\s*[–-]\s*{_MONTH})?\b|\((?:same months|latest)\)")


def headline_stem(name: str) -> str:
    """A headline's name without the period it covers (``"paid sales 2025 Jan–Nov"`` ->
    ``"paid sales"``): how a headline is recognised when the data's span moved between runs."""
    return " ".join(_SPAN.sub(" ", name).split())


def _pairs(new: Mapping, old: Mapping) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """(key now, key before): the same name, else the same name but for its period when that is unique."""
    stems: dict[tuple[str, str], list] = {}
    for k in old:
        stems.setdefault((k[0], headline_stem(k[1])), []).append(k)
    now_stems: dict[tuple[str, str], int] = {}
    for k in new:
        now_stems[(k[0], headline_stem(k[1]))] = now_stems.get((k[0], headline_stem(k[1])), 0) + 1
    out = []
    for k in new:
        s = (k[0], headline_stem(k[1]))
        if k in old:
            out.append((k, k))
        elif len(stems.get(s, ())) == 1 and now_stems[s] == 1 and stems[s][0] not in new:
            out.append((k, stems[s][0]))
    return out


def since_last_run(run: Mapping, previous: Mapping | None) -> list[Change]:
    """Each headline of ``run`` that the previous run also has (the same name, or the same name
    for another period: :func:`headline_stem`), with its change."""
    if not previous:
        return []
    new, old = _heads(run), _heads(previous)
    return [replace(_one(k, new[k], old[b]), previous_headline=None if b == k else b[1]) for k, b in _pairs(new, old)]


def _matches(name: str, want: str) -> bool:
    return name == want or name.startswith(want)


def check_alerts(run: Mapping, alerts: Sequence) -> list[str]:
    """The alerts (:class:`crmlab.report.delivery.Alert`) whose threshold this run's headline crosses:
    one sentence each. A percentage threshold is a fraction (0.2) or ``"20%"``."""
    out = []
    heads = _heads(run)
    for a in alerts:
        hits = [(k, v) for k, v in heads.items() if _matches(k[0], a.report) and _matches(k[1], a.headline)]
        for (rep, name), v in hits[:1]:
            x = parse_number(v)
            if x is None:
                continue
            shown = v.get("value") if isinstance(v, Mapping) else v
            limit = lambda t: fmt.pct(t) if x[2] == "%" else fmt.number(t, 2 if t % 1 else 0)  # noqa: E731
            if a.below is not None and x[0] < a.below:
                out.append(f"{rep}: {name} is {shown}, below {limit(a.below)}")
            if a.above is not None and x[0] > a.above:
                out.append(f"{rep}: {name} is {shown}, above {limit(a.above)}")
    return out


_ARROW = {"up": "▲", "down": "▼", "same": "=", "n/a": ""}


def changes_text(changes: Sequence[Change], previous_name: str | None) -> list[str]:
    """Plain lines, one per changed headline (for the plain mail and the chat message)."""
    if not changes:
        return []
    lines = [f"Since last run ({previous_name}) 与上次相比:"]
    for c in changes:
        flag = " — beyond its interval 超出区间" if c.beyond_interval else ""
        was = f" (last run: {c.previous_headline})" if c.previous_headline else ""
        lines.append(f"  {c.headline}{was}: {c.before} → {c.now} {_ARROW[c.direction]} {c.change}{flag}")
    return lines


def changes_html(changes: Sequence[Change], previous_name: str | None) -> str:
    """A "since last run" table (a section of the run's index and of the mail)."""
    if not changes:
        return ""
    rows = "".join(
        f"<tr><th><small>{html.escape(c.report)}</small><br>{html.escape(c.headline)}"
        + (f"<br><small>last run: {html.escape(c.previous_headline)}</small>" if c.previous_headline else "")
        + "</th>"
        f"<td>{html.escape(c.before)}</td><td>{html.escape(c.now)}</td>"
        f"<td class='crmlab-{c.direction}'>{_ARROW[c.direction]} {html.escape(c.change)}</td>"
        f"<td>{'' if c.beyond_interval is None else ('yes 是' if c.beyond_interval else 'no 否')}</td></tr>"
        for c in changes)
    return (f"<section class='crmlab-since'><h2>Since last run 与上次相比</h2><p><small>vs {html.escape(str(previous_name))}"
            "</small></p><div class='crmlab-scroll'><table><thead><tr><th>headline</th><th>last run</th><th>this run"
            "</th><th>since last run</th><th>beyond interval</th></tr></thead><tbody>" + rows
            + "</tbody></table></div></section>")


def since_record(run: Mapping, parent: Path) -> tuple[dict | None, str]:
    """For the runner: ``run.json``'s ``since_last_run`` (the previous run's folder and each change)
    and the index's "since last run" section; ``(None, "")`` when there is no previous run."""
    prev = previous_run(parent, run)
    if prev is None:
        return None, ""
    changes = since_last_run(run, prev[1])
    rec = {"run": prev[0], "run_at": prev[1].get("run_at"),
           "changes": [{"report": c.report, "headline": c.headline, "before": c.before, "now": c.now,
                        "change": c.change, "direction": c.direction, "beyond_interval": c.beyond_interval,
                        "delta": None if c.delta is None else round(c.delta, 10),
                        **({"previous_headline": c.previous_headline} if c.previous_headline else {})}
                       for c in changes]}
    return rec, changes_html(changes, prev[0])
