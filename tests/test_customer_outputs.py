"""Per-customer outputs in the engine: lifecycle stages, RFM scores, the wake-up list.

The stage and the scores are CASE expressions evaluated in the engine over the customer
table, with thresholds and quantile cut points computed there as small aggregates. Here they
must equal the former pandas computation (kept below, verbatim in substance, as the
reference: the whole customer table in pandas, ``rank(method="average")`` quintiles,
``np.select`` stages) on the simulated store and on hand fixtures full of ties, including
paid-sales totals one ulp apart (0.1 + 0.2 and 0.3) on a score boundary.

Independent pins of the numbers themselves stay where they were (tests/test_retention_repurchase.py,
tests/test_wakeup.py, tests/test_boundaries.py); Spark equality at the end (marked ``spark``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmlab.engine.connection import connect
from crmlab.engine.sources import order_table, write_clean
from crmlab.engine.aggregates import customer_frame, order_sequence, write_rows
from crmlab.ingest.readers import load_orders
from crmlab.analyses.lifecycle import (STAGE_CN, STAGES, gap_percentile, lifecycle_counts, lifecycle_stages, stage_counts,
                              stage_table, stage_transitions)
from crmlab.analyses.rfm import rfm_cut_points, rfm_scores, rfm_table, segment_summary
from crmlab.analyses.wakeup import wakeup_list, wakeup_table
from conftest import orders_frame

# ----------------------------------------------------------------------------- the pandas reference


def _ref_quantile_score(x, bins, higher):
    r = (x if higher else -x).rank(method="average")
    return np.ceil((r - 0.5) / len(x) * bins).clip(1, bins).astype(int)


def _ref_cut_score(x, cuts, higher):
    edges = [-np.inf, *sorted(cuts), np.inf]
    s = pd.cut(x, edges, labels=False, right=True).astype(int) + 1
    return s if higher else (len(edges) - s)


def ref_rfm(o, bins=5, cuts=None):
    c = customer_frame(o)
    c = c[c["paid_orders"] > 0]
    out = pd.DataFrame({"recency": c["recency_days"], "frequency": c["paid_orders"], "monetary": c["sales"]})
    cuts = dict(cuts or {})
    for col, letter, better in (("recency", "R", False), ("frequency", "F", True), ("monetary", "M", True)):
        out[letter] = (_ref_cut_score(out[col], cuts[col], better) if col in cuts
                       else _ref_quantile_score(out[col], bins, better))
    out["score"] = out["R"].astype(str) + out["F"].astype(str) + out["M"].astype(str)
    R, F, M = out["R"], out["F"], out["M"]
    out["segment"] = np.select([(R >= 4) & (F >= 4) & (M >= 4), (R >= 3) & (F >= 3), (R >= 4) & (F <= 2),
                                (R <= 2) & (F >= 3), (R <= 2) & (F <= 2)],
                               ["champions", "loyal", "new", "at_risk", "hibernating"], default="need_attention")
    return out


def ref_thresholds(o, rule, ladder=(90, 180, 270, 360), cycles=None, slack=0.5, seasons=None, percentile=0.9,
                   horizon_days=None):
    s = order_sequence(o)
    cols = ["customer_id"] + [x for x in ("product", "category", "quantity") if o.has(x)]
    last = o.engine.to_pandas(s.filter(s.k == s.n_orders).select(*cols)).sort_values("customer_id")
    last = last.set_index("customer_id")
    if rule == "ladder":
        return pd.Series(float(ladder[0]), index=last.index)
    if rule == "percentile":
        return pd.Series(gap_percentile(o, percentile, float(horizon_days)), index=last.index)
    if rule == "product_cycle":
        per_unit = pd.Series(np.nan, index=last.index)
        for col in ("category", "product"):
            if col in last.columns:
                v = last[col].astype(str).map(cycles)
                per_unit = v.where(v.notna(), per_unit)
        qty = last["quantity"].fillna(1).clip(lower=1) if "quantity" in last else 1.0
        return per_unit * qty * (1 + slack)
    return last["category"].astype(str).map(seasons).astype(float)


def ref_stages(o, rule="ladder", ladder=(90, 180, 270, 360), lost_days=None, **kw):
    c = customer_frame(o)
    lost_days = float(ladder[3] if lost_days is None else lost_days)
    kw.setdefault("horizon_days", lost_days)
    buyers = c["paid_orders"] > 0
    thr = pd.Series(np.nan, index=c.index)
    thr.loc[buyers] = ref_thresholds(o, rule, ladder, **kw).reindex(c.index[buyers])
    days = c["recency_days"]
    seg = pd.Series("", index=c.index)
    top = pd.Series(False, index=c.index)
    s = ref_rfm(o)
    seg.loc[s.index] = s["segment"]
    top.loc[s.index] = (s["F"] == 5) & (s["M"] == 5) & (s["R"] >= 4)
    stage = np.select([~buyers, days > lost_days, days > thr, c["paid_orders"] == 1, top],
                      ["potential", "lost", "dormant", "new", "fan"], default="returning")
    # a dormant or lost customer is labelled by what they were (F and M scores), never by an RFM segment
    F, M = pd.Series(0, index=c.index), pd.Series(0, index=c.index)
    F.loc[s.index], M.loc[s.index] = s["F"], s["M"]
    two = c["paid_orders"] >= 2  # "top" and "regular" need two paid orders (scores are relative)
    was = np.select([two & (F >= 4) & (M >= 4), two & (F >= 3), M >= 4], ["formerly a top customer",
                                                                          "formerly a regular customer",
                                                             "few orders, high spend"], default="few orders")
    quiet = np.isin(stage, ["dormant", "lost"])
    seg = seg.where(~quiet, pd.Series(was, index=c.index))
    step = np.select([~buyers, days <= ladder[0], days <= ladder[1], days <= ladder[2], days <= ladder[3]],
                     ["", "active 活跃", "silent 沉默", "sleeping 睡眠", "sleeping 睡眠 (>270)"], default="lost 流失")
    out = pd.DataFrame({"stage": stage, "ladder_step": step, "paid_orders": c["paid_orders"], "sales": c["sales"],
                        "last_time": c["last_time"], "days_since_last": days, "dormancy_threshold": thr,
                        "segment": seg}, index=c.index)
    out.insert(1, "stage_cn", out["stage"].map(STAGE_CN))
    return out


def same_rfm(o, as_of=None, **kw):
    o = order_table(o, None, as_of)
    new, ref = rfm_scores(o, **kw), ref_rfm(o, **kw)
    pd.testing.assert_frame_equal(new, ref, check_names=False)
    return new


def same_stages(o, as_of=None, **kw):
    o = order_table(o, None, as_of)
    new, ref = lifecycle_stages(o, **kw), ref_stages(o, **kw)
    pd.testing.assert_frame_equal(new, ref, check_names=False)
    assert new.attrs["as_of"] == o.observation_end
    return new


# ----------------------------------------------------------------------------- hand fixtures with ties

END = "2025-12-31"


def _ties():
    """Twenty-one buyers and a potential: frequencies mostly 1 (a big tie), recency ties in
    threes, sales with repeated totals, and the pair 0.1 + 0.2 (0.30000000000000004) vs 0.3
    (neighbouring doubles) landing on the boundary between two monetary scores."""
    rows = []
    for i in range(12):  # 12 one-order buyers, recency in tied triples, sales tied in pairs
        rows.append((f"one{i:02d}", f"2025-{1 + (i // 3) * 3:02d}-15 10:00", 50.0 * (1 + i // 2)))
    rows += [("pa", "2025-11-01 09:00", 0.1), ("pa", "2025-11-02 09:00", 0.2), ("pb", "2025-11-01 09:00", 0.3)]
    for i in range(7):  # repeat buyers with tied order counts
        for j in range(2 + i // 3):
            rows.append((f"rep{i}", f"2025-{6 + j:02d}-{10 + i:02d} 12:00", 400.0))
    rows.append(("pot", "2025-05-05 10:00", 999.0, "unpaid"))
    return load_orders(orders_frame(rows), observation_end=END)[0]


@pytest.fixture(scope="module")
def ties():
    return order_table(_ties())


def test_hand_ties_rfm_equal_the_pandas_reference(ties):
    s = same_rfm(ties)
    assert len(s) == 21 and s["F"].nunique() < 5  # ties share scores
    # 0.1 + 0.2 and 0.3 are different totals (one ulp apart): the pandas ranks keep them apart
    assert s.at["pa", "monetary"] != s.at["pb", "monetary"]
    for bins in (3, 4, 7, 10):
        same_rfm(ties, bins=bins)
    same_rfm(ties, cuts={"frequency": [1, 2, 3], "recency": [30, 90, 180]})
    same_rfm(ties, cuts={"monetary": [0.3, 100, 300]})  # a total equal to a cut point is in the lower bin
    same_rfm(ties, cuts={"frequency": []})
    with pytest.raises(ValueError, match="unique"):
        rfm_scores(ties, cuts={"frequency": [1, 1, 2]})


def test_ulp_apart_totals_on_a_score_boundary():
    """Five buyers: totals 0.3, 0.1 + 0.2 (= 0.30000000000000004, the next double) and three
    larger; with 5 bins the mid-rank percentiles are 0.1, 0.3, ..., 0.9, so 0.3 scores 1 and
    0.1 + 0.2 scores 2: the engine's CASE keeps two neighbouring doubles apart."""
    rows = [("x", "2025-12-01", 0.1), ("x", "2025-12-02", 0.2), ("y", "2025-12-01", 0.3),
            ("z1", "2025-12-01", 5.0), ("z2", "2025-12-01", 6.0), ("z3", "2025-12-01", 7.0)]
    o = order_table(load_orders(orders_frame(rows), observation_end=END)[0])
    s = same_rfm(o)
    assert s.loc[["y", "x", "z1", "z2", "z3"], "M"].tolist() == [1, 2, 3, 4, 5]
    cp = rfm_cut_points(o)
    m = cp[cp["metric"] == "monetary"]
    assert m["low"].tolist()[:2] == [0.3, 0.1 + 0.2]


