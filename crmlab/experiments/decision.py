"""The decision: which copy, which send time, at what profit — one object every readout uses.

The verdict text, notebook 05's key findings and "what to do next", the index headline and
``crmlab abtest --json``'s ``decision`` all come from :func:`decide`.

The factor view makes two claims (time and copy); each uses a 100(1 - alpha/2)% interval
(97.5% at alpha 0.05, Bonferroni) so that together they hold alpha on a store where nothing
differs.

* **Send time**: the time whose conversion, averaged over the copies (main effect, cell
  rates with equal weights), is higher than every other time's with a 97.5% interval for the
  difference (percentage points) above zero; otherwise "no detectable difference: send
  when convenient" (``send_time`` None, the arm ``COPY@any``).
* **Copy**: a costlier copy only when its extra incremental profit per message,

      margin x extra revenue per message - extra cost per message,

  has a 97.5% interval above zero (each copy's revenue per message averaged over the send times
  with equal weights; Wald, :mod:`crmlab.experiments.profit`); otherwise the cheaper copy.
  With equal costs, a copy replaces the current one (``current_copy``, default the first)
  only when its extra profit has its interval above zero; otherwise the current copy is kept.
* The factors are judged only when the copy x send-time interaction is shown to lie within
  ``interaction_margin`` (TOST, :func:`crmlab.experiments.profit.interaction_equivalence`);
  otherwise (and when the arms are not ``COPY@HH:MM``) the **arms** are judged: the arm with
  the highest profit per message (each arm's own revenue per message), or — among the arms
  whose profit is not detectably below it (Holm-adjusted) — the cheapest. There is no
  significance pre-test on the interaction.
* **Blockers** (sample ratio mismatch, planned sample not reached, window not over, some
  customers' whole windows before the first order): no verdict, ``arm`` is None (the provisional
  choice is kept under ``provisional``), ``no_verdict_reason`` says why.
* **No verdict at all** when the data cannot carry the tests (:func:`verdict_preconditions`):
  no test is computed and no provisional choice is made; the result shows the counts it has.
  The rule, in order:

  1. a **holdout** to measure against: an arm named holdout/control/对照/对照组, or one named
     as the control (otherwise the default control would be an arbitrary messaged arm and
     "incremental profit against the holdout" would be against another copy);
  2. **something delivered** in every messaged arm (an arm that reached nobody tests nothing);
  3. the **orders cover the windows**: some targeted customer's window [send, send + window]
     overlaps the orders' observation, from the first order to the observation end (sends
     dated before every order, or after the observation end, have no outcome to count);
  4. **enough conversions** for the normal approximation every test against the holdout
     rests on (the two-proportion z/chi-square test, the Wald and Newcomb intervals, the
     profit interval): for each messaged arm and the holdout customers on its clock, the
     expected buyers and non-buyers under the pooled rate p, n p and n (1 - p), are at least
     ``MIN_EXPECTED`` = 5 in both groups (Cochran's rule; exactly when R's ``prop.test``
     warns "Chi-squared approximation may be incorrect"). It needs at least 10 customers per
     group (n >= 5 / min(p, 1 - p)), which also covers Welch's and CUPED's n >= 2. Expected
     rather than observed counts: an arm with 0 buyers of 500 against a holdout with 30 of
     500 is a valid, strong result (expected 15 buyers each), while 0 of 25 against 3 of 50
     (expected 1) is not.
* Sample sizes come from the design's minimum detectable effect, or from a target effect
  the user states — never from the observed effect (the observed-power fallacy).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from crmlab.experiments.clocks import split_arm
from crmlab.experiments.design import minimum_detectable_effect, sample_size
from crmlab.experiments.preconditions import MIN_EXPECTED, verdict_preconditions
from crmlab.experiments.profit import (INTERACTION_MARGIN, PROFIT_METHOD, arm_profits, group_stats,
                                       interaction_equivalence, profit_between, profit_vs_control)
from crmlab.present.formatting import Formatter
from crmlab.settings import Settings

__all__ = ["decide", "verdict_preconditions", "no_verdict_decision", "PROFIT_METHOD", "MIN_EXPECTED"]

def _pp(x: float) -> str:
    return f"{100 * x:+.2f} pp"


def _ci_pp(lo: float, hi: float) -> str:
    return f"[{100 * lo:.2f}, {100 * hi:.2f}]"


def _var(p: float, n: float) -> float:
    return p * (1 - p) / n if n > 0 else float("inf")


def _level_stats(cells: dict, copies, times, factor: str, level: str) -> tuple[float, float, float]:
    """Main-effect rate, its variance and the mean cost per message of one factor level."""
    keys = [f"{level}@{t}" for t in times] if factor == "copy" else [f"{c}@{level}" for c in copies]
    k = len(keys)
    rate = sum(cells[x]["rate"] for x in keys) / k
    var = sum(_var(cells[x]["rate"], cells[x]["n"]) for x in keys) / k ** 2
    cost = sum(cells[x]["cost_per_message"] for x in keys) / k
    return rate, var, cost


def _choose_time(fact: dict, z: float) -> dict:
    cells, copies, times = fact["cells"], fact["copies"], fact["times"]
    st = {t: _level_stats(cells, copies, times, "time", t) for t in times}
    best = max(times, key=lambda t: st[t][0])
    gaps = []
    for t in times:
        if t != best:
            d, se = st[best][0] - st[t][0], math.sqrt(st[best][1] + st[t][1])
            gaps.append({"other": t, "diff": d, "ci_low": d - z * se, "ci_high": d + z * se})
    runner = min(gaps, key=lambda g: g["diff"])
    detected = all(g["ci_low"] > 0 for g in gaps)
    text = (f"{best} converts {_pp(runner['diff'])} {_ci_pp(runner['ci_low'], runner['ci_high'])} more than "
            f"{runner['other']} over the copies" if detected else
            f"no detectable difference between send times ({best} vs {runner['other']} {_pp(runner['diff'])} "
            f"{_ci_pp(runner['ci_low'], runner['ci_high'])}): send when convenient")
    return {"send_time": best if detected else None, "best": best, **runner, "detected": detected, "text": text,
            "rates": {t: st[t][0] for t in times}}


def _copy_level(cst: dict, copy: str, times) -> dict:
    """A copy's main effect: revenue per message, its variance, cost and rate averaged over the times."""
    k = len(times)
    g = [cst[f"{copy}@{t}"] for t in times]
    return {"revenue": sum(x["revenue"] for x in g) / k, "var": sum(x["var"] for x in g) / k ** 2,
            "cost": sum(x["cost"] for x in g) / k, "rate": sum(x["rate"] for x in g) / k}


