"""How often the copy x send-time decision is wrong: planted factorial stores (issue 25, item 9).

Each scenario plants an extra conversion per arm of a 2 x 2 design (copy A/B x 10:00/17:00)
plus a no-message holdout (:func:`crmlab.experiments.synthetic.planted_campaign`). The
campaign order's value has mean ``value_mean`` whatever the arm, so the **true** incremental
profit per message of arm a is known outside the code under test::

    margin x value_mean x extra[a] - billed parts[a] x price

(the extra order probability is ``extra[a] x w`` with E[w] = 1, and ``extra[a] x w`` stays
below 1 here). A call is **wrong** when the chosen arm's true profit is more than
``tolerance`` per message below the best arm's, or — when the planted profits are all equal
— when the decision claims a detectable difference (a named send time, or an arm "detectably
above every other arm"). A ``COPY@any`` call counts with the worse of that copy's arms.
``studies/decision_error_rates.py`` runs it over hundreds of stores; the tests run a few.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

import pandas as pd

from crmlab.experiments.decision import decide
from crmlab.experiments.factorial import factorial_effects
from crmlab.experiments.synthetic import planted_outcomes

__all__ = ["SCENARIOS", "true_profits", "judge_store", "error_rates"]

#: name -> (extra conversion per arm, billed parts per copy)
SCENARIOS = {
    "no effect (all arms alike)": ({"A@10:00": .02, "A@17:00": .02, "B@10:00": .02, "B@17:00": .02}, {"A": 1, "B": 1}),
    "no interaction, costlier copy no better": ({"A@10:00": .02, "A@17:00": .035, "B@10:00": .02, "B@17:00": .035},
                                                {"A": 1, "B": 2}),
    "additive effects, costlier copy pays": ({"A@10:00": .02, "A@17:00": .035, "B@10:00": .035, "B@17:00": .05},
                                             {"A": 1, "B": 2}),
    "real interaction (B works at 17:00 only)": ({"A@10:00": .02, "A@17:00": .02, "B@10:00": .02, "B@17:00": .05},
                                                 {"A": 1, "B": 1}),
    "crossover interaction (no main effects)": ({"A@10:00": .035, "A@17:00": .02, "B@10:00": .02, "B@17:00": .035},
                                                {"A": 1, "B": 1}),
}


def true_profits(extra: dict, segments: dict, margin: float = 0.3, value_mean: float = 100.0,
                 price: float = 0.05) -> dict:
    """The planted incremental profit per message of each arm (see the module doc)."""
    return {a: margin * value_mean * e - segments[a.split("@")[0]] * price for a, e in extra.items()}


def judge_store(name: str, seed: int, n_per_arm: int = 10000, tolerance: float = 0.03, margin: float = 0.3,
                interaction_margin: float | None = None) -> dict:
    """One planted store of scenario ``name`` (window outcomes drawn by
    :func:`~crmlab.experiments.synthetic.planted_outcomes`, the process of ``planted_campaign``)
    through the readout's factorial effects and :func:`~crmlab.experiments.decision.decide`:
    the call, its true profit, the best true profit, ``wrong`` and ``judged`` (arms or factors)."""
    extra, segments = SCENARIOS[name]
    outcomes = planted_outcomes(extra, n_per_arm=n_per_arm, segments=segments, seed=seed)
    kw = {} if interaction_margin is None else {"interaction_margin": interaction_margin}
    g = outcomes.groupby("arm")
    arms = pd.DataFrame({"targeted": g.size(), "buyers": g["converted"].sum(), "cost": g["cost"].sum()})
    d = decide(outcomes, arms, factorial_effects(outcomes, "holdout"), {"ok": True}, "holdout", margin=margin, **kw)
    truth = true_profits(extra, segments, margin)
    best = max(truth.values())
    arm = d["arm"]
    picked = [a for a in truth if a.split("@")[0] == d["copy"]] if arm.endswith("@any") else [arm]
    got = min(truth[a] for a in picked)
    alike = max(truth.values()) - min(truth.values()) < 1e-12
    if alike:
        claimed = d["send_time"] is not None or "detectably above every other arm" in d["reason"] or (
            d["copy_choice"] is not None and d["copy_choice"]["copy"] == d["copy_choice"]["challenger"])
        wrong = bool(claimed)
    else:
        wrong = bool(got < best - tolerance)
    return {"scenario": name, "seed": seed, "arm": arm, "true_profit": got, "best_profit": best, "wrong": wrong,
            "judged": d["judged"]}


def error_rates(stores: int = 200, n_per_arm: int = 10000, seed0: int = 0, scenarios=None, **kw) -> list[dict]:
    """Per scenario: ``stores``, ``wrong`` calls, ``wrong_rate``, ``factor_view`` share, and the
    exact 95% upper bound of the wrong-call rate (Clopper-Pearson)."""
    out = []
    for name in scenarios or SCENARIOS:
        rows = [judge_store(name, seed0 + i, n_per_arm, **kw) for i in range(stores)]
        k = sum(r["wrong"] for r in rows)
        upper = float(stats.beta.ppf(0.95, k + 1, stores - k)) if k < stores else 1.0
        out.append({"scenario": name, "stores": stores, "wrong": k, "wrong_rate": k / stores,
                    "upper_95": upper, "factor_view": float(np.mean([r["judged"] == "factors" for r in rows]))})
    return out
