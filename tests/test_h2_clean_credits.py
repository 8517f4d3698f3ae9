"""The clean file (``crmlab validate --clean-out``) carries the customers' credits.

Unmatched credit notes (reversal lines that match no purchase) are a customer-level credit
(:attr:`crmlab.engine.sources.OrderTable.credits`); a clean file must give the same per-customer
net sales as the export it came from. Expected credits come from the simulated store's
planted truth (truth_returns.csv, kind ``unmatched``), not from the code under test.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from crmlab.analyses.rfm import rfm_scores
from crmlab.cli.main import main
from crmlab.engine.loading import load
from crmlab.engine.sources import order_table, read_clean_credits, read_clean_ledger
from crmlab.simulate.store import write_sample


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("credits_store")
    write_sample(str(d), n_customers=400, seed=3, returns=0.1)
    clean = d / "clean.parquet"
    before = set(os.listdir(d))
    assert main(["validate", "--orders", str(d / "orders.csv"), "--clean-out", str(clean), "--json"]) == 0
    assert set(os.listdir(d)) - before == {"clean.parquet"}  # one file, the one named: no sidecar
    return d, clean


def _net(scores: pd.DataFrame) -> pd.Series:
    """Net sales per customer: paid sales less the customer's unmatched credit."""
    credit = scores["credit"] if "credit" in scores.columns else 0.0
    return (scores["monetary"] - credit).rename("net")


def test_clean_file_gives_the_exports_net_sales_per_customer(store):
    d, clean = store
    truth = pd.read_csv(d / "truth_returns.csv", dtype={"customer_id": str})
    planted = truth[truth["kind"] == "unmatched"].groupby("customer_id")["amount"].sum().abs()
    assert len(planted) >= 2  # the store has unmatched credits: without them the two would differ
    exp_o, _ = load(str(d / "orders.csv"), cache=False)
    cln_o, _ = load(str(clean))
    a, b = rfm_scores(exp_o), rfm_scores(cln_o)
    assert "credit" in b.columns
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_series_equal(_net(a), _net(b))
    got = a.loc[a["credit"] > 0, "credit"]
    np.testing.assert_allclose(got.reindex(planted.index).to_numpy(), planted.to_numpy(), atol=0.011)
    assert set(got.index) == set(planted.index)


def test_credits_round_trip_exactly(store):
    d, clean = store
    exp_o, _ = load(str(d / "orders.csv"), cache=False)
    want = exp_o.engine.to_pandas(exp_o.credits).sort_values("customer_id").reset_index(drop=True)
    got = read_clean_credits(str(clean))
    assert list(got.columns) == ["customer_id", "credit_lines", "credit_amount"]
    pd.testing.assert_frame_equal(got, want[list(got.columns)], check_dtype=False)
    assert got["credit_amount"].tolist() == want["credit_amount"].tolist()  # floats bit for bit (JSON repr)


def test_a_clean_file_of_the_previous_version_still_reads(store, tmp_path):
    d, clean = store
    t = pq.read_table(clean)
    md = {k: v for k, v in (t.schema.metadata or {}).items() if k != b"crmlab_credits"}
    old = tmp_path / "old.parquet"
    pq.write_table(t.replace_schema_metadata(md), old)
    assert read_clean_ledger(str(old)) == read_clean_ledger(str(clean))
    assert read_clean_credits(str(old)) is None
    o = order_table(str(old))
    assert o.credits is None
    s = rfm_scores(o)
    assert "credit" not in s.columns and len(s) == len(rfm_scores(str(clean)))


def test_export_without_reversals_writes_no_credits(tmp_path):
    p = tmp_path / "orders.csv"
    pd.DataFrame({"order_id": ["a", "b"], "customer_id": ["x", "y"], "order_time": ["2025-01-01", "2025-01-02"],
                  "amount": [10.0, 20.0]}).to_csv(p, index=False)
    clean = tmp_path / "clean.parquet"
    assert main(["validate", "--orders", str(p), "--clean-out", str(clean)]) == 0
    assert read_clean_credits(str(clean)) is None and order_table(str(clean)).credits is None


def test_a_footer_above_pyarrows_default_limit_still_reads(tmp_path):
    """Millions of customers' credits make the footer pass pyarrow's default 100 MB limit: the
    clean file must still read as one (not "not a clean file written by crmlab")."""
    import duckdb

    from crmlab.engine.sources import _CREDITS_KEY, _MARK, read_clean_ledger

    path = tmp_path / "big.parquet"
    credits = '{"columns": {"customer_id": [], "credit_lines": [], "credit_amount": []}, "pad": "' + "x" * (101 * 2**20) + '"}'
    kv = "{" + _MARK.decode() + ": '{\"file\": \"big.csv\"}', " + _CREDITS_KEY.decode() + ": '" + credits + "'}"
    duckdb.connect().execute(f"COPY (SELECT 1 AS a) TO '{path}' (FORMAT parquet, KV_METADATA {kv})")
    assert read_clean_ledger(str(path)) == {"file": "big.csv"}
