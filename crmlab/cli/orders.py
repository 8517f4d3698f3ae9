"""``crmlab validate``, ``summary``, ``retention``, ``lifecycle`` and ``magic-number``: the order analyses."""
from __future__ import annotations

import pyarrow.parquet as pq

from crmlab.analyses.lifecycle import lifecycle_counts, stage_table
from crmlab.analyses.magic import magic_number, repurchase_curve
from crmlab.analyses.retention import retention_table
from crmlab.cli.common import emit, load_orders_of, load_sends_of, local_arg, writing
from crmlab.clv.summary import summary_table
from crmlab.engine.sources import write_clean
from crmlab.engine.aggregates import write_rows
from crmlab.schema import CrmlabInputError

__all__ = ["cmd_validate", "cmd_summary", "cmd_retention", "cmd_lifecycle", "cmd_magic"]


def cmd_validate(a) -> int:
    o, lo = load_orders_of(a)
    if a.clean_out:
        writing("--clean-out", a.clean_out, lambda: write_clean(o, lo, a.clean_out))
    ls = None
    if a.sends:  # the rule abtest and responses apply: sends after the orders' observation end are excluded
        _, ls = load_sends_of(a, lo.observation_end)
    out = {"orders": lo.to_dict(), "sends": ls.to_dict() if ls else None}

    def text(o):
        lines = []
        for k in ("orders", "sends"):
            d = o[k]
            if d is None:
                continue
            lines.append(f"{d['file']}: {d['input_rows']} rows, {d['used_rows']} used, "
                         f"{sum(d['excluded'].values())} excluded; {d.get('orders', d.get('messages'))} "
                         f"{'orders' if k == 'orders' else 'messages'}, {d['customers']} customers")
            for r, n in d["excluded"].items():
                lines.append(f"  excluded {n:>7} {r} (rows {', '.join(map(str, d['examples'].get(r, [])))} ...)")
            lines += [f"  warning: {w}" for w in d.get("warnings", [])]
        return "\n".join(lines)

    emit(out, a.json, text)
    return 0


def cmd_summary(a) -> int:
    orders, led = load_orders_of(a)
    try:
        expr, o = summary_table(orders, a.time_unit, calibration_end=local_arg(a.calibration_end, a))
    except ValueError as e:
        raise CrmlabInputError(str(e)) from None
    writing("--out", a.out, lambda: o.engine.to_parquet(expr.order_by("customer_id"), a.out))
    n = pq.ParquetFile(a.out).metadata.num_rows  # the rows just written (counting expr runs the roll-up again)
    out = {"out": a.out, "customers": n, "time_unit": a.time_unit, "observation_end": str(o.observation_end),
           "calibration_end": str(local_arg(a.calibration_end, a)) if a.calibration_end else None,
           "engine": o.engine.name, "ledger": led.to_dict()}
    emit(out, a.json, lambda d: f"wrote {d['customers']:,} customers' RFM summary to {d['out']} ({d['engine']})")
    return 0


def cmd_retention(a) -> int:
    if a.kind == "bracket" and not a.brackets:
        raise CrmlabInputError("--kind bracket needs --brackets, e.g. 1-7,8-30,31-90")
    orders, led = load_orders_of(a)
    if a.kind == "bracket":
        days = a.brackets  # parsed and checked by bracket_list
    else:
        days = a.days  # parsed and checked by day_list
    try:
        t = retention_table(orders, cohort=a.cohort, days=days, kind=a.kind,
                            horizon_days=getattr(a, "horizon_days", None))
    except ValueError as e:
        raise CrmlabInputError(str(e)) from None
    out = t.to_dict()
    out["ledger"] = led.to_dict()
    emit(out, a.json, lambda o: t.rates.to_string(float_format=lambda x: f"{100 * x:.1f}%"))
    return 0


def cmd_lifecycle(a) -> int:
    orders, led = load_orders_of(a)
    kw = {}
    if a.percentile is not None:
        kw["percentile"] = a.percentile / 100  # the CLI takes percent, the function a fraction
    try:  # counted in the engine: no customer comes back to pandas
        counts = lifecycle_counts(orders, as_of=local_arg(a.as_of, a), rule=a.rule, **kw)
    except ValueError as e:
        raise CrmlabInputError(str(e)) from None
    out = {"as_of": str(counts.attrs["as_of"]), "rule": a.rule, "customers": counts.attrs["customers"],
           "dormancy_threshold_days": counts.attrs["dormancy_threshold"],
           "counts": {k: int(v) for k, v in counts["customers"].items()}, "ledger": led.to_dict()}
    if a.out:  # every customer's stage, written from the engine (real ids: a list for operations)
        stages = stage_table(orders, as_of=local_arg(a.as_of, a), rule=a.rule, **kw)
        writing("--out", a.out, lambda: write_rows(orders.engine, stages, a.out, raw=a.csv_raw))
        out["out"] = a.out
    emit(out, a.json, lambda o: counts.to_string())
    return 0


def cmd_magic(a) -> int:
    orders, led = load_orders_of(a)
    curve = repurchase_curve(orders, window_days=a.window_days, max_k=a.max_k, min_at_risk=a.min_at_risk)
    m = magic_number(curve, rule=a.rule, min_at_risk=a.min_at_risk)
    out = {"window_days": a.window_days, "observation_end": str(curve.observation_end), **m.to_dict(),
           "curve": curve.to_records(), "ledger": led.to_dict()}

    def text(o):
        head = o["headline"]  # "Magic number 3 — indicated: ..." / "No magic number by the plateau rule: ...", as the card
        return head + f"  [rules: {o['rules']}]\n" + curve.table.to_string()

    emit(out, a.json, text)
    return 0
