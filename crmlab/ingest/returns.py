"""Returns and credit notes: separate reversal documents netted against the purchases they reverse.

An export may carry a reversal as its own document with a negative amount (a credit note,
a ``C``-prefixed invoice as in the UK Online Retail data, a refund row with its own id).
:func:`reversal_mask` says which screened lines are reversals: with ``returns="net"`` every
line with a negative amount that is otherwise valid; by default (``None``/``"auto"``) the
lines whose order id says so (``C`` followed by a digit); with ``"ignore"`` none (today's
behaviour: a negative paid line is excluded as ``negative_amount_on_paid_order``).

:func:`net_returns` matches each reversal line to one purchase of the same customer made at
most ``window_days`` before it (by product, and a purchased quantity at least the returned
one, where the export has those columns and the line names a product; else by amount: an order of at least the reversed
amount, an exact amount first, the latest first) and nets it, in the engine: an order
whose whole value is reversed leaves the orders (``order_fully_reversed``), a partial
return lowers its amount. Unmatched reversals are counted (``unmatched``), never netted: each
stays a customer-level credit, per customer in :func:`customer_credits`.
"""
from __future__ import annotations

import ibis
import pandas as pd

from crmlab.engine.aggregates import ts
from crmlab.schema import CrmlabInputError

__all__ = ["RETURN_MODES", "reversal_mask", "net_returns", "customer_credits", "empty_returns", "WINDOW_DAYS"]

RETURN_MODES = ("net", "ignore")
WINDOW_DAYS = 30
_CENT = 0.005


def check_mode(returns) -> str:
    """``"auto"`` (None), ``"net"`` or ``"ignore"``; anything else is an input error."""
    if returns is None or returns == "auto":
        return "auto"
    if returns not in RETURN_MODES:
        raise CrmlabInputError(f"returns must be one of net, ignore (got {returns!r})")
    return returns


def empty_returns() -> dict:
    return {"reversal_lines": 0, "matched": 0, "unmatched": 0, "orders_fully_reversed": 0, "amount_netted": 0.0}


def reversal_mask(lines: ibis.Table, mode: str):
    """Which screened lines are reversal lines (``None`` under ``"ignore"``)."""
    if mode == "ignore":
        return None
    negative = lines.amount < 0
    by_id = lines.order_id.re_search(r"^[Cc][0-9]")
    ok = lines.reason.isnull() | (lines.reason == "negative_amount_on_paid_order")
    if mode == "net":
        return ok & negative
    return ok & negative & by_id.fill_null(False)


def _candidates(rev: ibis.Table, buys: ibis.Table, orders: ibis.Table, window_days: int) -> ibis.Table:
    """(reversal row, order id, priority, exact, time) pairs a reversal may net against."""
    lag = ibis.interval(days=window_days)
    r = rev.select(r_row=rev.row, r_cust=rev.customer_id, r_time=rev.order_time, r_amt=-rev.amount,
                   **({"r_prod": rev["product"]} if "product" in rev.columns else {}),
                   **({"r_qty": rev["quantity"]} if "quantity" in rev.columns else {}))
    o = orders.filter(orders.status == "paid")
    o = o.select(o_id=o.order_id, o_cust=o.customer_id, o_time=o.order_time, o_amt=o.amount)
    # where the export has products, a line with one is matched by product only
    ra = r.filter(r.r_prod.isnull()) if "product" in rev.columns else r
    by_amount = ra.join(o, [ra.r_cust == o.o_cust, o.o_time <= ra.r_time, o.o_time >= ra.r_time - lag,
                           o.o_amt >= ra.r_amt - _CENT])
    pairs = by_amount.select(r_row=by_amount.r_row, o_id=by_amount.o_id, prio=ibis.literal(1),
                             exact=((by_amount.o_amt - by_amount.r_amt).abs() < _CENT).cast("int64"),
                             o_time=by_amount.o_time)
    if "product" not in rev.columns:
        return pairs
    b = buys.filter((buys.status == "paid") & (buys.amount > 0) & buys["product"].notnull())
    b = b.select(b_id=b.order_id, b_cust=b.customer_id, b_time=b.order_time, b_prod=b["product"],
                 **({"b_qty": b["quantity"]} if "quantity" in b.columns else {}))
    preds = [r.r_cust == b.b_cust, r.r_prod == b.b_prod, b.b_time <= r.r_time, b.b_time >= r.r_time - lag]
    if "quantity" in rev.columns:
        preds.append(r.r_qty.isnull() | (b.b_qty >= -r.r_qty))
    by_product = r.join(b, preds).join(o, b.b_id == o.o_id)  # only orders that are kept
    by_product = by_product.select(r_row=by_product.r_row, o_id=by_product.b_id, prio=ibis.literal(0),
                                   exact=ibis.literal(1).cast("int64"), o_time=by_product.b_time)
    return by_product.union(pairs)


