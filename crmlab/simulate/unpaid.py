"""Unpaid orders and a payment-reminder (催付) experiment with planted truth.

Each order of the experiment is placed unpaid and randomised (equal arms, a seeded
permutation) to no reminder or a reminder at a delay. The planted process, per order:

* **paying on its own**: with probability ``natural_share`` the buyer pays after an
  exponential time (mean ``natural_mean_hours``) from creation, else never;
* **closure**: a share ``cancel_share`` of buyers close the order at a uniform time before
  the platform's limit; the rest close at the limit ``close_hours`` if still unpaid;
* **the reminder** of arm ``d`` goes out only when the order is still unpaid and open at
  ``d`` hours; the buyer then pays after an exponential time (mean ``response_mean_hours``)
  with the arm's planted probability ``effect`` (else as without it); a buyer who would pay
  earlier on their own still does.

The planted best delay is the arm with the highest margin recovered per randomised order net
of the SMS cost; :func:`reminder_truth` computes every arm's value by a seeded Monte-Carlo of
2,000,000 orders per arm (its own generator: the experiment's draws are unchanged).
:func:`write_reminder_sample` adds the experiment to a written sample (``crmlab sample
--reminders``): its orders in orders.csv with ``created_time``, ``paid_time``, ``closed_time``
columns (created = order time for the store's other orders), one send-log row per randomised
order with its ``order_id`` (not delivered when no reminder went out), truth.json
``"reminders"``.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from crmlab.experiments.sms import sms_segments
from crmlab.simulate.spec import CATEGORIES, CHANNELS, CHANNEL_P, REGIONS, REGION_P, STATUS_CN, STORE
from crmlab.simulate.store import write_sample
from crmlab.simulate.truth import write_truth

__all__ = ["ReminderSpec", "simulate_reminders", "reminder_truth", "write_reminder_sample", "REMINDER_COPY"]

REMINDER_COPY = "亲{nickname}，您拍下的宝贝还在等您付款哦，库存有限，付款后立即为您发货【" + STORE + "】"
_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class ReminderSpec:
    """The reminder experiment's planted parameters (all recorded in truth.json)."""

    n_orders: int = 10_000
    arms: tuple[str, ...] = ("none", "1h", "6h", "12h", "24h")
    delays: tuple[float, ...] = (0.0, 1.0, 6.0, 12.0, 24.0)
    effect: tuple[float, ...] = (0.0, 0.08, 0.30, 0.20, 0.10)  # P(pay after the reminder | still unpaid)
    natural_share: float = 0.5
    natural_mean_hours: float = 4.0
    cancel_share: float = 0.15
    close_hours: float = 72.0
    response_mean_hours: float = 0.75
    days: int = 60                    # orders placed over this many days before the end
    end: str = "2025-12-31 23:59:59"  # the store's end: sends never after it
    amount_shape: float = 4.0          # amount ~ Gamma(shape, scale)
    amount_scale: float = 30.0
    margin: float = 0.3
    price_per_message: float = 0.05
    campaign_id: str = "催付实验"
    seed: int = 0


def _outcomes(spec: ReminderSpec, rng: np.random.Generator, arm: np.ndarray) -> dict:
    """Natural payment, closure, reminder and payment times (hours since creation) of each order."""
    n = len(arm)
    natural = np.where(rng.uniform(size=n) < spec.natural_share,
                       rng.exponential(spec.natural_mean_hours, n), np.inf)
    close = np.where(rng.uniform(size=n) < spec.cancel_share, rng.uniform(0, spec.close_hours, n), spec.close_hours)
    delay = np.asarray(spec.delays)[arm]
    sent = (delay > 0) & (natural > delay) & (close > delay)
    respond = sent & (rng.uniform(size=n) < np.asarray(spec.effect)[arm])
    resp_time = delay + rng.exponential(spec.response_mean_hours, n)
    pay = np.where(respond, np.minimum(natural, resp_time), natural)
    pay = np.where(pay < close, pay, np.inf)
    return {"pay": pay, "close": close, "sent": sent, "delay": delay}


def reminder_truth(spec: ReminderSpec = ReminderSpec(), n: int = 2_000_000) -> dict:
    """Every arm's planted share paid within the limit, reminders sent and margin recovered
    per randomised order net of SMS cost; the best arm (Monte-Carlo, its own generator)."""
    rng = np.random.default_rng([spec.seed, 2800])
    seg = sms_segments(REMINDER_COPY.format(nickname="王晓月呀"))
    mean_amount = spec.amount_shape * spec.amount_scale
    out: dict = {"share_paid": {}, "sent_share": {}, "value_per_order": {}}
    for i, name in enumerate(spec.arms):
        o = _outcomes(spec, rng, np.full(n, i))
        out["share_paid"][name] = float(np.mean(o["pay"] <= spec.close_hours))
        out["sent_share"][name] = float(o["sent"].mean())
    base = out["share_paid"][spec.arms[0]]
    for name in spec.arms:
        out["value_per_order"][name] = (spec.margin * mean_amount * (out["share_paid"][name] - base)
                                        - seg * spec.price_per_message * out["sent_share"][name])
    best = max(spec.arms, key=lambda a: out["value_per_order"][a])
    out.update(best_arm=best if out["value_per_order"][best] > 0 else spec.arms[0], segments=seg,
               mean_amount=mean_amount, monte_carlo_orders_per_arm=n, spec=asdict(spec))
    return out


