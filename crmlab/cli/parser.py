"""The ``crmlab`` command line's arguments, as a table: every command, its flags, where it runs.

:data:`COMMANDS` lists each subcommand: its help, the function that runs it (``module:function``,
imported only when that command runs, so ``crmlab --help`` stays fast), the shared flag sets it
takes (:data:`SHARED`) and its own flags. :func:`build_parser` turns the table into argparse.
Every value is checked by its type (:mod:`crmlab.report.arguments`) before anything runs.
"""
from __future__ import annotations

import argparse
from typing import Any

from crmlab._version import __version__
from crmlab.settings import DEFAULT
from crmlab.report.arguments import (MAX_DAYS, CrmlabArgumentParser, at_most, bracket_list, column_spec, day_list,
                                     finite_float, in_file, memory_size, moment, nonneg_float, nonneg_int, out_dir,
                                     out_file, percentile, positive_float, positive_int, probability, spark_master,
                                     split_spec, timezone_name)

__all__ = ["COMMANDS", "SHARED", "build_parser"]

#: one flag: its names and argparse's keywords; ("one of", [flags]): a mutually exclusive group
Flag = tuple[tuple[str, ...], dict[str, Any]]


def _f(*names: str, **kw) -> Flag:
    return names, kw


_JSON = _f("--json", action="store_true", help="print JSON")
_CSV_RAW = _f("--csv-raw", action="store_true",
              help="write CSV cells exactly as they are: by default a text cell starting with = + - @ gets a "
                   "leading ' so that Excel or WPS never runs it as a formula")
_SHEET = _f("--sheet", metavar="NAME", help="the sheet of an Excel workbook holding the orders (default: the "
                                            "only sheet, or the only one with the order columns)")
_SENDS_SHEET = _f("--sends-sheet", metavar="NAME", help="the sheet of an Excel send log (as --sheet)")

#: flag sets several commands share
SHARED: dict[str, list[Flag]] = {
    # how to read times and amounts: on every command that reads orders or sends
    "reading": [
        _f("--timezone", type=timezone_name, default=DEFAULT.timezone,
           help="store time zone (IANA name, default %(default)s): times with an offset are "
                "converted to it, times without one are taken as store-local"),
        _f("--decimal", choices=[".", ","], default=".",
           help="decimal mark of amounts (default '.': 1,234.50; with ',': 1.234,50)"),
        ("one of", [
            _f("--dayfirst", dest="dayfirst", action="store_const", const=True, default=None,
               help="slash dates are day/month/year (default: as the column shows, else an error)"),
            _f("--monthfirst", dest="dayfirst", action="store_const", const=False,
               help="slash dates are month/day/year")]),
    ],
    # the lead-in of an export that starts mid-life: on every command that reads orders
    "lead_in": [
        ("one of", [
            _f("--history-start", type=moment, metavar="DATE",
               help="customers first seen before this date are existing customers (history unknown), never "
                    "new: cohorts, first-time buyers and order counts start here; lifecycle and CLV use all orders"),
            _f("--lead-in-days", type=at_most(nonneg_int, MAX_DAYS), metavar="N",
               help="the same for the export's first N days (default: none, or 365 days -- half the export when "
                    "shorter -- when the export looks like it starts mid-life; 0 turns that off)")]),
    ],
    # where the orders are aggregated: on every command that reads orders
    "engine": [
        _f("--engine", choices=["duckdb", "spark"],
           help="duckdb (embedded, default; or CRMLAB_ENGINE) or spark (needs crmlab[spark], Java 17+)"),
        _f("--spark-master", metavar="URL", type=spark_master,
           help="with --engine spark: the master of the session crmlab starts (default local[*]; "
                "SPARK_REMOTE selects Spark Connect)"),
        _f("--memory-limit", type=memory_size, metavar="SIZE",
           help="DuckDB's memory limit, e.g. 600MB, 4GB or 40%% of RAM (default CRMLAB_MEMORY_LIMIT, else "
                "40%% of RAM, at most half of RAM less 2 GiB, so a command stays within half of RAM); "
                "beyond it DuckDB spills to a temporary folder"),
        _f("--cache-dir", metavar="DIR",
           help="the validation cache: an export is validated once and later commands reuse the clean copy "
                "(default CRMLAB_CACHE_DIR, else ~/.cache/crmlab; `crmlab cache list|clear`)"),
        _f("--no-cache", action="store_true", help="validate the export again, without the cache"),
        _f("--stage-dir", metavar="DIR|URI",
           help="with --engine spark on a cluster: where the screened export is staged for the executors, a "
                "folder every worker mounts or a URI Spark writes (hdfs://, s3a://); default CRMLAB_STAGE_DIR, "
                "else through the driver"),
    ],
}

