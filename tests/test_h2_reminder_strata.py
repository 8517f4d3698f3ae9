"""``crmlab design --reminders --strata``: strata of unpaid orders, balance, the unchanged draw.

Expected values come from the simulated store's planted truth (past paid orders, hour placed,
amount) and from hand bounds on the standardised mean difference (SMD) of a 0/1 covariate:
with p the share of returning customers and arm sizes m, a difference of one returning order
between two arms moves the share by 1/m, so |SMD| <= (1/m) / sqrt(p(1-p)).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crmlab.cli.main import main
from crmlab.experiments.reminder_design import design_reminders, reminder_covariates
from crmlab.schema import CrmlabInputError

END = pd.Timestamp("2025-06-10 00:00")


def _store(n_open: int = 120, returning: float = 0.3, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n_open`` unpaid open orders of distinct customers, a share ``returning`` of them with 1–4
    paid orders before (planted), returning customers' orders ~4x larger (the planted imbalance
    an unlucky draw can put in one arm). Returns the orders frame and the planted truth."""
    rng = np.random.default_rng(1000 + seed)
    ret = rng.random(n_open) < returning
    past = np.where(ret, rng.integers(1, 5, n_open), 0)
    hour = rng.integers(0, 24, n_open)
    created = (END - pd.Timedelta(hours=48) + pd.to_timedelta(hour, unit="h")
               + pd.to_timedelta(rng.integers(0, 59, n_open), unit="min"))
    amount = np.round(rng.lognormal(4, 0.3, n_open) * np.where(ret, 4, 1), 2)
    ids = [f"c{i:04d}" for i in range(n_open)]
    rows = [{"order_id": f"U{i:04d}", "customer_id": ids[i], "created_time": created[i], "paid_time": pd.NaT,
             "closed_time": pd.NaT, "status": "unpaid", "amount": amount[i]} for i in range(n_open)]
    for i in np.flatnonzero(past):
        for j in range(past[i]):
            t = created[i] - pd.Timedelta(days=30 * (j + 1))
            rows.append({"order_id": f"P{i:04d}-{j}", "customer_id": ids[i], "created_time": t, "paid_time": t,
                         "closed_time": pd.NaT, "status": "paid", "amount": 50.0})
        # paid at the very moment the unpaid order was placed, and one paid later: neither is "before"
        rows.append({"order_id": f"S{i:04d}", "customer_id": ids[i], "created_time": created[i],
                     "paid_time": created[i], "closed_time": pd.NaT, "status": "paid", "amount": 9.0})
        rows.append({"order_id": f"L{i:04d}", "customer_id": ids[i], "created_time": created[i] + pd.Timedelta("1h"),
                     "paid_time": created[i] + pd.Timedelta("2h"), "closed_time": pd.NaT, "status": "paid",
                     "amount": 9.0})
    orders = pd.DataFrame(rows)
    orders.attrs["observation_end"] = END
    truth = pd.DataFrame({"past": past, "hour": hour, "amount": amount, "returning": ret},
                         index=pd.Index([f"U{i:04d}" for i in range(n_open)], name="order_id"))
    return orders, truth


def _abs_smd(d: dict, covariate: str) -> float:
    row = next(b for b in d["balance"] if b["covariate"] == covariate)
    return max(abs(v) for v in row["smd"].values())


def test_covariates_are_the_planted_ones():
    orders, truth = _store(n_open=40)
    o = orders[orders["status"] == "unpaid"]
    f = reminder_covariates(o, orders)
    t = truth.reindex(f.index)
    # an order paid at the same moment or later is not a past order; a paid one before is
    assert f["past_orders"].tolist() == t["past"].astype(float).tolist()
    assert f["returning"].tolist() == t["returning"].astype(float).tolist()
    assert f["hour"].tolist() == t["hour"].astype(float).tolist()
    assert f["value"].tolist() == t["amount"].tolist()


def test_stratified_draw_removes_the_planted_imbalance_in_every_seed():
    orders, truth = _store()
    p = truth["returning"].mean()
    m = len(truth) // 2
    bound = (1 / m) / np.sqrt(p * (1 - p))  # one returning order of difference between the arms
    assert bound < 0.05
    plain, strat = [], []
    for seed in range(20):
        plain.append(_abs_smd(design_reminders(orders, "none,6h", seed=seed), "returning"))
        d = design_reminders(orders, "none,6h", seed=seed, strata="customer")
        strat.append(_abs_smd(d, "returning"))
        assert d["arms"] == {"none": m, "6h": m} and d["strata"] == 2 and d["strata_by"] == ["customer"]
    assert max(strat) <= bound + 1e-12  # 20 of 20 seeds
    # the check has teeth: without strata a 0/1 covariate is off by more in most seeds
    # (P(exactly half the returning orders in each arm) is a hypergeometric ~0.15)
    assert sum(x > 0.05 for x in plain) >= 10