def test_hand_ties_stages_equal_the_pandas_reference(ties):
    same_stages(ties)
    same_stages(ties, ladder=(30, 60, 90, 120))
    same_stages(ties, lost_days=200)
    same_stages(ties, rule="percentile", percentile=0.5)
    same_stages(ties, as_of="2025-09-30")


def test_product_cycle_and_season_equal_the_pandas_reference():
    rows = [(c, t, a) for c, t, a in [("a", "2025-01-01", 10.0), ("a", "2025-03-01", 10.0), ("b", "2025-06-01", 5.0),
                                       ("c", "2025-09-01", 7.0), ("d", "2025-10-01", 1.0)]]
    df = orders_frame(rows)
    df["category"] = ["pet", "pet", "beauty", None, "pet"]
    df["product"] = ["food", "food", "mask", "food", "toy"]
    df["quantity"] = [1, 4, None, 0, 2]
    o = order_table(load_orders(df, observation_end=END)[0])
    s = same_stages(o, rule="product_cycle", cycles={"pet": 7, "beauty": 30, "food": 10.5}, slack=0.25)
    assert s.at["a", "dormancy_threshold"] == 10.5 * 4 * 1.25 and s.at["c", "dormancy_threshold"] == 10.5 * 1.25
    with pytest.raises(ValueError, match=r"cycles has no consumption days for 1 customers' last products: \['toy'\]"):
        lifecycle_stages(o, rule="product_cycle", cycles={"food": 7, "mask": 3})
    o2 = order_table(load_orders(df.assign(category=["pet", "pet", "beauty", "pet", "pet"]), observation_end=END)[0])
    same_stages(o2, rule="season", seasons={"pet": 40, "beauty": 365})
    with pytest.raises(ValueError, match=r"seasons has no length for categories \['beauty'\]"):
        lifecycle_stages(o2, rule="season", seasons={"pet": 40})