_COLUMNS = _f("--columns", type=column_spec, help="column mapping, e.g. customer_id=买家会员名,order_time=订单付款时间")
_RETURNS = _f("--returns", choices=["net", "ignore"],
              help="reversals (credit notes, C-invoices, refund rows: negative amounts): net them against the "
                   "customer's purchases of the 30 days before (net: every negative line; default: the lines whose "
                   "id says so, e.g. C536379) or ignore them (negative paid lines excluded)")
_OBS_END = _f("--observation-end", type=moment, help="ignore orders after this time (a bare date = end of that day)")


def _orders(sends: str = "") -> list:
    """``--orders`` (``--sends``: ``"optional"`` or ``"required"``), the reading and engine flags, --json."""
    both = [_f("--sends", required=sends == "required", type=in_file, help="SMS send log"), _SENDS_SHEET] if sends else []
    return [_f("--orders", required=True, type=in_file, help="order export (CSV, Parquet, Excel)"), _SHEET, *both,
            _COLUMNS, _OBS_END, _RETURNS, "lead_in", "reading", "engine", _JSON]


_WINDOW_HOURS = dict(type=at_most(positive_float, 24 * MAX_DAYS), default=72)

#: name -> (help, "module:function" that runs it, flags); a str flag names a :data:`SHARED` set
COMMANDS: dict[str, tuple[str, str, list]] = {
    "validate": ("check an export before any report: the ledger", "crmlab.cli.orders:cmd_validate", [
        *_orders("optional"),
        _f("--clean-out", type=out_file, metavar="FILE.parquet",
           help="write the validated orders (with the ledger) as Parquet; every command reads it "
                "without validating again")]),
    "sample": ("write the simulated store (orders, sends, truth)", "crmlab.cli.report:cmd_sample", [
        _f("--out", required=True, type=out_dir),
        _f("--customers", type=at_most(positive_int, 10_000_000), default=20_000),
        _f("--seed", type=nonneg_int, default=0),
        _f("--returns", type=probability, metavar="SHARE",
           help="reverse this share of the paid orders by credit notes (C-prefixed ids, minutes to days later; "
                "some partial, a few unmatched); truth_returns.csv lists them (default: none)"),
        _f("--truncate-before", type=moment, metavar="DATE",
           help="cut the export at DATE: orders and sends before it are dropped, as an export that starts "
                "mid-life (the store is simulated from --start, by default 2024-01-01, or two years before "
                "DATE when DATE is not after that)"),
        _f("--start", type=moment, metavar="DATE", help="first day of the simulated store (default 2024-01-01)"),
        _f("--reminders", action="store_true",
           help="add a payment-reminder (催付) experiment: 10,000 unpaid orders randomised to none/1h/6h/12h/24h, "
                "created_time/paid_time/closed_time columns, reminder sends with order_id, truth.json 'reminders' "
                "(default: off)"),
        _f("--program-holdout", type=at_most(nonneg_float, 0.5), metavar="SHARE",
           help="write the programme store instead: 12 months of campaigns with this share of customers held out "
                "of every campaign by the stable hash (`crmlab program` reads it out; truth.json has the planted "
                "cumulative effect); default: off, the sample as always")]),
    "report": ("run the report notebooks into HTML", "crmlab.cli.report:cmd_report", [
        _f("notebooks", nargs="*", help="notebook names or prefixes (default: all)"),
        _f("--orders", required=True, type=in_file), _SHEET,
        _f("--sends"), _SENDS_SHEET,
        _f("--columns", type=column_spec),
        _f("--observation-end", type=moment), _RETURNS,
        _f("-p", "--param", action="append", metavar="NAME=VALUE", help="notebook parameter"),
        _f("-f", "--parameters-file", action="append", metavar="PARAMS.yaml"),
        _f("--out", default="reports/latest", help="output dir; {date} expands to the run date"),
        _f("-d", "--delivery", type=in_file, metavar="DELIVERY.yaml",
           help="mail / WeCom / DingTalk / Feishu notices of the run (success and failure lists, alerts); "
                "exit 3 when a notice could not be delivered (the run is kept)"),
        _f("--keep", type=positive_int, metavar="N",
           help="after a successful run keep only the newest N successful runs beside it (never a folder "
                "crmlab did not make, never the one `latest` points at)"),
        "lead_in", "reading", "engine"]),
    "cache": ("the validation cache: list the cached exports or clear them", "crmlab.cli.cache:cmd_cache", [
        _f("action", choices=["list", "clear"], help="list (default) or clear the cached exports"),
        _f("--cache-dir", metavar="DIR", help="the cache folder (default CRMLAB_CACHE_DIR, else ~/.cache/crmlab)"),
        _JSON]),
    "notebooks": ("copy the report notebooks (and weekly.yaml) into DIR, to edit in JupyterLab",
                  "crmlab.cli.report:cmd_notebooks", [
        _f("dir", metavar="DIR", type=out_dir, help="folder to copy them into (created if missing)")]),
    "deliver": ("send a finished run's notice again (mail, WeCom, DingTalk, Feishu)", "crmlab.cli.report:cmd_deliver", [
        _f("run_dir", metavar="RUN", help="the run's folder (reports/2026-12-06 or reports/latest)"),
        _f("-d", "--delivery", required=True, type=in_file, metavar="DELIVERY.yaml",
           help="who is told and how; exit 3 when a notice could not be delivered")]),
    "summary": ("lifetimes' RFM summary per customer, written as Parquet from the engine",
                "crmlab.cli.orders:cmd_summary", [
        *_orders(),
        _f("--out", required=True, type=out_file, help="Parquet file to write (its folder must exist)"),
        _f("--time-unit", default="D", choices=["D", "W"]),
        _f("--calibration-end", type=moment,
           help="add lifetimes' calibration/holdout columns (_cal, _holdout) split at this date")]),
    "retention": ("cohort retention table", "crmlab.cli.orders:cmd_retention", [
        *_orders(),
        _f("--cohort", default="month", choices=["day", "week", "month", "channel"]),
        _f("--kind", default="exact", choices=["exact", "on_or_after", "bracket"]),
        _f("--days", type=day_list, default="1,3,7,14,30,60,90"),
        _f("--brackets", type=bracket_list, help="for --kind bracket: 1-7,8-30,31-90"),
        _f("--horizon-days", type=at_most(positive_int, MAX_DAYS),
           help="for --kind on_or_after: count orders from day N to this day; customers without that follow-up "
                "are censored (default 180)")]),
    "lifecycle": ("lifecycle stage counts", "crmlab.cli.orders:cmd_lifecycle", [
        *_orders(),
        _f("--rule", default="ladder", choices=["ladder", "percentile"],
           help="product_cycle and season need tables: use the Python API or notebook 02"),
        _f("--as-of", type=moment, help="date of the snapshot (default: observation end)"),
        _f("--percentile", type=percentile,
           help="--rule percentile: dormant after this percentile of the gaps between orders, "
                "strictly between 0 and 100 (default 90)"),
        _f("--out", type=out_file, help="also write every customer's stage and R/F/M scores, from the "
                                        "engine: Parquet, or CSV when the name ends in .csv (real ids)"),
        _CSV_RAW]),
    "magic-number": ("the repurchase magic number", "crmlab.cli.orders:cmd_magic", [
        *_orders(),
        _f("--window-days", type=at_most(positive_int, MAX_DAYS), default=90),
        _f("--max-k", type=at_most(positive_int, 1000), default=10),
        _f("--min-at-risk", type=positive_int, default=50),
        _f("--rule", default="plateau", choices=["plateau", "ztest", "segmented", "tolerance"])]),
    "clv": ("customer lifetime value: BG/NBD, Pareto/NBD, MBG/NBD, Gamma-Gamma", "crmlab.cli.clv:cmd_clv", [
        *_orders(),
        _f("--calibration-end", type=moment,
           help="fit up to this date, compare predictions in the holdout after it "
                "(default: --holdout-days before the observation end)"),
        _f("--holdout-days", type=at_most(nonneg_int, MAX_DAYS), default=182,
           help="without --calibration-end (0: no holdout)"),
        _f("--time-unit", default="W", choices=["D", "W"]),
        _f("--horizon-months", type=at_most(positive_int, 1200), default=12),
        _f("--discount-rate", type=at_most(nonneg_float, 1), default=0.01, help="monthly, 0 to 1"),
        _f("--margin", type=positive_float, default=1.0,
           help="profit share of revenue (1: CLV is revenue; otherwise profit)"),
        _f("--model", choices=["bgnbd", "pareto_nbd", "mbgnbd"],
           help="fit and use only this model (default: all three, chosen on the holdout)"),
        _f("--summary-out", type=out_file, help="write the RFM summary CSV here (its folder must exist)"),
        _f("--values-out", type=out_file,
           help="write per-customer P(alive), expected purchases, CLV and its interval (CSV)"),
        _CSV_RAW]),
    "abtest": ("analyse an SMS experiment (copy x send time, holdout)", "crmlab.cli.experiments:cmd_abtest", [
        *_orders("required"),
        _f("--arm-column", default="variant"),
        _f("--control", help="control arm (default: holdout/control if present)"),
        _f("--window-hours", **_WINDOW_HOURS),
        _f("--planned-split", type=split_spec, help="a=0.5,b=0.5 (default: equal split assumed)"),
        _f("--planned-n", type=positive_int, help="planned customers per arm"),
        _f("--campaign", help="campaign id when the log holds several"),
        _f("--yates", action="store_true", help="Yates' continuity correction for two-arm tests"),
        _f("--seed", type=nonneg_int, default=0, help="bootstrap seed (and the derived holdout clock split)"),
        _f("--alpha", type=probability, default=0.05, help="significance level (intervals are 1 - alpha)"),
        _f("--price-per-message", type=nonneg_float, default=0.05,
           help="price of one billed message, for sends without a cost (default %(default)s)"),
        _f("--margin", type=at_most(positive_float, 1), default=0.3,
           help="profit share of revenue, 0 to 1, for the profit per message (default %(default)s)"),
        _f("--current-copy", help="copy kept when copies cost and convert the same (default: the first)"),
        _f("--winsorize", type=probability, default=0.995,
           help="cap revenue at this pooled percentile for the winsorised comparison (default %(default)s)"),
        _f("--segment-correction", choices=["holm", "bh"], default="holm",
           help="multiplicity correction of the segment effects: holm or bh (Benjamini-Hochberg)"),
        _f("--eligible", type=positive_int, help="customers the winner would be sent to (default: the experiment's)"),
        _f("--interaction-margin", type=probability, default=0.01,
           help="copy and send time are judged apart only when their interaction is shown (TOST) to be "
                "within this many points of conversion (default %(default)s); otherwise the arms are judged"),
        _f("--target-effect", type=probability,
           help="difference in conversion the next test should detect (e.g. 0.01): customers needed"),
        _f("--cuped-days", type=at_most(nonneg_int, MAX_DAYS), default=90,
           help="CUPED with the paid spend/orders of the N days before each send (0: off; default 90)"),
        _f("--monitor", action="store_true", help="daily fixed-horizon intervals and always-valid confidence "
                                                  "sequences until the campaign end + 1 day"),
        _f("--cs-tuning", type=positive_float,
           help="confidence sequence tuning constant N* (default: each comparison's final size)")]),
    "responses": ("response history per customer (营销次数/响应次数/响应率) from the SMS log",
                  "crmlab.cli.experiments:cmd_responses", [
        *_orders("required"),
        _f("--window-hours", **_WINDOW_HOURS,
           help="a paid order within this many hours after a message is a response (default %(default)s)"),
        _f("--min-messages", type=positive_int, default=3,
           help="never-responders: at least this many messages and no response (default %(default)s)"),
        _f("--out", type=out_file, help="write customer_id, messages, responses, response_rate, "
                                        "last_message, last_response to this CSV"),
        _CSV_RAW]),
    "design": ("make an SMS experiment: stratified seeded arms, a pre-send balance check, the CSV to import",
               "crmlab.cli.experiments:cmd_design", [
        *_orders("optional"),
        _f("--window-hours", **_WINDOW_HOURS,
           help="with --sends: a paid order within this many hours after a message is a response, for the "
                "balance of past responses (default %(default)s)"),
        _f("--program-holdout", type=at_most(nonneg_float, 0.5), metavar="SHARE",
           help="keep this share of customers out of every campaign (长期对照组): a stable hash of the id and "
                "--program-salt, the same in every design and in `crmlab program` (default: none)"),
        _f("--program-salt", default="crmlab-program", metavar="TEXT",
           help="the programme holdout's salt (default %(default)s); recorded in the JSON and the .meta.json"),
        _f("--candidates", help="CSV of the customers to randomise (customer_id column; default: every "
                                "customer in the orders)"),
        _f("--arms", required=True, help="messaged arms, e.g. A@10:00,A@17:00,B@10:00,B@17:00"),
        _f("--holdout", type=probability, default=0.2, help="no-message holdout share (default %(default)s)"),
        _f("--strata", default="", help="stratify by rfm, lifecycle, responses (with --sends: never messaged, "
                                        "no response, responded) and/or region (a candidates column), comma-separated; "
                                        "with --reminders: value (amount tertile), customer (new, returning), hour "
                                        "(night, morning, afternoon, evening placed)"),
        _f("--seed", type=nonneg_int, default=0),
        _f("--rerandomize", type=nonneg_int, default=0,
           help="redraw up to N times until the max |SMD| is below --smd-threshold (Morgan & Rubin 2012)"),
        _f("--smd-threshold", type=positive_float, default=0.05),
        _f("--baseline", type=probability, default=0.03,
           help="conversion the detectable difference is computed at (default %(default)s)"),
        _f("--price-per-message", type=nonneg_float, default=0.05),
        _f("--out", type=out_file, required=True, help="assignment CSV: customer_id, arm, copy, send_time"),
        _f("--reminders", action="store_true",
           help="payment reminders (催付): randomise the unpaid open orders (订单创建时间, no 订单付款时间, placed "
                "within 72 h of the export's end) to the delays of --arms, e.g. none,1h,6h,12h,24h; the CSV is "
                "order_id, customer_id, arm, created_time, send_time"),
        _CSV_RAW]),
    "program": ("the whole SMS programme against its long-term holdout (长期对照组), month by month",
                "crmlab.cli.program:cmd_program", [
        *_orders("required"),
        _f("--holdout-share", type=at_most(positive_float, 0.5), default=0.05, metavar="SHARE",
           help="the programme holdout's share, as designed (`crmlab design --program-holdout`; default %(default)s)"),
        _f("--salt", default="crmlab-program", metavar="TEXT",
           help="the programme holdout's salt, as designed (default %(default)s)"),
        _f("--months", type=at_most(positive_int, 120), default=12, metavar="N",
           help="months to read out from the start; only months the observation covers whole are shown "
                "(default %(default)s)"),
        _f("--start", type=moment, metavar="DATE",
           help="the programme's first day (default: the day of the log's first send)")]),
    "sample-size": ("customers per arm for two proportions (R's power.prop.test)",
                    "crmlab.cli.experiments:cmd_sample_size", [
        _f("--baseline", type=probability, required=True),
        _f("--target", type=probability),
        _f("--relative-lift", type=finite_float),
        _f("--power", type=probability, default=0.8),
        _f("--alpha", type=probability, default=0.05),
        _f("--ratio", type=positive_float, default=1.0),
        _f("--alternative", default="two-sided", choices=["two-sided", "one-sided"]),
        _f("--json", action="store_true")]),
    "sms-cost": ("billed messages and cost of an SMS text", "crmlab.cli.experiments:cmd_sms_cost", [
        _f("--text", required=True),
        _f("--scheme", default="cn", choices=["cn", "gsm"]),
        _f("--price", type=nonneg_float, default=0.05),
        _f("--json", action="store_true")]),
    "target": ("whom to message: uplift targeting from a randomised campaign, a cost-aware send list",
               "crmlab.cli.targeting:cmd_target", [
        *_orders("required"),
        _f("--campaign", help="campaign id when the log holds several"),
        _f("--candidates", type=in_file, help="CSV of customer ids (customer_id column) to score for the next "
                                              "campaign (default: the campaign's customers)"),
        _f("--window-hours", **_WINDOW_HOURS,
           help="converted: a paid order within this many hours of the send (default %(default)s)"),
        _f("--price-per-message", type=nonneg_float, default=0.05,
           help="price of one billed message, for sends without a cost (default %(default)s)"),
        _f("--margin", type=at_most(positive_float, 1), default=0.3,
           help="profit share of revenue, 0 to 1 (default %(default)s)"),
        _f("--benefit", choices=["revenue", "clv"], default="revenue",
           help="value of a conversion: the customer's order value, or their 12-month CLV (default %(default)s)"),
        ("one of", [
            _f("--budget", type=nonneg_int, metavar="N", help="at most N messages"),
            _f("--budget-money", type=nonneg_float, metavar="X", help="at most X of SMS cost")]),
        _f("--learner", choices=["auto", "t", "x", "dr", "segments"], default="auto",
           help="uplift learner (auto: X-learner, segments for small stores)"),
        _f("--seed", type=nonneg_int, default=0, help="cross-fitting folds and bootstrap seed"),
        _f("--out", required=True, type=out_file, metavar="send_list.csv",
           help="write customer_id, arm, expected_incremental_profit, uplift_pp, rank to this CSV")]),
    "reminders": ("payment reminders (催付): time to payment, share paid, recovered revenue and cost by delay",
                  "crmlab.cli.reminders:cmd_reminders", [
        _f("--orders", required=True, type=in_file,
           help="order export with created and paid times (订单创建时间, 订单付款时间) and unpaid orders"), _SHEET,
        _f("--sends", required=True, type=in_file, help="SMS send log whose reminder rows carry an order_id (订单编号)"),
        _SENDS_SHEET, _COLUMNS, _OBS_END,
        _f("--arms", help="arms compared, e.g. none,1h,6h,12h,24h (default: every arm of the log)"),
        _f("--pay-window-hours", type=at_most(positive_float, 24 * MAX_DAYS), default=72,
           help="paid within this many hours of creation counts as paid (default %(default)s)"),
        _f("--margin", type=at_most(positive_float, 1), default=0.3,
           help="profit share of the recovered revenue, 0 to 1 (default %(default)s)"),
        _f("--price-per-message", type=nonneg_float, default=0.05,
           help="price of one billed part, for sends without a cost (default %(default)s)"),
        "reading", _JSON]),
    "promotion": ("big promotion (大促): last year's figures, this year's plan and review",
                  "crmlab.cli.promotion:cmd_promotion", [
        *_orders(),
        _f("--date", help="promotion day (default: this year's 11-11; MM-DD = that day this year)"),
        _f("--last-year-date", help="last year's promotion day (default: --date minus one year)"),
        _f("--phases", default="", help="name=start:end day offsets from the day, inclusive "
                                        "(default build_up=-71:-12,warm_up=-10:-1,day=0:0,after_glow=1:3)"),
        _f("--growth", default="", help="new=0.1,old=0.2 (default: estimated from windows the export fully "
                                        "covers; when it does not, there is no plan until this is given)"),
        _f("--warm-up-out", metavar="PATH", type=out_file,
           help="write the old customers to warm up (ids) to this CSV"),
        _CSV_RAW,
        _f("--no-clv-check", action="store_true", help="skip the BG/NBD cross-check of the old-customer target")]),
}


def _add(p: argparse.ArgumentParser, flags: list) -> None:
    for flag in flags:
        if isinstance(flag, str):
            _add(p, SHARED[flag])
        elif flag[0] == "one of":
            _add(p.add_mutually_exclusive_group(), flag[1])
        else:
            p.add_argument(*flag[0], **flag[1])


def build_parser() -> argparse.ArgumentParser:
    """The ``crmlab`` parser: one subcommand per :data:`COMMANDS` entry; ``run`` names its function."""
    ap = CrmlabArgumentParser(prog="crmlab", description="Old-customer CRM analytics for online stores.")
    ap.add_argument("--version", action="version", version=f"crmlab {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=CrmlabArgumentParser)
    for name, (help_, run, flags) in COMMANDS.items():
        p = sub.add_parser(name, help=help_)
        _add(p, flags)
        p.set_defaults(run=run)
    return ap

