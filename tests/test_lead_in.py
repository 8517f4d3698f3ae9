"""The lead-in (issue 24 item 2): an export that starts in the middle of the store's life.

The fixture is shaped like a real export: a store simulated from 2022-01-01 to 2025-12-31
(4,000 customers, seed 0) whose export is cut to start on 2024-01-01, two years before its end.
Every expected number is computed here in pandas from the simulated orders (the truth: each
customer's first paid order ever), never by the code under test.

What the lead-in can and cannot do. A customer who bought before the cut and not again in the
lead-in looks new after it: no export can tell. So the cut export's new buyers after the
lead-in are the full store's new buyers (exactly: every one of them is there, and new) plus
those customers; the test recomputes that set by hand and checks the counts equal it exactly,
and states the bound of the residual: at most 6% of the "new" buyers (2.3% and 4.1% on seeds 1
and 0 of benchmarks/study_lead_in_retention.py, against 18–19% without a lead-in). Cohort
retention then differs from the full store's by at most that share per cell (a rate over
n + e customers against one over n: |difference| <= e / (n + e)), which the test checks cell by
cell.
"""
from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

import crmlab
from crmlab.analyses.overview import monthly_overview
from crmlab.analyses.retention import retention_table
from crmlab.cli.main import main
from crmlab.engine.aggregates import cohort_sequence
from crmlab.engine.lead_in import default_lead_in, lead_in_sentence
from crmlab.engine.sources import write_clean
from crmlab.report.parameters import check_parameter, read_parameters
from crmlab.schema import CrmlabInputError
from crmlab.simulate.store import StoreSpec, simulate_store

CUT = pd.Timestamp("2024-01-01")
START = pd.Timestamp("2025-01-01")  # the default lead-in's end on the cut export (see the test)


def _paid(orders: pd.DataFrame) -> pd.DataFrame:
    paid = orders[orders["status"].isin(["paid", "交易成功"])]
    return paid.groupby("order_id").agg(customer_id=("customer_id", "first"),
                                        order_time=("order_time", "first")).reset_index()


@pytest.fixture(scope="module")
def cut_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("cut_store")
    orders, *_ = simulate_store(StoreSpec(n_customers=4000, seed=0, start="2022-01-01"))
    orders["order_time"] = pd.to_datetime(orders["order_time"])
    orders.to_csv(d / "full.csv", index=False)
    orders[orders["order_time"] >= CUT].to_csv(d / "cut.csv", index=False)
    p = _paid(orders)
    full, full_led = crmlab.load(str(d / "full.csv"))
    cut, led = crmlab.load(str(d / "cut.csv"))
    write_clean(cut, led, str(d / "cut.parquet"))  # what the command line reads without validating again
    return {"dir": d, "paid": p, "full": full, "full_led": full_led, "cut": cut, "led": led}


def _truth(p: pd.DataFrame, history_start: pd.Timestamp) -> tuple[pd.Series, pd.Series]:
    """Per month from ``history_start``: the full store's new buyers (first paid order ever), and
    the cut export's "new" buyers: first paid order on or after the cut, in the month, after the
    lead-in (customers who bought before the cut but not again until then among them)."""
    first_ever = p.groupby("customer_id")["order_time"].min()
    first_cut = p[p["order_time"] >= CUT].groupby("customer_id")["order_time"].min()
    full = first_ever[first_ever >= history_start].dt.to_period("M").value_counts().sort_index()
    cut = first_cut[first_cut >= history_start].dt.to_period("M").value_counts().sort_index()
    return full, cut


def test_the_cut_export_looks_truncated_and_gets_the_default_lead_in(cut_store):
    led, cut = cut_store["led"], cut_store["cut"]
    assert cut_store["full_led"].truncation["left_truncated"] is False  # the store opens in its export
    tr = led.truncation
    assert tr["left_truncated"] is True and tr["lead_in"] == "default"
    # two years of export: 365 days from 2024-01-01 is 2024-12-31 (2024 is a leap year), extended to the
    # next first of a month, 2025-01-01: 366 days
    assert tr["lead_in_days"] == 366 and tr["history_start"] == "2025-01-01" and cut.history_start == START
    assert "2025-01-01" not in lead_in_sentence(tr) and "01 Jan 2025" in lead_in_sentence(tr)
    assert default_lead_in(pd.Timestamp("2025-01-01"), "2025-12-31 23:00") == 212  # 1 year: 182 d -> 1 Aug
    assert default_lead_in(pd.Timestamp("2025-01-01"), "2025-03-31") == 90  # short: at least 90 days


def test_new_buyers_per_month_after_the_lead_in(cut_store):
    p, cut, full = cut_store["paid"], cut_store["cut"], cut_store["full"]
    truth_full, truth_cut = _truth(p, START)
    m = monthly_overview(cut)
    after = m[~m["lead_in"]]
    assert after.index.min() == pd.Period("2025-01", "M") and m["lead_in"].sum() == 12
    assert m.loc[m["lead_in"], "new_buyers"].isna().all()  # months of the lead-in: no first-time split
    assert m.loc[m["lead_in"], "buyers"].gt(0).all()  # but their buyers and sales are shown
    assert after["new_buyers"].astype(int).tolist() == truth_cut.reindex(after.index).astype(int).tolist()
    mf = monthly_overview(full)
    assert mf.loc[after.index, "new_buyers"].astype(int).tolist() == truth_full.reindex(after.index).tolist()
    # the lead-in's residual: customers who bought before the cut, not in the lead-in, and again after it
    excess = after["new_buyers"] - mf.loc[after.index, "new_buyers"]
    assert (excess >= 0).all() and excess.sum() / after["new_buyers"].sum() <= 0.06
    # without the lead-in the first month's "new" buyers are more than twice the truth
    m0 = monthly_overview(crmlab.load(cut, lead_in_days=0)[0])
    first_truth = int((p.groupby("customer_id")["order_time"].min().dt.to_period("M") == pd.Period("2024-01")).sum())
    assert m0["new_buyers"].iloc[0] > 2 * first_truth


