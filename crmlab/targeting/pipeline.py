"""The one targeting pipeline (the CLI ``crmlab target``, the API and notebook 07 call it).

1. The campaign's outcomes (:func:`crmlab.experiments.metrics.campaign_outcomes`: converted =
   a paid order within the window; billing from the log, else parts x price) and the
   pre-send snapshot (:func:`crmlab.targeting.features.feature_snapshot`).
2. Cross-fitted uplift of every arm against the holdout (:mod:`crmlab.targeting.learners`);
   ``learner="auto"`` takes the X-learner, or the segment fallback when the store is small
   (fewer than :data:`MIN_HOLDOUT` holdout customers or :data:`MIN_CONVERSIONS` conversions).
3. Held-out evaluation (:mod:`crmlab.targeting.evaluation`): Qini/AUUC with its bootstrap
   interval, uplift@k, calibration by decile. A Qini interval that includes 0 is "no
   targeting gain shown": the list falls back to the best single arm for everyone (by its
   held-out profit), or to no one when that arm does not pay.
4. The policy and the budget curve (:mod:`crmlab.targeting.policy`), cut at ``budget``
   messages or ``budget_money``.

The value of one conversion: ``benefit="revenue"``: the customer's past average order value
shrunk to the campaign's revenue per converted customer (``(f * aov + 2 * m) / (f + 2)``);
``benefit="clv"``: the customer's 12-month CLV (revenue) fitted before the send.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.engine.sources import order_table
from crmlab.experiments.metrics import DEFAULT_PRICE_PER_MESSAGE, HOLDOUT_NAMES, campaign_outcomes
from crmlab.schema import CrmlabInputError
from crmlab.targeting.evaluation import calibration_table, evaluate_scores
from crmlab.targeting.features import feature_snapshot, snapshot_time
from crmlab.targeting.learners import LEARNERS, cross_fit, encode, fit_new, segment_uplift
from crmlab.targeting.policy import (NONE, arm_profits, budget_curve, budget_cut, choose, list_interval,
                                     replicate_weights)
from crmlab.targeting.result import TargetingResult

__all__ = ["target", "MIN_HOLDOUT", "MIN_CONVERSIONS"]

MIN_HOLDOUT = 300
MIN_CONVERSIONS = 200


def _checked(learner: str, benefit: str, margin: float, budget, budget_money) -> None:
    if learner not in ("auto", *LEARNERS):
        raise CrmlabInputError(f"learner {learner!r}: choose from auto, {', '.join(LEARNERS)}")
    if benefit not in ("revenue", "clv"):
        raise CrmlabInputError(f"benefit {benefit!r}: choose revenue or clv")
    if not (0 < margin <= 1):
        raise CrmlabInputError(f"margin must be in (0, 1], not {margin!r}")
    if budget is not None and budget_money is not None:
        raise CrmlabInputError("give --budget or --budget-money, not both")


def _values(snap: pd.DataFrame, outcomes: pd.DataFrame, benefit: str) -> np.ndarray:
    conv = outcomes["converted"].to_numpy(bool)
    m = float(outcomes["revenue"].to_numpy(float)[conv].mean()) if conv.any() else float(
        np.nanmean(snap["avg_order_value"]))
    m = m if np.isfinite(m) else 0.0
    if benefit == "clv":
        return snap["clv"].fillna(m).to_numpy(float)
    f = snap["frequency"].fillna(0).to_numpy(float)
    aov = snap["avg_order_value"].fillna(m).to_numpy(float)
    return (f * aov + 2 * m) / (f + 2)


def _uplift(kind, X, mask, snap, y, arm, arms, control, seed) -> tuple[pd.DataFrame, dict]:
    """Cross-fitted uplift per arm and the DR pseudo-outcomes (IPW for the segment learner)."""
    if kind != "segments":
        tau = cross_fit(X, y, arm, arms, control, kind, mask, seed=seed)
        return tau, tau.attrs["pseudo"]
    cells = (snap["segment"].astype(str) + "|" + snap["stage"].astype(str)).to_numpy()
    folds = np.random.default_rng(seed).permutation(np.arange(len(y)) % 2)
    tau = pd.DataFrame(index=range(len(y)), columns=list(arms), dtype=float)
    for k in (0, 1):
        fit = folds != k
        s = segment_uplift(cells[fit], y[fit], arm[fit], arms, control)
        lookup = pd.DataFrame(s.to_numpy(), index=cells[fit]).groupby(level=0).first()
        got = lookup.reindex(cells[~fit])
        for j, a in enumerate(arms):
            overall = y[fit & (arm == a)].mean() - y[fit & (arm == control)].mean()
            tau.loc[~fit, a] = got[j].fillna(overall).to_numpy(float)
    p = {a: np.mean(arm == a) for a in [*arms, control]}
    pseudo = {a: (arm == a) / p[a] * y - (arm == control) / p[control] * y for a in arms}
    tau.attrs["folds"] = folds
    return tau, pseudo


def _learner(learner: str, y: np.ndarray, arm: np.ndarray, control: str) -> tuple[str, list]:
    """The learner to use (``auto``: X, or segments for a small store) and the warning saying so."""
    small = (arm == control).sum() < MIN_HOLDOUT or y.sum() < MIN_CONVERSIONS
    kind = ("segments" if small else "x") if learner == "auto" else learner
    if kind == "segments" and small:
        return kind, [f"small store ({int((arm == control).sum()):,} holdout customers, {int(y.sum()):,} conversions): "
                      "segment-level effects (RFM segment x lifecycle stage) with empirical-Bayes shrinkage instead "
                      "of per-customer models"]
    return kind, []


def _importance(X, names, tau_best, seed, rows: int = 200_000) -> pd.Series:
    """The importances of a shallow tree fitted to the best predicted uplift (on ``rows``
    customers drawn at random when there are more: a summary, not a model)."""
    from sklearn.tree import DecisionTreeRegressor

    if len(X) > rows:
        take = np.sort(np.random.default_rng([seed, 27]).choice(len(X), rows, replace=False))
        X, tau_best = X[take], np.asarray(tau_best)[take]
    Xf = np.where(np.isnan(X), -1e9, X)
    t = DecisionTreeRegressor(max_depth=4, min_samples_leaf=50, random_state=seed).fit(Xf, tau_best)
    return pd.Series(t.feature_importances_, index=names).sort_values(ascending=False)


def _fold_ranks(score: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each score's rank within its cross-fitting fold, as a share (0, 1]: the folds' models
    differ in level by chance (a level that depends on the other fold's outcomes)."""
    out = np.empty(len(score))
    for k in np.unique(folds):
        m = folds == k
        out[m] = pd.Series(score[m]).rank(method="average").to_numpy() / m.sum()
    return out


