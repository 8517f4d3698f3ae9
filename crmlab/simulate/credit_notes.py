"""Returns in the simulated store (issue 24): credit notes as separate documents.

With ``StoreSpec.returns = r`` each paid order is reversed with probability ``r`` by a credit
note: its own document with a ``C``-prefixed id (``C00000001`` …, numbered in time order),
the same customer, negative quantities and amounts, status ``paid`` (as a UK-style export
without a status column reads), placed minutes to days after the order (log-uniform between
5 minutes and 14 days) and always before the customer's next paid order, inside the 30 days
crmlab matches over, and not after the observation end. A share ``return_partial_share``
of the reversals is partial (one credit line: the product of the order's largest line,
quantity -1, 20-80 % of that line's amount), the rest full (one credit line per line of the
order, each line's product, quantity and amount negated). ``return_unmatched_share`` extra
credits per reversed order match no purchase (a product of another category than the
customer ever buys): they stay a customer-level credit.

All draws come from their own generator (``[seed, 2424]``), after the store is simulated,
so a store with returns has exactly the orders of the store without them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.simulate.customers import Customers
from crmlab.simulate.spec import CATEGORIES, StoreSpec

__all__ = ["credit_notes", "returns_truth", "MATCH_WINDOW_DAYS"]

#: crmlab's matching window (crmlab.ingest.returns.WINDOW_DAYS), mirrored here: a credit is
#: placed inside it so that the truth is what a correct matcher finds
MATCH_WINDOW_DAYS = 30
_MIN_GAP_S, _MAX_GAP_S = 300.0, 14 * 86400.0
_TIME = "%Y-%m-%d %H:%M:%S"


def _room(spec: StoreSpec, paid: pd.DataFrame) -> np.ndarray:
    """Seconds a credit may follow each paid order: before the customer's next paid order, the
    end and the matching window (0 when another paid order of the customer has the same time)."""
    t = paid["order_time"].to_numpy()
    same = paid["cust"].to_numpy()
    nxt_same = np.r_[same[1:] == same[:-1], False]
    prv_same = np.r_[False, same[1:] == same[:-1]]
    nxt = np.where(nxt_same, np.r_[t[1:], t[-1:]], np.datetime64(pd.Timestamp(spec.end)))
    limit = np.minimum(nxt, t + np.timedelta64(MATCH_WINDOW_DAYS * 86400 - 60, "s"))
    limit = np.minimum(limit, np.datetime64(pd.Timestamp(spec.end)))
    room = (limit - t) / np.timedelta64(1, "s") - 60.0  # a minute before the next order at least
    tie = prv_same & (np.r_[t[:1], t[:-1]] == t)
    return np.where(tie, 0.0, room)


def _reversed_orders(spec: StoreSpec, rng: np.random.Generator, allo: pd.DataFrame) -> pd.DataFrame:
    """The paid orders reversed: ``order_id, cust, order_time, credit_time, kind, u`` (u: the
    share of the largest line a partial return gives back)."""
    paid = allo[allo["status"] == "paid"].sort_values(["cust", "order_time", "order_id"], kind="stable")
    room = _room(spec, paid) if len(paid) else np.zeros(0)
    n = len(paid)
    pick = (rng.uniform(size=n) < spec.returns) & (room > _MIN_GAP_S)
    partial = rng.uniform(size=n) < spec.return_partial_share
    gap = np.exp(rng.uniform(np.log(_MIN_GAP_S), np.log(_MAX_GAP_S), n))
    u = rng.uniform(0.2, 0.8, n)
    gap = np.floor(np.minimum(gap, room))
    out = paid.loc[pick, ["order_id", "cust", "order_time"]].copy()
    out["credit_time"] = out["order_time"] + pd.to_timedelta(gap[pick], unit="s")
    out["kind"] = np.where(partial[pick], "partial", "full")
    out["u"] = u[pick]
    return out


def _attributes(lines: pd.DataFrame) -> pd.DataFrame:
    """Each customer's channel, region, nickname and phone (from the first line)."""
    cols = ["channel", "region", "nickname", "phone"]
    return lines.drop_duplicates("customer_id").set_index("customer_id")[cols]


