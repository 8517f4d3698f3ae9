"""A programme-level holdout (长期对照组): a persistent share of customers kept out of every
campaign, and the readout of the whole programme over months (issue 28, ``crmlab program``).

* **Who is held out** (:func:`program_holdout_mask`): u = the first 8 bytes of
  BLAKE2b(``salt`` + "|" + customer id), read as an unsigned integer, divided by 2^64; the
  customer is held out when u < ``share``. The same id, salt and share always give the same
  answer, so the holdout survives new exports, new customers and every campaign's own seed;
  ``crmlab design --program-holdout`` leaves these customers out and records the salt.
* **Population**: every customer with a paid order before the programme ``start`` (default:
  the day of the log's first send), each in the group the hash gives: *messaged* (the
  programme group: every campaign may target them) or *held out*. The comparison is by
  assignment (intention to treat): a programme customer never targeted still counts as
  messaged, so the difference is what running the programme does to the customers it covers.
* **Months**: month m is [start + (m - 1) months, start + m months). A month counts only when
  the observation end covers it whole: a month the data has not finished is missing (never 0),
  and so is every cumulative figure through it.
* **Per month**: the share of each group with a paid order in the month (``messaged_rate``,
  ``held_out_rate``), ``diff`` with a Wald interval at the run's interval level; revenue per
  customer in the month (``revenue_diff``, Welch/normal interval). **Cumulative** through month
  m: the share with any paid order in months 1..m and revenue per customer summed over them,
  the same intervals; ``incremental_buyers`` and ``incremental_revenue`` are those differences
  times the programme group's size.
* **Dose-response**: customer-months of the covered months by delivered messages that month
  (held out, 0, 1, 2, 3, 4+): the repurchase rate (Wilson interval) and, when the log has an
  ``opt_out`` column (true on the message the customer unsubscribed after), ``opt_out_rate``,
  the share of those customer-months with an opt-out, and ``opt_out_per_message``, the share of
  the month's d-th messages (d = 1, 2, 3, 4 or later) after which the customer opted out. An
  opt-out ends the messages, so months with an opt-out have fewer of them: ``opt_out_rate``
  falls with the dose for that reason alone; ``opt_out_per_message`` (the hazard at the d-th
  message) is the one that shows fatigue. Campaigns choose whom to message, so all of this is
  an association, not an effect: only the held-out comparison above is randomised.
"""
from __future__ import annotations

import hashlib
from dataclasses import field
from typing import Iterable

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from crmlab.engine.aggregates import customer_frame, paid_orders
from crmlab.engine.sources import order_table
from crmlab.present.result import Card, Result, result
from crmlab.settings import Settings, current

__all__ = ["DEFAULT_SALT", "HASH_RULE", "program_holdout_mask", "ProgramReadout", "program_readout"]

#: the salt ``crmlab design --program-holdout`` and ``crmlab program`` use unless told otherwise
DEFAULT_SALT = "crmlab-program"
#: the rule, in words, recorded wherever a holdout is made
HASH_RULE = "held out when blake2b-64(salt + '|' + customer_id) / 2^64 < share"
DOSES = ("0", "1", "2", "3", "4+")


def program_holdout_mask(ids: Iterable, share: float, salt: str = DEFAULT_SALT) -> np.ndarray:
    """True for the customers the programme holds out (see the module doc); ``ids`` as text."""
    if not 0 <= share < 1:
        raise ValueError(f"the programme holdout share must be in [0, 1), not {share}")
    u = [int.from_bytes(hashlib.blake2b(f"{salt}|{i}".encode("utf-8"), digest_size=8).digest(), "big")
         for i in map(str, ids)]
    return np.asarray(u, dtype=np.float64) / 2.0 ** 64 < share