def simulate_reminders(spec: ReminderSpec = ReminderSpec(), customer_ids=None,
                       people: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The experiment's orders (export rows) and send log (one row per randomised order).

    ``customer_ids`` the buyers are drawn from (default ``R000001``...); ``people`` (indexed
    by customer id: ``nickname``, ``phone``) fills those columns when given.
    """
    rng = np.random.default_rng([spec.seed, 28])
    n = spec.n_orders
    ids = np.asarray(customer_ids) if customer_ids is not None else np.array([f"R{i:06d}" for i in range(1, n + 1)])
    end = pd.Timestamp(spec.end)
    first = end - pd.Timedelta(days=spec.days)
    span = (spec.days - 1) * 86400 - int(max(spec.delays) * 3600)  # every reminder due before the end
    created = first + pd.to_timedelta(np.sort(rng.integers(0, span, n)), unit="s")
    arm = rng.permutation(np.arange(n) % len(spec.arms))
    o = _outcomes(spec, rng, arm)
    cust = rng.choice(ids, n)
    amount = np.round(rng.gamma(spec.amount_shape, spec.amount_scale, n), 2)
    obs_h = (end - created) / pd.Timedelta(hours=1)
    paid = o["pay"] <= obs_h.to_numpy()
    closed = ~paid & (o["close"] <= obs_h.to_numpy())
    hours = lambda h: created + pd.to_timedelta(np.where(np.isfinite(h), h, 0), unit="h")  # noqa: E731
    paid_t, closed_t = hours(o["pay"]).floor("s"), hours(o["close"]).floor("s")
    status = np.where(paid, "paid", np.where(closed, "cancelled", "unpaid"))
    cn = rng.uniform(size=n) < 0.25
    cats = list(CATEGORIES)
    cat = rng.choice(len(cats), n)
    product = np.array([CATEGORIES[cats[c]][0][0] for c in cat])
    info = people.reindex(cust) if people is not None else pd.DataFrame({"nickname": "", "phone": ""}, index=cust)
    orders = pd.DataFrame({
        "customer_id": cust, "order_id": [f"P{i:08d}" for i in range(1, n + 1)],
        "order_time": np.where(paid, paid_t.strftime(_TIME), created.strftime(_TIME)), "amount": amount,
        "status": np.where(cn, pd.Series(status).map(STATUS_CN), status),
        "channel": rng.choice(CHANNELS, n, p=CHANNEL_P), "region": rng.choice(REGIONS, n, p=REGION_P),
        "product": product, "category": np.array(cats)[cat], "quantity": 1,
        "nickname": info["nickname"].to_numpy(), "phone": info["phone"].to_numpy(),
        "created_time": created.strftime(_TIME), "paid_time": np.where(paid, paid_t.strftime(_TIME), ""),
        "closed_time": np.where(closed, closed_t.strftime(_TIME), "")})
    copy = np.array([REMINDER_COPY.format(nickname=k) if s else "" for k, s in zip(orders["nickname"], o["sent"])])
    seg = np.array([sms_segments(t) if t else 0 for t in copy])
    sends = pd.DataFrame({
        "customer_id": cust, "campaign_id": spec.campaign_id, "variant": np.array(spec.arms)[arm],
        "send_time": (created + pd.to_timedelta(o["delay"], unit="h")).strftime(_TIME),
        "delivered": np.where(o["sent"], "true", "false"), "segments": seg,
        "cost": np.round(seg * spec.price_per_message, 2), "copy": copy, "phone": orders["phone"].to_numpy(),
        "order_id": orders["order_id"].to_numpy()})
    return orders, sends


def write_reminder_sample(out_dir: str, n_customers: int = 20_000, seed: int = 0,
                          reminders: ReminderSpec | None = None, truth_orders: int = 2_000_000, **spec_kw) -> dict:
    """:func:`crmlab.simulate.store.write_sample`, then the reminder experiment added to it
    (the module doc says how); returns the truth with ``"reminders"`` (its Monte-Carlo of
    ``truth_orders`` orders per arm)."""
    truth = write_sample(out_dir, n_customers=n_customers, seed=seed, **spec_kw)
    spec = reminders or ReminderSpec(seed=seed, end=truth.get("spec", {}).get("end", ReminderSpec.end))
    path = {k: os.path.join(out_dir, f"{k}.csv") for k in ("orders", "sends")}
    orders = pd.read_csv(path["orders"], dtype=str, keep_default_na=False)
    sends = pd.read_csv(path["sends"], dtype=str, keep_default_na=False)
    people = orders.drop_duplicates("customer_id").set_index("customer_id")[["nickname", "phone"]]
    new_o, new_s = simulate_reminders(spec, np.sort(people.index.to_numpy()), people)
    paidish = orders["status"].isin(["paid", "refunded", "交易成功", "退款成功"])
    orders = orders.assign(created_time=orders["order_time"], paid_time=orders["order_time"].where(paidish, ""),
                           closed_time="")
    orders = pd.concat([orders, new_o.astype(str).replace({"nan": ""})], ignore_index=True)
    orders = orders.sort_values("order_time", kind="stable")
    sends = pd.concat([sends.assign(order_id=""), new_s.astype(str)], ignore_index=True)
    orders.to_csv(path["orders"], index=False, lineterminator="\n")
    sends.to_csv(path["sends"], index=False, lineterminator="\n")
    truth["reminders"] = reminder_truth(spec, truth_orders)
    truth["reminders"].update(orders=int(spec.n_orders), campaign_id=spec.campaign_id)
    write_truth(out_dir, truth)
    return truth
