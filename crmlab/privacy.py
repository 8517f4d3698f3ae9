"""Personal data in shared reports: find phone-shaped strings and known names in HTML.

Shared reports never show a customer's phone number, name or nickname. The runner scans
every HTML it writes with :func:`find_pii`; the tests scan for the sample's nicknames too.
"""
from __future__ import annotations

import re
from typing import Iterable

__all__ = ["find_pii", "PHONE_PATTERN"]

#: China mobile-shaped numbers: 11 digits starting with 1, optionally spaced or dashed
#: (1XX XXXX XXXX), or masked in the middle (1XX****XXXX).
PHONE_PATTERN = re.compile(
    r"(?<![0-9A-Za-z])(?:\+?86[\s-]?)?1\d{2}(?:[\s-]?\d{4}[\s-]?\d{4}|\*{4}\d{4})(?![0-9A-Za-z])")
_DATA_URI = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+")


def find_pii(text: str, names: Iterable[str] = ()) -> list[str]:
    """Phone-shaped strings, and any of ``names``, found in ``text`` (embedded images skipped)."""
    text = _DATA_URI.sub("", text)
    hits = PHONE_PATTERN.findall(text)
    hits += [n for n in names if n and n in text]
    return hits
