"""SMS copy and billing (短信文案与计费).

China carriers bill every character (Chinese, Latin, digit, punctuation, the 【】 of the
signature) as one: up to 70 characters is one billed message, a longer text is split into
parts of 67, each billed. GSM-7 texts (outside China) fit 160 characters, 153 per part,
with extension characters (``{ } [ ] ~ \\ | ^ €`` and form feed) counting two; any
character outside GSM-7 makes the text UCS-2: 70, and 67 per part.
"""
from __future__ import annotations

import math
import re
import string
from typing import Mapping

__all__ = ["SmsTemplateError", "render", "check_copy", "sms_segments", "sms_cost", "GSM7_BASIC", "GSM7_EXTENSION"]

GSM7_BASIC = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                 "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = set("^{}\\[~]|€\f")


class SmsTemplateError(KeyError):
    """A template field has no value in the row."""

    def __str__(self) -> str:
        return str(self.args[0])


def render(template: str, row: Mapping[str, object]) -> str:
    """Fill ``{nickname}``, ``{store}``, ``{offer}``, ... from ``row``.

    Raises
    ------
    SmsTemplateError
        Naming every field the template needs that the row lacks (or has empty).
    """
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    missing = [f for f in fields if f not in row or row[f] is None or str(row[f]) == ""]
    if missing:
        raise SmsTemplateError(f"template needs {', '.join(repr(f) for f in missing)}, missing from the row "
                               f"(row has: {', '.join(map(str, row.keys()))})")
    return template.format(**{k: row[k] for k in fields})


_PARTS = {
    "greeting/nickname 昵称": re.compile(r"^(亲|亲爱的|尊敬的|Hi|您好)|\{nickname\}"),
    "theme 营销主题": re.compile(r"双11|双十一|双12|618|上新|新品|周年|会员日|节|生日|预热|大促|清仓|回馈"),
    "activity time 活动时间": re.compile(r"\d+月\d+日|\d+[日号]|\d+点|\d{1,2}:\d{2}|今天|今晚|明天|即将|限时|截止|至"),
    "offer 促销点": re.compile(r"\d+元|减\d+|\d+折|券|秒杀|包邮|赠|红包|优惠"),
    "store signature 【店铺】": re.compile(r"【[^【】]+】"),
}


def check_copy(text: str) -> dict:
    """Which of the seeds' copy parts the text has (nickname + theme + time + offer + 【store】).

    Returns ``{"parts": {part: bool}, "missing": [...], "ok": bool}``; ``ok`` needs the
    store signature and no more than one other part missing.
    """
    parts = {name: bool(p.search(text)) for name, p in _PARTS.items()}
    missing = [k for k, v in parts.items() if not v]
    ok = parts["store signature 【店铺】"] and len(missing) <= 1
    return {"parts": parts, "missing": missing, "ok": ok}


def sms_segments(text: str, scheme: str = "cn") -> int:
    """Billed messages for ``text``.

    ``scheme="cn"``: every character counts 1; <= 70 -> 1, else ceil(n / 67).
    ``scheme="gsm"``: GSM-7 160 / 153 (extension characters count 2); UCS-2 70 / 67.
    """
    if scheme == "cn":
        n = len(text)
        return 1 if n <= 70 else math.ceil(n / 67)
    if scheme == "gsm":
        if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
            n = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
            return 1 if n <= 160 else math.ceil(n / 153)
        n = len(text.encode("utf-16-le")) // 2  # UCS-2 code units (an emoji takes two)
        return 1 if n <= 70 else math.ceil(n / 67)
    raise ValueError(f"scheme must be 'cn' or 'gsm', not {scheme!r}")


def sms_cost(text: str, scheme: str = "cn", price: float = 0.05) -> dict:
    """``{"characters", "segments", "cost"}`` for one message at ``price`` per billed message."""
    seg = sms_segments(text, scheme)
    return {"characters": len(text), "segments": seg, "cost": round(seg * price, 6), "scheme": scheme}
