"""The ``crmlab`` command line.

Exit codes: 0 success; 1 a report notebook failed; 2 bad input or arguments (one line
``crmlab: error: ...`` on stderr, no traceback).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Callable

from crmlab.cli.arguments import (MAX_DAYS, CrmlabArgumentParser, at_most, bracket_list, column_spec, day_list,
                              finite_float, in_file, memory_size, moment, nonneg_float, nonneg_int, out_dir, out_file,
                              percentile, positive_float, positive_int, probability, spark_master, split_spec,
                              timezone_name)
from crmlab.ingest.readers import CrmlabInputError

__all__ = ["main"]


def _json_default(o):
    import numpy as np
    import pandas as pd

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if np.isnan(o) else float(o)
    if isinstance(o, (pd.Timestamp, pd.Period)):
        return str(o)
    if isinstance(o, np.bool_):
        return bool(o)
    return str(o)


def _clean(o):
    """NaN/inf -> null, recursively (JSON has no NaN)."""
    if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
        return None
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    try:
        import numpy as np

        if isinstance(o, np.floating):
            return None if not np.isfinite(o) else float(o)
        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.bool_):
            return bool(o)
    except ImportError:  # pragma: no cover
        pass
    return o


def emit(obj, as_json: bool, text: Callable[[dict], str] | None = None) -> None:
    if as_json or text is None:
        print(json.dumps(_clean(obj), ensure_ascii=False, default=_json_default, indent=1))
    else:
        print(text(obj))


def _loader_kw(a) -> dict:
    """The reading options every command that loads orders or sends takes."""
    return {"columns": a.columns, "timezone": a.timezone, "decimal": a.decimal, "dayfirst": a.dayfirst}


def _load_sends(a, observation_end):
    """The send log (``--sends``, ``--sends-sheet``) with the orders' observation end: sends
    after it are excluded the same way in ``validate``, ``abtest`` and ``responses``."""
    from crmlab.ingest.readers import load_sends

    sends, led = load_sends(a.sends, observation_end=observation_end, sheet=getattr(a, "sends_sheet", None),
                            **_loader_kw(a))
    _notices(led)
    return sends, led


def _notices(led) -> None:
    """Ledger warnings that change what the outputs show, also on stderr (the ledger keeps them)."""
    from crmlab.ingest.readers import NOTICE_PREFIXES

    for w in led.warnings:
        if w.startswith(NOTICE_PREFIXES):
            print(f"crmlab: warning: {led.file}: {' '.join(w.split())}", file=sys.stderr)


def _writing(flag: str, path: str, write: Callable[[], object]) -> None:
    """Run ``write``; a failure to write ``path`` (a read-only folder, a file where a folder
    should be, a full disk; from Python, DuckDB or Arrow) is one line naming ``flag``."""
    try:
        write()
    except CrmlabInputError:
        raise
    except OSError as e:
        raise CrmlabInputError(f"{flag} {path}: cannot write ({e.strerror or e})") from None
    except Exception as e:  # DuckDB's IOException, Arrow's errors: not OSError
        if type(e).__name__ not in ("IOException", "PermissionException", "ArrowIOError", "ArrowInvalid",
                                    "OutOfMemoryException"):
            raise
        raise CrmlabInputError(f"{flag} {path}: cannot write ({type(e).__name__}: "
                               f"{' '.join(str(e).split())[:200]})") from None


def _local_arg(value, a):
    """A date/time argument (checked by :func:`moment`) in store-local time: a time with an
    offset converted to ``--timezone``; otherwise kept as text (a bare date = end of day)."""
    if value is None:
        return None
    import pandas as pd

    from crmlab.ingest.values import _local, _zone

    ts = pd.Timestamp(value)
    return _local(ts, _zone(a.timezone)[0]) if ts.tzinfo is not None else value


# ------------------------------------------------------------------ commands

def cmd_validate(a) -> int:
    o, lo = _load(a)
    if a.clean_out:
        from crmlab.engine import write_clean

        _writing("--clean-out", a.clean_out, lambda: write_clean(o, lo, a.clean_out))
    ls = None
    if a.sends:  # the rule abtest and responses apply: sends after the orders' observation end are excluded
        _, ls = _load_sends(a, lo.observation_end)
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


def cmd_sample(a) -> int:
    from crmlab.simulate.store import write_sample

    truth = write_sample(a.out, n_customers=a.customers, seed=a.seed)
    print(f"wrote {a.out}/orders.csv, sends.csv, truth.json ({truth['customers']} customers, "
          f"{truth['paid_orders']} paid orders, magic number {truth['magic_number']})", file=sys.stderr)
    return 0


def _read_params(a) -> dict:
    """``-f`` files, then ``-p`` (which win), then ``--observation-end``: every value checked
    (:mod:`crmlab.report.parameters`); a runner parameter or a bad value is one line, exit 2."""
    from crmlab.report.parameters import read_parameters

    return read_parameters(a.parameters_file or [], a.param or [], a.observation_end)


def cmd_report(a) -> int:
    from crmlab.report.runner import run_reports

    params = _read_params(a)
    # -p names must be parameters of a selected notebook; -f keys of some notebook
    strict = {p.split("=", 1)[0].strip() for p in a.param or [] if "=" in p}
    reading = {"timezone": a.timezone, "decimal": a.decimal, "dayfirst": a.dayfirst}
    if a.memory_limit:  # the runner's validation and every notebook's kernel read it
        from crmlab.engine.connection import MEMORY_ENV

        os.environ[MEMORY_ENV] = a.memory_limit
    res = run_reports(a.orders, a.sends, a.notebooks, out=a.out, columns=a.columns, parameters=params,
                      strict_parameters=strict, reading=reading, engine=a.engine)
    for r in res.reports:
        if r.status == "failed":
            print(f"crmlab: error: {r.error}", file=sys.stderr)
    return 0 if res.ok else 1


def _engine(a):
    """The engine named by ``--engine`` / ``--spark-master`` (default ``CRMLAB_ENGINE``, else DuckDB)."""
    from crmlab.engine import connect

    return connect(a.engine, spark_master=a.spark_master, memory_limit=a.memory_limit)


def _is_export(source: str) -> bool:
    """Whether ``--orders`` is an export (validated on every read), not a clean file or a table."""
    from crmlab.engine.loading import is_engine_table
    from crmlab.engine.sources import read_clean_ledger

    clean = str(source).endswith((".parquet", ".pq")) and os.path.isfile(source) and read_clean_ledger(source)
    return not (is_engine_table(source) or clean)


#: Lines of an export above which a command other than ``validate`` suggests validating once.
BIG_EXPORT_LINES = 20_000_000


def _load(a):
    """Orders in the engine and their ledger (:func:`crmlab.engine.load`)."""
    import time

    from crmlab.engine import load

    t0 = time.perf_counter()
    o, led = load(a.orders, _engine(a), observation_end=a.observation_end, sheet=a.sheet, **_loader_kw(a))
    _notices(led)
    if a.func is not cmd_validate and led.input_rows > BIG_EXPORT_LINES and _is_export(a.orders):
        # an export, validated again by this command: most of its time at this size
        print(f"crmlab: note: validating {led.input_rows:,} lines took {time.perf_counter() - t0:.0f} s; run "
              "`crmlab validate --orders FILE --clean-out clean.parquet` once and point commands at "
              "clean.parquet", file=sys.stderr)
    return o, led


def cmd_summary(a) -> int:
    from crmlab.clv.summary import summary_table

    orders, led = _load(a)
    try:
        expr, o = summary_table(orders, a.time_unit, calibration_end=_local_arg(a.calibration_end, a))
    except ValueError as e:
        raise CrmlabInputError(str(e)) from None
    _writing("--out", a.out, lambda: o.engine.to_parquet(expr.order_by("customer_id"), a.out))
    n = int(o.engine.to_pandas(expr.count().name("n").as_table())["n"].iloc[0])
    out = {"out": a.out, "customers": n, "time_unit": a.time_unit, "observation_end": str(o.observation_end),
           "calibration_end": str(_local_arg(a.calibration_end, a)) if a.calibration_end else None,
           "engine": o.engine.name, "ledger": led.to_dict()}
    emit(out, a.json, lambda d: f"wrote {d['customers']:,} customers' RFM summary to {d['out']} ({d['engine']})")
    return 0


def cmd_retention(a) -> int:
    from crmlab.analyses.retention import retention_table

    if a.kind == "bracket" and not a.brackets:
        raise CrmlabInputError("--kind bracket needs --brackets, e.g. 1-7,8-30,31-90")
    orders, led = _load(a)
    if a.kind == "bracket":
        days = a.brackets  # parsed and checked by bracket_list
    else:
        days = a.days  # parsed and checked by day_list
    try:
        t = retention_table(orders, cohort=a.cohort, days=days, kind=a.kind)
    except ValueError as e:
        raise CrmlabInputError(str(e)) from None
    out = t.to_dict()
    out["ledger"] = led.to_dict()
    emit(out, a.json, lambda o: t.rates.to_string(float_format=lambda x: f"{100 * x:.1f}%"))
    return 0


def cmd_lifecycle(a) -> int:
    from crmlab.analyses.lifecycle import lifecycle_counts

    orders, led = _load(a)
    kw = {}
    if a.percentile is not None:
        kw["percentile"] = a.percentile / 100  # the CLI takes percent, the function a fraction
    try:  # counted in the engine: no customer comes back to pandas
        counts = lifecycle_counts(orders, as_of=_local_arg(a.as_of, a), rule=a.rule, **kw)
    except ValueError as e:
        raise CrmlabInputError(str(e)) from None
    out = {"as_of": str(counts.attrs["as_of"]), "rule": a.rule, "customers": counts.attrs["customers"],
           "dormancy_threshold_days": counts.attrs["dormancy_threshold"],
           "counts": {k: int(v) for k, v in counts["customers"].items()}, "ledger": led.to_dict()}
    if a.out:  # every customer's stage, written from the engine (real ids: a list for operations)
        from crmlab.engine.aggregates import write_rows
        from crmlab.analyses.lifecycle import stage_table

        stages = stage_table(orders, as_of=_local_arg(a.as_of, a), rule=a.rule, **kw)
        _writing("--out", a.out, lambda: write_rows(orders.engine, stages, a.out, raw=a.csv_raw))
        out["out"] = a.out
    emit(out, a.json, lambda o: counts.to_string())
    return 0


def cmd_magic(a) -> int:
    from crmlab.analyses.magic import magic_number, repurchase_curve

    orders, led = _load(a)
    curve = repurchase_curve(orders, window_days=a.window_days, max_k=a.max_k, min_at_risk=a.min_at_risk)
    m = magic_number(curve, rule=a.rule, min_at_risk=a.min_at_risk)
    out = {"window_days": a.window_days, "observation_end": str(curve.observation_end), **m.to_dict(),
           "curve": curve.to_records(), "ledger": led.to_dict()}

    def text(o):
        head = (f"magic number: {o['magic_number']}" if o["magic_number"] is not None
                else f"magic number: none ({o['reason']})")
        return head + f"  [rules: {o['rules']}]\n" + curve.table.to_string()

    emit(out, a.json, text)
    return 0


def cmd_clv(a) -> int:
    from crmlab.clv.models import LABELS, clv_pipeline

    orders, led = _load(a)
    r = clv_pipeline(orders, time_unit=a.time_unit, calibration_end=_local_arg(a.calibration_end, a),
                     holdout_days=a.holdout_days, model=a.model, horizon_months=a.horizon_months,
                     discount_rate=a.discount_rate, margin=a.margin)
    from crmlab.present.spreadsheet import write_csv

    for path, flag, frame in ((a.summary_out, "--summary-out", r.summary), (a.values_out, "--values-out", r.values)):
        if path:
            _writing(flag, path, lambda: write_csv(frame.reset_index(), path, raw=a.csv_raw, index=False))
    out = r.to_dict()
    out["ledger"] = led.to_dict()

    def text(o):
        lines = [f"{o['customers']:,} customers, {o['repeat_customers']:,} repeat",
                 f"model: {LABELS[o['chosen_model']]} ({o['choice_reason']})"]
        for k, m in o["models"].items():
            if m["status"] == "failed":
                lines.append(f"  {LABELS[k]:12s} failed: {m['error']}")
                continue
            lines.append(f"  {LABELS[k]:12s} {m['status']:8s} LL {m['log_likelihood']:.1f}  "
                         + ", ".join(f"{p}={v:.4g}" for p, v in m["params"].items()))
        if o["holdout"]:
            lines.append(f"holdout after {o['holdout']['calibration_end'][:10]} (predicted, 90% interval, actual):")
            for k, m in o["holdout"]["models"].items():
                lines.append(f"  {LABELS[k]:12s} " + (f"failed: {m['error']}" if m["status"] == "failed" else
                             f"{m['predicted_total']:,.0f} [{m['predicted_low']:,.0f}, {m['predicted_high']:,.0f}]"
                             f" vs {m['actual_total']:,.0f} ({m['total_error']:+.1%}), MAE {m['mae']:.3f}"))
        lines.append(r.headline())
        lines += [f"warning: {w}" for w in o["warnings"]]
        return "\n".join(lines)

    emit(out, a.json, text)
    return 0


def cmd_abtest(a) -> int:
    from crmlab.experiments.analysis import analyse_experiment

    orders, lo = _load(a)
    sends, ls = _load_sends(a, lo.observation_end)
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
    from crmlab.experiments.responses import response_history, unresponsive
    from crmlab.present.spreadsheet import write_csv

    orders, lo = _load(a)
    sends, ls = _load_sends(a, lo.observation_end)
    h = response_history(sends, orders, window_hours=a.window_hours)
    if a.out:
        _writing("--out", a.out, lambda: write_csv(h.reset_index(), a.out, raw=a.csv_raw, index=False,
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
    from crmlab.experiments.design import minimum_detectable_effect, sample_size

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
    from crmlab.experiments.sms import check_copy, sms_cost

    try:
        out = sms_cost(a.text, a.scheme, a.price)
    except ValueError as e:
        raise CrmlabInputError(str(e)) from None
    out["copy_check"] = check_copy(a.text)
    emit(out, a.json, lambda o: f"{o['characters']} characters, {o['segments']} billed message(s), cost {o['cost']:g}"
                                + ("" if o["copy_check"]["ok"] else f"; copy lacks: {', '.join(o['copy_check']['missing'])}"))
    return 0


def cmd_promotion(a) -> int:
    import pandas as pd

    from crmlab.promotion.plan import analyse_promotion, warm_up_list

    o, led = _load(a)
    r = analyse_promotion(o, date=a.date, last_year_date=a.last_year_date, phases=a.phases, growth=a.growth,
                          clv_check=not a.no_clv_check)
    if a.warm_up_out:
        from crmlab.present.spreadsheet import write_csv

        warm = warm_up_list(o, r)
        _writing("--warm-up-out", a.warm_up_out, lambda: write_csv(warm, a.warm_up_out, raw=a.csv_raw, index=False))
    out = r.to_dict()
    out["ledger"] = led.to_dict()

    def text(d):
        t = pd.DataFrame({f"{m} {k}": f[m] for m in ("buyers", "sales")
                          for k, f in (("last", r.last_year), ("this", r.this_year), ("target", r.plan))})
        if r.reviewed:
            t["sales attainment"] = (r.this_year["sales"] / r.plan["sales"]).map(lambda x: f"{100 * x:.1f}%")
        g = ", ".join(f"{k} {100 * v:+.1f}% ({d['growth_source'][k]})" for k, v in d["growth"].items())
        return (f"promotion {d['date']} vs {d['last_year_date']}; growth {g}\n"
                + t.to_string(float_format=lambda x: f"{x:,.0f}") + "\n" + "\n".join(f"- {s}" for s in r.assumptions))

    emit(out, a.json, text)
    return 0


# ------------------------------------------------------------------ parser

def _orders_args(p, sends: bool = False, sends_required: bool = False) -> None:
    p.add_argument("--orders", required=True, type=in_file, help="order export (CSV, Parquet, Excel)")
    p.add_argument("--sheet", metavar="NAME", help="the sheet of an Excel workbook holding the orders (default: the "
                                                   "only sheet, or the only one with the order columns)")
    if sends:
        p.add_argument("--sends", required=sends_required, type=in_file, help="SMS send log")
        p.add_argument("--sends-sheet", metavar="NAME", help="the sheet of an Excel send log (as --sheet)")
    p.add_argument("--columns", type=column_spec,
                   help="column mapping, e.g. customer_id=买家会员名,order_time=订单付款时间")
    p.add_argument("--observation-end", type=moment,
                   help="ignore orders after this time (a bare date = end of that day)")
    _reading_args(p)
    _engine_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")


def _csv_raw_arg(p) -> None:
    p.add_argument("--csv-raw", action="store_true",
                   help="write CSV cells exactly as they are: by default a text cell starting with = + - @ gets a "
                        "leading ' so that Excel or WPS never runs it as a formula")


def _engine_args(p) -> None:
    """Where the orders are aggregated: on every command that reads orders."""
    p.add_argument("--engine", choices=["duckdb", "spark"],
                   help="duckdb (embedded, default; or CRMLAB_ENGINE) or spark (needs crmlab[spark], Java 17+)")
    p.add_argument("--spark-master", metavar="URL", type=spark_master,
                   help="with --engine spark: the master of the session crmlab starts (default local[*]; "
                        "SPARK_REMOTE selects Spark Connect)")
    p.add_argument("--memory-limit", type=memory_size, metavar="SIZE",
                   help="DuckDB's memory limit, e.g. 600MB, 4GB or 40%% of RAM (default CRMLAB_MEMORY_LIMIT, else "
                        "60%%); beyond it DuckDB spills to a temporary folder")


def _reading_args(p) -> None:
    """How to read times and amounts: on every command that reads orders or sends."""
    from crmlab.ingest.readers import DEFAULT_TIMEZONE

    p.add_argument("--timezone", type=timezone_name, default=DEFAULT_TIMEZONE,
                   help="store time zone (IANA name, default %(default)s): times with an offset are "
                        "converted to it, times without one are taken as store-local")
    p.add_argument("--decimal", choices=[".", ","], default=".",
                   help="decimal mark of amounts (default '.': 1,234.50; with ',': 1.234,50)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dayfirst", dest="dayfirst", action="store_const", const=True, default=None,
                   help="slash dates are day/month/year (default: as the column shows, else an error)")
    g.add_argument("--monthfirst", dest="dayfirst", action="store_const", const=False,
                   help="slash dates are month/day/year")


def build_parser() -> argparse.ArgumentParser:
    from crmlab._version import __version__

    ap = CrmlabArgumentParser(prog="crmlab", description="Old-customer CRM analytics for online stores.")
    ap.add_argument("--version", action="version", version=f"crmlab {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=CrmlabArgumentParser)

    p = sub.add_parser("validate", help="check an export before any report: the ledger")
    _orders_args(p, sends=True)
    p.add_argument("--clean-out", type=out_file, metavar="FILE.parquet",
                   help="write the validated orders (with the ledger) as Parquet; every command reads it "
                        "without validating again")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("sample", help="write the simulated store (orders, sends, truth)")
    p.add_argument("--out", required=True, type=out_dir)
    p.add_argument("--customers", type=at_most(positive_int, 10_000_000), default=20_000)
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("report", help="run the report notebooks into HTML")
    p.add_argument("notebooks", nargs="*", help="notebook names or prefixes (default: all)")
    p.add_argument("--orders", required=True, type=in_file)
    p.add_argument("--sends")
    p.add_argument("--columns", type=column_spec)
    p.add_argument("--observation-end", type=moment)
    p.add_argument("-p", "--param", action="append", metavar="NAME=VALUE", help="notebook parameter")
    p.add_argument("-f", "--parameters-file", action="append", metavar="PARAMS.yaml")
    p.add_argument("--out", default="reports/latest", help="output dir; {date} expands to the run date")
    _reading_args(p)
    _engine_args(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("summary", help="lifetimes' RFM summary per customer, written as Parquet from the engine")
    _orders_args(p)
    p.add_argument("--out", required=True, type=out_file, help="Parquet file to write (its folder must exist)")
    p.add_argument("--time-unit", default="D", choices=["D", "W"])
    p.add_argument("--calibration-end", type=moment,
                   help="add lifetimes' calibration/holdout columns (_cal, _holdout) split at this date")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("retention", help="cohort retention table")
    _orders_args(p)
    p.add_argument("--cohort", default="month", choices=["day", "week", "month", "channel"])
    p.add_argument("--kind", default="exact", choices=["exact", "on_or_after", "bracket"])
    p.add_argument("--days", type=day_list, default="1,3,7,14,30,60,90")
    p.add_argument("--brackets", type=bracket_list, help="for --kind bracket: 1-7,8-30,31-90")
    p.set_defaults(func=cmd_retention)

    p = sub.add_parser("lifecycle", help="lifecycle stage counts")
    _orders_args(p)
    p.add_argument("--rule", default="ladder", choices=["ladder", "percentile"],
                   help="product_cycle and season need tables: use the Python API or notebook 02")
    p.add_argument("--as-of", type=moment, help="date of the snapshot (default: observation end)")
    p.add_argument("--percentile", type=percentile,
                   help="--rule percentile: dormant after this percentile of the gaps between orders, "
                        "strictly between 0 and 100 (default 90)")
    p.add_argument("--out", type=out_file, help="also write every customer's stage and R/F/M scores, from the "
                                                "engine: Parquet, or CSV when the name ends in .csv (real ids)")
    _csv_raw_arg(p)
    p.set_defaults(func=cmd_lifecycle)

    p = sub.add_parser("magic-number", help="the repurchase magic number")
    _orders_args(p)
    p.add_argument("--window-days", type=at_most(positive_int, MAX_DAYS), default=90)
    p.add_argument("--max-k", type=at_most(positive_int, 1000), default=10)
    p.add_argument("--min-at-risk", type=positive_int, default=50)
    p.add_argument("--rule", default="plateau", choices=["plateau", "ztest", "segmented", "tolerance"])
    p.set_defaults(func=cmd_magic)

    p = sub.add_parser("clv", help="customer lifetime value: BG/NBD, Pareto/NBD, MBG/NBD, Gamma-Gamma")
    _orders_args(p)
    p.add_argument("--calibration-end", type=moment,
                   help="fit up to this date, compare predictions in the holdout after it "
                        "(default: --holdout-days before the observation end)")
    p.add_argument("--holdout-days", type=at_most(nonneg_int, MAX_DAYS), default=182, help="without --calibration-end (0: no holdout)")
    p.add_argument("--time-unit", default="W", choices=["D", "W"])
    p.add_argument("--horizon-months", type=at_most(positive_int, 1200), default=12)
    p.add_argument("--discount-rate", type=at_most(nonneg_float, 1), default=0.01, help="monthly, 0 to 1")
    p.add_argument("--margin", type=positive_float, default=1.0,
                   help="profit share of revenue (1: CLV is revenue; otherwise profit)")
    p.add_argument("--model", choices=["bgnbd", "pareto_nbd", "mbgnbd"],
                   help="fit and use only this model (default: all three, chosen on the holdout)")
    p.add_argument("--summary-out", type=out_file, help="write the RFM summary CSV here (its folder must exist)")
    p.add_argument("--values-out", type=out_file,
                   help="write per-customer P(alive), expected purchases, CLV and its interval (CSV)")
    _csv_raw_arg(p)
    p.set_defaults(func=cmd_clv)

    p = sub.add_parser("abtest", help="analyse an SMS experiment (copy x send time, holdout)")
    _orders_args(p, sends=True, sends_required=True)
    p.add_argument("--arm-column", default="variant")
    p.add_argument("--control", help="control arm (default: holdout/control if present)")
    p.add_argument("--window-hours", type=at_most(positive_float, 24 * MAX_DAYS), default=72)
    p.add_argument("--planned-split", type=split_spec, help="a=0.5,b=0.5 (default: equal split assumed)")
    p.add_argument("--planned-n", type=positive_int, help="planned customers per arm")
    p.add_argument("--campaign", help="campaign id when the log holds several")
    p.add_argument("--yates", action="store_true", help="Yates' continuity correction for two-arm tests")
    p.add_argument("--seed", type=nonneg_int, default=0, help="bootstrap seed (and the derived holdout clock split)")
    p.add_argument("--alpha", type=probability, default=0.05, help="significance level (intervals are 1 - alpha)")
    p.add_argument("--price-per-message", type=nonneg_float, default=0.05,
                   help="price of one billed message, for sends without a cost (default %(default)s)")
    p.add_argument("--margin", type=at_most(positive_float, 1), default=0.3,
                   help="profit share of revenue, 0 to 1, for the profit per message (default %(default)s)")
    p.add_argument("--current-copy", help="copy kept when copies cost and convert the same (default: the first)")
    p.add_argument("--target-effect", type=probability,
                   help="difference in conversion the next test should detect (e.g. 0.01): customers needed")
    p.add_argument("--cuped-days", type=at_most(nonneg_int, MAX_DAYS), default=90,
                   help="CUPED with the paid spend/orders of the N days before each send (0: off; default 90)")
    p.add_argument("--monitor", action="store_true",
                   help="daily fixed-horizon intervals and always-valid confidence sequences until the campaign end + 1 day")
    p.add_argument("--cs-tuning", type=positive_float,
                   help="confidence sequence tuning constant N* (default: each comparison's final size)")
    p.set_defaults(func=cmd_abtest)

    p = sub.add_parser("responses", help="response history per customer (营销次数/响应次数/响应率) from the SMS log")
    _orders_args(p, sends=True, sends_required=True)
    p.add_argument("--window-hours", type=at_most(positive_float, 24 * MAX_DAYS), default=72,
                   help="a paid order within this many hours after a message is a response (default %(default)s)")
    p.add_argument("--min-messages", type=positive_int, default=3,
                   help="never-responders: at least this many messages and no response (default %(default)s)")
    p.add_argument("--out", type=out_file, help="write customer_id, messages, responses, response_rate, "
                                                "last_message, last_response to this CSV")
    _csv_raw_arg(p)
    p.set_defaults(func=cmd_responses)

    p = sub.add_parser("sample-size", help="customers per arm for two proportions (R's power.prop.test)")
    p.add_argument("--baseline", type=probability, required=True)
    p.add_argument("--target", type=probability)
    p.add_argument("--relative-lift", type=finite_float)
    p.add_argument("--power", type=probability, default=0.8)
    p.add_argument("--alpha", type=probability, default=0.05)
    p.add_argument("--ratio", type=positive_float, default=1.0)
    p.add_argument("--alternative", default="two-sided", choices=["two-sided", "one-sided"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sample_size)

    p = sub.add_parser("sms-cost", help="billed messages and cost of an SMS text")
    p.add_argument("--text", required=True)
    p.add_argument("--scheme", default="cn", choices=["cn", "gsm"])
    p.add_argument("--price", type=nonneg_float, default=0.05)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sms_cost)

    p = sub.add_parser("promotion", help="big promotion (大促): last year's figures, this year's plan and review")
    _orders_args(p)
    p.add_argument("--date", help="promotion day (default: this year's 11-11; MM-DD = that day this year)")
    p.add_argument("--last-year-date", help="last year's promotion day (default: --date minus one year)")
    p.add_argument("--phases", default="", help="name=start:end day offsets from the day, inclusive "
                                                "(default build_up=-71:-12,warm_up=-10:-1,day=0:0,after_glow=1:3)")
    p.add_argument("--growth", default="", help="new=0.1,old=0.2 (default: estimated from the export)")
    p.add_argument("--warm-up-out", metavar="PATH", type=out_file,
                   help="write the old customers to warm up (ids) to this CSV")
    _csv_raw_arg(p)
    p.add_argument("--no-clv-check", action="store_true", help="skip the BG/NBD cross-check of the old-customer target")
    p.set_defaults(func=cmd_promotion)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:  # a bad argument (one line printed), --help or --version
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    try:
        return a.func(a)
    except CrmlabInputError as e:
        print(f"crmlab: error: {' '.join(str(e).split())}", file=sys.stderr)  # always one line
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
