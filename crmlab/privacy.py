"""Personal data and local paths in shared reports.

Shared reports never show a customer's phone number, name or nickname, nor a local
absolute path. The runner scans every artefact of a run (each HTML, each executed
notebook, the CSV lists, ``index.html``, ``run.json``) with :func:`find_pii`; the tests
scan for the sample's nicknames too. Reports that must show customer ids which may be
phone numbers show :func:`mask_ids` of them instead.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from typing import Iterable

__all__ = ["find_pii", "PHONE_PATTERN", "redact", "mask_id", "mask_ids", "run_salt", "scrub_paths",
           "SALT_ENV"]

#: China mobile-shaped numbers: 11 digits starting with 1, optionally spaced or dashed
#: (1XX XXXX XXXX), or masked in the middle (1XX****XXXX). This also matches the simulated
#: store's ``10X``-prefixed fake phones.
PHONE_PATTERN = re.compile(
    r"(?<![0-9A-Za-z])(?:\+?86[\s-]?)?1\d{2}(?:[\s-]?\d{4}[\s-]?\d{4}|\*{4}\d{4})(?![0-9A-Za-z])")
_DATA_URI = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+")

#: environment variable through which the runner gives every notebook of a run one salt
SALT_ENV = "CRMLAB_MASK_SALT"
_PROCESS_SALT = secrets.token_hex(8)


def find_pii(text: str, names: Iterable[str] = ()) -> list[str]:
    """Phone-shaped strings, and any of ``names``, found in ``text`` (embedded images skipped)."""
    text = _DATA_URI.sub("", text)
    hits = PHONE_PATTERN.findall(text)
    hits += [n for n in names if n and n in text]
    return hits


def redact(text: str, replacement: str = "[phone]") -> str:
    """``text`` with every phone-shaped string replaced (for error messages and file names)."""
    return PHONE_PATTERN.sub(replacement, text)


def run_salt() -> str:
    """The salt of this run: the runner's (``$CRMLAB_MASK_SALT``, the same in every notebook
    of a run, new for each run), else one random salt for this process."""
    return os.environ.get(SALT_ENV) or _PROCESS_SALT


def mask_id(customer_id, salt: str | None = None) -> str:
    """A customer id as a salted short hash, ``c`` + 10 hex digits (``c3f9a01b2c4d``).

    The same id and salt give the same mask, so a masked id is stable within a run (join
    tables, follow a customer across a report) but cannot be looked up or linked across
    runs. Never phone-shaped, whatever the id. ``salt`` defaults to :func:`run_salt`.
    """
    salt = run_salt() if salt is None else str(salt)
    h = hashlib.sha256(f"{salt}\x00{customer_id}".encode("utf-8")).hexdigest()
    return "c" + h[:10]


def mask_ids(series, salt: str | None = None):
    """:func:`mask_id` of every value of a pandas Series (or Index), hashing each distinct id once."""
    import pandas as pd

    salt = run_salt() if salt is None else str(salt)
    s = pd.Series(series) if isinstance(series, pd.Index) else series
    uniq = pd.unique(s.dropna())
    mapping = {u: mask_id(u, salt) for u in uniq}
    out = s.map(mapping)
    return pd.Index(out, name=series.name) if isinstance(series, pd.Index) else out


def scrub_paths(text: str, roots: Iterable[tuple[str, str]]) -> str:
    """Replace each local directory ``root`` by its stand-in (longest first): ``roots`` is
    pairs ``(root, stand_in)``, e.g. ``(run_dir, ".")``, ``(home, "~")``."""
    for root, stand_in in sorted({(r, s) for r, s in roots if r and len(r) > 1},
                                 key=lambda rs: -len(rs[0])):
        if root in text:  # a whole directory name only: /srv/x, not /srv/xyz
            text = re.sub(re.escape(root) + r"(?![\w.-])", lambda m: stand_in, text)
    return text
