"""Screening in SQL gives exactly what the reference (pandas) screening gives, line by line.

The reference is :func:`crmlab.ingest.screening.screen_lines`, whose behaviour the
bad-input tests pin; the SQL pass types only forms it can type identically and hands the
rest to the reference. Here both screen the same awkward lines and must agree on every
reason and every typed value.
"""
from __future__ import annotations

import itertools

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from crmlab.ingest.screening import screen_lines
from crmlab.ingest.screening_sql import WHITESPACE, screen_export

ZONE = "Asia/Shanghai"
NOW = pd.Timestamp("2026-01-01 00:00:00")

TIMES = ["2024-03-05 10:20:30", "2024-03-05T10:20:30", "2024-03-05", "2024-03-05 10:20", "2024-03-05 10:20:30.123456",
         "2024-03-05 10:20:30.1234567", "2024-03-05 10:20:30+08:00", "2024-03-05T02:20:30Z", "2024-03-05 10:20:30 UTC",
         "05/03/2024 10:20", "2024/03/05 10:20:30", "2024-02-30 10:00:00", "2024-01-01 24:00:00", "1600-01-01",
         "2300-01-01", "1700-01-01 00:00:00", "2259-12-31 23:59:59", "2030-01-01 00:00:00", "", "  ", None,
         "\u30002024-03-05 10:20:30\u3000", " 2024-03-05 10:20:30 ", "yesterday", "2024-3-5 1:02:03",
         "20240305 102030", "2024-03-05 10:20:60"]
AMOUNTS = ["12.50", "12", "-5", "+7.25", "1,234.50", "12,50", "¥12.00", "￥8", "nan", "NaN", "inf", "-inf", "", None,
           "  7 ", "1e3", "0x10", "１２", "123456789.123456", "1234567890.5", "0.1234567", ".5", "5.", "abc"]
IDS = ["C1", " C1", "C1\u3000", "\u00a0C2\u2003", "", "  ", None, "客户1", "C 3"]
STATUSES = ["paid", "PAID", " Paid ", "交易成功", "unpaid", "退款成功", "", None, "weird", "交易关闭"]


