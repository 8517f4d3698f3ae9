"""``crmlab reminders`` (read a payment-reminder experiment, 催付) and the handler of
``crmlab design --reminders`` (randomise unpaid orders to reminder delays)."""
from __future__ import annotations

from crmlab.cli.common import emit, writing
from crmlab.experiments.reminder_design import design_reminders, parse_arms
from crmlab.experiments.reminders import analyse_reminders
from crmlab.ingest.payments import load_payment_orders, load_reminder_sends
from crmlab.present.spreadsheet import write_csv
from crmlab.settings import current

__all__ = ["cmd_reminders", "cmd_design_reminders"]


def _read(a) -> dict:
    return {"timezone": a.timezone, "decimal": a.decimal, "dayfirst": a.dayfirst}


def _orders(a):
    return load_payment_orders(a.orders, a.columns, observation_end=a.observation_end,
                               sheet=getattr(a, "sheet", None), **_read(a))


def cmd_reminders(a) -> int:
    """Time to payment, share paid, recovered revenue and cost by reminder delay; the decision."""
    arms = parse_arms(a.arms) if a.arms else None
    orders = _orders(a)
    sends = load_reminder_sends(a.sends, sheet=getattr(a, "sends_sheet", None), **_read(a))
    r = analyse_reminders(orders, sends, arms=arms, pay_window_hours=a.pay_window_hours, margin=a.margin,
                          price_per_message=a.price_per_message, settings=current().replace(timezone=a.timezone))
    out = r.to_dict()

    def n(v, scale=100.0, digits=1):  # a number of the JSON (None: not measured)
        return "—" if v is None else f"{scale * v:.{digits}f}"

    def text(o):
        lines = [f"paid within {o['pay_window_hours']:g} h, among orders unpaid when the arm's reminder went out:"]
        for x in o["arms"]:
            extra = "" if not x["delay_hours"] else (
                f"  without {n(x['none_share_paid'])}%  recovered/reminder {n(x['recovered_revenue'], 1, 2)}"
                f"  cost/reminder {n(x['cost'], 1, 3)}  net per 100 unpaid {n(x['value_per_order'])} "
                f"[{n(x['value_low'])}, {n(x['value_high'])}]")
            lines.append(f"  {x['arm']:6s} {x['orders']:>6,} orders  paid {n(x['share_paid'])}% "
                         f"[{n(x['ci_low'])}, {n(x['ci_high'])}]{extra}")
        lines += [f"warning: {w}" for w in o["warnings"]]
        lines.append(f"decision: {o['decision']['arm']} ({o['decision']['reason']})")
        return "\n".join(lines)

    emit(out, a.json, text)
    return 0


def cmd_design_reminders(a) -> int:
    """``crmlab design --reminders``: the unpaid open orders randomised to the delays of ``--arms``,
    stratified by ``--strata`` (value, customer, hour), with the balance table."""
    orders = _orders(a)
    d = design_reminders(orders, parse_arms(a.arms), seed=a.seed, strata=getattr(a, "strata", "") or None,
                         rerandomize=getattr(a, "rerandomize", 0), threshold=getattr(a, "smd_threshold", 0.05))
    table = d["assignment"].assign(send_time=d["assignment"]["send_time"].dt.strftime("%Y-%m-%d %H:%M:%S"),
                                   created_time=d["assignment"]["created_time"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    writing("--out", a.out, lambda: write_csv(table, a.out, raw=getattr(a, "csv_raw", False), index=False))
    out = {k: v for k, v in d.items() if k != "assignment"}
    out["out"] = a.out

    def text(o):
        strata = f"; {o['strata']} strata ({', '.join(o['strata_by'])})" if o["strata"] else ""
        return (f"{o['orders']:,} unpaid orders: " + ", ".join(f"{k} {v:,}" for k, v in o["arms"].items())
                + f"; seed {o['seed']}; wrote {o['out']}"
                + (f"; {o['already_due']:,} reminders already due" if o["already_due"] else "")
                + f"{strata}; max |SMD| {o['max_abs_smd']:.3f} over {', '.join(o['covariates'])}")

    emit(out, a.json, text)
    return 0