def test_no_buyers_every_customer_is_potential_whatever_the_rule():
    o = order_table(load_orders(orders_frame([("p", "2025-05-05", 1.0, "unpaid")]), observation_end=END)[0])
    for rule in ("ladder", "percentile"):
        s = lifecycle_stages(o, rule=rule)
        assert s["stage"].tolist() == ["potential"] and s["segment"].tolist() == [""]
    assert rfm_scores(o).empty
    assert lifecycle_counts(o)["customers"].to_dict() == dict.fromkeys(STAGES, 0) | {"potential": 1}


def test_counts_transitions_and_wakeup_in_the_engine(ties):
    st = lifecycle_stages(ties)
    c = lifecycle_counts(ties)
    pd.testing.assert_frame_equal(c, stage_counts(st))
    pd.testing.assert_frame_equal(stage_counts(stage_table(ties)), stage_counts(st))
    assert c.attrs["customers"] == len(st) and c.attrs["as_of"] == ties.observation_end
    # transitions: the same crosstab the pandas frames give
    a = lifecycle_stages(ties, "2025-08-31")["stage"].reindex(st.index).fillna("not yet a customer")
    m = pd.crosstab(a.rename("from"), st["stage"].rename("to"))
    rows = [s for s in ("not yet a customer", *STAGES) if s in m.index]
    cols = [s for s in STAGES if s in m.columns]
    pd.testing.assert_frame_equal(stage_transitions(ties, "2025-08-31", END), m.reindex(index=rows, columns=cols,
                                                                                         fill_value=0))
    w = wakeup_list(st, rfm_scores(ties))
    t = ties.engine.to_pandas(wakeup_table(ties)).set_index("customer_id")
    assert len(w) > 0
    pd.testing.assert_frame_equal(t, w, check_names=False)
    sc = rfm_scores(ties)
    pd.testing.assert_frame_equal(segment_summary(rfm_table(ties)), segment_summary(sc), check_exact=False,
                                  rtol=1e-12)


