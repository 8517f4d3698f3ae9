"""The one presentation path of every result: a :class:`Result` base and its :class:`Card`.

A result (``RetentionTable``, ``MagicNumber``, ``ClvResult``, ``ExperimentResult`` …) is a
frozen dataclass made with :func:`result`. It says what it shows in one small method,
``_card()``, built with the formatter of its own context (``self.fmt``); the base gives the
rest, the way statsmodels' results give ``summary()``:

* ``headline()`` — the one-line finding with the headline number in it;
* ``__repr__`` — two lines for a console; ``_repr_html_`` — the card in a notebook;
* ``to_dict()`` — JSON-safe (one cleaner for NaN, inf, NumPy scalars, timestamps);
* ``to_frame()`` and ``plot(ax=None)`` where the class has a table and a chart.

Every result carries its context (:class:`crmlab.settings.Settings`: engine, time zone,
currency, interval level) in its ``settings`` field.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import html as _html
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from crmlab.present.formatting import MISSING, Formatter
from crmlab.settings import Settings, current

__all__ = ["Card", "Result", "result", "json_safe"]


def json_safe(o: Any) -> Any:
    """``o`` as JSON can hold it: NaN/inf -> ``None``, NumPy scalars -> Python, timestamps and
    dates -> ISO text, tuples -> lists, keys -> text, frames -> lists of records; recursively."""
    if o is None or isinstance(o, (str, bool)):
        return o
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(float(o)) else None
    if o is pd.NaT or o is pd.NA:
        return None
    if isinstance(o, (pd.Timestamp, _dt.datetime, _dt.date)):
        return o.isoformat() if not isinstance(o, pd.Timestamp) else str(o)
    if isinstance(o, (pd.Period, pd.Timedelta)):
        return str(o)
    if isinstance(o, dict):
        return {str(k): json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set, np.ndarray, pd.Index)):
        return [json_safe(v) for v in o]
    if isinstance(o, pd.Series):
        return {str(k): json_safe(v) for k, v in o.items()}
    if isinstance(o, pd.DataFrame):
        return [json_safe(r) for r in o.reset_index().to_dict("records")]
    if isinstance(o, Settings):
        return json_safe(o.to_dict())
    if hasattr(o, "to_dict"):
        return json_safe(o.to_dict())
    return str(o)


_CSS = ("font-family:var(--jp-content-font-family, sans-serif);max-width:62em;border-left:3px solid #1f5fa8;"
        "padding:2px 0 2px 10px;margin:4px 0")


@dataclass
class Card:
    """What a result shows: ``title`` (the class), ``about`` (what it is), the one-line
    ``finding``, a compact ``table`` (values already formatted as text), ``caption``,
    ``notes`` (warnings), ``settings`` (the context shown in the footer) and ``hint`` (what to
    call next). Every text is escaped in :meth:`html`: data is never markup."""

    title: str
    about: str | None
    finding: str
    table: pd.DataFrame | None = None
    caption: str | None = None
    notes: tuple = ()
    settings: dict = field(default_factory=dict)
    hint: str | None = None

    def text(self) -> str:
        """``<title: finding>`` and the settings on a second line."""
        s = " · ".join(f"{k} {v}" for k, v in self.settings.items())
        warn = f" ({len(self.notes)} warning{'s' if len(self.notes) != 1 else ''})" if self.notes else ""
        return f"<{self.title}: {self.finding}{warn}" + (f"\n  {s}>" if s else ">")

    def html(self) -> str:
        """The card as an HTML fragment (every value escaped)."""
        e = _html.escape
        parts = [f'<div class="crmlab-result" style="{_CSS}">',
                 f'<div><b>{e(self.title)}</b>' + (f' · {e(self.about)}' if self.about else "") + "</div>",
                 f'<div style="margin:3px 0 6px 0">{e(self.finding)}</div>']
        if self.table is not None and len(self.table):
            t = self.table.astype(object).where(self.table.notna(), MISSING)
            parts.append(t.to_html(border=0, escape=True, na_rep=MISSING, classes="crmlab-table", index_names=False))
            if self.caption:
                parts.append(f'<div style="color:#555;font-size:88%">{e(self.caption)}</div>')
        if self.notes:
            parts.append('<ul style="color:#8a3324;margin:4px 0;padding-left:1.3em">'
                         + "".join(f"<li>⚠ {e(str(n))}</li>" for n in self.notes) + "</ul>")
        foot = [f"{e(str(k))} <b>{e(str(v))}</b>" for k, v in self.settings.items()]
        if self.hint:
            foot.append(e(self.hint))
        if foot:
            parts.append(f'<div style="color:#666;font-size:85%;margin-top:4px">{" · ".join(foot)}</div>')
        parts.append("</div>")
        return "\n".join(parts)


class Result:
    """Base of every crmlab result. Subclasses are frozen dataclasses made with
    :func:`result`, with a ``settings`` field (their context) and a ``_card()`` method."""

    #: the card's title (default: the class name)
    title: ClassVar[str | None] = None
    #: one phrase on what the result is
    about: ClassVar[str | None] = None

    # -- the context ------------------------------------------------------------------
    @property
    def context(self) -> Settings:
        """The settings the result was computed under (the session's when it has none)."""
        s = getattr(self, "settings", None)
        return s if isinstance(s, Settings) else current()

    @property
    def fmt(self) -> Formatter:
        """The one formatter, from this result's context."""
        return Formatter(self.context)

    def footer(self, observation_end=None, **more) -> dict:
        """The card's footer: engine, time zone, observation end (to the second), then
        ``more`` (``calibration_end=...`` reads "calibration end"; ``None`` values left out)."""
        c = self.context
        out = {"engine": c.engine, "time zone": c.timezone,
               "observation end": self.fmt.timestamp(observation_end)}
        out.update({k.replace("_", " "): v for k, v in more.items()})
        return {k: v for k, v in out.items() if v is not None and v != ""}

    # -- what the subclass says --------------------------------------------------------
    def _card(self) -> Card:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _as_dict(self) -> dict:
        """The fields that go into :meth:`to_dict` (default: every field but frames)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if not isinstance(getattr(self, f.name), (pd.DataFrame, pd.Series))}

    # -- what the base gives ------------------------------------------------------------
    def card(self) -> Card:
        """The :class:`Card` a notebook shows."""
        return self._card()

    def headline(self) -> str:
        """The one-line finding."""
        return self._card().finding

    def __repr__(self) -> str:
        return self._card().text()

    def _repr_html_(self) -> str:
        return self._card().html()

    def to_dict(self) -> dict:
        """JSON-safe numbers and words (:func:`json_safe`)."""
        return json_safe(self._as_dict())

    def to_frame(self) -> pd.DataFrame:
        """The result's table."""
        raise NotImplementedError(f"{type(self).__name__} has no table")

    def plot(self, ax=None, **kw):
        """The result's chart on ``ax`` (a new figure when ``None``)."""
        raise NotImplementedError(f"{type(self).__name__} has no chart")


def result(cls=None, /, **dataclass_kw):
    """Make ``cls`` a frozen dataclass that keeps :class:`Result`'s ``__repr__``."""
    def wrap(c):
        kw = {"frozen": True, **dataclass_kw, "repr": False}
        return dataclass(**kw)(c)
    return wrap if cls is None else wrap(cls)