def _choose_copy(fact: dict, cst: dict, margin: float, z: float, current: str | None, fmt: Formatter) -> dict:
    copies, times = fact["copies"], fact["times"]
    st = {c: _copy_level(cst, c, times) for c in copies}
    current = current if current in copies else copies[0]
    cost = {c: st[c]["cost"] for c in copies}
    equal = max(cost.values()) - min(cost.values()) < 1e-9

    def vs(new: str, old: str) -> dict:
        r = profit_between(st[new], st[old], margin, z)
        return {"challenger": new, "against": old, "extra_conversion": st[new]["rate"] - st[old]["rate"],
                "extra_revenue_per_message": st[new]["revenue"] - st[old]["revenue"],
                "extra_cost_per_message": cost[new] - cost[old],
                **{f"extra_profit_{k}": r[k] for k in ("value", "ci_low", "ci_high", "se")}}

    def money(t):
        return (f"{fmt.money(t['extra_profit_value'], 2)} [{fmt.money(t['extra_profit_ci_low'], 2)}, "
                f"{fmt.money(t['extra_profit_ci_high'], 2)}]")

    if equal:
        tries = [vs(c, current) for c in copies if c != current]
        wins = [t for t in tries if t["extra_profit_ci_low"] > 0]
        shown = max(tries, key=lambda t: t["extra_profit_value"])
        if wins:
            w = max(wins, key=lambda t: t["extra_profit_value"])
            return {**w, "copy": w["challenger"], "equal_costs": True,
                    "text": f"copy {w['challenger']} brings more revenue per message than {current} at the same cost "
                            f"({_pp(w['extra_conversion'])} conversion), extra profit {money(w)} per message"}
        return {**shown, "copy": current, "equal_costs": True,
                "text": f"the copies cost the same and earn alike ({shown['challenger']} vs {current}: extra profit "
                        f"{money(shown)} per message, {_pp(shown['extra_conversion'])} conversion, no detectable "
                        f"difference): keep the current copy {current}"}
    order = sorted(copies, key=lambda c: (cost[c], c != current, c))
    inc, last = order[0], None
    for c in order[1:]:
        if cost[c] - cost[inc] < 1e-9:
            continue
        t = vs(c, inc)
        if last is None or t["extra_profit_ci_low"] > 0:
            last = t
        if t["extra_profit_ci_low"] > 0:
            inc = c
    t = last
    body = (f"copy {t['challenger']}'s extra profit per message, {money(t)} (margin {margin:g} x "
            f"{fmt.money(t['extra_revenue_per_message'], 2)} extra revenue per message - "
            f"{fmt.money(t['extra_cost_per_message'], 3)} extra cost; {_pp(t['extra_conversion'])} conversion)")
    text = (f"{body} is above zero: the costlier copy {inc} pays for itself" if inc == t["challenger"] else
            f"{body} is not above zero: the cheaper copy {inc}")
    return {**t, "copy": inc, "equal_costs": False, "text": text}


