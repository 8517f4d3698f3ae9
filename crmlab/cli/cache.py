"""``crmlab cache list|clear``: the validation cache (:mod:`crmlab.engine.cache`)."""
from __future__ import annotations

import datetime as _dt

from crmlab.cli.common import emit
from crmlab.engine import cache
from crmlab.schema import CrmlabInputError

__all__ = ["cmd_cache"]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def cmd_cache(a) -> int:
    """List the cached exports (newest use first) or clear them; only crmlab's entries are touched."""
    try:
        d = cache.cache_dir(a.cache_dir)
    except OSError as e:
        raise CrmlabInputError(f"--cache-dir {a.cache_dir or '(default)'}: cannot use it as the cache folder "
                               f"({e.strerror or e})") from None
    if a.action == "clear":
        n = cache.clear(d)
        emit({"cache_dir": str(d), "removed": n}, a.json, lambda o: f"removed {n} cached export(s) from {d}")
        return 0
    rows = [{"key": e.key, "source": e.source, "bytes": e.bytes,
             "created": _dt.datetime.fromtimestamp(e.created).isoformat(timespec="seconds"),
             "last_used": _dt.datetime.fromtimestamp(e.used).isoformat(timespec="seconds")}
            for e in cache.entries(d)]
    total = sum(r["bytes"] for r in rows)

    def text(o: dict) -> str:
        lines = [f"{d}: {len(rows)} cached export(s), {_size(total)}"]
        lines += [f"  {r['last_used']}  {_size(r['bytes']):>10}  {r['source']}" for r in rows]
        return "\n".join(lines)

    emit({"cache_dir": str(d), "entries": rows, "bytes": total}, a.json, text)
    return 0
