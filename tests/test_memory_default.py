"""DuckDB's default memory limit (crmlab.engine.connection.default_memory_limit): a command's peak
RSS must stay within half of RAM (a 16 GiB laptop: 8 GiB), and the overrides keep working.

The expected limits are the formula ``min(40% of RAM, max(RAM / 2 - 2 GiB, 25% of RAM))`` worked
by hand; the RSS figures behind the 2 GiB headroom are in docs/benchmarks.md (benchmarks/bench_scale.py
``--parts limits``)."""
from __future__ import annotations

import pytest

from crmlab.engine import connection as c
from crmlab.schema import CrmlabInputError
from crmlab.settings import configure, current

GiB = 2 ** 30


@pytest.mark.parametrize("ram_gib, limit", [
    (16, "6144MiB"),    # min(6.4, max(8 - 2, 4)) = 6 GiB = 6144 MiB
    (8, "2048MiB"),     # min(3.2, max(2, 2)) = 2 GiB
    (4, "1024MiB"),     # min(1.6, max(0, 1)) = 1 GiB
    (64, "26214MiB"),   # min(25.6, 30) = 25.6 GiB = 26214.4 MiB
    (1, "256MiB"),      # a quarter of RAM
])
def test_the_default_limit_follows_the_formula(ram_gib, limit):
    assert c.default_memory_limit(ram_gib * GiB) == limit


@pytest.mark.parametrize("ram_gib", [4, 8, 15.4, 16, 24, 32, 64, 256])
def test_the_default_leaves_room_within_half_of_ram(ram_gib):
    """Limit plus the measured non-DuckDB share of peak RSS (at most 1.1 GiB at 100M orders; the
    headroom allows 2) stays within half of RAM from 8 GiB up (below that a quarter of RAM is kept)."""
    total = int(ram_gib * GiB)
    limit = int(c.default_memory_limit(total).removesuffix("MiB")) * 2 ** 20
    assert limit <= 0.4 * total + 2 ** 20
    if ram_gib >= 8:
        assert limit + 2 * GiB <= total / 2 + 2 ** 20


def test_the_machine_default_and_its_overrides(monkeypatch):
    monkeypatch.delenv(c.MEMORY_ENV, raising=False)
    assert current().memory_limit is None
    assert c.memory_limit_of(None) == c.default_memory_limit(c.physical_memory())
    monkeypatch.setenv(c.MEMORY_ENV, "1.5GB")
    assert c.memory_limit_of(None) == "1.5GB"
    monkeypatch.setenv(c.MEMORY_ENV, "25%")
    assert c.memory_limit_of(None) == f"{int(0.25 * c.physical_memory() / 2 ** 20)}MiB"
    monkeypatch.setenv(c.MEMORY_ENV, "lots")
    with pytest.raises(CrmlabInputError, match=c.MEMORY_ENV):
        c.memory_limit_of(None)
    configure(memory_limit="700MB")
    try:
        assert c.memory_limit_of(None) == "700MB"  # the session's setting comes before the variable
    finally:
        configure(memory_limit=None)


def test_a_connection_gets_the_default_limit(monkeypatch):
    monkeypatch.delenv(c.MEMORY_ENV, raising=False)
    con = c.local_duckdb()
    got = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]  # e.g. '9.4 GiB'
    value, unit = got.split()
    want = int(c.default_memory_limit().removesuffix("MiB")) / {"MiB": 1, "GiB": 1024}[unit]
    assert abs(float(value) - want) <= 0.051 * max(want, 1)
    assert c.connect("duckdb", memory_limit="300MB").con.con.execute(
        "SELECT current_setting('memory_limit')").fetchone()[0] in ("286.1 MiB", "286.0 MiB")
