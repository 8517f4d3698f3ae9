"""Does an export start in the middle of the store's life (left truncation)?

Most exports start mid-life (a platform keeps 3 months to 2 years of orders), so every buyer
of the first months looks first-time. :func:`monthly_buyers` is one cheap aggregate in the
engine: per calendar month of paid orders, the buyers, the ``returning`` ones (whose first
paid order in the export is before the month) and the ``new`` ones (first paid order in the
month). :func:`judge` applies the rule to that small table; :func:`detect` does both.

The rule. Months are calendar months; a first month the export covers for fewer than
:data:`HEAD_DAYS` days (from its first paid order) is joined to the next one, the joined
month's buyers scaled to the next month's length (exact for a new store's new buyers, low
for a truncated export's buyers: the rule stays cautious); a first month covered for more
is kept with its counts as they are (low by the days missing: cautious too); a last month
not covered to its end is dropped. The reference months are
months 4–12 (fewer when the export is shorter). The export looks left-truncated when, with
at least :data:`MIN_MONTHS` months and :data:`MIN_BUYERS` buyers in the first month and in
the median reference month, both signals hold:

1. the first month's returning share is below a quarter (:data:`SHARE_RATIO`) of the
   reference months' median returning share, itself at least :data:`MIN_REF_SHARE`;
2. the first month's new (first-time) buyers are at least :data:`NEW_RATIO` (1.25) times
   the reference months' median new buyers, and nearer, on a ratio scale, to the reference
   months' median buyers than to their median new buyers (at least the geometric mean of
   the two).

Signal 1 alone does not tell a truncated export from a genuinely new store: a store that
opens within the export also starts with a returning share of 0. What tells them apart is
signal 2: a truncated export's first month counts every existing customer who buys that
month as new, so its "new" buyers are about as many as a later month's buyers; a new
store's first month brings about as many new buyers as a later month does (fewer while it
grows). A fixed "three times the later new buyers" is only reached by stores whose later
returning share is above two thirds (the ratio a truncated export can show is about
1 / (1 - returning share)): a simulated store with a 47% returning share, cut a year after
its opening, shows 1.5×.
"""
from __future__ import annotations

import pandas as pd

from crmlab.engine.aggregates import paid_orders
from crmlab.engine.sources import OrderTable

__all__ = ["monthly_buyers", "judge", "detect", "no_truncation", "HEAD_DAYS", "MIN_MONTHS", "MIN_BUYERS",
           "SHARE_RATIO", "NEW_RATIO", "MIN_REF_SHARE"]

HEAD_DAYS = 20
MIN_MONTHS = 4
MIN_BUYERS = 30
SHARE_RATIO = 0.25
NEW_RATIO = 1.25
MIN_REF_SHARE = 0.2
_REF = slice(3, 12)  # months 4..12
#: the months with paid orders the rule can read: a partial head joined to the next month, then
#: the rule's months 2-13, and one more (a partial last month is dropped)
RULE_MONTHS = 15


def no_truncation(evidence: str = "") -> dict:
    """The ledger's ``truncation`` entry when nothing was judged (or nothing found)."""
    return {"left_truncated": False, "evidence": evidence, "lead_in_days": 0}


def monthly_buyers(orders: OrderTable, months: int | None = None) -> pd.DataFrame:
    """Per calendar month with paid orders: ``month`` (its first day), ``buyers``,
    ``returning`` and ``new`` (see the module doc); plus ``first_day`` and ``last_day`` of
    the export in ``attrs`` (the first paid order's date, the observation end's date).

    ``months``: only the first ``months`` calendar months from the first paid order (what the
    rule reads: :func:`detect` scans no more of a long export). One pass per customer in the
    engine: the month index of the first paid order and, per month, whether the customer
    bought in it (one flag per month: no distinct over customer-months, no join)."""
    p = paid_orders(orders)
    eng = orders.engine
    month = (p.order_time.year() * 12 + p.order_time.month() - 1).name("month")  # months since year 0
    # the months with a paid order, a small table: a stray early order never widens the scan
    per_month = eng.to_pandas(p.group_by(month).aggregate(lo=p.order_time.min()))
    out = pd.DataFrame({"month": pd.Series(dtype="datetime64[ns]"), "buyers": pd.Series(dtype=int),
                        "returning": pd.Series(dtype=int), "new": pd.Series(dtype=int)})
    ks, cut = sorted(int(k) for k in per_month["month"]), False
    if ks:
        if months is not None and months < len(ks):
            ks, cut = ks[:months], True
            p = p.filter(month <= ks[-1])
        out = _per_month(eng, p, month, ks)
    first = per_month["lo"].min() if ks else None
    out.attrs["first_day"] = None if first is None or pd.isna(first) else pd.Timestamp(first).normalize()
    out.attrs["last_day"] = pd.Timestamp(orders.observation_end).normalize()
    out.attrs["cut"] = cut
    return out


