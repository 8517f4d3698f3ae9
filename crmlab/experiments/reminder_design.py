"""Making a payment-reminder experiment, and checking that an export can read one.

:func:`design_reminders` randomises the orders still unpaid and open to no reminder or a
delay (equal arms, a seeded permutation; the same orders and seed give the same arms): the
CSV the SMS tool imports (``order_id, customer_id, arm, send_time``; no send time for
``none``). :func:`reminder_inputs` reads the orders and the reminder sends for the notebook,
or says in one line why there is nothing to read.

**Strata** (``crmlab design --reminders --strata value,customer,hour``,
:func:`reminder_strata`), per open order from the export itself:

* ``value``: the order's amount in tertiles of the open orders' amounts (``value low``,
  ``value mid``, ``value high``; fewer bands when the amounts tie);
* ``customer``: ``new`` (no paid order of the customer before this order was placed) or
  ``returning``;
* ``hour``: the hour the order was placed, ``night`` (0–6), ``morning`` (6–12), ``afternoon``
  (12–18) or ``evening`` (18–24), in the export's time.

With strata the orders are shuffled within each stratum, the strata laid end to end (sorted
by label), and the arms dealt in turn along that sequence from a random order of the arms:
within each stratum and overall the arms' sizes differ by at most one, and every order has
the same chance of each arm. **Balance** (:data:`REMINDER_COVARIATES`): the standardised mean
difference of each covariate against the ``none`` arm (else the first arm), as in
:mod:`crmlab.experiments.balance`; ``--rerandomize`` redraws with seeds ``seed, seed + 1, ...``
until the max |SMD| is below the threshold (Morgan & Rubin 2012).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.experiments.balance import smd_table
from crmlab.experiments.reminders import DEFAULT_ARMS, parse_delay
from crmlab.ingest.payments import load_payment_orders, load_reminder_sends
from crmlab.schema import CrmlabInputError

__all__ = ["design_reminders", "reminder_inputs", "parse_arms", "reminder_covariates", "reminder_strata",
           "REMINDER_STRATA", "REMINDER_COVARIATES"]

#: the strata ``--strata`` accepts with ``--reminders`` (see the module doc)
REMINDER_STRATA = ("value", "customer", "hour")
#: the balance table's covariates: amount, a past paid order (0/1), past paid orders, hour placed
REMINDER_COVARIATES = ("value", "returning", "past_orders", "hour")
_HOURS = ((0, "night"), (6, "morning"), (12, "afternoon"), (18, "evening"))


def parse_arms(spec) -> list[str]:
    """``"none,1h,6h"`` (or a list) as arm names, each a delay or ``none``; distinct."""
    arms = [a.strip() for a in (spec.split(",") if isinstance(spec, str) else spec or DEFAULT_ARMS) if str(a).strip()]
    bad = [a for a in arms if parse_delay(a) is None]
    if bad:
        raise CrmlabInputError(f"--arms: {', '.join(map(repr, bad))} not a delay (6h, 30min, 1d) or none")
    if len({parse_delay(a) for a in arms}) < len(arms):
        raise CrmlabInputError("--arms: two arms with the same delay")
    if len(arms) < 2:
        raise CrmlabInputError("--arms: give at least two arms to compare, e.g. none,1h,6h,12h,24h")
    return arms


def _parse_strata(spec) -> list[str]:
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec or ()) if str(s).strip()]
    bad = [s for s in names if s not in REMINDER_STRATA]
    if bad:
        raise CrmlabInputError(f"--strata: {', '.join(map(repr, bad))} is not value, customer or hour "
                               "(with --reminders)")
    return list(dict.fromkeys(names))


def reminder_covariates(open_orders: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """Per open order (index ``order_id`` as text), :data:`REMINDER_COVARIATES`: ``value`` (its
    amount), ``past_orders`` (its customer's orders paid before it was placed, from ``orders``),
    ``returning`` (1 when ``past_orders`` > 0) and ``hour`` (hour placed, 0–23)."""
    paid = orders.loc[orders["paid_time"].notna()]
    ev = pd.concat([pd.DataFrame({"c": paid["customer_id"].astype(str).to_numpy(), "t": paid["paid_time"].to_numpy(),
                                  "kind": 1, "pos": -1}),
                    pd.DataFrame({"c": open_orders["customer_id"].astype(str).to_numpy(),
                                  "t": open_orders["created_time"].to_numpy(), "kind": 0,
                                  "pos": np.arange(len(open_orders))})], ignore_index=True)
    ev = ev.sort_values(["c", "t", "kind"], kind="stable")  # at the same time the order is placed first: not past
    ev["paid"] = ev.groupby("c")["kind"].cumsum()
    q = ev[ev["kind"] == 0]
    past = np.zeros(len(open_orders), dtype=float)
    past[q["pos"].to_numpy()] = q["paid"].to_numpy()
    f = pd.DataFrame({"value": pd.to_numeric(open_orders["amount"], errors="coerce").astype(float).to_numpy(),
                      "returning": (past > 0).astype(float), "past_orders": past,
                      "hour": open_orders["created_time"].dt.hour.astype(float).to_numpy()},
                     index=pd.Index(open_orders["order_id"].astype(str).to_numpy(), name="order_id"))
    return f


def _value_bands(value: pd.Series) -> pd.Series:
    band = pd.qcut(value, 3, labels=False, duplicates="drop")
    k = int(band.max()) + 1 if band.notna().any() else 0
    names = {3: ["low", "mid", "high"], 2: ["low", "high"], 1: ["all"]}.get(k, [])
    return band.map(lambda b: "value unknown" if pd.isna(b) else f"value {names[int(b)]}")


def reminder_strata(features: pd.DataFrame, by) -> pd.Series | None:
    """The stratum of each open order (``features``: :func:`reminder_covariates`), its labels for
    ``by`` (names of :data:`REMINDER_STRATA`) joined with ``|``; None without ``by``."""
    names = _parse_strata(by)
    if not names:
        return None
    parts = []
    for name in names:
        if name == "value":
            parts.append(_value_bands(features["value"]))
        elif name == "customer":
            parts.append(features["returning"].map({1.0: "returning", 0.0: "new"}))
        else:
            h = features["hour"].to_numpy()
            parts.append(pd.Series(np.select([h < 6, h < 12, h < 18], [x for _, x in _HOURS[:3]], _HOURS[3][1]),
                                   index=features.index))
    return pd.concat(parts, axis=1).astype(str).agg("|".join, axis=1).rename("stratum")


def _draw(n: int, k: int, strata: np.ndarray | None, seed: int) -> np.ndarray:
    """Arm numbers 0..k-1 for n orders: without strata a seeded permutation of equal arms (as
    before strata existed); with strata dealt in turn along the shuffled strata (module doc)."""
    rng = np.random.default_rng(seed)
    if strata is None:
        return rng.permutation(np.arange(n) % k)
    keys, code = np.unique(strata, return_inverse=True)
    seq = np.concatenate([rng.permutation(np.flatnonzero(code == j)) for j in range(len(keys))])
    out = np.empty(n, dtype=int)
    out[seq] = rng.permutation(k)[np.arange(n) % k]
    return out


def _open_orders(orders: pd.DataFrame, since, open_hours: float) -> pd.DataFrame:
    o = orders[orders["paid_time"].isna() & (orders["status"] == "unpaid") & orders["closed_time"].isna()]
    end = orders.attrs.get("observation_end")
    if end is not None:
        o = o[o["created_time"] > pd.Timestamp(end) - pd.Timedelta(hours=open_hours)]
    if since is not None:
        o = o[o["created_time"] >= pd.Timestamp(since)]
    o = o.sort_values(["created_time", "order_id"], kind="stable").reset_index(drop=True)
    if o.empty:
        raise CrmlabInputError(f"no unpaid open order to randomise (status unpaid, no paid or closed time, placed "
                               f"within {open_hours:g} h of the observation end)")
    return o


def _balanced_draw(feats: pd.DataFrame, names: list[str], strata: pd.Series | None, seed: int,
                   rerandomize: int, threshold: float) -> tuple[np.ndarray, list, float, int, int]:
    """The kept draw (arm names), its balance records, max |SMD|, its seed and the draws made
    (Morgan & Rubin)."""
    ref = "none" if "none" in names else names[0]
    labels = None if strata is None else strata.to_numpy(dtype=str)
    best = None
    for k in range(max(1, int(rerandomize) or 1)):
        arm = np.array(names)[_draw(len(feats), len(names), labels, seed + k)]
        bal, worst = smd_table(feats, pd.DataFrame({"customer_id": feats.index, "arm": arm}), ref)
        if best is None or worst < best[2]:
            best = (arm, bal, worst, seed + k)
        if rerandomize and worst < threshold:
            break
    return (*best, k + 1)


def design_reminders(orders: pd.DataFrame, arms=DEFAULT_ARMS, seed: int = 0, since=None,
                     open_hours: float = 72.0, strata=None, rerandomize: int = 0, threshold: float = 0.05) -> dict:
    """Randomise the unpaid, open orders to the arms.

    Parameters
    ----------
    orders : DataFrame
        :func:`crmlab.ingest.payments.load_payment_orders`'s frame.
    arms : sequence of str or str
        ``none`` and delays (default ``none,1h,6h,12h,24h``), equal shares.
    seed : int
    since : str or Timestamp, optional
        Only orders created at or after it.
    open_hours : float
        The platform closes an unpaid order this many hours after it was placed (default 72):
        older unpaid orders are closed already and are not randomised.
    strata : str or sequence of str, optional
        ``value``, ``customer``, ``hour`` (:func:`reminder_strata`): each stratum split in equal
        arms (sizes within one). Without it, the draw is the same as before strata existed.
    rerandomize, threshold : int, float
        Redraw up to ``rerandomize`` times until the max |SMD| is below ``threshold``.

    Returns
    -------
    dict
        ``assignment`` (DataFrame: ``order_id, customer_id, arm, created_time, send_time``),
        ``arms`` {arm: orders}, ``orders``, ``seed``, ``already_due`` (orders whose send time
        has passed at the observation end: their reminder is late); ``strata`` (number of
        strata, None without), ``strata_by``, ``by_stratum`` {stratum: {arm: orders}},
        ``balance`` [{covariate, smd: {arm: value}}] against ``reference``, ``max_abs_smd``,
        ``covariates``, ``rerandomized``.
    """
    names = parse_arms(arms)
    by = _parse_strata(strata)
    o = _open_orders(orders, since, open_hours)
    feats = reminder_covariates(o, orders)
    labels = reminder_strata(feats, by)
    arm, bal, worst, used, draws = _balanced_draw(feats, names, labels, seed, rerandomize, threshold)
    delay = pd.to_timedelta([parse_delay(a) for a in arm], unit="h")
    send = (o["created_time"] + delay).where(delay > pd.Timedelta(0))
    table = pd.DataFrame({"order_id": o["order_id"], "customer_id": o["customer_id"], "arm": arm,
                          "created_time": o["created_time"], "send_time": send})
    end = orders.attrs.get("observation_end")
    due = int((send < pd.Timestamp(end)).sum()) if end is not None else 0
    grid = pd.crosstab(labels.to_numpy() if labels is not None else np.full(len(o), "all"), arm).reindex(
        columns=names, fill_value=0)
    return {"assignment": table, "arms": {a: int((arm == a).sum()) for a in names}, "orders": len(table),
            "seed": seed, "already_due": due, "strata": None if labels is None else int(labels.nunique()),
            "strata_by": by, "by_stratum": {str(k): {a: int(v) for a, v in r.items()} for k, r in grid.iterrows()},
            "reference": "none" if "none" in names else names[0], "covariates": list(feats.columns),
            "balance": bal, "max_abs_smd": worst,
            "rerandomized": {"draws_allowed": int(rerandomize), "threshold": threshold, "seed_used": used,
                             "draws": draws, "accepted": bool(worst < threshold),
                             "rule": "Morgan & Rubin (2012): redraw until max |SMD| < threshold"
                                     if rerandomize else "none: one draw"}}


def reminder_inputs(orders_source, sends_source, **read) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str | None]:
    """``(orders, sends, None)`` when the export has unpaid orders with a created time and the
    send log reminders with an order id; else ``(None, None, reason)`` (one line)."""
    if not sends_source:
        return None, None, "no send log: payment reminders need the reminder sends with their order id"
    try:
        orders = load_payment_orders(orders_source, **{k: v for k, v in read.items() if k != "sends_columns"})
    except CrmlabInputError as e:
        return None, None, f"the orders carry no created time for payment reminders ({e})"
    if not (orders["paid_time"].isna() | (orders["paid_time"] > orders["created_time"])).any():
        return None, None, "no order was unpaid after it was placed (every paid time equals the created time)"
    kw = {k: v for k, v in read.items() if k in ("timezone", "decimal", "dayfirst")}
    try:
        sends = load_reminder_sends(sends_source, read.get("sends_columns"), **kw)
    except CrmlabInputError as e:
        return None, None, f"the send log has no payment reminder with an order id ({e})"
    return orders, sends, None
