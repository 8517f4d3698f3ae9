"""``crmlab abtest``, ``design``, ``responses``, ``sample-size`` and ``sms-cost``: SMS experiments."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from crmlab._version import __version__
from crmlab.analyses.lifecycle import lifecycle_stages
from crmlab.analyses.rfm import rfm_scores
from crmlab.cli.common import emit, load_orders_of, load_sends_of, writing
from crmlab.cli.reminders import cmd_design_reminders
from crmlab.experiments.balance import design_covariates, design_experiment, response_strata
from crmlab.experiments.precision import (adjusted_effects, projection, ratio_metrics, segment_table,
                                          winsorized_revenue)
from crmlab.experiments.analysis import analyse_experiment
from crmlab.experiments.design import minimum_detectable_effect, sample_size
from crmlab.experiments.responses import response_evidence, response_history
from crmlab.experiments.sms import check_copy, sms_cost
from crmlab.present.result import json_safe
from crmlab.present.spreadsheet import write_csv
from crmlab.schema import CrmlabInputError

__all__ = ["cmd_abtest", "cmd_design", "cmd_responses", "cmd_sample_size", "cmd_sms_cost"]


def cmd_abtest(a) -> int:
    orders, lo = load_orders_of(a)
    sends, ls = load_sends_of(a, lo.observation_end)
    try:
        r = analyse_experiment(sends, orders, window_hours=a.window_hours, arm_column=a.arm_column,
                               control=a.control, planned_split=a.planned_split, planned_n_per_arm=a.planned_n,
                               alpha=a.alpha, correct=a.yates, campaign=a.campaign, seed=a.seed,
                               price_per_message=a.price_per_message, margin=a.margin, cuped_days=a.cuped_days,
                               monitor=a.monitor, current_copy=a.current_copy, target_effect=a.target_effect,
                               cs_tuning=a.cs_tuning, interaction_margin=a.interaction_margin)
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
    out.update(_precision(a, r, orders))

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


def _precision(a, r, orders) -> dict:
    """Issue 28's readout additions: ``adjusted``, ``winsorized``, ``ratios``, ``segments``, ``projection``."""
    if r.comparisons.empty:  # no verdict: the data cannot carry the tests
        return {"adjusted": [], "winsorized": None, "ratios": [], "segments": [], "projection": None}
    o, ctl = r.outcomes, r.control
    as_of = o["logged_send_time"].min() - pd.Timedelta(seconds=1)
    labels = {"lifecycle": lifecycle_stages(orders, as_of=as_of)["stage"], "rfm": rfm_scores(orders, as_of=as_of)["segment"]}
    labels = {k: v.rename(index=str) for k, v in labels.items()}
    eligible = a.eligible or len(o)
    return {"adjusted": adjusted_effects(o, ctl, a.alpha), "winsorized": winsorized_revenue(o, ctl, a.winsorize),
            "ratios": ratio_metrics(o, ctl), "segments": segment_table(o, labels, ctl, a.segment_correction, a.alpha),
            "projection": projection(r.decision, eligible)}


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
    ev = response_evidence(h, a.min_messages)
    never = int(((h["messages"] >= a.min_messages) & (h["responses"] == 0)).sum())
    dist = h["messages"].value_counts().sort_index()
    out = {"customers": len(h), "messages": int(h["messages"].sum()), "responses": int(h["responses"].sum()),
           "response_rate": float(h["responses"].sum() / h["messages"].sum()) if h["messages"].sum() else None,
           "open_messages": h.attrs["open_messages"], "window_hours": a.window_hours,
           "messages_per_customer": {str(k): int(v) for k, v in dist.items()},
           "min_messages": a.min_messages, "never_responded": never, "unresponsive": int(ev["unresponsive"].sum()),
           "organic_rate": h.attrs["organic_rate"], "holdout_rows": h.attrs["holdout_rows"],
           "unresponsive_rule": {k: ev.attrs[k] for k in ("base_rate", "organic_rate", "threshold", "credibility",
                                                           "prior_strength", "method")},
           "warnings": list(ev.attrs["warnings"]), "out": a.out,
           "ledger": {"orders": lo.to_dict(), "sends": ls.to_dict()}}

    def text(d):
        rate = "n/a" if d["response_rate"] is None else f"{100 * d['response_rate']:.2f}%"
        return (f"{d['customers']:,} customers, {d['messages']:,} messages, {d['responses']:,} responses ({rate}) "
                f"within {d['window_hours']:g} h; {d['never_responded']:,} never responded to "
                f">= {d['min_messages']} messages; {d['unresponsive']:,} credibly unresponsive "
                f"({d['unresponsive_rule']['method']})" + (f"; wrote {d['out']}" if d["out"] else ""))

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


