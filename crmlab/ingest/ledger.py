"""The :class:`Ledger`: where every input row of an export went (used, or excluded for a
named reason: ``used + excluded == input``, always), with its card.
"""
from __future__ import annotations

from dataclasses import field

import numpy as np
import pandas as pd

from crmlab.present.result import Card, Result, result
from crmlab.settings import Settings, current

__all__ = ["Ledger", "lead_in_sentence"]


@result(frozen=False)
class Ledger(Result):
    """Where every input row went: a result with its card (input rows, used, excluded by
    reason, warnings); it stays mutable while a loader fills it in.

    Attributes
    ----------
    file : str
        Name of the input (file name, or ``"<DataFrame>"``).
    input_rows : int
        Rows read.
    used_rows : int
        Rows kept (before lines roll up into orders).
    excluded : dict
        Reason -> number of rows excluded for it.
    examples : dict
        Reason -> first few row numbers excluded for it (1-based data rows, the header
        not counted; in a CSV that is line number minus one).
    orders, customers : int
        Orders and customers in the clean table (sends: messages and customers).
    observation_end : pandas.Timestamp or None
        End of the observation window used for the exclusion (store-local time).
    timezone : str or None
        The store time zone the times were read in (times with an offset converted to it).
    warnings : list of str
        Things the rows were not excluded for but a reader should know: title rows skipped
        above the header, a column replaced by an explicit mapping, times far outside the
        bulk of the data, an observation end later than the run.
    returns : dict
        Separate reversal documents (credit notes, ``C`` invoices) netted against purchases
        (:mod:`crmlab.ingest.returns`): ``reversal_lines``, ``matched``, ``unmatched``,
        ``orders_fully_reversed``, ``amount_netted``.
    truncation : dict
        Whether the export looks like it starts in the middle of the store's life
        (:mod:`crmlab.engine.truncation`): ``left_truncated``, ``evidence`` (one sentence),
        ``lead_in_days`` (0: no lead-in applied).
    settings : Settings or None
        The settings the rows were read under (the card's context; ``None``: the session's,
        with the ledger's own time zone).
    """

    title = "Ledger"
    about = "where every input row went"

    file: str
    input_rows: int
    used_rows: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[int]] = field(default_factory=dict)
    orders: int = 0
    customers: int = 0
    observation_end: pd.Timestamp | None = None
    sha256: str | None = None
    kind: str = "orders"
    timezone: str | None = None
    warnings: list[str] = field(default_factory=list)
    settings: Settings | None = None
    returns: dict = field(default_factory=lambda: {"reversal_lines": 0, "matched": 0, "unmatched": 0,
                                                   "orders_fully_reversed": 0, "amount_netted": 0.0})
    truncation: dict = field(default_factory=lambda: {"left_truncated": False, "evidence": "", "lead_in_days": 0})
    #: how this read used the validation cache (:mod:`crmlab.engine.cache`): ``{"status":
    #: "stored" | "reused", "seconds": ..., "created": ...}``; empty when it was not used
    cache: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.used_rows = self.input_rows

    def exclude(self, reason: str, mask: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Count rows of ``mask`` under ``reason``; return the complement (rows kept)."""
        n = int(mask.sum())
        if n:
            self.excluded[reason] = self.excluded.get(reason, 0) + n
            self.examples.setdefault(reason, [int(r) + 1 for r in rows[mask][:5]])
            self.used_rows -= n
        return ~mask

    @property
    def excluded_rows(self) -> int:
        return int(sum(self.excluded.values()))

    def check(self) -> None:
        """Assert the ledger balances (used + excluded == input)."""
        if self.used_rows + self.excluded_rows != self.input_rows:  # pragma: no cover
            raise AssertionError(f"ledger does not balance: {self.to_dict()}")

    @property
    def context(self) -> Settings:
        """The settings the rows were read under, with the ledger's time zone."""
        s = self.settings if isinstance(self.settings, Settings) else current()
        return s.replace(timezone=self.timezone) if self.timezone and self.timezone != s.timezone else s

    def to_dict(self) -> dict:
        """The ledger as stored in a clean file's metadata and printed by ``crmlab validate --json``."""
        d = {
            "file": self.file,
            "input_rows": self.input_rows,
            "used_rows": self.used_rows,
            ("orders" if self.kind == "orders" else "messages"): self.orders,
            "customers": self.customers,
            "excluded": dict(self.excluded),
            "examples": {k: list(v) for k, v in self.examples.items()},
            "observation_end": None if self.observation_end is None else str(self.observation_end),
            "timezone": self.timezone,
            "warnings": list(self.warnings),
        }
        if self.kind == "orders":
            d["returns"] = dict(self.returns)
            d["truncation"] = dict(self.truncation)
        if self.sha256:
            d["sha256"] = self.sha256
        return d

    def to_frame(self) -> pd.DataFrame:
        """The ledger as a table for reports: one line per outcome, rows and share."""
        rows = [("used", self.used_rows, "")]
        rows += [(f"excluded: {k}", v, ", ".join(map(str, self.examples.get(k, []))))
                 for k, v in self.excluded.items()]
        rows.append(("input", self.input_rows, ""))
        df = pd.DataFrame(rows, columns=["rows", "count", "example rows"]).set_index("rows")
        df["share"] = df["count"] / max(self.input_rows, 1)
        return df

    def _card(self) -> Card:
        f = self.fmt
        what = "orders" if self.kind == "orders" else "messages"
        finding = (f"{self.file}: {f.integer(self.used_rows)} of {f.integer(self.input_rows)} rows used, "
                   f"{f.integer(self.excluded_rows)} excluded; {f.integer(self.orders)} {what}, "
                   f"{f.integer(self.customers)} customers")
        t = self.to_frame()
        table = pd.DataFrame({"rows": [f.integer(v) for v in t["count"]],
                              "share": [f.pct(v) for v in t["share"]],
                              "example rows": list(t["example rows"])}, index=t.index)
        table.index.name = None
        lead_in = lead_in_sentence(self.truncation)
        notes = tuple(self.warnings) + ((self.truncation["evidence"],) if self.truncation.get("left_truncated") else ()) \
            + ((lead_in,) if lead_in else ())
        return Card(self.title, self.about, finding, table, notes=notes,
                    settings=self.footer(observation_end=self.observation_end),
                    hint=".to_frame() for the table; .examples for the first excluded rows")


def lead_in_sentence(truncation: dict) -> str:
    """One sentence on the lead-in used ("" when none)."""
    days = int(truncation.get("lead_in_days") or 0)
    if days <= 0 or not truncation.get("history_start"):
        return ""
    start = pd.Timestamp(truncation["history_start"])
    why = ("the default for an export that looks like it starts in the middle of the store's life; "
           "lead_in_days=0 (--lead-in-days 0) turns it off, history_start (--history-start) sets another end"
           if truncation.get("lead_in") == "default" else "as asked")
    return (f"The first {days:,} days of the export (to {start - pd.Timedelta(days=1):%d %b %Y}) are history only "
            f"({why}): customers first seen there count as existing customers, never new; cohorts, first-time "
            f"buyers and order counts start on {start:%d %b %Y}, while lifecycle and CLV use the whole history.")
