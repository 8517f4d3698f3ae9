"""The validation cache (crmlab.engine.cache): an export is validated once; later commands reuse
the clean copy; a touched or edited export, or other reading options, never get a stale entry;
only crmlab's entries are listed, evicted or cleared; a failed write leaves nothing behind."""
from __future__ import annotations

import json
import os
import stat

import pytest

from crmlab.cli.main import main
from crmlab.engine import cache
from crmlab.engine.loading import load

ROWS = ("customer_id,order_id,order_time,amount,status\n"
        "a,o1,2025-01-01 10:00,10,paid\nb,o2,2025-01-02 11:00,20,paid\na,o3,2025-02-03 12:00,30,paid\n"
        "c,o4,2025-02-04 13:00,5,unpaid\n")


@pytest.fixture
def export(tmp_path):
    p = tmp_path / "orders.csv"
    p.write_text(ROWS, encoding="utf-8")
    return p


def _retention(args, capsys):
    assert main(["retention", "--days", "1,30", "--json", *args]) == 0
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def test_the_second_command_reuses_the_first_ones_validation_with_identical_results(export, tmp_path, capsys):
    d = tmp_path / "cache"
    first = load(str(export), cache=str(d))[1]
    assert first.cache["status"] == "stored"
    again_o, again = load(str(export), cache=str(d))
    assert again.cache["status"] == "reused" and again.to_dict() == first.to_dict()
    assert again_o.source == "orders.csv"  # the export's name, never the cache's local path
    cached, _ = _retention(["--orders", str(export), "--cache-dir", str(d)], capsys)
    fresh, _ = _retention(["--orders", str(export), "--no-cache"], capsys)
    assert cached == fresh
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700  # it holds customer ids


def test_the_command_says_what_the_cache_did(export, tmp_path, capsys):
    d = str(tmp_path / "c")
    assert main(["validate", "--orders", str(export), "--cache-dir", d]) == 0
    assert "cached the clean copy" in capsys.readouterr().err
    assert main(["validate", "--orders", str(export), "--cache-dir", d]) == 0
    assert "reused the validated copy" in capsys.readouterr().err


def test_a_touched_or_edited_export_is_validated_again(export, tmp_path):
    d = str(tmp_path / "cache")
    load(str(export), cache=d)
    st = os.stat(export)
    os.utime(export, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touched
    assert load(str(export), cache=d)[1].cache["status"] == "stored"
    st = os.stat(export)
    export.write_text(ROWS.replace("a,o3,2025-02-03 12:00,30", "a,o3,2025-02-03 12:00,31"), encoding="utf-8")
    os.utime(export, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same time: only the content differs
    o, led = load(str(export), cache=d)
    assert led.cache["status"] == "stored"
    assert float(o.engine.to_pandas(o.table.amount.sum().name("s").as_table())["s"].iloc[0]) == 66.0


def test_other_reading_options_get_their_own_entry(export, tmp_path):
    d = str(tmp_path / "cache")
    load(str(export), cache=d)
    assert load(str(export), cache=d, timezone="Europe/London")[1].cache["status"] == "stored"
    assert load(str(export), cache=d, observation_end="2025-01-31")[1].cache["status"] == "stored"
    assert len(cache.entries(cache.cache_dir(d))) == 3
    assert load(str(export), cache=False)[1].cache == {}


def test_list_and_clear_touch_only_crmlab_entries(export, tmp_path, capsys):
    d = tmp_path / "cache"
    load(str(export), cache=str(d))
    (d / "mine.txt").write_text("not crmlab's")
    (d / "folder").mkdir()
    assert main(["cache", "list", "--cache-dir", str(d), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed["entries"]) == 1 and listed["entries"][0]["source"].endswith("orders.csv")
    assert main(["cache", "clear", "--cache-dir", str(d)]) == 0
    assert "removed 1" in capsys.readouterr().out
    assert sorted(p.name for p in d.iterdir()) == ["folder", "mine.txt"]


def test_a_failed_write_leaves_nothing_and_a_dead_process_leftover_is_swept(tmp_path):
    d = cache.cache_dir(tmp_path / "cache")

    def broken(path):
        open(path, "w").write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.store("k1", d, broken, source="x")
    assert list(d.iterdir()) == []
    (d / ".tmp-999999999-1").mkdir()  # a killed command's half entry (no such process)
    cache.store("k2", d, lambda p: open(p, "w").write("ok"), source="x")
    assert [p.name for p in d.iterdir()] == ["k2"]


def test_the_size_cap_evicts_the_least_recently_used(tmp_path):
    d = cache.cache_dir(tmp_path / "cache")
    for i, key in enumerate(("old", "mid", "new")):
        cache.store(key, d, lambda p: open(p, "wb").write(b"x" * 1000), source=key, max_bytes=10 ** 9)
        os.utime(d / key / "entry.json", (1_000_000 + i, 1_000_000 + i))
    cache.lookup("old", d)  # used now: the most recent
    assert cache.evict(d, max_bytes=2500) == ["mid"]
    assert {e.key for e in cache.entries(d)} == {"old", "new"}


def test_an_unusable_cache_folder_is_one_line_or_no_cache(export, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    o, led = load(str(export), cache=str(blocker / "cache"))  # cannot be made: validated without it
    assert led.cache["status"] == "not stored" and led.used_rows == 4
    assert main(["cache", "list", "--cache-dir", str(blocker / "cache")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("crmlab: error: --cache-dir") and "Traceback" not in err[0]
    assert main(["validate", "--orders", str(export), "--cache-dir", str(blocker / "cache")]) == 0
    assert "validation cache was not used" in capsys.readouterr().err