def _evaluate(tau, y, arm, control, seed, n_boot, level):
    """Qini, uplift@k and calibration on the cross-fitted scores, ranked within their fold and
    pooled; the intervals widened by sqrt(2): fold 1's scores learn fold 2's chance pattern and
    vice versa, so the two halves of the pooled curve move together and a bootstrap that treats
    customers as independent is too narrow (docs/methods/targeting.md gives the null study)."""
    rec = tau.idxmax(axis=1).to_numpy()
    keep = (arm == control) | (arm == rec)
    best = tau.max(axis=1).to_numpy()
    score = _fold_ranks(best, np.asarray(tau.attrs["folds"]))[keep]
    treated = arm[keep] != control
    ev = evaluate_scores(score, y[keep], treated, n_boot=n_boot, seed=seed, level=level, widen=np.sqrt(2))
    cal = calibration_table(best[keep], y[keep], treated)
    return ev, cal


def _campaign(sends, o, campaign, window_hours, price, arm_column):
    out = campaign_outcomes(sends, o, window_hours, arm_column, campaign, price_per_message=price)
    control = out.attrs["control"]
    arms = sorted(a for a in out["arm"].unique() if a != control)
    messaged_control = bool(out.loc[out["arm"] == control, "delivered"].any())
    if control not in set(out["arm"]) or not arms or (str(control).lower() not in HOLDOUT_NAMES and messaged_control):
        raise CrmlabInputError(f"targeting needs a no-message holdout and at least one messaged arm (arms: "
                               f"{', '.join(sorted(out['arm'].unique()))}); name the holdout 'holdout' or 'control'")
    return out, control, arms


