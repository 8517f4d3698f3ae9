"""The ``crmlab`` command line.

Exit codes: 0 success; 1 a report notebook failed; 2 bad input or arguments (one line
``crmlab: error: ...`` on stderr, no traceback).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Callable

from crmlab.io import CrmlabInputError

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


# ------------------------------------------------------------------ commands

def cmd_validate(a) -> int:
    from crmlab.io import load_orders, load_sends

    _, lo = load_orders(a.orders, columns=a.columns, observation_end=a.observation_end)
    ls = None
    if a.sends:
        _, ls = load_sends(a.sends, columns=a.columns, observation_end=a.observation_end)
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
        return "\n".join(lines)

    emit(out, a.json, text)
    return 0


def cmd_sample(a) -> int:
    from crmlab.simulate import write_sample

    truth = write_sample(a.out, n_customers=a.customers, seed=a.seed)
    print(f"wrote {a.out}/orders.csv, sends.csv, truth.json ({truth['customers']} customers, "
          f"{truth['paid_orders']} paid orders, magic number {truth['magic_number']})", file=sys.stderr)
    return 0


def _read_params(a) -> dict:
    import yaml

    from crmlab.report import resolve_type

    params: dict = {}
    for f in a.parameters_file or []:
        try:
            with open(f, encoding="utf-8") as fh:
                y = yaml.safe_load(fh) or {}
        except OSError as e:
            raise CrmlabInputError(f"{f}: cannot read parameter file ({e.strerror})") from None
        except UnicodeDecodeError:
            raise CrmlabInputError(f"{f}: not UTF-8 text (save the parameter file as UTF-8)") from None
        except yaml.YAMLError as e:
            raise CrmlabInputError(f"{f}: not valid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(y, dict):
            raise CrmlabInputError(f"{f}: expected a mapping of name: value")
        params.update(y)
    for p in a.param or []:
        if "=" not in p:
            raise CrmlabInputError(f"-p: expected name=value, got {p!r}")
        k, v = p.split("=", 1)
        params[k.strip()] = resolve_type(v.strip())
    if a.observation_end:
        params["observation_end"] = a.observation_end
    return params


def cmd_report(a) -> int:
    from crmlab.report import run_reports

    params = _read_params(a)
    # -p names must be parameters of a selected notebook; -f keys of some notebook
    strict = {p.split("=", 1)[0].strip() for p in a.param or [] if "=" in p}
    res = run_reports(a.orders, a.sends, a.notebooks, out=a.out, columns=a.columns, parameters=params,
                      strict_parameters=strict)
    for r in res.reports:
        if r.status == "failed":
            print(f"crmlab: error: {r.error}", file=sys.stderr)
    return 0 if res.ok else 1


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CrmlabInputError(f"expected comma-separated whole numbers, got {text!r}") from None


def _load(a):
    from crmlab.io import load_orders

    return load_orders(a.orders, columns=a.columns, observation_end=a.observation_end)


def cmd_retention(a) -> int:
    from crmlab.retention import retention_table

    orders, led = _load(a)
    if a.kind == "bracket":
        if not a.brackets:
            raise CrmlabInputError("--kind bracket needs --brackets, e.g. 1-7,8-30,31-90")
        try:
            days = [tuple(int(v) for v in b.split("-")) for b in a.brackets.split(",")]
        except ValueError:
            raise CrmlabInputError(f"--brackets: expected start-end pairs, got {a.brackets!r}") from None
    else:
        days = _ints(a.days)
    try:
        t = retention_table(orders, cohort=a.cohort, days=days, kind=a.kind)
    except ValueError as e:
        raise CrmlabInputError(str(e)) from None
    out = t.to_dict()
    out["ledger"] = led.to_dict()
    emit(out, a.json, lambda o: t.rates.to_string(float_format=lambda x: f"{100 * x:.1f}%"))
    return 0


def cmd_lifecycle(a) -> int:
    from crmlab.lifecycle import lifecycle_stages, stage_counts

    orders, led = _load(a)
    kw = {}
    if a.percentile is not None:
        kw["percentile"] = a.percentile
    try:
        st = lifecycle_stages(orders, as_of=a.as_of, rule=a.rule, **kw)
    except ValueError as e:
        raise CrmlabInputError(str(e)) from None
    counts = stage_counts(st)
    out = {"as_of": str(st.attrs["as_of"]), "rule": a.rule, "customers": int(len(st)),
           "counts": {k: int(v) for k, v in counts["customers"].items()}, "ledger": led.to_dict()}
    emit(out, a.json, lambda o: counts.to_string())
    return 0


def cmd_magic(a) -> int:
    from crmlab.magic import magic_number, repurchase_curve

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
    from crmlab.clv import (customer_value, fit_clv_models, fit_gamma_gamma, frequency_monetary_correlation,
                            holdout_comparison, rfm_summary)

    orders, led = _load(a)
    summary = rfm_summary(orders, time_unit=a.time_unit)
    if a.summary_out:
        summary.reset_index().to_csv(a.summary_out, index=False)
    holdout = None
    chosen = a.model
    if a.calibration_end:
        try:
            cal = rfm_summary(orders, time_unit=a.time_unit, calibration_end=a.calibration_end)
        except ValueError as e:
            raise CrmlabInputError(str(e)) from None
        h = holdout_comparison(cal, fit_clv_models(cal, suffix="_cal"), choose=a.model)
        chosen = h["chosen"]
        holdout = {"calibration_end": str(cal.attrs["calibration_end"]), "chosen": h["chosen"],
                   "mae_margin_to_next": h["margin"],
                   "metrics": {m: {k: float(v) for k, v in row.items()} for m, row in h["metrics"].iterrows()}}
    models = fit_clv_models(summary)
    chosen = chosen or "bgnbd"
    if chosen not in models:
        raise CrmlabInputError(f"--model {chosen!r}: choose from {sorted(models)}")
    gg = fit_gamma_gamma(summary)
    values = customer_value(summary, models[chosen], gg, horizon_months=a.horizon_months,
                            discount_rate=a.discount_rate, margin=a.margin)
    clv = values["clv"]
    out = {"observation_end": str(summary.attrs["observation_end"]), "time_unit": a.time_unit,
           "customers": int(len(summary)), "repeat_customers": int((summary["frequency"] > 0).sum()),
           "models": {**{k: m.to_dict() for k, m in models.items()}, "gamma_gamma": gg.to_dict()},
           "frequency_monetary_corr": frequency_monetary_correlation(summary), "chosen_model": chosen,
           "holdout": holdout,
           "clv": {"horizon_months": a.horizon_months, "discount_rate": a.discount_rate, "margin": a.margin,
                   "model": chosen, "total": float(clv.sum()), "mean": float(clv.mean()),
                   "median": float(clv.median())},
           "ledger": led.to_dict()}

    def text(o):
        lines = [f"{o['customers']} customers, {o['repeat_customers']} repeat; model {chosen}"]
        for k, m in o["models"].items():
            lines.append(f"  {k:11s} LL {m['log_likelihood']:.1f}  " + ", ".join(f"{p}={v:.4g}" for p, v in m["params"].items()))
        lines.append(f"CLV over {a.horizon_months} months: total {o['clv']['total']:,.0f}, mean {o['clv']['mean']:,.2f}")
        return "\n".join(lines)

    emit(out, a.json, text)
    return 0


def cmd_abtest(a) -> int:
    from crmlab.experiments.analysis import analyse_experiment
    from crmlab.io import load_orders, load_sends

    orders, lo = load_orders(a.orders, columns=a.columns, observation_end=a.observation_end)
    sends, ls = load_sends(a.sends, columns=a.columns, observation_end=lo.observation_end)
    r = analyse_experiment(sends, orders, window_hours=a.window_hours, arm_column=a.arm_column, control=a.control,
                           planned_split=a.planned_split, planned_n_per_arm=a.planned_n, correct=a.yates,
                           campaign=a.campaign, seed=a.seed)
    out = r.to_dict()
    out["ledger"] = {"orders": lo.to_dict(), "sends": ls.to_dict()}

    def text(o):
        lines = [f"control {o['control']}, window {o['window_hours']:g} h"]
        for arm in o["arms"]:
            lines.append(f"  {arm['arm']:10s} targeted {arm['targeted']:>6}  buyers {arm['buyers']:>5}  "
                         f"conversion {100 * arm['conversion_rate']:.2f}%")
        lines += [f"warning: {w}" for w in o["warnings"]]
        lines.append(f"verdict: {o['verdict']}")
        return "\n".join(lines)

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
    from crmlab.sms import check_copy, sms_cost

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

    from crmlab.engine import order_table
    from crmlab.promotion import analyse_promotion, warm_up_list

    orders, led = _load(a)
    o = order_table(orders, getattr(a, "engine", None))
    r = analyse_promotion(o, date=a.date, last_year_date=a.last_year_date, phases=a.phases, growth=a.growth,
                          clv_check=not a.no_clv_check)
    if a.warm_up_out:
        try:
            warm_up_list(o, r).to_csv(a.warm_up_out, index=False)
        except OSError as e:
            raise CrmlabInputError(f"--warm-up-out {a.warm_up_out}: cannot write ({e.strerror or e})") from None
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
    p.add_argument("--orders", required=True, help="order export (CSV, Parquet, Excel)")
    if sends:
        p.add_argument("--sends", required=sends_required, help="SMS send log")
    p.add_argument("--columns", help="column mapping, e.g. customer_id=买家会员名,order_time=订单付款时间")
    p.add_argument("--observation-end", help="ignore orders after this time (a bare date = end of that day)")
    p.add_argument("--json", action="store_true", help="print JSON")


def build_parser() -> argparse.ArgumentParser:
    from crmlab import __version__

    ap = argparse.ArgumentParser(prog="crmlab", description="Old-customer CRM analytics for online stores.")
    ap.add_argument("--version", action="version", version=f"crmlab {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check an export before any report: the ledger")
    _orders_args(p, sends=True)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("sample", help="write the simulated store (orders, sends, truth)")
    p.add_argument("--out", required=True)
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("report", help="run the report notebooks into HTML")
    p.add_argument("notebooks", nargs="*", help="notebook names or prefixes (default: all)")
    p.add_argument("--orders", required=True)
    p.add_argument("--sends")
    p.add_argument("--columns")
    p.add_argument("--observation-end")
    p.add_argument("-p", "--param", action="append", metavar="NAME=VALUE", help="notebook parameter")
    p.add_argument("-f", "--parameters-file", action="append", metavar="PARAMS.yaml")
    p.add_argument("--out", default="reports/latest", help="output dir; {date} expands to the run date")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("retention", help="cohort retention table")
    _orders_args(p)
    p.add_argument("--cohort", default="month", choices=["day", "week", "month", "channel"])
    p.add_argument("--kind", default="exact", choices=["exact", "on_or_after", "bracket"])
    p.add_argument("--days", default="1,3,7,14,30,60,90")
    p.add_argument("--brackets", help="for --kind bracket: 1-7,8-30,31-90")
    p.set_defaults(func=cmd_retention)

    p = sub.add_parser("lifecycle", help="lifecycle stage counts")
    _orders_args(p)
    p.add_argument("--rule", default="ladder", choices=["ladder", "percentile"],
                   help="product_cycle and season need tables: use the Python API or notebook 02")
    p.add_argument("--as-of", help="date of the snapshot (default: observation end)")
    p.add_argument("--percentile", type=float)
    p.set_defaults(func=cmd_lifecycle)

    p = sub.add_parser("magic-number", help="the repurchase magic number")
    _orders_args(p)
    p.add_argument("--window-days", type=int, default=90)
    p.add_argument("--max-k", type=int, default=10)
    p.add_argument("--min-at-risk", type=int, default=50)
    p.add_argument("--rule", default="plateau", choices=["plateau", "ztest", "segmented", "tolerance"])
    p.set_defaults(func=cmd_magic)

    p = sub.add_parser("clv", help="customer lifetime value: BG/NBD, Pareto/NBD, MBG/NBD, Gamma-Gamma")
    _orders_args(p)
    p.add_argument("--calibration-end", help="fit up to this date, compare predictions in the holdout after it")
    p.add_argument("--time-unit", default="W", choices=["D", "W"])
    p.add_argument("--horizon-months", type=int, default=12)
    p.add_argument("--discount-rate", type=float, default=0.01, help="monthly")
    p.add_argument("--margin", type=float, default=1.0)
    p.add_argument("--model", choices=["bgnbd", "pareto_nbd", "mbgnbd"], help="default: lowest holdout MAE, else bgnbd")
    p.add_argument("--summary-out", help="write the RFM summary CSV here")
    p.set_defaults(func=cmd_clv)

    p = sub.add_parser("abtest", help="analyse an SMS experiment (copy x send time, holdout)")
    _orders_args(p, sends=True, sends_required=True)
    p.add_argument("--arm-column", default="variant")
    p.add_argument("--control", help="control arm (default: holdout/control if present)")
    p.add_argument("--window-hours", type=float, default=72)
    p.add_argument("--planned-split", help="a=0.5,b=0.5 (default: equal split assumed)")
    p.add_argument("--planned-n", type=int, help="planned customers per arm")
    p.add_argument("--campaign", help="campaign id when the log holds several")
    p.add_argument("--yates", action="store_true", help="Yates' continuity correction for two-arm tests")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=cmd_abtest)

    p = sub.add_parser("sample-size", help="customers per arm for two proportions (R's power.prop.test)")
    p.add_argument("--baseline", type=float, required=True)
    p.add_argument("--target", type=float)
    p.add_argument("--relative-lift", type=float)
    p.add_argument("--power", type=float, default=0.8)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--ratio", type=float, default=1.0)
    p.add_argument("--alternative", default="two-sided", choices=["two-sided", "one-sided"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sample_size)

    p = sub.add_parser("sms-cost", help="billed messages and cost of an SMS text")
    p.add_argument("--text", required=True)
    p.add_argument("--scheme", default="cn", choices=["cn", "gsm"])
    p.add_argument("--price", type=float, default=0.05)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sms_cost)

    p = sub.add_parser("promotion", help="big promotion (大促): last year's figures, this year's plan and review")
    _orders_args(p)
    p.add_argument("--date", help="promotion day (default: this year's 11-11; MM-DD = that day this year)")
    p.add_argument("--last-year-date", help="last year's promotion day (default: --date minus one year)")
    p.add_argument("--phases", default="", help="name=start:end day offsets from the day, inclusive "
                                                "(default build_up=-71:-12,warm_up=-10:-1,day=0:0,after_glow=1:3)")
    p.add_argument("--growth", default="", help="new=0.1,old=0.2 (default: estimated from the export)")
    p.add_argument("--warm-up-out", metavar="PATH", help="write the old customers to warm up (ids) to this CSV")
    p.add_argument("--no-clv-check", action="store_true", help="skip the BG/NBD cross-check of the old-customer target")
    p.set_defaults(func=cmd_promotion)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    try:
        return a.func(a)
    except CrmlabInputError as e:
        print(f"crmlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
