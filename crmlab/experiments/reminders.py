"""Payment reminders (催付): which delay after an unpaid order recovers the most margin, or none.

An experiment randomises orders still unpaid after they were placed to arms: no reminder
(``none``) or a reminder at a delay (``1h``, ``6h``, ``12h``, ``24h``; the seeds say 1 h when
customer service has not chased, else 6-12 h, or 24 h). The reminder of arm ``d`` goes out
only to orders still unpaid and open ``d`` hours after creation.

**Immortal time.** An order paid before its arm's delay never gets the reminder; comparing
every order of the 24 h arm with every order of the 1 h arm credits the 24 h arm's orders
with the hours they were immortal (nobody reminded could not pay before 24 h). Comparing only
orders still unpaid at the *longest* delay is biased the other way: it conditions on what the
earlier reminders changed (the 1 h arm's orders still unpaid at 24 h are those the reminder
did not move). crmlab uses **per-arm at-risk sets with the no-reminder arm as the reference at
the same delay**: for arm ``d`` the orders unpaid and open at ``d`` (each got its reminder)
against the ``none`` arm's orders unpaid and open at ``d`` (no reminder either, so until ``d``
both arms are the same randomised population: the two at-risk sets are exchangeable). Each
arm's difference is then put on one scale, per order unpaid at randomisation, by the share of
the ``none`` arm still unpaid and open at ``d`` (``S(d)``)::

    value(d) = S(d) x (margin x recovered revenue per reminder - cost per reminder)

with recovered revenue per reminder = mean revenue paid within the window among arm ``d``'s
at-risk orders minus the same among the ``none`` arm's at ``d``. Wald intervals (delta method
for the product; the covariance between ``S(d)`` and the difference is left out). This works
whether the send log lists every randomised order (skipped reminders as not delivered) or
only the reminders sent.

**The decision**: the delay with the highest value among those shown above 0 (one-sided at
half of 1 − the interval level, i.e. the interval's lower end, Holm-adjusted over the delays so
that reminders that change nothing choose a delay at most that often); none of them: no
reminder (no delay is shown to recover more margin than its SMS cost).
Orders without the whole window before the observation end are left out of the shares
(missing, never unpaid) and censored in the Kaplan–Meier curves (time to payment from
creation, censored at closure or at the observation end).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy import stats

from crmlab.experiments.metrics import holm
from crmlab.experiments.reminder_result import ReminderResult
from crmlab.settings import Settings, current
from crmlab.stats.proportion import wilson
from crmlab.stats.survival import kaplan_meier, km_step

__all__ = ["parse_delay", "reminder_panel", "analyse_reminders", "DEFAULT_ARMS", "NONE_NAMES"]

DEFAULT_ARMS = ("none", "1h", "6h", "12h", "24h")
#: arm names meaning "no reminder"
NONE_NAMES = ("none", "holdout", "control", "no_reminder", "无", "不催付", "对照")
_DELAY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(h|hr|hrs|hour|hours|小时|m|min|mins|minutes|分钟|d|day|days|天)\s*$",
                       re.IGNORECASE)
_UNIT = {"h": 1.0, "hr": 1.0, "hrs": 1.0, "hour": 1.0, "hours": 1.0, "小时": 1.0, "m": 1 / 60, "min": 1 / 60,
         "mins": 1 / 60, "minutes": 1 / 60, "分钟": 1 / 60, "d": 24.0, "day": 24.0, "days": 24.0, "天": 24.0}
_MIN_AT_RISK = 100


def parse_delay(name) -> float | None:
    """Hours of an arm name: ``none`` (and its synonyms) 0, ``6h`` 6, ``30min`` 0.5, ``1d`` 24,
    ``12小时`` 12; ``None`` when the name is not an arm of a reminder experiment."""
    text = str(name).strip()
    if text.lower() in NONE_NAMES:
        return 0.0
    m = _DELAY_RE.match(text)
    return float(m.group(1)) * _UNIT[m.group(2).lower()] if m else None


def reminder_panel(orders: pd.DataFrame, sends: pd.DataFrame, pay_window_hours: float = 72.0,
                   close_hours: float | None = None) -> pd.DataFrame:
    """One row per randomised order: its arm and its times in hours since creation.

    ``orders`` and ``sends`` as :func:`crmlab.ingest.payments.load_payment_orders` and
    :func:`~crmlab.ingest.payments.load_reminder_sends` return them. Columns: ``order_id,
    arm, delay, amount, paid_h`` (NaN: unpaid), ``close_h`` (closure: ``closed_time``, else
    ``close_hours`` after creation for a cancelled order, else never), ``obs_h`` (hours to the
    observation end), ``end_h`` (censoring), ``paid_in_window``, ``complete`` (the whole window
    seen, or the outcome known earlier), ``delivered``, ``cost``, ``segments``.
    """
    close_hours = pay_window_hours if close_hours is None else close_hours
    end = pd.Timestamp(orders.attrs.get("observation_end", orders["created_time"].max()))
    s = sends.assign(delay=sends["variant"].map(parse_delay))
    p = s.merge(orders, on="order_id", how="inner", suffixes=("_send", ""))
    hours = lambda t: (t - p["created_time"]) / pd.Timedelta(hours=1)  # noqa: E731
    paid_h = hours(p["paid_time"])
    close_h = hours(p["closed_time"]).where(p["closed_time"].notna() & p["paid_time"].isna())
    cancelled = (p["status"] == "cancelled") & p["paid_time"].isna() & close_h.isna()
    close_h = close_h.where(~cancelled, close_hours)
    obs_h = hours(pd.Series(end, index=p.index))
    end_h = np.fmin(close_h.fillna(np.inf), obs_h)
    paid_in = paid_h.notna() & (paid_h <= pay_window_hours)
    known = paid_in | (close_h <= np.minimum(obs_h, pay_window_hours)) | (obs_h >= pay_window_hours)
    return pd.DataFrame({"order_id": p["order_id"], "arm": p["variant"], "delay": p["delay"],
                         "amount": p["amount"].astype(float), "paid_h": paid_h, "close_h": close_h, "obs_h": obs_h,
                         "end_h": np.where(paid_h.notna(), paid_h, end_h), "paid_in_window": paid_in.to_numpy(),
                         "complete": known.to_numpy(), "delivered": p["delivered"].to_numpy(bool),
                         "cost": p["cost"].to_numpy(float), "segments": p["segments"].to_numpy(float)})


def _open_at(panel: pd.DataFrame, d: float) -> np.ndarray:
    """Orders unpaid and open ``d`` hours after creation (and observed until then)."""
    unpaid = panel["paid_h"].isna() | (panel["paid_h"] > d)
    return (unpaid & ~(panel["close_h"] <= d) & (panel["obs_h"] >= d)).to_numpy()


def _cost_per_reminder(rows: pd.DataFrame, price: float) -> float:
    """The log's cost of a sent reminder (mean), else its billed parts x price, else one part."""
    sent = rows[rows["delivered"]]
    if sent["cost"].notna().any():
        return float(sent["cost"].dropna().mean())
    if sent["segments"].notna().any():
        return float(sent["segments"].dropna().mean() * price)
    return float(price)


