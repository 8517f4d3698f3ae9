"""The validation cache's hash memo (crmlab.engine.cache): a later command on an unchanged big
export skips hashing it again, but a touched, edited or replaced export is always hashed again,
and a hash taken too soon after the export's last change is never trusted."""
from __future__ import annotations

import hashlib
import os

import pytest

from crmlab.engine import cache


@pytest.fixture
def counted(monkeypatch):
    """How many times the export's content was hashed."""
    calls = []
    real = cache._hash_file

    def spy(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(cache, "_hash_file", spy)
    return calls


def _blake(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def test_an_unchanged_export_is_hashed_once(tmp_path, counted, monkeypatch):
    monkeypatch.setattr(cache, "RACY_SECONDS", -60)  # the export was written just now
    d, f = cache.cache_dir(tmp_path / "c"), tmp_path / "orders.csv"
    f.write_bytes(b"a,b\n1,2\n")
    key = cache.export_key(f, {"timezone": None}, memo_dir=d)
    assert cache.export_key(f, {"timezone": None}, memo_dir=d) == key == cache.export_key(f, {"timezone": None})
    assert len(counted) == 2  # the memo's first hash, then the call without a memo
    assert cache._content_hash(f.resolve(), d) == _blake(b"a,b\n1,2\n") and len(counted) == 2


def test_a_touched_edited_or_replaced_export_is_hashed_again(tmp_path, counted, monkeypatch):
    monkeypatch.setattr(cache, "RACY_SECONDS", -60)
    d, f = cache.cache_dir(tmp_path / "c"), (tmp_path / "orders.csv")
    f.write_bytes(b"a,b\n1,2\n")
    f = f.resolve()
    cache._content_hash(f, d)
    st = os.stat(f)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))  # touched
    cache._content_hash(f, d)
    assert len(counted) == 2
    st = os.stat(f)
    f.write_bytes(b"a,b\n1,3\n")  # same size, then the old time put back: only ctime tells
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache._content_hash(f, d) == _blake(b"a,b\n1,3\n") and len(counted) == 3
    other = tmp_path / "new.csv"
    other.write_bytes(b"a,b\n1,4\n")
    os.replace(other, f)  # replaced by another file
    assert cache._content_hash(f, d) == _blake(b"a,b\n1,4\n") and len(counted) == 4


def test_a_hash_taken_right_after_a_change_is_never_trusted(tmp_path, counted):
    d, f = cache.cache_dir(tmp_path / "c"), (tmp_path / "orders.csv")
    f.write_bytes(b"x")
    for _ in range(3):  # written within RACY_SECONDS of each hash: hashed every time
        cache._content_hash(f.resolve(), d)
    assert len(counted) == 3


def test_a_broken_memo_is_ignored_and_clear_removes_it(tmp_path, counted, monkeypatch):
    monkeypatch.setattr(cache, "RACY_SECONDS", -60)
    d, f = cache.cache_dir(tmp_path / "c"), (tmp_path / "orders.csv")
    f.write_bytes(b"x")
    (d / ".hashes.json").write_text("{not json")
    assert cache._content_hash(f.resolve(), d) == _blake(b"x")
    assert cache._content_hash(f.resolve(), d) == _blake(b"x") and len(counted) == 1  # rewritten, then used
    (d / "mine.txt").write_text("not crmlab's")
    cache.clear(d)
    assert sorted(p.name for p in d.iterdir()) == ["mine.txt"]