def _design_inputs(a, orders, sends) -> tuple[pd.DataFrame, pd.Series | None]:
    """Covariates (recency, frequency, monetary, tenure; past messages and responses with
    ``--sends``) per candidate and the strata labels."""
    cand = None
    if a.candidates:
        cand = pd.read_csv(a.candidates, dtype={"customer_id": str})
        if "customer_id" not in cand.columns:
            raise CrmlabInputError("--candidates: no customer_id column")
        cand = cand.drop_duplicates("customer_id").set_index("customer_id")
    feats = design_covariates(orders, sends, window_hours=a.window_hours,
                              candidates=None if cand is None else cand.index)
    parts = []
    for name in [x.strip() for x in a.strata.split(",") if x.strip()]:
        if name == "rfm":
            parts.append(rfm_scores(orders)["segment"].astype(str).rename(index=str))
        elif name == "lifecycle":
            parts.append(lifecycle_stages(orders)["stage"].astype(str).rename(index=str))
        elif name == "responses" and "past_messages" in feats.columns:
            parts.append(response_strata(feats))
        elif cand is not None and name in cand.columns:
            parts.append(cand[name].astype(str))
        else:
            raise CrmlabInputError(f"--strata: {name!r} is not rfm, lifecycle, responses (needs --sends) or a "
                                   "--candidates column")
    strata = None
    if parts:
        strata = pd.concat([p.reindex(feats.index).fillna("none") for p in parts], axis=1).agg("|".join, axis=1)
    return feats, strata


def _meta_path(out: str) -> str:
    """The assignment's record beside it: ``assignment.csv`` -> ``assignment.meta.json``."""
    return str(Path(out).with_suffix(".meta.json"))


def cmd_design(a) -> int:
    if getattr(a, "reminders", False):  # payment reminders (催付): unpaid orders, not customers, to delays
        return cmd_design_reminders(a)
    orders, lo = load_orders_of(a)
    sends = load_sends_of(a, lo.observation_end)[0] if getattr(a, "sends", None) else None
    arms = [x.strip() for x in a.arms.split(",") if x.strip()]
    if not arms or len(set(arms)) < len(arms):
        raise CrmlabInputError("--arms: give distinct arm names, e.g. A@10:00,B@10:00")
    feats, strata = _design_inputs(a, orders, sends)
    d = design_experiment(feats, arms, holdout=a.holdout, strata=strata, seed=a.seed, rerandomize=a.rerandomize,
                          threshold=a.smd_threshold, baseline=a.baseline, price_per_message=a.price_per_message,
                          program_holdout=a.program_holdout or 0.0, program_salt=a.program_salt)
    meta = {"seed": a.seed, "seed_used": d["rerandomized"]["seed_used"], "arms": arms, "holdout": a.holdout,
            "strata": a.strata or None, "program_holdout": d["program_holdout"], "design_date": lo.observation_end,
            "orders": os.path.basename(str(lo.file)), "crmlab": __version__}
    writing("--out", a.out, lambda: write_csv(d["assignment"], a.out, raw=a.csv_raw, index=False))
    writing("--out", _meta_path(a.out), lambda: Path(_meta_path(a.out)).write_text(
        json.dumps(json_safe(meta), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"))
    out = {k: v for k, v in d.items() if k != "assignment"}
    out.update(covariates=list(feats.columns), past_responses=feats.attrs["past_responses"], out=a.out,
               meta=_meta_path(a.out), seed=a.seed, ledger={"orders": lo.to_dict()})

    def text(o):
        p = o["program_holdout"]
        held = f"; {p['customers']:,} kept out by the programme holdout (salt {p['salt']!r})" if p["share"] else ""
        return (f"{sum(o['arms'].values()):,} customers: " + ", ".join(f"{k} {v:,}" for k, v in o["arms"].items())
                + f"{held}; max |SMD| {o['max_abs_smd']:.3f} over {', '.join(o['covariates'])}"
                + f"; wrote {o['out']} and {o['meta']}")

    emit(out, a.json, text)
    return 0