def _mean_var(y: np.ndarray) -> tuple[float, float]:
    n = len(y)
    return (float(y.mean()) if n else np.nan), (float(y.var(ddof=1) / n) if n > 1 else np.inf)


def _arm_row(panel: pd.DataFrame, arm: str, d: float, ref: pd.DataFrame, margin: float, price: float,
             z: float, alpha: float) -> dict:
    """Arm ``d`` against the no-reminder orders at risk at ``d`` (see the module doc)."""
    mine = panel[(panel["arm"] == arm).to_numpy() & _open_at(panel, d) & panel["complete"].to_numpy()]
    base = ref[_open_at(ref, d) & ref["complete"].to_numpy()]
    n0 = int(ref["complete"].sum())
    y1 = (mine["amount"] * mine["paid_in_window"]).to_numpy(float)
    y0 = (base["amount"] * base["paid_in_window"]).to_numpy(float)
    (m1, v1), (m0, v0) = _mean_var(y1), _mean_var(y0)
    (p1, w1), (p0, w0) = (_mean_var(mine["paid_in_window"].to_numpy(float)),
                          _mean_var(base["paid_in_window"].to_numpy(float)))
    cost = _cost_per_reminder(panel[panel["arm"] == arm], price)
    rec, rec_var = m1 - m0, v1 + v0
    S = len(base) / n0 if n0 else np.nan
    net = margin * rec - cost
    val_se = np.sqrt(S ** 2 * margin ** 2 * rec_var + net ** 2 * S * (1 - S) / max(n0, 1))
    lo, hi = wilson(int(mine["paid_in_window"].sum()), len(mine), alpha)
    inc_se = np.sqrt(w1 + w0)
    return {"arm": arm, "delay_hours": d, "orders": len(mine), "paid": int(mine["paid_in_window"].sum()),
            "share_paid": p1, "ci_low": float(lo), "ci_high": float(hi), "none_orders": len(base),
            "none_share_paid": p0, "incremental_share": p1 - p0, "incremental_low": p1 - p0 - z * inc_se,
            "incremental_high": p1 - p0 + z * inc_se, "recovered_revenue": rec,
            "recovered_low": rec - z * np.sqrt(rec_var), "recovered_high": rec + z * np.sqrt(rec_var),
            "cost": cost, "reminders": len(mine), "cost_total": cost * len(mine), "unpaid_share_at_delay": S,
            "value_per_order": S * net, "value_low": S * net - z * val_se, "value_high": S * net + z * val_se,
            "p_value": float(stats.norm.sf(S * net / val_se)) if np.isfinite(val_se) and val_se > 0 else np.nan}