def _returned_lines(rev: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """The credit lines of the reversed orders (full: every line with an amount; partial: one)."""
    ol = lines[lines["order_id"].isin(rev["order_id"])].copy()
    ol["cents"] = np.round(ol["amount"].to_numpy() * 100).astype(np.int64)
    ol = ol.merge(rev[["order_id", "credit_time", "kind", "u"]], on="order_id")
    total = ol.groupby("order_id")["cents"].transform("sum")
    top = ol.sort_values(["order_id", "cents"], ascending=[True, False], kind="stable").drop_duplicates("order_id")
    back = np.maximum(1, np.floor(top["u"].to_numpy() * top["cents"].to_numpy())).astype(np.int64)
    ok = back < total.loc[top.index].to_numpy()  # a 1-cent order cannot be partly returned: full instead
    part = top[ok & (top["kind"] == "partial").to_numpy()].copy()
    part["cents"] = back[ok & (top["kind"] == "partial").to_numpy()]
    part["quantity"] = 1
    full_ids = set(rev["order_id"]) - set(part["order_id"])
    full = ol[ol["order_id"].isin(full_ids) & (ol["cents"] > 0)].copy()
    full["kind"] = "full"
    out = pd.concat([full, part])
    out["quantity"] = -out["quantity"].astype(int)
    out["cents"] = -out["cents"]
    return out.assign(reverses=out["order_id"])


def _unmatched_lines(spec: StoreSpec, rng: np.random.Generator, cu: Customers, n_reversed: int) -> pd.DataFrame:
    """Credits that match no purchase: a product of a category the customer never buys."""
    m = int(round(n_reversed * spec.return_unmatched_share))
    c = rng.choice(cu.buyers, m)
    end = np.datetime64(pd.Timestamp(spec.end))
    span = np.maximum((end - cu.first[c]) / np.timedelta64(1, "s"), 0)
    t = (cu.first[c] + (rng.uniform(0, 1, m) * span).astype("timedelta64[s]")).astype("datetime64[s]")
    names = list(CATEGORIES)
    other = (cu.cat[c] + rng.integers(1, len(names), m)) % len(names)
    cents = np.maximum(1, np.round(rng.gamma(spec.spend_p, 1.0 / cu.nu[c]) * 100)).astype(np.int64)
    return pd.DataFrame({"customer_id": cu.ids[c], "credit_time": pd.to_datetime(t), "kind": "unmatched",
                         "product": [CATEGORIES[names[k]][0][0] for k in other],
                         "category": np.array(names)[other], "quantity": -1, "cents": -cents, "reverses": ""})


def credit_notes(spec: StoreSpec, cu: Customers, allo: pd.DataFrame,
                 lines: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The export with its credit-note lines (in time order) and the truth per credit line.

    Parameters
    ----------
    spec : StoreSpec
    cu : Customers
    allo : DataFrame
        Every order (``order_id, cust, order_time, status, ...``; status in English).
    lines : DataFrame
        The exported order lines.

    Returns
    -------
    orders : DataFrame
        ``lines`` with the credit lines added, stably sorted by time.
    credits : DataFrame
        One row per credit line: ``credit_id, customer_id, credit_time, kind`` (full, partial,
        unmatched), ``reverses`` (the order id, empty when unmatched), ``order_time``,
        ``product, quantity, amount`` (the credit, positive).
    """
    rng = np.random.default_rng([spec.seed, 2424])
    rev = _reversed_orders(spec, rng, allo)
    got = _returned_lines(rev, lines)
    cred = pd.concat([got, _unmatched_lines(spec, rng, cu, len(rev))], ignore_index=True)
    cred = cred.drop(columns=[c for c in ("channel", "region", "nickname", "phone") if c in cred.columns])
    cred = cred.join(_attributes(lines), on="customer_id")
    cred = cred.sort_values(["credit_time", "customer_id", "reverses"], kind="stable").reset_index(drop=True)
    doc = (cred["credit_time"].astype(str) + "|" + cred["customer_id"] + "|" + cred["reverses"]
           + "|" + cred.index.where(cred["kind"] == "unmatched", -1).astype(str))
    cred["credit_id"] = [f"C{i:08d}" for i in pd.factorize(doc)[0] + 1]
    cred["order_time"] = cred["reverses"].map(rev.set_index("order_id")["order_time"])
    export = pd.DataFrame({
        "customer_id": cred["customer_id"], "order_id": cred["credit_id"],
        "order_time": cred["credit_time"].dt.strftime(_TIME), "amount": cred["cents"] / 100.0, "status": "paid",
        "channel": cred["channel"], "region": cred["region"], "product": cred["product"],
        "category": cred["category"], "quantity": cred["quantity"], "nickname": cred["nickname"],
        "phone": cred["phone"]})
    orders = pd.concat([lines, export], ignore_index=True)
    orders = orders.sort_values("order_time", kind="stable").reset_index(drop=True)
    credits = pd.DataFrame({
        "credit_id": cred["credit_id"], "customer_id": cred["customer_id"],
        "credit_time": cred["credit_time"].dt.strftime(_TIME), "kind": cred["kind"], "reverses": cred["reverses"],
        "order_time": cred["order_time"].dt.strftime(_TIME).fillna(""), "product": cred["product"],
        "quantity": cred["quantity"], "amount": -cred["cents"] / 100.0})
    return orders, credits


def returns_truth(spec: StoreSpec, credits: pd.DataFrame, cut: str | None = None) -> dict:
    """truth.json's ``returns``: the credits in the (cut) export, and what a correct matcher finds.

    A credit line is matched when it reverses an order that is in the export (an order before
    ``cut`` is not: its credit after the cut is unmatched, a customer-level credit)."""
    c = credits
    if cut is not None:
        c = c[c["credit_time"] >= cut]
    matched = (c["kind"] != "unmatched") & ((c["order_time"] >= cut) if cut is not None else True)
    full = c[matched & (c["kind"] == "full")]
    part = c[matched & (c["kind"] == "partial")]
    unm = c[~matched]
    per_customer = unm.groupby("customer_id")["amount"].sum().round(2)
    return {
        "share": spec.returns, "partial_share": spec.return_partial_share,
        "unmatched_share": spec.return_unmatched_share, "match_window_days": MATCH_WINDOW_DAYS,
        "credit_notes": int(c["credit_id"].nunique()),
        "reversal_lines": int(len(c)), "matched": int(matched.sum()), "unmatched": int(len(unm)),
        "orders_fully_reversed": int(full["reverses"].nunique()),
        "orders_partly_reversed": int(part["reverses"].nunique()),
        "amount_netted": round(float(c.loc[matched, "amount"].sum()), 2),
        "amount_unmatched": round(float(unm["amount"].sum()), 2),
        "customers_with_credit": int(len(per_customer)),
        "note": "credit notes (C-prefixed ids, negative quantity and amount) placed 5 minutes to 14 days after "
                "the order and before the customer's next paid order; truth_returns.csv lists every credit line. "
                "The other figures of truth.json are the store's before returns (a fully reversed order is no "
                "purchase in the netted export)",
    }