def test_each_stratum_is_split_in_equal_arms():
    orders, truth = _store(n_open=150, seed=3)
    arms = ["none", "1h", "6h", "24h"]
    d = design_reminders(orders, arms, seed=7, strata="value,customer,hour")
    a = d["assignment"].set_index("order_id").join(truth)
    # strata from the planted truth: amount tertiles, returning, hour band
    q1, q2 = np.quantile(truth["amount"], [1 / 3, 2 / 3])
    value = np.where(a["amount"] <= q1, "low", np.where(a["amount"] <= q2, "mid", "high"))
    band = pd.cut(a["hour"], [-1, 5, 11, 17, 23], labels=["night", "morning", "afternoon", "evening"]).astype(str)
    key = pd.Series(value, index=a.index) + "|" + a["returning"].map({True: "r", False: "n"}) + "|" + band
    grid = pd.crosstab(key, a["arm"]).reindex(columns=arms, fill_value=0)
    assert len(grid) == d["strata"]
    assert ((grid.max(axis=1) - grid.min(axis=1)) <= 1).all()  # within each stratum: sizes within one
    sizes = a["arm"].value_counts()
    assert sizes.max() - sizes.min() <= 1
    assert sorted(sum(r.values()) for r in d["by_stratum"].values()) == sorted(grid.sum(axis=1).tolist())
    six = d["assignment"][d["assignment"]["arm"] == "6h"]
    assert ((six["send_time"] - six["created_time"]) == pd.Timedelta(hours=6)).all()
    assert d["assignment"].loc[d["assignment"]["arm"] == "none", "send_time"].isna().all()


def test_each_order_has_an_equal_chance_of_each_arm():
    orders, truth = _store(n_open=30, seed=5)
    draws = np.array([(design_reminders(orders, "none,6h", seed=s, strata="customer,hour")["assignment"]
                       .set_index("order_id")["arm"] == "none").reindex(truth.index).to_numpy() for s in range(200)])
    share = draws.mean(axis=0)  # per order, over 200 seeds: binomial(200, 1/2) / 200, sd 0.035
    assert np.all(np.abs(share - 0.5) < 5 * 0.0354)  # 5 sd: ~1e-5 per order to fail by chance


def test_without_strata_the_draw_is_unchanged():
    orders, _ = _store(n_open=25)
    d = design_reminders(orders, "none,1h,6h", seed=11)
    o = orders[orders["status"] == "unpaid"].sort_values(["created_time", "order_id"], kind="stable")
    expected = np.array(["none", "1h", "6h"])[np.random.default_rng(11).permutation(np.arange(25) % 3)]
    assert d["assignment"]["order_id"].tolist() == o["order_id"].tolist()
    assert d["assignment"]["arm"].tolist() == expected.tolist()
    assert d["strata"] is None and list(d["by_stratum"]) == ["all"] and d["max_abs_smd"] >= 0


def test_rerandomize_and_bad_strata():
    orders, _ = _store(n_open=60)
    d = design_reminders(orders, "none,6h", seed=0, strata="customer", rerandomize=50, threshold=0.2)
    r = d["rerandomized"]
    assert r["accepted"] == (d["max_abs_smd"] < 0.2) and 1 <= r["draws"] <= 50
    assert r["seed_used"] == r["draws"] - 1 or not r["accepted"]
    with pytest.raises(CrmlabInputError, match="not value, customer or hour"):
        design_reminders(orders, "none,6h", strata="rfm")


def test_cli_design_reminders_strata(tmp_path, capsys):
    orders, truth = _store(n_open=40)
    p = tmp_path / "orders.csv"
    orders.assign(**{c: orders[c].dt.strftime("%Y-%m-%d %H:%M:%S") for c in ("created_time", "paid_time")}) \
        .drop(columns=["closed_time"]).to_csv(p, index=False)
    out = tmp_path / "rem.csv"
    assert main(["design", "--reminders", "--orders", str(p), "--arms", "none,6h", "--strata", "customer,hour",
                 "--observation-end", "2025-06-10 00:00", "--out", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["strata_by"] == ["customer", "hour"] and d["orders"] == 40
    assert {b["covariate"] for b in d["balance"]} == {"value", "returning", "past_orders", "hour"}
    assert list(pd.read_csv(out).columns) == ["order_id", "customer_id", "arm", "created_time", "send_time"]
    assert main(["design", "--reminders", "--orders", str(p), "--arms", "none,6h", "--strata", "rfm",
                 "--out", str(out)]) == 2