def _lines(n: int = 2000, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pick = lambda xs: [xs[i] for i in rng.integers(0, len(xs), n)]  # noqa: E731
    df = pd.DataFrame({"customer_id": pick(IDS), "order_id": pick(IDS), "order_time": pick(TIMES),
                       "amount": pick(AMOUNTS), "status": pick(STATUSES), "channel": pick(IDS)})
    # every value of each list at least once, with otherwise clean lines
    for col, xs in (("order_time", TIMES), ("amount", AMOUNTS), ("customer_id", IDS), ("status", STATUSES)):
        for i, x in enumerate(xs):
            df.loc[len(df)] = {"customer_id": "C9", "order_id": f"O{col}{i}", "order_time": "2024-01-02 03:04:05",
                               "amount": "9.5", "status": "paid", "channel": "app", col: x}
    return df.astype("string[pyarrow]")


def _both(df: pd.DataFrame, **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    kw = {"decimal": ".", "dayfirst": True, **kw}
    ref = screen_lines(df, 0, zone=_zone(), now=NOW, where="t", keep_pii=False, **kw)
    con = duckdb.connect()
    raw = df.copy()
    raw.insert(0, "__row", np.arange(len(df), dtype=np.int64))
    con.register("raw_df", pa.Table.from_pandas(raw, preserve_index=False))
    con.execute("CREATE TABLE raw AS SELECT * FROM raw_df")
    slow = screen_export(con, "raw", "lines", zone=_zone(), tzname=ZONE, now=NOW, where="t", keep_pii=False,
                         chunk_rows=300, **kw)
    got = con.execute("SELECT * FROM lines ORDER BY row").df()
    assert 0 < slow < len(df)  # both halves were exercised
    return ref, got


def _zone():
    import zoneinfo

    return zoneinfo.ZoneInfo(ZONE)


def _assert_same(ref: pd.DataFrame, got: pd.DataFrame) -> None:
    assert list(got["row"]) == list(ref["row"])
    for c in ("reason", "customer_id", "order_id", "status", "channel"):
        a, b = ref[c].astype(object).where(ref[c].notna(), None), got[c].astype(object).where(got[c].notna(), None)
        diff = [(i, x, y) for i, (x, y) in enumerate(zip(a, b)) if x != y]
        assert not diff, (c, diff[:5])
    np.testing.assert_array_equal(ref["order_time"].to_numpy("datetime64[us]"),
                                  got["order_time"].to_numpy("datetime64[us]"))
    # amounts bit for bit (NaN where the reference has NaN)
    np.testing.assert_array_equal(ref["amount"].to_numpy(float), got["amount"].to_numpy(float))


@pytest.mark.parametrize("decimal", [".", ","])
def test_sql_screening_equals_the_reference_line_by_line(decimal):
    ref, got = _both(_lines(), decimal=decimal)
    _assert_same(ref, got)
    assert set(ref["reason"].dropna()) >= {"missing_customer_id", "unparseable_order_time", "in_the_future",
                                           "unknown_status", "non_numeric_amount"}


def test_typed_columns_are_screened_alike():
    """Parquet-style typed columns: timestamps (naive and with a zone) and floats with NaN/inf."""
    n = 12
    t = pd.Series(pd.date_range("2024-01-01 08:00", periods=n, freq="17h"))
    df = pd.DataFrame({"customer_id": [f"C{i % 4}" for i in range(n)], "order_id": [f"O{i}" for i in range(n)],
                       "order_time": t.dt.tz_localize("UTC"),
                       "amount": [1.5, -2.0, np.nan, np.inf, 3.0, 0.0, -0.0, 1e300, 2.5, 4.0, 5.0, 6.0],
                       "status": ["paid"] * 6 + ["refunded"] * 6})
    ref = screen_lines(df, 0, zone=_zone(), now=NOW, where="t", dayfirst=None, decimal=".", keep_pii=False)
    con = duckdb.connect()
    raw = df.copy()
    raw.insert(0, "__row", np.arange(n, dtype=np.int64))
    con.register("raw", raw)
    screen_export(con, "raw", "lines", zone=_zone(), tzname=ZONE, now=NOW, where="t", keep_pii=False,
                  chunk_rows=5, decimal=".", dayfirst=None)
    got = con.execute("SELECT * FROM lines ORDER BY row").df()
    assert list(got["reason"].fillna("-")) == list(ref["reason"].fillna("-"))
    # 2024-01-01 08:00 UTC is 16:00 in Shanghai
    assert got["order_time"].iloc[0] == pd.Timestamp("2024-01-01 16:00")
    np.testing.assert_array_equal(ref["order_time"].to_numpy("datetime64[us]"),
                                  got["order_time"].to_numpy("datetime64[us]"))


def test_a_numeric_status_column_is_screened_like_the_reference():
    """Status codes stored as numbers (1, 2) are unknown statuses, as the reference reads
    them; a blank (null) status is paid."""
    df = pd.DataFrame({"customer_id": ["C1", "C2", "C3"], "order_id": ["O1", "O2", "O3"],
                       "order_time": ["2024-01-01", "2024-01-02", "2024-01-03"], "amount": ["1", "2", "3"],
                       "status": pd.array([1, 2, None], dtype="Int64")})
    ref = screen_lines(df, 0, zone=_zone(), now=NOW, where="t", dayfirst=None, decimal=".", keep_pii=False)
    con = duckdb.connect()
    raw = df.copy()
    raw.insert(0, "__row", np.arange(len(df), dtype=np.int64))
    con.register("raw", raw)
    screen_export(con, "raw", "lines", zone=_zone(), tzname=ZONE, now=NOW, where="t", keep_pii=False,
                  chunk_rows=5, decimal=".", dayfirst=None)
    got = con.execute("SELECT * FROM lines ORDER BY row").df()
    assert list(got["reason"].fillna("-")) == list(ref["reason"].fillna("-")) == ["unknown_status"] * 2 + ["-"]
    assert list(got["status"]) == list(ref["status"])


def test_whitespace_is_what_pandas_strips_over_every_code_point():
    """WHITESPACE (trimmed in SQL) is exactly the set pyarrow/pandas ``str.strip`` removes."""
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    stripped = pc.utf8_trim_whitespace(pa.array(["a" + chr(c) for c in cps])).to_pylist()
    assert {chr(c) for c, s in zip(cps, stripped) if s == "a"} == set(WHITESPACE)


def test_sql_trim_equals_pandas_strip_on_edges():
    vals = ["".join(p) for p in itertools.product(["", " ", "\u3000", "\u00a0", "\t", "x", "客"], repeat=3)]
    df = pd.DataFrame({"customer_id": vals, "order_id": "O1", "order_time": "2024-01-01", "amount": "1"})
    df = df.astype("string[pyarrow]")
    ref, got = _both_loose(df)
    assert list(ref["customer_id"].fillna("<NA>")) == list(got["customer_id"].fillna("<NA>"))


def _both_loose(df):
    ref = screen_lines(df, 0, zone=_zone(), now=NOW, where="t", dayfirst=None, decimal=".", keep_pii=False)
    con = duckdb.connect()
    raw = df.copy()
    raw.insert(0, "__row", np.arange(len(df), dtype=np.int64))
    con.register("raw_df", pa.Table.from_pandas(raw, preserve_index=False))
    con.execute("CREATE TABLE raw AS SELECT * FROM raw_df")
    screen_export(con, "raw", "lines", zone=_zone(), tzname=ZONE, now=NOW, where="t", keep_pii=False,
                  chunk_rows=300, decimal=".", dayfirst=None)
    return ref, con.execute("SELECT * FROM lines ORDER BY row").df()