def _per_month(eng, p, month, ks: list[int]) -> pd.DataFrame:
    """The table of :func:`monthly_buyers` for the months ``ks`` (months since year 0, each with
    a paid order): one pass per customer, a flag per month."""
    flags = {f"m{k}": (month == k).cast("int8").max() for k in ks}
    per = p.group_by("customer_id").aggregate(first=month.min(), **flags)
    # one query: per month of first purchase, its customers and how many bought in each month
    g = eng.to_pandas(per.group_by("first").aggregate(new=per.count(), **{
        f"m{k}": per[f"m{k}"].cast("int64").sum() for k in ks}))
    new = dict(zip(g["first"].astype(int), g["new"].astype(int)))
    df = pd.DataFrame({"month": pd.to_datetime([f"{k // 12:04d}-{k % 12 + 1:02d}-01" for k in ks]),
                       "buyers": [int(g[f"m{k}"].fillna(0).sum()) for k in ks],
                       "new": [new.get(k, 0) for k in ks]})
    df["returning"] = df["buyers"] - df["new"]
    return df[["month", "buyers", "returning", "new"]]


def _full_months(m: pd.DataFrame) -> pd.DataFrame:
    """The months of the rule: a partial head joined to the next month (its counts scaled to
    that month's length), a partial tail dropped."""
    m = m.copy()
    m["label"] = [f"{x:%b %Y}" for x in m["month"]]
    first, last = m.attrs.get("first_day"), m.attrs.get("last_day")
    days = None if first is None else (first + pd.offsets.MonthEnd(0) - first).days + 1
    if len(m) > 1 and days is not None and days < HEAD_DAYS:
        head, nxt = m.iloc[0], m.iloc[1]
        scale = nxt["month"].days_in_month / (days + nxt["month"].days_in_month)
        # the next month's returning buyers are exactly its buyers first seen in the head:
        # one buyer each of the joined month, where every buyer is new
        joined = round((nxt["buyers"] + head["buyers"] - nxt["returning"]) * scale)
        m.loc[m.index[1], ["buyers", "new", "returning"]] = [joined, joined, 0]
        m.loc[m.index[1], "label"] = f"{first:%d %b}–{nxt['month'] + pd.offsets.MonthEnd(0):%d %b %Y}, per month"
        m = m.iloc[1:]
    if last is not None and len(m) and last < m["month"].iloc[-1] + pd.offsets.MonthEnd(0):
        m = m.iloc[:-1]
    return m.reset_index(drop=True)


def judge(monthly: pd.DataFrame) -> dict:
    """The ``truncation`` entry of the ledger from :func:`monthly_buyers`' table."""
    m = _full_months(monthly)
    if len(m) < MIN_MONTHS:
        return no_truncation(f"The export covers {len(m)} full month{'s' * (len(m) != 1)} of paid orders: too "
                             f"short to judge whether it starts in the middle of the store's life "
                             f"(at least {MIN_MONTHS} needed).")
    ref = m.iloc[_REF]
    share = m["returning"] / m["buyers"].clip(lower=1)
    s1, s_ref = float(share.iloc[0]), float(share.iloc[_REF].median())
    n1, n_ref = int(m["new"].iloc[0]), float(ref["new"].median())
    b1, b_ref = int(m["buyers"].iloc[0]), float(ref["buyers"].median())
    label = m["label"].iloc[0]
    span = f"months 4–{len(ref) + 3}" if len(ref) > 1 else "month 4"
    if b1 < MIN_BUYERS or b_ref < MIN_BUYERS:
        return no_truncation(f"Too few buyers per month to judge whether the export starts in the middle of the "
                             f"store's life ({b1} in {label}, a median {b_ref:.0f} in {span}; at least "
                             f"{MIN_BUYERS} needed).")
    low_share = s_ref >= MIN_REF_SHARE and s1 < SHARE_RATIO * s_ref
    many_new = n1 >= max(NEW_RATIO * n_ref, (n_ref * b_ref) ** 0.5)
    ratio = n1 / n_ref if n_ref else float("inf")
    facts = (f"in the first month ({label}) {s1:.0%} of {b1:,} buyers had bought before in the export against a "
             f"median {s_ref:.0%} in {span}, and its {n1:,} first-time buyers are {ratio:.1f}× the median "
             f"{n_ref:.0f} first-time buyers of {span} (whose median buyers are {b_ref:.0f})")
    if low_share and many_new:
        return {"left_truncated": True, "lead_in_days": 0,
                "evidence": f"The export looks like it starts in the middle of the store's life: {facts}."}
    why = ("a store that opens within the export looks like this too" if low_share else
           "the returning share does not start near 0")
    return no_truncation(f"No sign that the export starts in the middle of the store's life: {facts} "
                         f"({why}).")


def detect(orders: OrderTable) -> dict:
    """:func:`judge` on :func:`monthly_buyers` of ``orders``."""
    m = monthly_buyers(orders, months=RULE_MONTHS)
    if m.empty:
        return no_truncation("No paid orders: nothing to judge.")
    return judge(m)