def _choose_arm(outcomes: pd.DataFrame, control: str, margin: float, alpha: float, current: str | None,
                why: str) -> dict:
    t = arm_profits(outcomes, control, margin, alpha)
    best = str(t.index[t["best"].astype(bool)][0])
    tie = [str(a) for a in t.index[t["tied"].astype(bool)]]
    cur = (lambda a: (split_arm(a) or (a, None))[0] == current) if current else (lambda a: False)
    pick = sorted(tie, key=lambda a: (round(float(t.at[a, "cost_per_message"]), 9), not cur(a),
                                      -float(t.at[a, "profit_per_1000"])))[0]
    if len(t) == 1:
        text = f"{pick} is the only messaged arm"
    elif len(tie) == 1:
        text = f"{why}{pick} has the highest profit per message, detectably above every other arm (Holm)"
    elif pick == best:
        text = f"{why}{pick} has the highest profit per message; {len(tie) - 1} other arm(s) are not detectably worse"
    else:
        text = (f"{why}{pick} is the cheapest of the {len(tie)} arms whose profit per message is not detectably "
                f"below the best ({best}, Holm)")
    parts = split_arm(pick)
    copy, send_time, arm = (parts[0], parts[1], pick) if parts else (pick, None, pick)
    same = [a for a in tie if parts and (split_arm(a) or (None,))[0] == copy
            and abs(float(t.at[a, "cost_per_message"]) - float(t.at[pick, "cost_per_message"])) < 1e-9]
    if len(same) > 1:  # the send time made no detectable difference for this copy: no time is named
        send_time, arm = None, f"{copy}@any"
        text += f"; its send times ({', '.join(sorted(same))}) are not detectably different: send when convenient"
    return {"arm": arm, "copy": copy, "send_time": send_time, "tied": tie, "best_point": best, "text": text,
            "arms": t.reset_index().to_dict("records"), "selected": same if len(same) > 1 else [pick]}


def _design(outcomes: pd.DataFrame, control: str, fact: dict | None, alpha: float, target: float | None) -> dict:
    m = outcomes[outcomes["arm"] != control]
    base = float(m["converted"].mean())
    if fact is not None:
        n = min(min(sum(fact["cells"][f"{c}@{t}"]["n"] for t in fact["times"]) for c in fact["copies"]),
                min(sum(fact["cells"][f"{c}@{t}"]["n"] for c in fact["copies"]) for t in fact["times"]))
        unit = "level"
    else:
        n, unit = int(m.groupby("arm").size().min()), "arm"
    ok = 0 < base < 1
    mde = minimum_detectable_effect(base, n, alpha) if ok else float("nan")
    need = (sample_size(base, target=base + target, alpha=alpha).n_per_arm
            if target and ok and 0 < base + target < 1 else None)
    return {"per": unit, "n": int(n), "baseline": base, "detectable_difference": mde, "power": 0.8,
            "target_effect": target, "needed_for_target": need}


def no_verdict_decision(reasons: list[str], outcomes: pd.DataFrame, control: str, *, alpha: float = 0.05,
                        margin: float = 0.3, target_effect: float | None = None) -> dict:
    """The decision object when :func:`verdict_preconditions` gives reasons: every key of
    :func:`decide`'s, the choice and its numbers None, ``no_verdict_reason`` the reasons."""
    reason = "; ".join(reasons)
    d = {k: None for k in ("arm", "copy", "send_time", "incremental_profit_per_1000", "ci_low", "ci_high", "time",
                           "copy_choice", "incremental_conversion", "cost_per_message", "value_per_buyer",
                           "worth_sending", "provisional", "winner", "judged", "incremental_revenue_per_message",
                           "interaction_equivalence", "arm_profits")}
    design = _design(outcomes, control, None, alpha, target_effect)
    d.update({"reason": f"no verdict: {reason}", "blockers": list(reasons), "no_verdict_reason": reason,
              "margin": margin, "profit_method": PROFIT_METHOD, "design": design, "alpha": alpha,
              "verdict": f"no verdict: {reason}", "headline": "no verdict"})
    steps = [f"No verdict: {reason}."]
    if np.isfinite(design["detectable_difference"]):
        steps.append(f"At {design['n']:,} customers per arm (baseline {100 * design['baseline']:.2f}%) a rerun detects "
                     f"{100 * design['detectable_difference']:.2f} points at 80% power"
                     + (f"; to detect your target of {100 * target_effect:.2f} points, about "
                        f"{design['needed_for_target']:,} customers per arm" if design["needed_for_target"] else "")
                     + ".")
    steps.append("Keep a no-message holdout in every campaign so incremental profit stays measurable.")
    d["next_steps"] = steps
    return d