def test_lists_are_written_from_the_engine(ties, tmp_path):
    t = stage_table(ties)
    write_rows(ties.engine, t.order_by("customer_id"), str(tmp_path / "stages.parquet"))
    write_rows(ties.engine, wakeup_table(ties), str(tmp_path / "wakeup.csv"))
    back = pd.read_parquet(tmp_path / "stages.parquet").set_index("customer_id")
    st = lifecycle_stages(ties)
    assert back["stage"].to_dict() == st["stage"].to_dict()
    w = pd.read_csv(tmp_path / "wakeup.csv", dtype={"customer_id": str})
    assert w["customer_id"].tolist() == list(wakeup_list(st, rfm_scores(ties)).index)


# ----------------------------------------------------------------------------- the simulated store

def test_simulated_store_equals_the_pandas_reference(store_orders):
    o = order_table(store_orders[0])
    same_rfm(o)
    same_rfm(o, bins=4)
    same_stages(o)
    same_stages(o, rule="percentile")
    same_stages(o, as_of="2025-06-30")


def test_sample_data_equals_the_pandas_reference(small_store):
    o = order_table(load_orders(small_store / "orders.csv", observation_end="2025-12-31")[0])
    same_rfm(o)
    same_stages(o)


# ----------------------------------------------------------------------------- Spark

@pytest.mark.spark
def test_engine_outputs_identical_on_spark(small_store, tmp_path):
    df, led = load_orders(small_store / "orders.csv", observation_end="2025-12-31")
    clean = write_clean(df, led, str(tmp_path / "orders.parquet"))
    d, s = order_table(df, connect("duckdb")), order_table(clean, connect("spark", spark_master="local[2]"))
    pd.testing.assert_frame_equal(rfm_scores(d), rfm_scores(s), rtol=1e-9)
    pd.testing.assert_frame_equal(rfm_cut_points(d), rfm_cut_points(s), rtol=1e-9)
    pd.testing.assert_frame_equal(rfm_scores(d, cuts={"monetary": [100.5, 300, 1000]}),
                                  rfm_scores(s, cuts={"monetary": [100.5, 300, 1000]}), rtol=1e-9)
    a, b = lifecycle_stages(d), lifecycle_stages(s)
    pd.testing.assert_frame_equal(a.drop(columns="last_time"), b.drop(columns="last_time"), rtol=1e-9)
    assert (a["last_time"].astype(str) == b["last_time"].astype(str)).all()
    pd.testing.assert_frame_equal(lifecycle_counts(d, rule="percentile"), lifecycle_counts(s, rule="percentile"))
    pd.testing.assert_frame_equal(stage_transitions(d, "2025-06-30", "2025-12-31"),
                                  stage_transitions(s, "2025-06-30", "2025-12-31"))
    pd.testing.assert_frame_equal(d.engine.to_pandas(wakeup_table(d)), s.engine.to_pandas(wakeup_table(s)),
                                  rtol=1e-9)
    write_rows(s.engine, wakeup_table(s), str(tmp_path / "w.csv"))
    assert pd.read_csv(tmp_path / "w.csv", dtype={"customer_id": str})["customer_id"].tolist() == \
        d.engine.to_pandas(wakeup_table(d))["customer_id"].tolist()


def test_cli_lifecycle_writes_every_customers_stage(small_store, tmp_path, capsys):
    """``crmlab lifecycle --out`` writes one row per customer from the engine; its stage
    counts are the counts the command prints (two computations that must agree)."""
    import json

    from crmlab.cli.main import main

    orders_csv = small_store / "orders.csv"
    out = tmp_path / "stages.csv"
    assert main(["lifecycle", "--orders", str(orders_csv), "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    stages = pd.read_csv(out)
    assert len(stages) == printed["customers"] == stages["customer_id"].nunique()
    assert stages["stage"].value_counts().to_dict() == {k: v for k, v in printed["counts"].items() if v}


def test_counts_state_the_dormancy_threshold(small_store):
    """The threshold ``crmlab lifecycle --json`` reports is the one :func:`dormancy_threshold`
    gives each buyer: the ladder's fixed step (90 days by default) or the gap percentile."""
    from crmlab.engine.loading import load
    from crmlab.analyses.lifecycle import LADDER, dormancy_threshold

    o, _ = load(str(small_store / "orders.csv"))
    assert lifecycle_counts(o).attrs["dormancy_threshold"] == 90.0 == float(dormancy_threshold(o).iloc[0])
    assert 90 in LADDER
    per_buyer = dormancy_threshold(o, rule="percentile")
    assert per_buyer.nunique() == 1
    assert lifecycle_counts(o, rule="percentile").attrs["dormancy_threshold"] == float(per_buyer.iloc[0])