def test_cohort_retention_matches_the_full_store_within_the_stated_bound(cut_store):
    cut, full = cut_store["cut"], cut_store["full"]
    days = (7, 30, 60, 90)
    rc = retention_table(cut, cohort="month", days=days)
    rf = retention_table(full, cohort="month", days=days)
    cohorts = [c for c in rc.rates.index if c != "all cohorts"]
    assert cohorts[0] == "2025-01"  # no cohort inside the lead-in
    extra = rc.size[cohorts] - rf.size[cohorts]
    _, truth_cut = _truth(cut_store["paid"], START)
    assert rc.size[cohorts].tolist() == truth_cut.tolist()
    for c in cohorts:
        for d in days:
            e_c, e_f = rc.eligible.at[c, d], rf.eligible.at[c, d]
            if e_f == 0:
                assert e_c == 0
                continue
            assert 0 <= e_c - e_f <= extra[c]
            bound = (e_c - e_f) / e_c
            assert abs(rc.rates.at[c, d] - rf.rates.at[c, d]) <= bound + 1e-12, (c, d)
    share = extra.sum() / rc.size[cohorts].sum()
    assert share <= 0.06
    for d in days:
        assert abs(rc.rates.at["all cohorts", d] - rf.rates.at["all cohorts", d]) <= share


def test_existing_customers_are_never_new(cut_store):
    cut = cut_store["cut"]
    s = cut.engine.to_pandas(cohort_sequence(cut))
    assert s["first_time"].min() >= START
    p = cut_store["paid"]
    in_lead_in = set(p[(p["order_time"] >= CUT) & (p["order_time"] < START)]["customer_id"])
    assert not in_lead_in & set(s["customer_id"])
    # the whole history is still there for everything that needs no first order
    n = cut.engine.to_pandas(cut.table.filter(cut.table.order_time < START).count().name("n").as_table())["n"][0]
    assert n > 0


def test_history_start_and_lead_in_days(cut_store):
    path = cut_store["cut"]  # the validated orders: the lead-in is set on reading, whatever the source
    o, led = crmlab.load(path, history_start="2024-07-01")
    assert o.history_start == pd.Timestamp("2024-07-01") and led.truncation["lead_in"] == "given"
    assert led.truncation["lead_in_days"] == (pd.Timestamp("2024-07-01") - pd.Timestamp("2024-01-01")).days
    o, led = crmlab.load(path, lead_in_days=30)
    assert o.history_start == pd.Timestamp("2024-01-31") and led.truncation["history_start"] == "2024-01-31"
    with pytest.raises(CrmlabInputError, match="not both"):
        crmlab.load(path, lead_in_days=30, history_start="2024-07-01")
    with pytest.raises(CrmlabInputError, match="after the observation end"):
        crmlab.load(path, history_start="2027-01-01")


def test_engine_tables_are_judged_too(cut_store, tmp_path):
    cut = cut_store["cut"]
    cols = ["customer_id", "order_id", "order_time", "amount", "status"]
    frame = cut.engine.to_pandas(cut.table.select(*cols))
    db = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(db))
    con.register("f", frame)
    con.execute("CREATE TABLE orders AS SELECT * FROM f")
    con.close()
    o, led = crmlab.load(f"duckdb:{db}:orders", "duckdb")
    assert led.truncation["left_truncated"] is True and led.truncation["lead_in_days"] == 366
    assert o.history_start == START


def test_cli_flags_and_report_parameters(cut_store, capsys):
    path = str(cut_store["dir"] / "cut.parquet")
    assert main(["retention", "--orders", path, "--days", "30", "--lead-in-days", "0", "--json"]) == 0
    cap = capsys.readouterr()
    first = json.loads(cap.out)["cohorts"][0]["cohort"]
    assert first == "2024-01" and "history only" not in cap.err
    assert main(["retention", "--orders", path, "--days", "30", "--json"]) == 0
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    assert out["cohorts"][0]["cohort"] == "2025-01" and out["ledger"]["truncation"]["lead_in_days"] == 366
    assert "crmlab: note:" in cap.err and "are history only" in cap.err
    assert main(["retention", "--orders", path, "--days", "30", "--history-start", "2024-04-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cohorts"][0]["cohort"] == "2024-04"
    assert main(["retention", "--orders", path, "--history-start", "2024-04-01", "--lead-in-days", "5"]) == 2
    assert "not allowed with" in capsys.readouterr().err
    assert check_parameter("lead_in_days", 90, "-p") == 90
    assert check_parameter("history_start", "2024-04-01", "-p") == "2024-04-01"
    with pytest.raises(CrmlabInputError):
        check_parameter("lead_in_days", -1, "-p")
    with pytest.raises(CrmlabInputError, match="not both"):
        read_parameters([], ["history_start=2024-04-01"], lead_in_days=10)
    assert read_parameters([], [], lead_in_days=0) == {"lead_in_days": 0}