def _blockers(arms, srm, control, planned_n, complete, uncovered: int = 0) -> list[str]:
    n_min = int(arms.drop(index=control)["targeted"].min())
    out = []
    if not srm["ok"]:
        out.append("the sample ratio check failed")
    if planned_n is not None and n_min < planned_n:
        out.append(f"the planned sample ({planned_n:,} per arm) was not reached (smallest arm {n_min:,})")
    if complete < 1:
        out.append("the attribution window is not over for every customer")
    if uncovered:
        out.append(f"the window of {uncovered:,} targeted customer(s) ends before the first order: the orders do not "
                   "cover them")
    return out


def _factor_view(fact: dict | None, interaction_margin: float, alpha: float) -> dict | None:
    """The interaction's equivalence test when the arms form a full factorial design (else None)."""
    if fact is None or fact.get("interaction") is None:
        return None
    cells = pd.DataFrame(fact["cells"]).T
    cells.index = pd.MultiIndex.from_tuples([tuple(k.split("@", 1)) for k in cells.index], names=["copy", "time"])
    return interaction_equivalence(cells.astype(float), fact["copies"], fact["times"], interaction_margin, alpha)


def decide(outcomes: pd.DataFrame, arms: pd.DataFrame, fact: dict | None, srm: dict, control: str, *,
           planned_n: int | None = None, alpha: float = 0.05, complete: float = 1.0, margin: float = 0.3,
           current_copy: str | None = None, target_effect: float | None = None, uncovered: int = 0,
           settings: Settings | None = None, interaction_margin: float = INTERACTION_MARGIN) -> dict:
    """The decision object (see the module doc). ``outcomes`` from ``campaign_outcomes``,
    ``arms`` from ``arm_table``, ``fact`` from ``factorial_effects``; ``uncovered``: targeted
    customers whose whole window ends before the first order (a blocker); ``settings``: the
    orders' context, whose currency the texts' money is in (default: the session's);
    ``interaction_margin``: the interaction (conversion, additive) the factor view tolerates."""
    fmt = Formatter(settings)
    z = stats.norm.isf(alpha / 2)
    msg = outcomes[outcomes["arm"] != control]
    rev = msg.loc[msg["converted"], "revenue"].to_numpy(float)
    value = float(rev.mean()) if len(rev) else 0.0
    equiv = _factor_view(fact, interaction_margin, alpha)
    by_factors = equiv is not None and equiv["equivalent"]
    time_c = copy_c = None
    arm_table_ = None
    if by_factors:
        cst = {a: group_stats(outcomes[outcomes["arm"] == a]) for a in fact["cells"]}
        zf = stats.norm.isf(alpha / 4)  # two claims (time, copy), each at alpha / 2 (Bonferroni)
        time_c = _choose_time(fact, zf)
        copy_c = _choose_copy(fact, cst, margin, zf, current_copy, fmt)
        copy, send_time = copy_c["copy"], time_c["send_time"]
        arm = f"{copy}@{send_time}" if send_time else f"{copy}@any"
        reason = (f"send copy {copy} " + (f"at {send_time}: " if send_time else "at any time: ") +
                  f"{time_c['text']}, and {copy_c['text']} (copy and time judged apart: the interaction is within "
                  f"±{100 * interaction_margin:g} points, {equiv['method']})")
        sel = outcomes["arm"] == arm if send_time else outcomes["arm"].str.startswith(f"{copy}@")
    else:
        why = ("the copy x send-time interaction is not shown to be within "
               f"±{100 * interaction_margin:g} points ({100 * equiv['interval_level']:g}% interval "
               f"{_ci_pp(min(c['ci_low'] for c in equiv['contrasts']), max(c['ci_high'] for c in equiv['contrasts']))}), "
               "so the arms are judged, not the factors: " if equiv is not None else "")
        arm_c = _choose_arm(outcomes, control, margin, alpha, current_copy, why)
        arm, copy, send_time = arm_c["arm"], arm_c["copy"], arm_c["send_time"]
        arm_table_ = arm_c["arms"]
        reason = f"send {arm}: {arm_c['text']}"
        sel = outcomes["arm"].isin(arm_c["selected"])
    inc = profit_vs_control(outcomes, control, sel, margin, z)
    reason += (f"; {fmt.money(inc['value'])} incremental profit per 1,000 messages "
               f"[{fmt.money(inc['ci_low'])}, {fmt.money(inc['ci_high'])}] against the holdout")
    worth = True if inc["ci_low"] > 0 else (False if inc["ci_high"] < 0 else None)
    blockers = _blockers(arms, srm, control, planned_n, complete, uncovered)
    design = _design(outcomes, control, fact if by_factors else None, alpha, target_effect)
    chosen = {"arm": arm, "copy": copy, "send_time": send_time, "reason": reason,
              "incremental_profit_per_1000": inc["value"], "ci_low": inc["ci_low"], "ci_high": inc["ci_high"]}
    d = {**chosen, "blockers": blockers, "judged": "factors" if by_factors else "arms", "time": time_c, "copy_choice": copy_c,
         "incremental_conversion": inc["incremental_conversion"], "cost_per_message": inc["cost_per_message"],
         "incremental_revenue_per_message": inc["incremental_revenue_per_message"],
         "value_per_buyer": value, "margin": margin, "profit_method": PROFIT_METHOD, "worth_sending": worth,
         "interaction_equivalence": equiv, "arm_profits": arm_table_,
         "design": design, "provisional": None, "alpha": alpha}
    if blockers:
        d.update({k: None for k in ("arm", "copy", "send_time", "incremental_profit_per_1000", "ci_low", "ci_high")})
        d["reason"] = "no verdict yet: " + "; ".join(blockers) + f" (provisionally {arm})"
        d["provisional"] = chosen
    d["winner"] = d["arm"]
    d["no_verdict_reason"] = "; ".join(blockers) if blockers else None
    d["verdict"] = ("inconclusive: " + "; ".join(blockers)) if blockers else reason
    d["headline"] = "inconclusive" if blockers else (
        f"{arm}: {fmt.money(inc['value'])} profit per 1,000 messages")
    d["next_steps"] = _next_steps(d)
    return d