@result
class ProgramReadout(Result):
    """The programme against its holdout: see :func:`program_readout` and the module doc."""

    holdout_share: float
    salt: str
    start: pd.Timestamp
    observation_end: pd.Timestamp
    interval_level: float
    customers: dict
    months: list
    cumulative: dict | None
    dose_response: list
    warnings: list
    method: str
    settings: Settings = field(default_factory=current)
    title = "ProgramReadout"
    about = "the whole SMS programme against its long-term holdout (长期对照组)"

    def to_frame(self) -> pd.DataFrame:
        """One row per covered month (monthly and cumulative figures)."""
        return pd.DataFrame(self.months).set_index("month") if self.months else pd.DataFrame()

    def _card(self) -> Card:
        """The cumulative difference in repurchase and revenue, and the months behind it."""
        f, c = self.fmt, self.cumulative
        if not c:
            finding = "no month after the programme start is covered whole yet: no readout"
        else:
            finding = (f"after {c['month']} months, {f.pct(c['messaged_rate'])} of messaged and "
                       f"{f.pct(c['held_out_rate'])} of held-out customers bought again: {f.pp(c['diff'])} "
                       f"{f.interval(c['ci_low'], c['ci_high'], 'pp')}; revenue per customer "
                       f"{f.money(c['revenue_diff'], sign=True)} {f.interval(c['revenue_ci_low'], c['revenue_ci_high'], 'money')}"
                       f" ({f.interval_name(self.interval_level)})")
        tab = None
        if self.months:
            m = pd.DataFrame(self.months).set_index("month")
            tab = pd.DataFrame({"messaged": m["messaged_rate"].map(f.pct), "held out": m["held_out_rate"].map(f.pct),
                                "difference": m["diff"].map(lambda v: f.pp(v)),
                                f.interval_name(self.interval_level): [f.interval(a, b, "pp") for a, b in
                                                                       zip(m["ci_low"], m["ci_high"])],
                                "cumulative difference": m["cumulative_diff"].map(lambda v: f.pp(v))}, index=m.index)
        return Card(self.title, self.about, finding, tab, "share of each group with a paid order in the month; "
                    "held out by a stable hash of the customer id", tuple(self.warnings),
                    self.footer(self.observation_end, start=f.timestamp(self.start)),
                    hint=".to_frame(): monthly and cumulative figures")


def _month_grid(start: pd.Timestamp, end: pd.Timestamp, months: int) -> list[pd.Timestamp]:
    """The boundaries of the months the observation covers whole (at most ``months``)."""
    b = [start]
    for m in range(1, months + 1):
        nxt = start + pd.DateOffset(months=m)
        if nxt > end:
            break
        b.append(nxt)
    return b


def _per_customer(events: pd.DataFrame, ids: pd.Index, bounds: list, value: str | None) -> np.ndarray:
    """[customer, month] counts (``value`` None) or sums of ``value`` of ``events``
    (customer_id, time) falling in the months ``bounds``."""
    out = np.zeros((len(ids), max(len(bounds) - 1, 0)))
    if len(bounds) < 2 or events.empty:
        return out
    t = pd.to_datetime(events["time"]).to_numpy(dtype="datetime64[ns]")
    month = np.searchsorted(np.asarray(bounds, dtype="datetime64[ns]"), t, side="right") - 1
    row = ids.get_indexer(events["customer_id"].astype(str))
    ok = (month >= 0) & (month < len(bounds) - 1) & (row >= 0)
    w = np.ones(ok.sum()) if value is None else events[value].to_numpy(float)[ok]
    np.add.at(out, (row[ok], month[ok]), w)
    return out


def _diff_prop(a: np.ndarray, b: np.ndarray, z: float) -> tuple[float, float, float, float, float]:
    """Rates of the 0/1 arrays ``a`` (messaged) and ``b`` (held out), the difference and its Wald interval."""
    pa, pb = a.mean(), b.mean()
    se = np.sqrt(pa * (1 - pa) / len(a) + pb * (1 - pb) / len(b))
    return float(pa), float(pb), float(pa - pb), float(pa - pb - z * se), float(pa - pb + z * se)


def _diff_mean(a: np.ndarray, b: np.ndarray, z: float) -> tuple[float, float, float, float, float]:
    """Means, their difference and its unpooled (Welch) normal interval."""
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    d = a.mean() - b.mean()
    return float(a.mean()), float(b.mean()), float(d), float(d - z * se), float(d + z * se)


def _months(bought: np.ndarray, revenue: np.ndarray, held: np.ndarray, bounds: list, z: float) -> list[dict]:
    """One record per covered month: monthly and cumulative figures (see the module doc)."""
    rows = []
    cum_any, cum_rev = np.zeros(len(held), bool), np.zeros(len(held))
    for m in range(len(bounds) - 1):
        got, rev = bought[:, m] > 0, revenue[:, m]
        cum_any, cum_rev = cum_any | got, cum_rev + rev
        r = _diff_prop(got[~held], got[held], z)
        v = _diff_mean(rev[~held], rev[held], z)
        cr = _diff_prop(cum_any[~held], cum_any[held], z)
        cv = _diff_mean(cum_rev[~held], cum_rev[held], z)
        rows.append({"month": m + 1, "from": str(bounds[m].date()), "to": str((bounds[m + 1] - pd.Timedelta(days=1)).date()),
                     "messaged_rate": r[0], "held_out_rate": r[1], "diff": r[2], "ci_low": r[3], "ci_high": r[4],
                     "messaged_revenue": v[0], "held_out_revenue": v[1], "revenue_diff": v[2],
                     "revenue_ci_low": v[3], "revenue_ci_high": v[4],
                     "cumulative_messaged_rate": cr[0], "cumulative_held_out_rate": cr[1], "cumulative_diff": cr[2],
                     "cumulative_ci_low": cr[3], "cumulative_ci_high": cr[4],
                     "cumulative_revenue_diff": cv[2], "cumulative_revenue_ci_low": cv[3],
                     "cumulative_revenue_ci_high": cv[4]})
    return rows


