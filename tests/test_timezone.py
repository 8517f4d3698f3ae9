"""Store time zone (issue #10, part 3) and times outside the run (part 5): crmlab.ingest.readers, --timezone.

Independent expectations come from the definition of the offsets and the IANA rules:
Asia/Shanghai is UTC+8 all year (no daylight saving since 1991); America/New_York is UTC-5
in winter and UTC-4 in summer.
"""
from __future__ import annotations

import json

import pandas as pd
import pytest

from crmlab.cli.main import main
from crmlab.ingest.readers import CrmlabInputError, load_orders, load_sends, parse_observation_end


def _orders(times, amounts=None) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame({"customer_id": [f"c{i % 3}" for i in range(n)], "order_id": [f"o{i}" for i in range(n)],
                         "order_time": times, "amount": amounts or ["10"] * n})


def _times(orders: pd.DataFrame) -> dict[str, pd.Timestamp]:
    return dict(zip(orders["order_id"], orders["order_time"]))


def test_offsets_are_converted_to_the_store_zone_and_naive_times_stay_as_written():
    # 13:00Z is 21:00 in Shanghai (UTC+8, no DST); 13:00+08:00 is already Shanghai time;
    # 05:00-05:00 is 10:00Z, so 18:00 in Shanghai; a time without offset is store-local.
    orders, led = load_orders(_orders(["2024-01-02T13:00:00Z", "2024-01-02T13:00:00+08:00",
                                       "2024-01-02 13:00:00", "2024-01-02T05:00:00-05:00"]))
    t = _times(orders)
    assert t["o0"] == pd.Timestamp("2024-01-02 21:00:00")
    assert t["o1"] == pd.Timestamp("2024-01-02 13:00:00")
    assert t["o2"] == pd.Timestamp("2024-01-02 13:00:00")
    assert t["o3"] == pd.Timestamp("2024-01-02 18:00:00")
    assert orders["order_time"].dt.tz is None
    assert led.excluded == {}  # mixed offsets in one column: no traceback, nothing lost
    assert led.timezone == "Asia/Shanghai" and led.to_dict()["timezone"] == "Asia/Shanghai"


def test_mixed_offsets_in_a_csv_column_load(tmp_path):
    # Today's code raised on two different offsets in one file (pandas "mixed time zones").
    p = tmp_path / "orders.csv"
    _orders(["2024-03-01T09:00:00+08:00", "2024-03-01T01:00:00Z", "2024-03-01T10:00:00+09:00"]).to_csv(p, index=False)
    orders, led = load_orders(p)
    # all three are the same instant, 01:00Z = 09:00 in Shanghai
    assert set(orders["order_time"]) == {pd.Timestamp("2024-03-01 09:00:00")}
    assert led.used_rows == 3


def test_another_store_zone_follows_its_daylight_saving():
    # New York: EST (UTC-5) in January, EDT (UTC-4) in July.
    orders, led = load_orders(_orders(["2024-01-15T12:00:00Z", "2024-07-15T12:00:00Z", "2024-07-15 12:00:00"]),
                              timezone="America/New_York")
    t = _times(orders)
    assert t["o0"] == pd.Timestamp("2024-01-15 07:00:00")
    assert t["o1"] == pd.Timestamp("2024-07-15 08:00:00")
    assert t["o2"] == pd.Timestamp("2024-07-15 12:00:00")  # naive: already New York time
    assert led.timezone == "America/New_York"


def test_local_times_written_with_their_offset_do_not_move_a_day(small_store, tmp_path):
    # The issue: 21% of the sample's orders moved to the previous day when written with
    # +08:00. The same Shanghai wall-clock times written with +08:00 must load unchanged.
    raw = pd.read_csv(small_store / "orders.csv", dtype=str, keep_default_na=False)
    raw["order_time"] = pd.to_datetime(raw["order_time"]).dt.strftime("%Y-%m-%dT%H:%M:%S+08:00")
    p = tmp_path / "orders_offset.csv"
    raw.to_csv(p, index=False)
    plain, _ = load_orders(small_store / "orders.csv")
    with_offset, led = load_orders(p)
    pd.testing.assert_series_equal(plain["order_time"], with_offset["order_time"])
    assert led.observation_end == plain.attrs["observation_end"]


def test_tz_aware_parquet_is_converted(tmp_path):
    # A tz-aware Parquet column (UTC): 16:30Z on 31 Dec is 00:30 on 1 Jan in Shanghai.
    df = _orders(["x", "y"])
    df["order_time"] = pd.to_datetime(["2024-12-31 16:30:00", "2024-06-01 00:00:00"]).tz_localize("UTC")
    p = tmp_path / "o.parquet"
    df.to_parquet(p)
    orders, _ = load_orders(p)
    t = _times(orders)
    assert t["o0"] == pd.Timestamp("2025-01-01 00:30:00") and t["o1"] == pd.Timestamp("2024-06-01 08:00:00")