def _best_matches(rev: ibis.Table, buys: ibis.Table, orders: ibis.Table, window_days: int) -> ibis.Table:
    """(r_row, o_id): the one order each matched reversal line nets against."""
    pairs = _candidates(rev, buys, orders, window_days)
    w = ibis.window(group_by=pairs.r_row, order_by=[pairs.prio, ibis.desc(pairs.exact), ibis.desc(pairs.o_time),
                                                    ibis.desc(pairs.o_id)])
    best = pairs.mutate(k=ibis.row_number().over(w))
    return best.filter(best.k == 0).select("r_row", "o_id")


def customer_credits(rev: ibis.Table, buys: ibis.Table, orders: ibis.Table,
                     window_days: int = WINDOW_DAYS) -> ibis.Table:
    """The customer-level credits: the reversal lines of ``rev`` that match no purchase (the
    ledger's ``unmatched``), per customer.

    Parameters
    ----------
    rev, buys, orders : ibis.Table
        As for :func:`net_returns` (the same tables give the same matches).
    window_days : int

    Returns
    -------
    ibis.Table
        ``customer_id``, ``credit_lines`` (unmatched reversal lines) and ``credit_amount``
        (their money, positive), one row per customer with such a line; a customer without
        one has no credit (0), not an unknown one.
    """
    best = _best_matches(rev, buys, orders, window_days)
    un = rev.anti_join(best, rev.row == best.r_row)
    return un.group_by("customer_id").aggregate(credit_lines=un.row.count(), credit_amount=(-un.amount).sum())


def net_returns(rev: ibis.Table, buys: ibis.Table, orders: ibis.Table, eng,
                window_days: int = WINDOW_DAYS) -> tuple[ibis.Table, ibis.Table, dict]:
    """Net the reversal lines ``rev`` against ``orders`` (purchase lines ``buys``, for the
    product match): the netted orders, the ids of fully reversed orders, and the counts."""
    best = _best_matches(rev, buys, orders, window_days)
    m = best.join(rev.select(r_row=rev.row, r_amt=-rev.amount), "r_row")
    per = m.group_by(n_id=m.o_id).aggregate(back=m.r_amt.sum(), n=m.r_row.count()).cache()
    j = orders.left_join(per, orders.order_id == per.n_id)
    back = ibis.least(j.back.fill_null(0.0), ibis.greatest(j.amount, 0.0))
    j = j.mutate(netted=back, left=j.amount - back)
    full = j.filter(j.back.notnull() & (j.left <= _CENT))
    gone = full.select(gone_id=full.order_id).cache()
    kept = j.filter(~(j.back.notnull() & (j.left <= _CENT)))
    kept = kept.mutate(amount=ibis.ifelse(kept.back.notnull(), kept.left, kept.amount))
    netted = kept.select(*orders.columns)
    s = eng.to_pandas(j.aggregate(amt=j.netted.sum(), matched=j.n.sum(),
                                  full=(j.back.notnull() & (j.left <= _CENT)).cast("int64").sum()))
    lines = int(eng.to_pandas(rev.aggregate(n=rev.row.count()))["n"].iloc[0])
    v = {k: (0 if pd.isna(s[k].iloc[0]) else s[k].iloc[0]) for k in ("matched", "amt", "full")}
    counts = {"reversal_lines": lines, "matched": int(v["matched"]), "unmatched": lines - int(v["matched"]),
              "orders_fully_reversed": int(v["full"]), "amount_netted": round(float(v["amt"]), 2)}
    return netted, gone, counts