def _next_steps(d: dict) -> list[str]:
    s = []
    if d["blockers"]:
        return ["Fix what blocks a verdict first: " + "; ".join(d["blockers"]) + ".",
                "Keep a no-message holdout in every campaign so incremental profit stays measurable."]
    des = d["design"]
    size = (f"this campaign ({des['n']:,} customers per {des['per']}) detects {100 * des['detectable_difference']:.2f} "
            f"points at 80% power" if np.isfinite(des["detectable_difference"]) else "")
    if des["needed_for_target"]:
        size += f"; to detect your target of {100 * des['target_effect']:.2f} points, about " \
                f"{des['needed_for_target']:,} customers per {des['per']}"
    if d["send_time"]:
        s.append(f"Send at {d['send_time']}: it converts better for this store's customers.")
    elif d["judged"] == "factors":
        s.append("Send when convenient: the send times made no detectable difference" + (f" ({size})." if size else "."))
    cc = d["copy_choice"]
    if cc is not None and not cc["equal_costs"]:
        s.append(f"Use copy {d['copy']}: " + ("its extra conversion pays for its extra cost." if d["copy"] == cc["challenger"]
                                              else "the costlier copy's extra conversion does not pay for its cost "
                                                   "(or test a bigger change of copy)."))
    elif cc is not None:
        s.append(f"Use copy {d['copy']}" + (": it converts better at the same cost." if d["copy"] == cc["challenger"]
                                             and cc["extra_profit_ci_low"] > 0 else
                                             ": the copies made no detectable difference at the same cost."))
    else:
        s.append(f"Send {d['arm']}.")
    if d["worth_sending"] is False:
        s.append(f"At a margin of {d['margin']:g} the campaign loses money against the holdout: rethink the offer or "
                 "the targeting before sending again.")
    s.append("Leave out customers whose response rate is credibly below the threshold (the response history "
             "below); a few messages without a response are not evidence.")
    s.append("Keep a no-message holdout in every campaign so incremental profit stays measurable.")
    return s
