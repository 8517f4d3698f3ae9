"""``crmlab design`` on the sample (issue 28): the balance table's six covariates (recency,
frequency, monetary, tenure, past messages, past responses) against a hand computation from
the raw files, max |SMD| < 0.05 on the stratified design, re-randomisation lowering it, and the
programme holdout (a stable hash, recorded in the JSON and the .meta.json)."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from crmlab.cli.main import main
from crmlab.experiments.balance import design_covariates, design_experiment, response_strata

ARMS = "A@10:00,A@17:00,B@10:00,B@17:00"
PAID = {"paid", "交易成功"}  # the sample's paid wordings


@pytest.fixture(scope="module")
def covariates(store_orders, store_sends):
    return design_covariates(store_orders[0], store_sends[0], window_hours=72)


def test_covariates_by_hand_from_the_raw_files(store, covariates):
    f = covariates
    assert list(f.columns) == ["recency", "frequency", "monetary", "tenure", "past_messages", "past_responses"]
    raw = pd.read_csv(store / "orders.csv", dtype={"customer_id": str}, usecols=["customer_id", "order_time", "status"])
    raw["order_time"] = pd.to_datetime(raw["order_time"])
    end = pd.Timestamp("2025-12-31 23:59:59")
    paid = raw[raw["status"].isin(PAID) & (raw["order_time"] <= end)]
    first = paid.groupby("customer_id")["order_time"].min()
    ids = f.index[::997]
    tenure = (end.normalize() - first.reindex(ids).dt.normalize()).dt.days
    assert f.loc[ids, "tenure"].to_numpy() == pytest.approx(tenure.to_numpy(float))
    # past messages: delivered rows whose 72 h window closed by the end; responses: a paid order in it
    s = pd.read_csv(store / "sends.csv", dtype={"customer_id": str})
    s["send_time"] = pd.to_datetime(s["send_time"])
    closed = s[s["send_time"] + pd.Timedelta(hours=72) <= end]
    t = closed.merge(paid, on="customer_id", how="left")
    lag = (t["order_time"] - t["send_time"]).dt.total_seconds()
    t["hit"] = (lag >= 0) & (lag <= 72 * 3600)
    answered = t.groupby(["customer_id", "send_time", "delivered"])["hit"].any().reset_index()
    held = answered[~answered["delivered"]]
    organic = held["hit"].mean()
    got = answered[answered["delivered"]].groupby("customer_id").agg(m=("hit", "size"), r=("hit", "sum"))
    sample = got.index[::401]
    assert f.loc[sample, "past_messages"].to_numpy() == pytest.approx(got.loc[sample, "m"].to_numpy(float))
    assert f.loc[sample, "past_responses"].to_numpy() == pytest.approx(
        (got.loc[sample, "r"] - got.loc[sample, "m"] * organic).to_numpy(float), rel=1e-9)
    never = f.index.difference(got.index)[:50]  # never messaged: 0 messages and 0 responses, not missing
    assert (f.loc[never, ["past_messages", "past_responses"]].to_numpy() == 0).all()
    assert "organic rate" in f.attrs["past_responses"]


def test_stratified_design_on_the_sample_is_balanced(store, tmp_path, capsys):
    out = tmp_path / "assignment.csv"
    rc = main(["design", "--orders", str(store / "orders.csv"), "--sends", str(store / "sends.csv"),
               "--observation-end", "2025-12-31", "--arms", ARMS, "--holdout", "0.2",
               "--strata", "rfm,lifecycle,responses", "--out", str(out), "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert [b["covariate"] for b in d["balance"]] == d["covariates"] == [
        "recency", "frequency", "monetary", "tenure", "past_messages", "past_responses"]
    assert d["max_abs_smd"] < 0.05
    assert d["max_abs_smd"] == pytest.approx(max(abs(v) for b in d["balance"] for v in b["smd"].values()))
    meta = json.loads((tmp_path / "assignment.meta.json").read_text(encoding="utf-8"))
    assert meta["seed"] == 0 and meta["program_holdout"]["share"] == 0 and meta["strata"] == "rfm,lifecycle,responses"
    assert d["meta"] == str(tmp_path / "assignment.meta.json")


def test_rerandomisation_lowers_the_sample_imbalance(covariates):
    strata = response_strata(covariates)
    arms = ARMS.split(",")
    one = [design_experiment(covariates, arms, 0.2, strata, seed=s)["max_abs_smd"] for s in range(5)]
    rr = design_experiment(covariates, arms, 0.2, strata, seed=0, rerandomize=40, threshold=0.025)
    assert rr["max_abs_smd"] < min(one[0], 0.025) and rr["rerandomized"]["accepted"]
    assert rr["rerandomized"]["seed_used"] == rr["rerandomized"]["draws"] - 1
    never = design_experiment(covariates, arms, 0.2, strata, seed=0, rerandomize=3, threshold=0.0)
    assert never["rerandomized"]["draws"] == 3 and not never["rerandomized"]["accepted"]  # every draw counted


def test_program_holdout_in_the_design(store, tmp_path, capsys):
    out = tmp_path / "a.csv"
    rc = main(["design", "--orders", str(store / "orders.csv"), "--observation-end", "2025-12-31", "--arms",
               "A@10:00,B@17:00", "--program-holdout", "0.05", "--program-salt", "store-2025", "--out", str(out),
               "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and "no send log" in d["past_responses"] and len(d["covariates"]) == 4
    ids = pd.read_csv(store / "orders.csv", dtype={"customer_id": str}, usecols=["customer_id", "status"])
    buyers = sorted(ids.loc[ids["status"].isin(PAID), "customer_id"].unique())
    u = np.array([int.from_bytes(hashlib.blake2b(f"store-2025|{c}".encode(), digest_size=8).digest(), "big")
                  for c in buyers]) / 2 ** 64
    held = {c for c, x in zip(buyers, u) if x < 0.05}
    a = pd.read_csv(out, dtype={"customer_id": str})
    assert d["program_holdout"]["customers"] == len(held) and not held & set(a["customer_id"])
    assert len(a) + len(held) == len(buyers)
    meta = json.loads((tmp_path / "a.meta.json").read_text(encoding="utf-8"))
    assert meta["program_holdout"]["salt"] == "store-2025" and meta["program_holdout"]["share"] == 0.05
    assert "blake2b" in meta["program_holdout"]["rule"]


def test_candidates_without_orders_keep_their_messages(store_orders, store_sends):
    s = store_sends[0]
    messaged = s.loc[s["delivered"] & (s["send_time"] < "2025-12-01"), "customer_id"].iloc[0]
    extra = s[s["customer_id"] == messaged].assign(customer_id="NEW1")  # a messaged candidate with no order
    f = design_covariates(store_orders[0], pd.concat([s, extra], ignore_index=True),
                          candidates=["NEW1", "NEW2", messaged])
    assert f.loc["NEW1", "past_messages"] == f.loc[messaged, "past_messages"] >= 1
    assert np.isnan(f.loc["NEW1", "recency"]) and np.isnan(f.loc["NEW2", "tenure"])  # missing, not 0
    assert f.loc["NEW2", "past_messages"] == 0 and list(f.index) == ["NEW1", "NEW2", messaged]
