"""pandas frames without copies (issue 30): a loader's frame is registered in the engine once, as
Arrow over its own memory, reused while unchanged and never served stale after a change in place;
the RFM summary of a frame (NumPy over its categorical codes) equals lifetimes' and the engine's.

The reference for the summary is lifetimes (``summary_data_from_transaction_data``); the engine
path is compared with it too. Timings are in benchmarks/bench_clv_summary.py, never here."""
from __future__ import annotations

import gc
import warnings

import numpy as np
import pandas as pd
import pytest

from crmlab.clv.summary import frame_summary, summary_frame, summary_table
from crmlab.engine import frames
from crmlab.engine.connection import get_engine
from crmlab.engine.sources import order_table
from crmlab.ingest.readers import load_orders

warnings.filterwarnings("ignore", module="lifetimes")
COLS = ["frequency", "recency", "T", "monetary_value"]
STATUSES = ["paid", "unpaid", "refunded", "cancelled"]


def _loader_frame(n: int = 4000, customers: int = 600, seed: int = 3, in_time_order: bool = True) -> pd.DataFrame:
    """A frame shaped like load_orders' (categorical ids and statuses), with several orders on
    one day for some customers, unpaid orders and ids whose order is not their text's."""
    rng = np.random.default_rng(seed)
    secs = rng.integers(0, 400 * 86400, n)
    secs[: n // 10] = secs[n // 10: n // 5]  # same moment (and day) as other orders
    times = np.datetime64("2024-03-01T00:00:00") + secs.astype("timedelta64[s]")
    ids = np.array([f"C{int(i)}" for i in rng.integers(0, customers, n)], dtype=object)
    df = pd.DataFrame({"order_id": [f"O{i}" for i in range(n)], "customer_id": pd.Categorical(ids),
                       "order_time": times.astype("datetime64[ns]"),
                       "amount": np.round(rng.gamma(2.0, 30.0, n), 2),
                       "status": pd.Categorical(rng.choice(STATUSES, n, p=[0.8, 0.1, 0.05, 0.05]),
                                                categories=STATUSES)})
    if in_time_order:
        df = df.sort_values("order_time", kind="stable").reset_index(drop=True)
    df.attrs.update(observation_end=pd.Timestamp(df["order_time"].max()), timezone="Asia/Shanghai")
    return df


def _lifetimes(df: pd.DataFrame, end: str, multiplier: int = 1) -> pd.DataFrame:
    from lifetimes.utils import summary_data_from_transaction_data

    paid = df[(df["status"] == "paid") & (df["order_time"] <= pd.Timestamp(end) + pd.Timedelta(days=1))]
    t = pd.DataFrame({"customer_id": paid["customer_id"].astype(str), "order_time": paid["order_time"],
                      "amount": paid["amount"]})
    out = summary_data_from_transaction_data(t, "customer_id", "order_time", monetary_value_col="amount",
                                             observation_period_end=end, freq="D", freq_multiplier=multiplier)
    return out[COLS].sort_index()


def _same(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    """Counts and durations exactly; money to 1e-12 (sums of the same amounts in another order)."""
    assert list(ours.index) == list(ref.index)
    for c in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(ours[c].to_numpy(), ref[c].to_numpy(), err_msg=c)
    np.testing.assert_allclose(ours["monetary_value"].to_numpy(), ref["monetary_value"].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("in_time_order", [True, False])
@pytest.mark.parametrize("unit,multiplier", [("D", 1), ("W", 7)])
def test_frame_summary_equals_lifetimes(in_time_order, unit, multiplier):
    df = _loader_frame(in_time_order=in_time_order)
    end = "2025-01-15"  # before the last orders: later ones are left out
    ours = frame_summary(df, end, unit)
    _same(ours, _lifetimes(df, end, multiplier))
    assert ours.index.name == "customer_id" and ours.index.dtype == object
    assert ours.attrs["observation_end"] == pd.Timestamp("2025-01-15 23:59:59.999999")
    assert ours.attrs["time_unit"] == unit and ours.attrs["settings"].timezone == "Asia/Shanghai"


def test_frame_summary_equals_the_engine():
    df = _loader_frame(seed=5)
    end = "2025-02-01"
    expr, o = summary_table(df, "D", end)
    engine = summary_frame(expr, o)
    ours = frame_summary(df, end)
    _same(ours, engine[COLS])
    assert engine.attrs["observation_end"] == ours.attrs["observation_end"]


def test_frame_summary_declines_what_it_cannot_read():
    df = _loader_frame(n=50)
    plain = df.assign(customer_id=df["customer_id"].astype(str))
    assert frame_summary(plain) is None  # text ids: the engine's job
    missing = df.copy()
    missing.loc[0, "customer_id"] = np.nan
    assert frame_summary(missing) is None
    with pytest.raises(ValueError):
        frame_summary(df, time_unit="M")
    none_paid = df.assign(status=pd.Categorical(["unpaid"] * len(df), categories=STATUSES))
    empty = frame_summary(none_paid)
    assert empty is not None and len(empty) == 0 and list(empty.columns) == COLS


def test_frame_summary_of_a_loaded_frame_equals_lifetimes():
    raw = pd.DataFrame({"customer_id": ["b", "a", "b", "a", "c", "b", "a"],
                        "order_id": ["1", "2", "3", "4", "5", "6", "7"],
                        "order_time": ["2024-01-01 10:00", "2024-01-02 09:00", "2024-01-01 18:00", "2024-02-01 08:00",
                                       "2024-03-01 12:00", "2024-03-05 12:00", "2024-02-01 20:00"],
                        "amount": [10.0, 20.0, 5.0, 7.5, 3.0, 8.0, 2.5]})
    o, _ = load_orders(raw)
    ours = frame_summary(o, "2024-03-31")
    # by hand: a buys on Jan 2 (20) and Feb 1 (7.5 + 2.5); b on Jan 1 (10 + 5) and Mar 5 (8); c once
    assert ours.loc["a"].tolist() == [1.0, 30.0, 89.0, 10.0]
    assert ours.loc["b"].tolist() == [1.0, 64.0, 90.0, 8.0]
    assert ours.loc["c"].tolist() == [0.0, 0.0, 30.0, 0.0]
    _same(ours, _lifetimes(o, "2024-03-31"))


# ---------------------------------------------------------------- registration


def test_a_frame_is_registered_once_and_without_copies():
    df = _loader_frame(n=300, seed=7)
    before = frames.registrations()
    t1 = order_table(df).table
    t2 = order_table(df, observation_end="2024-12-31").table
    assert t1 is t2 and frames.registrations() == before + 1
    assert dict(t1.schema())["order_time"].is_timestamp() and t1.schema()["customer_id"].is_string()
    arrow, made = frames.frame_to_arrow(df, {"amount": False, "order_time": False, "customer_id": True})
    assert arrow.column("amount").chunk(0).buffers()[1].address == df["amount"].to_numpy().ctypes.data
    codes = df["customer_id"].array.codes
    assert arrow.column("customer_id").chunk(0).indices.buffers()[1].address == codes.ctypes.data
    eng = get_engine()
    n = int(eng.to_pandas(t1.count().name("n").as_table())["n"].iloc[0])
    assert n == len(df)
    del df, t1, t2, arrow, made
    gc.collect()
    assert frames.registrations() == before  # gone with its frame


def test_orders_outlive_their_frame():
    df = _loader_frame(n=300, seed=19)
    o = order_table(df)
    expected = len(df)
    del df
    gc.collect()
    n = o.engine.to_pandas(o.table.filter(o.table.line >= 0).count().name("n").as_table())["n"].iloc[0]
    assert int(n) == expected  # the view stays while an expression over it does


def _paid_total(df: pd.DataFrame) -> float:
    o = order_table(df)
    t = o.table
    return float(o.engine.to_pandas(t.filter(t.status == "paid").amount.sum().name("s").as_table())["s"].iloc[0])


def test_a_frame_changed_in_place_is_never_served_stale():
    df = _loader_frame(n=500, seed=11)
    paid = df["status"] == "paid"
    assert _paid_total(df) == pytest.approx(df.loc[paid, "amount"].sum(), rel=1e-12)
    i = int(np.flatnonzero(paid.to_numpy())[3])
    df.loc[i, "amount"] = 1e6  # a number changed in place
    assert _paid_total(df) == pytest.approx(df.loc[paid, "amount"].sum(), rel=1e-12)
    df.loc[i, "status"] = "refunded"  # a categorical code changed in place
    assert _paid_total(df) == pytest.approx(df.loc[df["status"] == "paid", "amount"].sum(), rel=1e-12)
    df["amount"] = df["amount"] * 2  # a column replaced
    assert _paid_total(df) == pytest.approx(df.loc[df["status"] == "paid", "amount"].sum(), rel=1e-12)
    j = int(np.flatnonzero((df["status"] == "paid").to_numpy())[0])
    df.loc[j, "order_time"] = pd.NaT  # a value made missing: Arrow's bitmap must follow
    t = order_table(df).table
    missing = order_table(df).engine.to_pandas(t.order_time.isnull().sum().name("n").as_table())["n"].iloc[0]
    assert int(missing) == 1


def test_text_held_as_objects_is_compared_value_by_value():
    df = _loader_frame(n=200, seed=13)
    assert df["order_id"].dtype == object
    t = order_table(df).table
    first = lambda tab: get_engine().to_pandas(tab.filter(tab.line == 0).select("order_id"))["order_id"].iloc[0]  # noqa: E731
    assert first(t) == df["order_id"].iloc[0]
    for k in range(3):  # the old value freed, a new one may take its address: still seen
        df.loc[0, "order_id"] = f"changed-{k}"
        assert first(order_table(df).table) == f"changed-{k}"
    assert order_table(df).table is order_table(df).table


def test_fetch_frame_equals_the_engines_pandas():
    df = _loader_frame(n=400, seed=17)
    expr, o = summary_table(df, "D")
    a = frames.fetch_frame(o.engine, expr.order_by("customer_id"))
    b = o.engine.to_pandas(expr).sort_values("customer_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


# ---------------------------------------------------------------- the loader's two ends


def test_categorical_equals_pandas_astype_category():
    rng = np.random.default_rng(23)
    values = rng.choice(["b", "a", "Zz", "é", "10", "9", None], 1000).tolist()
    arrow = __import__("pyarrow").chunked_array([values[:400], values[400:]])
    got = frames.categorical(arrow)
    want = pd.Series(values, dtype=object).astype("category").array
    assert list(got.categories) == list(want.categories)
    np.testing.assert_array_equal(got.codes, want.codes)
    fixed = frames.categorical(arrow, ["a", "b", "unused"])
    pd.testing.assert_extension_array_equal(fixed, pd.Categorical(values, categories=["a", "b", "unused"]))


def test_register_lines_reads_as_the_chunked_copy_did():
    import duckdb
    import pyarrow as pa

    raw = pd.DataFrame({"customer_id": ["a", " b", None, 7], "order_id": ["1", "2", "3", "4"],
                        "order_time": ["2024-01-01", "x", None, "2024-01-02 10:00"],
                        "amount": [1.5, np.nan, 3.0, -1.0], "n": pd.array([1, None, 3, 4], dtype="Int64")})
    con = duckdb.connect()
    assert frames.register_lines(con, raw, "fast") == 4
    old = raw.copy()  # what raw_lines did with each chunk
    for c in old.columns:
        if old[c].dtype == object:
            old[c] = old[c].astype("string[pyarrow]")
    old.insert(0, "__row", np.arange(len(old), dtype=np.int64))
    con.register("old_chunk", pa.Table.from_pandas(old, preserve_index=False))
    a = con.execute("SELECT * FROM fast ORDER BY __row").fetchall()
    b = con.execute("SELECT * FROM old_chunk ORDER BY __row").fetchall()
    assert a == b
    assert con.execute("DESCRIBE fast").fetchall() == con.execute("DESCRIBE old_chunk").fetchall()


def test_load_orders_leaves_the_callers_frame_alone_and_returns_an_editable_one():
    """The loader renames the caller's columns without copying their values: the caller's frame
    (labels, index and values) is as it was; the orders it returns are the analyst's to edit
    (no read-only Arrow buffer under a numeric column); dtypes as documented."""
    raw = pd.DataFrame({"买家会员名": [" c1", "c2", "c1", None], "订单编号": ["o1", "o2", "o3", "o4"],
                        "订单付款时间": ["2024-01-02 10:00:00", "2024-01-03 11:00:00", "2024-02-01 09:00:00",
                                   "2024-02-02 09:00:00"], "实付金额": [10.0, np.nan, 25.5, 3.0],
                        "qty": np.array([1, 2, 1, 1], dtype="int8")}, index=[10, 11, 12, 13])
    before = raw.copy(deep=True)
    orders, led = load_orders(raw)
    pd.testing.assert_frame_equal(raw, before)
    assert led.excluded == {"missing_customer_id": 1, "non_numeric_amount": 1}
    orders.loc[0, "amount"] = 99.0
    orders.loc[0, "order_time"] = pd.Timestamp("2024-01-01")
    assert orders["amount"].iloc[0] == 99.0 and raw["实付金额"].iloc[0] == 10.0
    assert orders["order_id"].map(type).eq(str).all() and orders["customer_id"].dtype == "category"
    assert str(orders["order_time"].dtype) == "datetime64[ns]" and orders["amount"].dtype == np.float64
