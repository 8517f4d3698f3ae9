"""The validation cache: an export is validated once, and every later command reuses it.

Validating a raw export is most of a command's time on a big store (30M orders: ~30 s of a
~40 s command). The first command that validates an export keeps the clean Parquet it made
(with its ledger in the file's metadata, :func:`crmlab.engine.sources.write_clean`) in a cache
folder; later commands on the same export with the same reading options read that file instead.

* **Key**: the export's identity — absolute path, size, modification time and a BLAKE2b hash of
  its whole content — and every option that changes validation (column mapping, time zone,
  decimal mark, date order, observation end, returns and history options, the crmlab version).
  A touched or edited export gets a new key: a stale entry is never served.
* **Folder**: ``--cache-dir``, else ``CRMLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/crmlab`` (default
  ``~/.cache/crmlab``); created with permissions 0700, since entries hold customer ids.
* **Entries** are folders ``<key>/`` holding ``orders.parquet`` and ``entry.json``; only such
  folders are ever listed, evicted or cleared — nothing else in the folder is touched. An entry
  is written under a temporary name and renamed into place, so a killed command leaves no
  half entry; temporary folders of processes that no longer run are removed on the next write.
* **Size cap**: ``CRMLAB_CACHE_MAX`` (default 20 GB); the least recently used entries go first.
* **Hash memo**: hashing a big export is a second or more per command (30M orders, 0.8 GB);
  ``.hashes.json`` in the cache folder remembers an export's hash with its file identity (device,
  inode, size, modification and change times in ns). It is used only when all of them are unchanged
  and the hash was taken more than :data:`RACY_SECONDS` after the last change (a write in the same
  clock tick as the hash could otherwise go unseen, git's "racily clean" case); the change time
  (ctime) cannot be set back by a user, so a touched, edited or replaced export is always hashed again.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from crmlab._version import __version__
from crmlab.engine.scratch import alive

__all__ = ["CacheEntry", "cache_dir", "export_key", "lookup", "store", "entries", "clear", "evict",
           "DEFAULT_MAX_BYTES"]

#: the cache's default size cap (CRMLAB_CACHE_MAX overrides it, in bytes or with a unit: 5GB)
DEFAULT_MAX_BYTES = 20 * 1024 ** 3
_ENTRY = "entry.json"
_DATA = "orders.parquet"
_TMP = ".tmp-"
_CHUNK = 16 * 1024 * 1024
_MEMO = ".hashes.json"
#: exports whose hashes the memo keeps (the most recently hashed)
MEMO_SIZE = 256
#: a remembered hash is trusted only when taken this many seconds after the export's last change
RACY_SECONDS = 2


@dataclass(frozen=True)
class CacheEntry:
    """One cached export: its key, clean file, size, the export it came from and when."""

    key: str
    path: Path
    bytes: int
    source: str
    created: float
    used: float


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The cache folder (created, mode 0700): ``explicit``, ``CRMLAB_CACHE_DIR``, else the user's
    cache folder (``$XDG_CACHE_HOME/crmlab`` or ``~/.cache/crmlab``)."""
    chosen = explicit or os.environ.get("CRMLAB_CACHE_DIR")
    if not chosen:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        chosen = os.path.join(base, "crmlab")
    d = Path(chosen).expanduser().resolve()
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def _hash_file(path: Path) -> str:
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _identity(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def _read_memo(directory: Path) -> dict:
    try:
        memo = json.loads((directory / _MEMO).read_text())
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def _write_memo(directory: Path, memo: dict) -> None:
    """Write the memo whole (the newest :data:`MEMO_SIZE` exports), renamed into place."""
    keep = dict(sorted(memo.items(), key=lambda kv: kv[1].get("at_ns", 0))[-MEMO_SIZE:])
    tmp = directory / f"{_MEMO}.{os.getpid()}"
    try:
        tmp.write_text(json.dumps(keep))
        os.replace(tmp, directory / _MEMO)
    except OSError:  # a memo that cannot be written only costs the next command a hash
        tmp.unlink(missing_ok=True)


def _content_hash(path: Path, memo_dir: Path | None = None) -> str:
    """BLAKE2b of the file's content; with ``memo_dir``, remembered there by the file's identity
    (see the module doc: never trusted for a file changed within :data:`RACY_SECONDS` of its hash)."""
    st = path.stat()
    if memo_dir is None:
        return _hash_file(path)
    memo = _read_memo(memo_dir)
    seen = memo.get(str(path))
    changed = max(st.st_mtime_ns, st.st_ctime_ns)
    if (isinstance(seen, dict) and seen.get("identity") == _identity(st)
            and int(seen.get("at_ns", 0)) - changed > RACY_SECONDS * 10 ** 9 and seen.get("hash")):
        return str(seen["hash"])
    at_ns = time.time_ns()
    digest = _hash_file(path)
    if path.stat().st_ctime_ns == st.st_ctime_ns:  # unchanged while hashing
        memo[str(path)] = {"identity": _identity(st), "hash": digest, "at_ns": at_ns}
        _write_memo(memo_dir, memo)
    return digest


def export_key(path: str | os.PathLike, options: Mapping[str, object], memo_dir: Path | None = None) -> str:
    """The cache key of an export read with ``options`` (every option that changes validation).

    The export's absolute path, size, modification time (ns) and content hash, the options
    (sorted, as text) and the crmlab version, hashed together. ``memo_dir`` (the cache folder):
    the content hash is remembered there (see the module doc)."""
    p = Path(path).resolve()
    st = p.stat()
    ident = {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "content": _content_hash(p, memo_dir),
             "options": {k: None if v is None else str(v) for k, v in sorted(options.items())},
             "crmlab": __version__}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def _entry(folder: Path) -> CacheEntry | None:
    meta, data = folder / _ENTRY, folder / _DATA
    if folder.name.startswith(_TMP) or not (meta.is_file() and data.is_file()):
        return None
    try:
        m = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    return CacheEntry(key=folder.name, path=data, bytes=data.stat().st_size, source=str(m.get("source", "")),
                      created=float(m.get("created", 0)), used=float(meta.stat().st_mtime))


def lookup(key: str, directory: Path) -> Path | None:
    """The clean file cached under ``key``, or None; a hit marks the entry as recently used."""
    e = _entry(directory / key)
    if e is None:
        return None
    os.utime(directory / key / _ENTRY)
    return e.path


def _sweep_temporaries(directory: Path) -> None:
    """Remove half-written entries of processes that no longer run."""
    for d in directory.glob(_TMP + "*"):
        try:
            pid = int(d.name[len(_TMP):].split("-")[0])
        except ValueError:
            continue
        if d.is_dir() and not alive(pid):
            shutil.rmtree(d, ignore_errors=True)


def store(key: str, directory: Path, write: Callable[[str], object], source: str,
          max_bytes: int | None = None) -> Path:
    """Write an entry: ``write(path)`` writes the clean Parquet; the folder is renamed into place
    when it is complete (removed if ``write`` fails). Returns the cached file's path."""
    _sweep_temporaries(directory)
    tmp = directory / f"{_TMP}{os.getpid()}-{time.monotonic_ns()}"
    tmp.mkdir(mode=0o700)
    try:
        write(str(tmp / _DATA))
        (tmp / _ENTRY).write_text(json.dumps({"source": source, "created": time.time(), "crmlab": __version__}))
        final = directory / key
        if final.exists():  # another command cached it meanwhile: theirs is as good
            shutil.rmtree(tmp)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    evict(directory, max_bytes, keep=key)
    return directory / key / _DATA


def entries(directory: Path) -> list[CacheEntry]:
    """The cache's entries, most recently used first."""
    found = [e for d in directory.iterdir() if d.is_dir() and (e := _entry(d)) is not None]
    return sorted(found, key=lambda e: e.used, reverse=True)


def _max_bytes(max_bytes: int | None) -> int:
    if max_bytes is not None:
        return max_bytes
    text = os.environ.get("CRMLAB_CACHE_MAX", "").strip().upper()
    if not text:
        return DEFAULT_MAX_BYTES
    for unit, factor in (("TB", 1024 ** 4), ("GB", 1024 ** 3), ("MB", 1024 ** 2), ("KB", 1024), ("B", 1)):
        if text.endswith(unit):
            return int(float(text[:-len(unit)]) * factor)
    return int(text)


def evict(directory: Path, max_bytes: int | None = None, keep: str | None = None) -> list[str]:
    """Remove the least recently used entries until the cache fits ``max_bytes`` (never
    ``keep``). Returns the keys removed."""
    cap, removed = _max_bytes(max_bytes), []
    live = entries(directory)
    total = sum(e.bytes for e in live)
    for e in reversed(live):
        if total <= cap:
            break
        if e.key == keep:
            continue
        shutil.rmtree(directory / e.key, ignore_errors=True)
        total -= e.bytes
        removed.append(e.key)
    return removed


def clear(directory: Path) -> int:
    """Remove every entry (only crmlab's entry folders) and the hash memo. Returns how many entries."""
    live = entries(directory)
    for e in live:
        shutil.rmtree(directory / e.key, ignore_errors=True)
    _sweep_temporaries(directory)
    (directory / _MEMO).unlink(missing_ok=True)
    return len(live)