def _cumulative(rows: list[dict], n_messaged: int) -> dict | None:
    """The last covered month's cumulative figures and the programme's incremental totals."""
    if not rows:
        return None
    r = rows[-1]
    k = n_messaged
    return {"month": r["month"], "messaged_rate": r["cumulative_messaged_rate"],
            "held_out_rate": r["cumulative_held_out_rate"], "diff": r["cumulative_diff"],
            "ci_low": r["cumulative_ci_low"], "ci_high": r["cumulative_ci_high"],
            "revenue_diff": r["cumulative_revenue_diff"], "revenue_ci_low": r["cumulative_revenue_ci_low"],
            "revenue_ci_high": r["cumulative_revenue_ci_high"],
            "incremental_buyers": {"estimate": r["cumulative_diff"] * k, "ci_low": r["cumulative_ci_low"] * k,
                                   "ci_high": r["cumulative_ci_high"] * k},
            "incremental_revenue": {"estimate": r["cumulative_revenue_diff"] * k,
                                    "ci_low": r["cumulative_revenue_ci_low"] * k,
                                    "ci_high": r["cumulative_revenue_ci_high"] * k}}


def _hazard(ev: pd.DataFrame, ids: pd.Index, held: np.ndarray, bounds: list) -> dict[str, tuple[int, int]] | None:
    """Per message rank in the month (1, 2, 3, 4+) among the programme group: (opt-outs at a
    message of that rank, messages of that rank); None without an ``opt_out`` column."""
    if "opt_out" not in ev.columns or len(bounds) < 2:
        return None
    t = pd.to_datetime(ev["time"]).to_numpy(dtype="datetime64[ns]")
    month = np.searchsorted(np.asarray(bounds, dtype="datetime64[ns]"), t, side="right") - 1
    row = ids.get_indexer(ev["customer_id"])
    ok = (month >= 0) & (month < len(bounds) - 1) & (row >= 0)
    ok[ok] = ~held[row[ok]]
    e = pd.DataFrame({"row": row[ok], "month": month[ok], "t": t[ok], "opt": ev["opt_out"].to_numpy(float)[ok]})
    e = e.sort_values(["row", "month", "t"], kind="stable")
    rank = np.minimum(e.groupby(["row", "month"]).cumcount().to_numpy() + 1, 4)
    return {DOSES[r]: (int(e["opt"].to_numpy()[rank == r].sum()), int((rank == r).sum())) for r in range(1, 5)}


def _dose_response(bought: np.ndarray, doses: np.ndarray, opted: np.ndarray | None, held: np.ndarray,
                   level: float, hazard: dict | None = None) -> list[dict]:
    """Customer-months by messages that month (see the module doc)."""
    rows = []
    groups = [("held out", held[:, None] & np.ones_like(doses, bool))]
    for i, name in enumerate(DOSES):
        sel = (doses >= i) if name.endswith("+") else (doses == i)
        groups.append((name, ~held[:, None] & sel))
    for name, sel in groups:
        n, x = int(sel.sum()), int((bought[sel] > 0).sum())
        if n == 0:
            continue
        lo, hi = proportion_confint(x, n, 1 - level, method="wilson")
        row = {"messages": name, "customer_months": n, "repurchase_rate": x / n, "ci_low": float(lo),
               "ci_high": float(hi), "opt_outs": None, "opt_out_rate": None}
        if opted is not None and name not in ("held out", "0"):
            k = int(opted[sel].sum())
            row.update(opt_outs=k, opt_out_rate=k / n)
        k, m = (hazard or {}).get(name, (0, 0))
        row["opt_out_per_message"] = k / m if m else None
        rows.append(row)
    return rows