def test_observation_end_and_send_times_are_store_local_too():
    # --observation-end 2025-01-01T00:00:00Z is 08:00 on 1 Jan in Shanghai: an order at
    # 07:59 is inside, one at 08:01 after it.
    orders, led = load_orders(_orders(["2025-01-01 07:59:00", "2025-01-01 08:01:00", "2024-12-01 10:00:00"]),
                              observation_end="2025-01-01T00:00:00Z")
    assert led.observation_end == pd.Timestamp("2025-01-01 08:00:00")
    assert led.excluded == {"after_observation_end": 1} and led.examples["after_observation_end"] == [2]
    assert parse_observation_end("2025-01-01T00:00:00Z", timezone="UTC") == pd.Timestamp("2025-01-01")
    sends, ls = load_sends(pd.DataFrame({"customer_id": ["a", "b"], "campaign_id": ["x", "x"], "variant": ["A", "B"],
                                         "send_time": ["2025-11-01T02:00:00Z", "2025-11-01 10:00:00"]}))
    assert list(sends["send_time"]) == [pd.Timestamp("2025-11-01 10:00:00")] * 2  # 02:00Z = 10:00 Shanghai
    assert ls.timezone == "Asia/Shanghai"


def test_unknown_time_zone_is_one_line_error(tmp_path, capsys):
    with pytest.raises(CrmlabInputError, match="unknown time zone"):
        load_orders(_orders(["2024-01-01"]), timezone="Mars/Olympus_Mons")
    p = tmp_path / "orders.csv"
    _orders(["2024-01-01 10:00:00"]).to_csv(p, index=False)
    assert main(["validate", "--orders", str(p), "--timezone", "Mars/Olympus_Mons"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crmlab: error: --timezone: unknown time zone") and err.count("\n") == 1


def test_cli_timezone_flag(tmp_path, capsys):
    # The same file read for a UTC store: 13:00Z stays 13:00; the ledger says which zone.
    p = tmp_path / "orders.csv"
    _orders(["2024-01-02T13:00:00Z"]).to_csv(p, index=False)
    assert main(["validate", "--orders", str(p), "--timezone", "UTC", "--json"]) == 0
    o = json.loads(capsys.readouterr().out)["orders"]
    assert o["timezone"] == "UTC" and o["observation_end"] == "2024-01-02 13:00:00"
    assert main(["validate", "--orders", str(p), "--json"]) == 0
    o = json.loads(capsys.readouterr().out)["orders"]
    assert o["timezone"] == "Asia/Shanghai" and o["observation_end"] == "2024-01-02 21:00:00"


def test_orders_after_the_run_are_excluded_and_do_not_set_the_observation_end():
    # One order dated 2205 became the observation end. It cannot have happened yet.
    df = _orders(["2024-05-01 10:00:00", "2205-01-01 10:00:00", "2024-06-01 10:00:00", "2024-06-02 10:00:00"])
    orders, led = load_orders(df, now="2024-06-01 12:00:00")
    assert led.excluded == {"in_the_future": 2} and led.examples["in_the_future"] == [2, 4]
    assert led.observation_end == pd.Timestamp("2024-06-01 10:00:00")
    assert led.used_rows + led.excluded_rows == led.input_rows
    _, led = load_orders(df)  # the real clock: 2205 is still in the future
    assert led.excluded == {"in_the_future": 1} and led.observation_end == pd.Timestamp("2024-06-02 10:00:00")
    # `now` with an offset is converted like any time: 01:59Z = 09:59 in Shanghai, before 10:00
    _, led = load_orders(df, now="2024-06-02T01:59:00Z")
    assert led.excluded == {"in_the_future": 2}


def test_times_far_before_the_bulk_are_flagged_in_the_ledger():
    # 200 orders in 2024 and one typed as 1924: more than 5 years before the 1st percentile.
    times = [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00:00" for i in range(200)] + ["1924-03-01 10:00:00"]
    _, led = load_orders(_orders(times))
    assert len(led.warnings) == 1 and "1 order time(s) more than 5 years before" in led.warnings[0]
    assert "rows 201" in led.warnings[0]
    assert led.to_dict()["warnings"] == led.warnings
    _, led = load_orders(_orders(times[:200]))
    assert led.warnings == []


def test_far_times_count_kept_lines_only():
    """The bulk and the count are read from the kept lines: an exact copy of the 1924 line and
    a 1924 line with no amount are excluded and never counted; a second line of the same 1924
    order is a kept line and is (2 lines, rows 201 and 202)."""
    times = [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00:00" for i in range(200)]
    df = _orders(times)
    far = pd.DataFrame({"customer_id": ["c9", "c9", "c9", "c8"], "order_id": ["o900", "o900", "o900", "o901"],
                        "order_time": ["1924-03-01 10:00:00"] * 4, "amount": ["10", "5", "10", ""]})
    # rows 201-204: o900 (10), o900 (5: a second line), o900 (10: an exact copy of row 201), o901 (no amount)
    _, led = load_orders(pd.concat([df, far], ignore_index=True))
    assert led.excluded == {"exact_duplicate_line": 1, "non_numeric_amount": 1}
    assert len(led.warnings) == 1 and "2 order time(s) more than 5 years before" in led.warnings[0]
    assert "rows 201, 202;" in led.warnings[0]