def _none_row(ref: pd.DataFrame, name: str, alpha: float) -> dict:
    done = ref[ref["complete"].to_numpy()]
    paid = int(done["paid_in_window"].sum())
    lo, hi = wilson(paid, len(done), alpha)
    return {"arm": name, "delay_hours": 0.0, "orders": len(done), "paid": paid,
            "share_paid": paid / len(done) if len(done) else np.nan, "ci_low": float(lo), "ci_high": float(hi),
            "none_orders": len(done), "none_share_paid": paid / len(done) if len(done) else np.nan,
            "incremental_share": 0.0, "incremental_low": 0.0, "incremental_high": 0.0, "recovered_revenue": 0.0,
            "recovered_low": 0.0, "recovered_high": 0.0, "cost": 0.0, "reminders": 0, "cost_total": 0.0,
            "unpaid_share_at_delay": 1.0, "value_per_order": 0.0, "value_low": 0.0, "value_high": 0.0,
            "p_value": np.nan, "p_holm": np.nan}


def _km_curves(panel: pd.DataFrame, arms: list, none_name: str | None, window: float) -> pd.DataFrame:
    """Share paid by hour t per arm on one scale (orders unpaid at randomisation): the ``none``
    arm's Kaplan–Meier until the arm's delay, then the arm's own at-risk orders from there."""
    grid = np.unique(np.concatenate([np.arange(0, min(window, 24) + 0.25, 0.5), np.arange(0, window + 1, 1.0)]))
    fit = lambda rows, entry: kaplan_meier(rows["end_h"], rows["paid_h"].notna(), entry)  # noqa: E731
    base = None
    if none_name is not None:
        ref = panel[panel["arm"] == none_name]
        base = fit(ref, None) if len(ref) else None
    out = []
    for arm, d in arms:
        if base is None and arm != none_name:
            rows = panel[panel["arm"] == arm]
            surv = km_step(fit(rows, None), grid) if len(rows) else np.full(len(grid), np.nan)
        elif arm == none_name:
            surv = km_step(base, grid)
        else:
            rows = panel[(panel["arm"] == arm).to_numpy() & _open_at(panel, d)]
            after = km_step(fit(rows, np.full(len(rows), d)), grid) if len(rows) else np.full(len(grid), np.nan)
            surv = np.where(grid < d, km_step(base, grid), km_step(base, [d])[0] * after)
        out.append(pd.DataFrame({"arm": arm, "hours": grid, "share_paid": 1 - surv}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["arm", "hours", "share_paid"])


def _decide(rows: pd.DataFrame, none_name: str | None, fmt_level: str, alpha: float) -> dict:
    """The delay with the highest value among those shown above 0 (one-sided at ``alpha`` / 2,
    the interval's lower end, Holm-adjusted over the delays), else no reminder."""
    if none_name is None:
        return {"arm": None, "reason": "no no-reminder arm (none/holdout): what a reminder recovers cannot be "
                                       "measured, only each arm's share paid", "not_separated": []}
    msg = rows[rows["arm"] != none_name]
    shown = msg[msg["p_holm"] < alpha / 2]
    k = f"Holm over the {len(msg)} delays" if len(msg) > 1 else "one delay"
    if shown.empty:
        best = msg.sort_values("value_per_order", ascending=False).head(1)
        tail = "" if best.empty else (f" (best point estimate {best['arm'].iloc[0]}: net margin above 0 not shown at "
                                      f"the {fmt_level} level, {k})")
        return {"arm": none_name, "reason": "no reminder: no delay is shown to recover more margin than its SMS "
                                            f"cost{tail}", "not_separated": []}
    best = shown.sort_values("value_per_order", ascending=False).iloc[0]
    close = [a for a, lo_, hi_ in zip(msg["arm"], msg["value_low"], msg["value_high"])
             if a != best["arm"] and hi_ >= best["value_low"]]
    reason = (f"remind at {best['arm']}: the most margin recovered per unpaid order net of SMS cost, shown above 0 "
              f"at the {fmt_level} level ({k})")
    if close:
        reason += f"; {', '.join(close)} not separated from it by the intervals"
    return {"arm": best["arm"], "reason": reason, "not_separated": close}


def analyse_reminders(orders: pd.DataFrame, sends: pd.DataFrame, arms=None, pay_window_hours: float = 72.0,
                      margin: float = 0.3, price_per_message: float = 0.05, close_hours: float | None = None,
                      settings: Settings | None = None) -> ReminderResult:
    """Read a payment-reminder experiment (the module doc gives the method).

    Parameters
    ----------
    orders, sends : DataFrame
        From :func:`crmlab.ingest.payments.load_payment_orders` / ``load_reminder_sends``.
    arms : sequence of str, optional
        Arms compared (default: every arm of the log whose name is a delay or ``none``).
    pay_window_hours : float
        Paid within this many hours of creation counts as paid (default 72).
    margin : float
        Profit share of the recovered revenue.
    price_per_message : float
        Price of one billed part, for logs without a cost.
    close_hours : float, optional
        When a cancelled order without a closing time closed (default: the window).
    settings : Settings, optional
        Context; its ``interval_level`` sets every interval (default: the session's).
    """
    settings = settings if settings is not None else current()
    alpha = 1 - settings.interval_level
    z = float(stats.norm.ppf(1 - alpha / 2))
    panel = reminder_panel(orders, sends, pay_window_hours, close_hours)
    warnings = _panel_warnings(panel, sends, orders, pay_window_hours)
    chosen = _select_arms(panel, arms, pay_window_hours, warnings)
    none_name = next((a for a, d in chosen if d == 0), None)
    panel = panel[panel["arm"].isin([a for a, _ in chosen])]
    ref = panel[panel["arm"] == none_name] if none_name else panel.iloc[:0]
    rows = [_none_row(ref, none_name, alpha)] if none_name else []
    rows += [_arm_row(panel, a, d, ref, margin, price_per_message, z, alpha) for a, d in chosen if d > 0]
    table = pd.DataFrame(rows)
    msg = (table["arm"] != none_name).to_numpy() if len(table) else np.zeros(0, bool)
    if msg.any():
        p = table.loc[msg, "p_value"].to_numpy(float)
        table.loc[msg, "p_holm"] = np.where(np.isnan(p), np.nan, holm(np.nan_to_num(p, nan=1.0)))
    for r in rows:
        if r["arm"] != none_name and r["orders"] < _MIN_AT_RISK:
            warnings.append(f"arm {r['arm']}: only {r['orders']} orders unpaid at its delay with the whole window "
                            "seen; its interval is wide")
    fmt_level = f"{100 * settings.interval_level:g}%"
    decision = _decide(table, none_name, fmt_level, alpha) if len(table) else {"arm": None, "reason": "no arm to compare", "not_separated": []}
    km = _km_curves(panel, chosen, none_name, pay_window_hours)
    return ReminderResult(table, km, decision, warnings, float(pay_window_hours), float(margin),
                          pd.Timestamp(orders.attrs.get("observation_end", orders["created_time"].max())), settings)


def _select_arms(panel: pd.DataFrame, arms, window: float, warnings: list) -> list:
    """``[(arm as logged, delay hours)]`` sorted by delay: ``arms`` matched to the log's arm
    names by name or delay (``6h`` matches ``6小时``), default every arm of the log."""
    present = {a: parse_delay(a) for a in pd.unique(panel["arm"])}
    wanted = list(arms) if arms else [a for a, d in present.items() if d is not None]
    chosen = []
    for a in wanted:
        want = parse_delay(a)
        match = [v for v, d in present.items() if v == a or (d is not None and want is not None and d == want)]
        if not match:
            warnings.append(f"arm {a!r} has no order in the send log")
        elif present[match[0]] >= window:
            warnings.append(f"arm {match[0]!r}: its reminder goes out after the {window:g} h window")
        else:
            chosen.append((match[0], present[match[0]]))
    return sorted(dict(chosen).items(), key=lambda x: x[1])


def _panel_warnings(panel: pd.DataFrame, sends: pd.DataFrame, orders: pd.DataFrame, window: float) -> list:
    """What the reader should know about the inputs: unmatched orders, unknown arms, censoring."""
    out = []
    end = orders.attrs.get("observation_end")
    seen = sends if end is None else sends[sends["send_time"] <= pd.Timestamp(end)]  # later: not yet in the export
    missing = int((~seen["order_id"].isin(panel["order_id"])).sum())
    if missing:
        out.append(f"{missing:,} reminder rows name orders not in the export (or without a created time): left out")
    unknown = sorted({str(a) for a in panel.loc[panel["delay"].isna(), "arm"]})
    if unknown:
        out.append(f"arms not read as a delay or none: {', '.join(unknown[:5])} (name them like 6h, 30min, 1d, none)")
    skipped = {k: v for k, v in (orders.attrs.get("skipped") or {}).items() if v}
    if skipped.get("paid_before_created") or skipped.get("missing_id"):
        out.append("order lines left out: " + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in skipped.items()
                                                        if k != "no_created_time"))
    young = int((~panel["complete"]).sum())
    if young:
        out.append(f"{young:,} orders placed less than {window:g} h before the observation end: censored in the "
                   "curves, left out of the shares (missing, not unpaid)")
    return out