def target(sends: pd.DataFrame, orders, campaign: str | None = None, candidates=None, window_hours: float = 72,
           price_per_message: float = DEFAULT_PRICE_PER_MESSAGE, margin: float = 0.3, benefit: str = "revenue",
           budget: int | None = None, budget_money: float | None = None, learner: str = "auto", seed: int = 0,
           arm_column: str = "variant", n_boot: int = 200, level: float | None = None, observation_end=None,
           engine=None) -> TargetingResult:
    """Whom to message next (module doc): the uplift models of a randomised campaign, their
    held-out evaluation, the cost-aware policy, the budget curve and the send list.

    Parameters
    ----------
    sends, orders : the campaign's send log (arms plus a no-message holdout) and the orders
    candidates : sequence of customer ids, optional
        Score these (a new list, snapshot as of the orders' observation end) instead of the
        campaign's customers.
    budget, budget_money : cut the list at this many messages, or this much SMS cost
    learner : ``auto``, ``t``, ``x``, ``dr`` or ``segments``
    level : the level of every interval (default: the orders' context, ``Settings.interval_level``)
    """
    _checked(learner, benefit, margin, budget, budget_money)
    o = order_table(orders, engine, observation_end)
    level = o.settings.interval_level if level is None else float(level)
    out, control, arms = _campaign(sends, o, campaign, window_hours, price_per_message, arm_column)
    y, arm = out["converted"].to_numpy(float), out["arm"].to_numpy(str)
    kind, warnings = _learner(learner, y, arm, control)
    snap = feature_snapshot(o, out.index, snapshot_time(out["logged_send_time"]), sends, window_hours,
                            clv=benefit == "clv")
    X, mask, names, coding = encode(snap, snap.attrs["categorical"])
    tau, pseudo = _uplift(kind, X, mask, snap, y, arm, arms, control, seed)
    tau.index = out.index
    tau.attrs["folds"] = np.asarray(tau.attrs["folds"])
    cost = {a: float(out.loc[out["arm"] == a, "cost"].mean()) for a in arms}
    value = _values(snap, out, benefit)
    ev, cal = _evaluate(tau, y, arm, control, seed, n_boot, level)
    psi = pd.DataFrame({a: pseudo[a] * value * margin - cost[a] for a in arms}, index=out.index)
    fallback = None if ev["ci_low"] > 0 else "no targeting gain shown (the Qini interval includes 0)"
    if (out["window_complete"] < 1).any():
        warnings.append(f"the {window_hours:g}-hour window is not over for {1 - out['window_complete'].mean():.0%} of "
                        "the campaign's customers: their conversions are undercounted")
    ctx = dict(out=out, tau=tau, psi=psi, arm=arm, arms=arms, cost=cost, value=value, margin=margin, seed=seed,
               n_boot=n_boot, level=level, coding=coding, budget=budget, budget_money=budget_money, fallback=fallback,
               weights=replicate_weights(arm, n_boot, seed))
    send_to_all = _send_to_all(ctx)
    if candidates is not None:
        tau, value, warnings = _candidates(ctx, candidates, o, sends, window_hours, benefit, kind, X, mask, pseudo,
                                           warnings)
        ctx.update(tau=tau, value=value, psi=None)
    policy, send_list, curve = _policy(ctx, send_to_all)
    params = {"campaign": campaign, "window_hours": window_hours, "price_per_message": price_per_message,
              "margin": margin, "benefit": benefit, "budget": budget, "budget_money": budget_money,
              "learner": learner, "seed": seed, "interval_level": level, "control": control, "arms": arms, "cost_per_message": cost,
              "customers": int(len(out)), "candidates": None if candidates is None else int(len(send_list))}
    return TargetingResult(kind, names, fallback, {k: ev[k] for k in ("auuc", "ci_low", "ci_high", "curve", "n")},
                           ev["uplift_at_k"], curve, policy, send_to_all, send_list, cal,
                           _importance(X, names, tau_best_of(ctx), seed), warnings, params, o.observation_end,
                           o.settings)


def tau_best_of(ctx) -> np.ndarray:
    """The campaign customers' best predicted uplift (the surrogate tree's target)."""
    return ctx["campaign_tau"].max(axis=1).to_numpy() if "campaign_tau" in ctx else ctx["tau"].max(axis=1).to_numpy()


def _send_to_all(ctx) -> dict:
    """The best single arm sent to everyone: expected (model) and held-out profit."""
    rows = {}
    for a in ctx["arms"]:
        exp = float((ctx["tau"][a].to_numpy() * ctx["value"] * ctx["margin"] - ctx["cost"][a]).sum())
        held, lo, hi = list_interval(ctx["psi"][a].to_numpy(), np.ones(len(ctx["psi"]), bool), ctx["arm"],
                                     ctx["n_boot"], ctx["level"], ctx["seed"], ctx["weights"])
        rows[a] = {"arm": a, "incremental_profit": exp, "ci_low": lo, "ci_high": hi, "held_out": held}
    key = "held_out" if ctx["fallback"] else "incremental_profit"
    return max(rows.values(), key=lambda r: r[key])


