"""``crmlab abtest``, ``responses``, ``sample-size`` and ``sms-cost``: SMS experiments."""
from __future__ import annotations

from crmlab.cli.common import emit, load_orders_of, load_sends_of, writing
from crmlab.experiments.analysis import analyse_experiment
from crmlab.experiments.design import minimum_detectable_effect, sample_size
from crmlab.experiments.responses import response_history, unresponsive
from crmlab.experiments.sms import check_copy, sms_cost
from crmlab.present.spreadsheet import write_csv
from crmlab.schema import CrmlabInputError

__all__ = ["cmd_abtest", "cmd_responses", "cmd_sample_size", "cmd_sms_cost"]


def cmd_abtest(a) -> int:
    orders, lo = load_orders_of(a)
    sends, ls = load_sends_of(a, lo.observation_end)
    try:
        r = analyse_experiment(sends, orders, window_hours=a.window_hours, arm_column=a.arm_column,
                               control=a.control, planned_split=a.planned_split, planned_n_per_arm=a.planned_n,
                               alpha=a.alpha, correct=a.yates, campaign=a.campaign, seed=a.seed,
                               price_per_message=a.price_per_message, margin=a.margin, cuped_days=a.cuped_days,
                               monitor=a.monitor, current_copy=a.current_copy, target_effect=a.target_effect,
                               cs_tuning=a.cs_tuning)
    except ValueError as e:
        if isinstance(e, CrmlabInputError):
            raise
        raise CrmlabInputError(str(e)) from None
    out = r.to_dict()
    targeted = sends if a.campaign is None else sends[sends["campaign_id"].astype(str) == str(a.campaign)]
    if not r.outcomes["ordered"].any() and not _any_customer_in(orders, targeted["customer_id"]):
        # load_sends cannot know: every conversion rate would be 0 for a reason unrelated to the copy
        out["warnings"] = list(out.get("warnings") or []) + [
            f"no targeted customer of {ls.file} appears in {lo.file}: check that both files use the same "
            "customer ids (every conversion is 0)"]
    out["ledger"] = {"orders": lo.to_dict(), "sends": ls.to_dict()}

    def text(o):
        lines = [f"control {o['control']}, window {o['window_hours']:g} h"]
        for arm in o["arms"]:
            lines.append(f"  {arm['arm']:10s} targeted {arm['targeted']:>6}  buyers {arm['buyers']:>5}  "
                         f"conversion {100 * arm['conversion_rate']:.2f}%")
        for m in o.get("monitoring") or []:
            lines.append(f"  day {m['day']} {m['arm']:10s} {100 * m['diff']:+.2f} pp  95% CI [{100 * m['ci_low']:.2f}, "
                         f"{100 * m['ci_high']:.2f}]  always-valid [{100 * m['cs_low']:.2f}, {100 * m['cs_high']:.2f}]")
        lines += [f"warning: {w}" for w in o["warnings"]]
        lines.append(f"verdict: {o['verdict']}")
        lines += [f"next: {s}" for s in o["decision"]["next_steps"]]
        return "\n".join(lines)

    emit(out, a.json, text)
    return 0


def _any_customer_in(orders, ids) -> bool:
    """Whether any of ``ids`` has an order (checked in the engine)."""
    o = orders.table
    hit = o.filter(o.customer_id.isin(list(map(str, ids.unique())))).count().name("n").as_table()
    return int(orders.engine.to_pandas(hit)["n"].iloc[0]) > 0


def cmd_responses(a) -> int:
    orders, lo = load_orders_of(a)
    sends, ls = load_sends_of(a, lo.observation_end)
    h = response_history(sends, orders, window_hours=a.window_hours)
    if a.out:
        writing("--out", a.out, lambda: write_csv(h.reset_index(), a.out, raw=a.csv_raw, index=False,
                                                   date_format="%Y-%m-%d %H:%M:%S"))
    drop = unresponsive(h, a.min_messages)
    dist = h["messages"].value_counts().sort_index()
    out = {"customers": len(h), "messages": int(h["messages"].sum()), "responses": int(h["responses"].sum()),
           "response_rate": float(h["responses"].sum() / h["messages"].sum()) if h["messages"].sum() else None,
           "open_messages": h.attrs["open_messages"], "window_hours": a.window_hours,
           "messages_per_customer": {str(k): int(v) for k, v in dist.items()},
           "min_messages": a.min_messages, "never_responded": len(drop), "out": a.out,
           "ledger": {"orders": lo.to_dict(), "sends": ls.to_dict()}}

    def text(d):
        rate = "n/a" if d["response_rate"] is None else f"{100 * d['response_rate']:.2f}%"
        return (f"{d['customers']:,} customers, {d['messages']:,} messages, {d['responses']:,} responses ({rate}) "
                f"within {d['window_hours']:g} h; {d['never_responded']:,} never responded to "
                f">= {d['min_messages']} messages" + (f"; wrote {d['out']}" if d["out"] else ""))

    emit(out, a.json, text)
    return 0


def cmd_sample_size(a) -> int:
    try:
        s = sample_size(a.baseline, target=a.target, relative_lift=a.relative_lift, alpha=a.alpha, power=a.power,
                        ratio=a.ratio, alternative=a.alternative)
    except ValueError as e:
        raise CrmlabInputError(str(e)) from None
    out = s.to_dict()
    out["detectable_difference_at_n"] = minimum_detectable_effect(a.baseline, s.n_per_arm, a.alpha, a.power, a.ratio,
                                                                  a.alternative)
    emit(out, a.json, lambda o: f"{o['n_per_arm']:,} customers per arm (exact {o['n_exact']:.2f}) to detect "
                                f"{100 * o['baseline']:.2f}% -> {100 * o['target']:.2f}% at power {o['power']:g}, "
                                f"alpha {o['alpha']:g} ({o['alternative']})")
    return 0


def cmd_sms_cost(a) -> int:
    try:
        out = sms_cost(a.text, a.scheme, a.price)
    except ValueError as e:
        raise CrmlabInputError(str(e)) from None
    out["copy_check"] = check_copy(a.text)
    emit(out, a.json, lambda o: f"{o['characters']} characters, {o['segments']} billed message(s), cost {o['cost']:g}"
                                + ("" if o["copy_check"]["ok"] else f"; copy lacks: {', '.join(o['copy_check']['missing'])}"))
    return 0
