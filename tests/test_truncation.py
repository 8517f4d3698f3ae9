"""Exports that start mid-life (issue 24 item 2, detection): the ledger's ``truncation``
entry on exports shaped like real ones, with the expected outcome worked out in the test."""
from __future__ import annotations

import json

import pandas as pd
import pytest

import crmlab
from crmlab.cli.main import main
from crmlab.engine.aggregates import paid_orders
from crmlab.engine.truncation import MIN_MONTHS, monthly_buyers
from crmlab.simulate.store import write_sample


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The simulated store (opens 2024-01-01, sells until 2025-12-31) and the same export cut
    to start one year after its first order."""
    d = tmp_path_factory.mktemp("store")
    write_sample(str(d), n_customers=3000, seed=1)
    full = pd.read_csv(d / "orders.csv", dtype=str)
    t = pd.to_datetime(full["order_time"])
    cut = (t.min() + pd.DateOffset(years=1)).normalize()
    full[t >= cut].to_csv(d / "cut.csv", index=False)
    return d, cut


def _orders(rows, path):
    pd.DataFrame(rows, columns=["customer_id", "order_id", "order_time", "amount", "status"]).to_csv(path, index=False)
    return path


def test_a_store_cut_a_year_after_it_opened_looks_truncated(store):
    d, cut = store
    o_full, _ = crmlab.load(str(d / "orders.csv"))
    o_cut, led = crmlab.load(str(d / "cut.csv"))
    # the truth, from the whole store: most buyers of the cut export's first month bought before it
    p = o_full.engine.to_pandas(paid_orders(o_full))
    first = p.groupby("customer_id")["order_time"].min()
    month1 = p[(p["order_time"] >= cut) & (p["order_time"] < cut + pd.offsets.MonthBegin(1))]
    buyers1 = month1["customer_id"].unique()
    had_bought = float((first.loc[buyers1] < cut).mean())
    assert had_bought > 0.3  # 46% on this store (108 of 233): long-standing customers counted as first-time
    m = monthly_buyers(o_cut)
    assert m["returning"].iloc[0] == 0 and m["buyers"].iloc[0] == len(buyers1)
    tr = led.truncation
    assert tr["left_truncated"] is True
    assert tr["evidence"].startswith("The export looks like it starts in the middle of the store's life")
    assert f"0% of {len(buyers1)} buyers" in tr["evidence"]
    # the default lead-in, applied and shown: the export covers one year (< 2), so half of it, 182 days from
    # its first day, extended to the next first of a month
    first = o_cut.engine.to_pandas(paid_orders(o_cut))["order_time"].min().normalize()
    end = first + pd.Timedelta(days=182) + pd.offsets.MonthBegin(1)
    assert tr["lead_in"] == "default" and tr["lead_in_days"] == (end - first).days > 0
    assert tr["history_start"] == f"{end:%Y-%m-%d}" and o_cut.history_start == end
    assert crmlab.load(str(d / "cut.csv"), lead_in_days=0)[1].truncation["lead_in_days"] == 0  # turned off


def test_the_same_store_uncut_is_not_truncated(store):
    d, _ = store
    _, led = crmlab.load(str(d / "orders.csv"))
    assert led.truncation["left_truncated"] is False
    assert led.truncation["evidence"].startswith("No sign")
    assert "opens within the export" in led.truncation["evidence"]  # its returning share does start at 0


def _new_store(tmp_path):
    """A genuinely new store: opens 2024-01-01 with 40 first buyers, then 10 more new buyers
    every month; each buyer buys again every second month. Its returning share starts at 0
    and climbs (like a truncated export's), but its first month's new buyers (40) are below
    the later months' (70-120): not truncated."""
    rows, cid = [], 0
    for month in range(12):
        for _ in range(40 + 10 * month):
            for k in range(month, 12, 2):
                rows.append((f"c{cid}", f"o{cid}_{k}", f"2024-{k + 1:02d}-{1 + cid % 27:02d} 10:00:00", 10.0, "paid"))
            cid += 1
    return _orders(rows, tmp_path / "new_store.csv")


def test_a_genuinely_new_store_is_not_truncated(tmp_path):
    o, led = crmlab.load(str(_new_store(tmp_path)))
    m = monthly_buyers(o)
    assert m["returning"].iloc[0] == 0 and m["new"].iloc[0] == 40 and m["new"].iloc[5] == 90
    assert led.truncation["left_truncated"] is False
    assert "opens within the export" in led.truncation["evidence"]


def test_a_long_standing_store_exported_mid_life_is_truncated(tmp_path):
    """Shaped like the UK retailer: 300 long-standing customers buy every month from before
    the export starts, 20 new buyers a month. Month 1: 320 buyers, all "new"; later months: 20
    new of 320 + (joined) buyers, a returning share above 90%."""
    rows = []
    for k in range(12):
        day = f"2010-{k + 1:02d}-10 09:00:00"
        rows += [(f"old{i}", f"o{i}_{k}", day, 20.0, "paid") for i in range(300)]
        rows += [(f"new{k}_{i}", f"n{k}_{i}", day, 20.0, "paid") for i in range(20)]
    _, led = crmlab.load(str(_orders(rows, tmp_path / "uk_like.csv")), observation_end="2010-12-31")
    tr = led.truncation
    assert tr["left_truncated"] is True
    assert "0% of 320 buyers" in tr["evidence"] and "16.0×" in tr["evidence"]  # 320 new vs the median 20


def test_a_short_export_is_too_short_to_judge(tmp_path):
    rows = [(f"c{i}", f"o{i}_{k}", f"2025-{k + 1:02d}-05 10:00:00", 10.0, "paid") for i in range(100) for k in range(3)]
    _, led = crmlab.load(str(_orders(rows, tmp_path / "short.csv")), observation_end="2025-03-31")
    assert led.truncation == {"left_truncated": False, "lead_in_days": 0, "evidence": led.truncation["evidence"],
                              "history_start": None, "lead_in": "none"}
    assert "too short to judge" in led.truncation["evidence"]
    assert f"at least {MIN_MONTHS} needed" in led.truncation["evidence"]


def test_validate_json_and_the_clean_file_carry_the_truncation(store, tmp_path, capsys):
    d, _ = store
    clean = tmp_path / "clean.parquet"
    rc = main(["validate", "--orders", str(d / "cut.csv"), "--clean-out", str(clean), "--json"])
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    assert rc == 0
    assert "crmlab: note:" in cap.err and "are history only" in cap.err  # the default lead-in, shown
    tr = out["orders"]["truncation"]
    # the contract's keys, and the lead-in's end and how it was chosen
    assert set(tr) == {"left_truncated", "evidence", "lead_in_days", "history_start", "lead_in"}
    assert tr["left_truncated"] is True and tr["lead_in_days"] > 0 and tr["lead_in"] == "default"
    o, led = crmlab.load(str(clean))
    assert led.truncation == tr and o.history_start == pd.Timestamp(tr["history_start"])
    # a lead-in asked for is kept in the clean file, and --lead-in-days 0 too
    for flag, days in (["--lead-in-days", "40"], 40), (["--lead-in-days", "0"], 0):
        assert main(["validate", "--orders", str(d / "cut.csv"), "--clean-out", str(clean), "--json", *flag]) == 0
        capsys.readouterr()
        o, led = crmlab.load(str(clean))
        assert led.truncation["lead_in_days"] == days and (o.history_start is None) == (days == 0)


def test_the_rule_reads_the_first_months_only_and_gives_the_same_verdict(tmp_path):
    """detect() scans the first months with sales of a long export; its verdict equals the rule on
    the whole table, also with months without a paid order and a stray order decades earlier."""
    from crmlab.engine.truncation import RULE_MONTHS, detect, judge

    rows = []
    for k in range(30):  # 30 months; 300 regulars every month, 20 new a month; no sales in months 5 and 6
        if k in (5, 6):
            continue
        day = f"{2010 + k // 12}-{k % 12 + 1:02d}-10 09:00:00"
        rows += [(f"old{i}", f"o{i}_{k}", day, 20.0, "paid") for i in range(300)]
        rows += [(f"new{k}_{i}", f"n{k}_{i}", day, 20.0, "paid") for i in range(20)]
    o, _ = crmlab.load(str(_orders(rows, tmp_path / "long.csv")), observation_end="2012-06-30", lead_in_days=0)
    whole = monthly_buyers(o)
    assert len(whole) == 28 and whole["new"].iloc[0] == 320 and whole["returning"].iloc[1] == 300
    assert list(whole["buyers"]) == [320] * 28  # by hand: 300 regulars + 20 new every month with sales
    first = monthly_buyers(o, months=RULE_MONTHS)
    assert len(first) == RULE_MONTHS and first.attrs["cut"]  # the first 15 months with sales
    assert list(first["month"]) == list(whole["month"][:RULE_MONTHS])
    assert detect(o) == judge(whole)
    # one stray order 20 years earlier: a month of its own, nothing more to scan
    stray = rows + [("stray", "s1", "1990-01-10 09:00:00", 20.0, "paid")]
    o2, _ = crmlab.load(str(_orders(stray, tmp_path / "stray.csv")), observation_end="2012-06-30", lead_in_days=0)
    first2 = monthly_buyers(o2, months=RULE_MONTHS)
    assert len(first2) == RULE_MONTHS and first2["month"].iloc[0] == pd.Timestamp("1990-01-01")
    assert first2["buyers"].iloc[0] == 1 and list(first2["buyers"].iloc[1:]) == [320] * (RULE_MONTHS - 1)
    assert detect(o2) == judge(monthly_buyers(o2))