def _candidates(ctx, candidates, o, sends, window_hours, benefit, kind, X, mask, pseudo, warnings):
    out = ctx["out"]
    ids = pd.Index(pd.Series(list(candidates)).astype(str).unique(), name="customer_id")
    snap = feature_snapshot(o, ids, o.observation_end, sends, window_hours, clv=benefit == "clv")
    Xn = encode(snap, snap.attrs["categorical"], like=ctx["coding"])[0]
    ctx["campaign_tau"] = ctx["tau"]
    arm, arms = ctx["arm"], ctx["arms"]
    y = out["converted"].to_numpy(float)
    if kind == "segments":
        means = {a: float(ctx["tau"][a].mean()) for a in arms}
        tau = pd.DataFrame({a: np.full(len(ids), means[a]) for a in arms}, index=ids)
        warnings = warnings + ["the segment learner scores the candidates with each arm's average uplift"]
    else:
        tau = fit_new(X, y, arm, arms, out.attrs["control"], Xn, kind, pseudo, mask, ctx["seed"])
        tau.index = ids
    warnings = warnings + ["a new candidate list has no outcomes yet: the held-out intervals are the campaign's "
                           "customers', the list's own are missing"]
    return tau, _values(snap, out, benefit), warnings


def _pick(frame: pd.DataFrame, col: pd.Series, fill: float = np.nan) -> np.ndarray:
    """Row ``i``'s value in column ``col[i]`` (``fill`` where that is not a column, e.g. ``none``)."""
    j = frame.columns.get_indexer(col.to_numpy())
    got = frame.to_numpy(float)[np.arange(len(frame)), np.maximum(j, 0)] if len(frame) else np.empty(0)
    return np.where(j >= 0, got, fill)


def _policy(ctx, send_to_all) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    tau, cost, arms = ctx["tau"], ctx["cost"], ctx["arms"]
    prof = arm_profits(tau, ctx["value"], ctx["margin"], cost)
    if ctx["fallback"]:
        a = send_to_all["arm"]
        pays = send_to_all["held_out"] > 0
        mean_prof = send_to_all["held_out"] / max(len(ctx["out"]), 1)
        prof = pd.DataFrame({b: np.full(len(tau), mean_prof if (b == a and pays) else -np.inf) for b in arms},
                            index=tau.index)
    pol = choose(prof)
    psi_best = None
    if ctx["psi"] is not None:
        psi_best = _pick(ctx["psi"].reindex(pol.index), pol["arm"], fill=0.0)
    curve = budget_curve(pol, cost, psi_best, ctx["arm"] if psi_best is not None else None, n_boot=ctx["n_boot"],
                         level=ctx["level"], seed=ctx["seed"], weights=ctx["weights"])
    cut = budget_cut(pol, cost, ctx["budget"], ctx["budget_money"])
    sent = (cut["arm"] != NONE).to_numpy()
    exp = float(cut["expected_incremental_profit"].sum())
    held, lo, hi = (list_interval(psi_best, sent, ctx["arm"], ctx["n_boot"], ctx["level"], ctx["seed"], ctx["weights"])
                    if psi_best is not None
                    else (None, None, None))
    by_arm = {a: int((cut["arm"] == a).sum()) for a in arms}
    policy = {"messages": int(sent.sum()), "cost": float(sum(cost[a] * n for a, n in by_arm.items())),
              "incremental_profit": exp, "ci_low": lo, "ci_high": hi, "held_out": held, "by_arm": by_arm}
    best_up = _pick(tau.reindex(cut.index), cut["arm"].where(cut["arm"] != NONE, pol["best_arm"].reindex(cut.index)))
    send_list = pd.DataFrame({"customer_id": cut.index.astype(str), "arm": cut["arm"].to_numpy(),
                              "expected_incremental_profit": cut["expected_incremental_profit"].round(6).to_numpy(),
                              "uplift_pp": np.round(100 * best_up, 4), "rank": cut["rank"].to_numpy()})
    return policy, send_list.sort_values("rank").reset_index(drop=True), curve