def _sends_in(sends: pd.DataFrame | None, bounds: list) -> pd.DataFrame:
    """Delivered messages (customer_id, time, opt_out) inside the covered months."""
    if sends is None:
        return pd.DataFrame({"customer_id": pd.Series(dtype=object), "time": pd.Series(dtype="datetime64[ns]")})
    s = sends[sends["delivered"].astype(bool)] if "delivered" in sends.columns else sends
    t = pd.to_datetime(s["send_time"])
    ev = pd.DataFrame({"customer_id": s["customer_id"].astype(str).to_numpy(), "time": t.to_numpy()})
    if "opt_out" in s.columns:
        ev["opt_out"] = s["opt_out"].fillna(False).astype(bool).to_numpy(float)
    return ev


def program_readout(orders, sends: pd.DataFrame | None, holdout_share: float = 0.05, salt: str = DEFAULT_SALT,
                    months: int = 12, start=None, observation_end=None, engine=None,
                    settings: Settings | None = None) -> ProgramReadout:
    """The programme against its holdout over ``months`` months from ``start`` (see the module doc).

    Parameters
    ----------
    orders : DataFrame or OrderTable
    sends : DataFrame or None
        The send log over the programme (every campaign): ``customer_id``, ``send_time``,
        ``delivered``, optional ``opt_out`` (None: no log; give ``start``).
    holdout_share, salt :
        The programme holdout as designed (``crmlab design --program-holdout``).
    months : int
        Months to read out (only those the observation covers whole are shown).
    start : optional
        The programme's first day (default: the day of the log's first send).
    observation_end : optional
        Overrides the orders' observation end.
    settings : Settings, optional
        The context (default: the orders'); its ``interval_level`` sets every interval.
    """
    o = order_table(orders, engine, observation_end)
    st = settings if settings is not None else o.settings
    level, warns = st.interval_level, []
    z = stats.norm.isf((1 - level) / 2)
    if start is None:
        if sends is None or sends.empty:
            raise ValueError("no send log to date the programme: give its start")
        start = pd.to_datetime(sends["send_time"]).min().normalize()
    start, end = pd.Timestamp(start), pd.Timestamp(o.observation_end)
    cf = customer_frame(o)
    first = pd.to_datetime(cf["first_time"])
    ids = pd.Index(sorted(cf.index[(first < start).to_numpy()].astype(str)))
    held = program_holdout_mask(ids, holdout_share, salt)
    bounds = _month_grid(start, end, months)
    p = o.engine.to_pandas(paid_orders(o).select("customer_id", "order_time", "amount"))
    p = p.rename(columns={"order_time": "time"})
    p = p[p["time"] >= start]
    bought = _per_customer(p, ids, bounds, None)
    revenue = _per_customer(p, ids, bounds, "amount")
    ev = _sends_in(sends, bounds)
    doses = _per_customer(ev, ids, bounds, None)
    opted = (_per_customer(ev, ids, bounds, "opt_out") > 0) if "opt_out" in ev.columns else None
    n_held, n_msg = int(held.sum()), int((~held).sum())
    warns += _warnings(held, doses, opted, bounds, months, n_held)
    rows = _months(bought, revenue, held, bounds, z) if n_held >= 2 and n_msg >= 2 else []
    reached = doses.sum(axis=1) > 0
    customers = {"messaged": n_msg, "held_out": n_held, "messaged_reached": int((reached & ~held).sum()),
                 "held_out_messaged": int((reached & held).sum())}
    return ProgramReadout(holdout_share, salt, start, end, level, customers, rows, _cumulative(rows, n_msg),
                          _dose_response(bought, doses, opted, held, level, _hazard(ev, ids, held, bounds))
                          if rows else [], warns,
                          f"intention to treat by the stable hash ({HASH_RULE}); Wald intervals for rates, "
                          "Welch (normal) for revenue per customer; months covered whole only", st)


def _warnings(held, doses, opted, bounds, months, n_held) -> list[str]:
    """What the reader must know before trusting the comparison."""
    w = []
    covered = len(bounds) - 1
    if covered < months:
        w.append(f"the observation covers {covered} of the {months} months whole: later months are missing, not 0")
    if n_held < 100:
        w.append(f"only {n_held} held-out customers: the intervals are wide (a 5% holdout needs about 2,000 "
                 "customers to make 100)")
    if covered and not ((doses.sum(axis=1) > 0) & ~held).any():
        w.append("no programme customer got a delivered message in the covered months: check --start and the log")
    leaked = int(((doses.sum(axis=1) > 0) & held).sum())
    if leaked:
        w.append(f"{leaked} held-out customers were messaged: the holdout was not kept for them (or the salt or "
                 "share differ from the design's); the comparison stays by assignment, so the difference is diluted")
    if opted is None:
        w.append("the send log has no opt_out column: the dose-response shows repurchase only")
    w.append("the dose-response is an association (campaigns choose whom to message): only the held-out "
             "comparison is randomised")
    return w
