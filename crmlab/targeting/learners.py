"""Uplift learners for a randomised campaign: each arm against the holdout, cross-fitted.

Every customer's predicted uplift comes from models that never saw that customer: the
customers are split into ``folds`` (stratified by arm, seeded) and each fold is scored by
models fitted on the others, so the predictions can be evaluated on the same randomised data
(:mod:`crmlab.targeting.evaluation`) without the optimism of in-sample fits.

* **T-learner**: one conversion model per arm and one for the holdout; uplift = the difference.
* **X-learner** (Künzel et al. 2019): the T-learner's models impute each customer's effect
  (treated: ``y - mu_0(x)``; holdout: ``mu_a(x) - y``), two regressions smooth them and
  are mixed by the known assignment shares: ``g * tau_0 + (1 - g) * tau_a``,
  ``g = p_a / (p_a + p_0)``.
* **DR-learner** (Kennedy 2023): the doubly robust pseudo-outcome
  ``mu_a - mu_0 + 1{A=a}/p_a (y - mu_a) - 1{A=0}/p_0 (y - mu_0)`` with the outcome models
  fitted on another fold and the known randomisation shares ``p``, regressed on ``x``.
* **segments**: per cell (RFM segment x lifecycle stage) the difference in conversion,
  shrunk to the arm's overall difference by empirical Bayes (DerSimonian–Laird between-cell
  variance): the fallback of small stores.

The base models are scikit-learn's ``HistGradientBoostingClassifier`` / ``Regressor`` (fast at
a million rows, native missing values and categorical features), every one seeded.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["encode", "cross_fit", "fit_new", "segment_uplift", "LEARNERS"]

LEARNERS = ("t", "x", "dr", "segments")
#: the boosting of every base model: 50 rounds at learning rate 0.1 (the same total shrinkage as
#: 100 at 0.05, half the fitting and predicting; docs/methods/targeting.md compares the two on
#: the planted stores), no early stopping (at a million customers it stops no earlier and adds
#: its validation scoring; on small stores its 10% validation split is noise)
_HGB = dict(max_iter=50, learning_rate=0.1, max_leaf_nodes=8, min_samples_leaf=200, l2_regularization=1.0,
            early_stopping=False)


def encode(X: pd.DataFrame, categorical, like: dict | None = None) -> tuple[np.ndarray, np.ndarray, list, dict]:
    """The feature matrix (categoricals as codes 0..k-1, missing as NaN), the categorical mask,
    the names of the columns kept (a column missing everywhere carries nothing: dropped) and the
    encoding (``{"columns", "categories"}``); ``like`` (an earlier encoding) encodes new rows the
    same way (same columns, same codes; an unseen category is missing)."""
    if like is None:
        keep = [c for c in X.columns if X[c].notna().any()]
        cats = {}
        for c in keep:
            if c in categorical:
                top = X[c].dropna().astype(str).value_counts().index[:250]
                cats[c] = sorted(top)
        like = {"columns": keep, "categories": cats}
    cols = []
    for c in like["columns"]:
        v = X[c] if c in X.columns else pd.Series(np.nan, index=X.index)
        if c in like["categories"]:
            ok = v.notna().to_numpy()
            codes = np.full(len(v), np.nan)
            got = pd.Categorical(v[ok].astype(str), categories=like["categories"][c]).codes
            codes[ok] = np.where(got < 0, np.nan, got)
            cols.append(codes)
        else:
            cols.append(pd.to_numeric(v, errors="coerce").to_numpy(float))
    M = np.column_stack(cols) if cols else np.zeros((len(X), 0))
    mask = np.array([c in like["categories"] for c in like["columns"]], dtype=bool)
    return M, mask, list(like["columns"]), like


def _clf(mask: np.ndarray, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(categorical_features=mask if mask.any() else None, random_state=seed, **_HGB)


def _reg(mask: np.ndarray, seed: int):
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(categorical_features=mask if mask.any() else None, random_state=seed, **_HGB)


def _prob(X: np.ndarray, y: np.ndarray, Xp: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
    """P(y = 1 | x) fitted on (X, y), predicted on Xp (a constant when y has one class)."""
    if len(y) == 0:
        return np.full(len(Xp), np.nan)
    if y.min() == y.max():
        return np.full(len(Xp), float(y[0]))
    return _clf(mask, seed).fit(X, y).predict_proba(Xp)[:, 1]


def _folds(arm: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A fold number per row, stratified by arm (seeded; a stream of its own, so the bootstrap
    seeded with the same number never replays the fold draws)."""
    rng = np.random.default_rng([seed, 2027])
    f = np.empty(len(arm), dtype=int)
    for a in np.unique(arm):
        idx = np.flatnonzero(arm == a)
        f[idx] = rng.permutation(np.arange(len(idx)) % k)
    return f


def _fit_predict(kind: str, Xf, yf, af, a, ctl, p, Xp, mask, seed, phi_f=None) -> np.ndarray:
    """Uplift of arm ``a`` on ``Xp`` from models fitted on (``Xf``, ``yf``, ``af``)."""
    ta, tc = af == a, af == ctl
    if kind == "t":
        return _prob(Xf[ta], yf[ta], Xp, mask, seed) - _prob(Xf[tc], yf[tc], Xp, mask, seed)
    if kind == "x":
        mu_a = _prob(Xf[ta], yf[ta], Xf[tc], mask, seed)
        mu_0 = _prob(Xf[tc], yf[tc], Xf[ta], mask, seed)
        tau_a = _reg(mask, seed).fit(Xf[ta], yf[ta] - mu_0).predict(Xp)
        tau_0 = _reg(mask, seed).fit(Xf[tc], mu_a - yf[tc]).predict(Xp)
        g = p[a] / (p[a] + p[ctl])
        return g * tau_0 + (1 - g) * tau_a
    if kind == "dr":
        return _reg(mask, seed).fit(Xf, phi_f).predict(Xp)
    raise ValueError(f"unknown learner {kind!r}")


def _fit_prob(X: np.ndarray, y: np.ndarray, mask: np.ndarray, seed: int):
    """A function ``Xp -> P(y = 1 | x)`` fitted on (X, y): a constant when ``y`` has one class
    (missing when it is empty)."""
    if len(y) == 0 or y.min() == y.max():
        v = float(y[0]) if len(y) else np.nan
        return lambda Xp: np.full(len(Xp), v)
    m = _clf(mask, seed).fit(X, y)
    return lambda Xp: m.predict_proba(Xp)[:, 1] if len(Xp) else np.empty(0)


def _outcome_models(X, y, arm, groups, folds, mask, seed) -> dict:
    """``{(group, k): P(y | x)}`` fitted on the group's rows outside fold ``k``: fitted once and
    shared by the DR scores (predicting fold ``k``) and the X-learner's imputation (predicting
    the other group's rows outside fold ``k``), as each would fit them alone."""
    return {(g, k): _fit_prob(X[(folds != k) & (arm == g)], y[(folds != k) & (arm == g)], mask, seed)
            for g in groups for k in np.unique(folds)}


def _dr_pseudo(Xk: dict, y, arm, a, ctl, p, folds, models: dict, mu0: dict) -> tuple[np.ndarray, np.ndarray]:
    """The DR pseudo-outcome of every row and the T-learner's uplift ``mu_a - mu_0``, the
    outcome models fitted on the other folds (``Xk``: each fold's rows of the features)."""
    phi, t_uplift = np.empty(len(y)), np.empty(len(y))
    for k in np.unique(folds):
        rows = folds == k
        mu_a = np.clip(models[(a, k)](Xk[k]), 0, 1)
        if k not in mu0:  # the holdout's model is the same for every arm
            mu0[k] = np.clip(models[(ctl, k)](Xk[k]), 0, 1)
        mu_0 = mu0[k]
        ya, ar = y[rows], arm[rows]
        phi[rows] = (mu_a - mu_0 + (ar == a) / p[a] * (ya - mu_a) - (ar == ctl) / p[ctl] * (ya - mu_0))
        t_uplift[rows] = mu_a - mu_0
    return phi, t_uplift


def _x_fold(X, Xk: dict, y, arm, a, ctl, p, folds, k, models, mask, seed) -> np.ndarray:
    """The X-learner's uplift of arm ``a`` on fold ``k`` (the imputation and the two effect
    regressions fitted outside it; the imputation's outcome models are :func:`_outcome_models`')."""
    fit = folds != k
    ta, tc = fit & (arm == a), fit & (arm == ctl)
    Xa, Xc = X[ta], X[tc]
    tau_a = _reg(mask, seed).fit(Xa, y[ta] - models[(ctl, k)](Xa)).predict(Xk[k])
    tau_0 = _reg(mask, seed).fit(Xc, models[(a, k)](Xc) - y[tc]).predict(Xk[k])
    g = p[a] / (p[a] + p[ctl])
    return g * tau_0 + (1 - g) * tau_a


def cross_fit(X: np.ndarray, y: np.ndarray, arm: np.ndarray, arms, control: str, kind: str = "t",
              mask: np.ndarray | None = None, folds: int = 2, seed: int = 0, threads: int = 1) -> pd.DataFrame:
    """Cross-fitted uplift of every arm for every row (one column per arm), and the DR
    pseudo-outcomes (``attrs["pseudo"]``: {arm: array}, used by the evaluation).

    Parameters
    ----------
    X : array (rows x features), y : 0/1 conversions, arm : the arm of each row
    arms : the messaged arms; ``control`` the holdout arm
    kind : ``"t"``, ``"x"`` or ``"dr"``
    mask : categorical columns of ``X``
    folds : number of cross-fitting folds (>= 2)
    threads : OpenMP threads of the boosting (default 1: on a shared machine more threads
        spin-wait and can be a hundred times slower)
    """
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: F401  (loads OpenMP before the limit)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        return _cross_fit(X, y, arm, arms, control, kind, mask, folds, seed)


def _cross_fit(X, y, arm, arms, control, kind, mask, folds, seed) -> pd.DataFrame:
    mask = np.zeros(X.shape[1], bool) if mask is None else mask
    y = np.asarray(y, float)
    arm = np.asarray(arm).astype(str)
    n = len(y)
    p = {a: float(np.mean(arm == a)) for a in [*arms, control]}
    f = _folds(arm, folds, seed)
    models = _outcome_models(X, y, arm, [*arms, control], f, mask, seed)
    Xk = {k: X[f == k] for k in np.unique(f)}  # each fold's rows, copied once
    out = pd.DataFrame(index=range(n), columns=list(arms), dtype=float)
    pseudo, mu0 = {}, {}
    for a in arms:
        phi, tau = _dr_pseudo(Xk, y, arm, a, control, p, f, models, mu0)
        pseudo[a] = phi
        for k in (np.unique(f) if kind != "t" else []):
            pred = f == k
            if kind == "x":
                tau[pred] = _x_fold(X, Xk, y, arm, a, control, p, f, k, models, mask, seed)
            else:
                tau[pred] = _fit_predict(kind, X[~pred], y[~pred], arm[~pred], a, control, p, X[pred], mask, seed,
                                         phi[~pred])
        out[a] = tau
    out.attrs.update(pseudo=pseudo, propensity=p, folds=f)
    return out


def fit_new(X: np.ndarray, y: np.ndarray, arm: np.ndarray, arms, control: str, Xnew: np.ndarray, kind: str,
            pseudo: dict, mask: np.ndarray | None = None, seed: int = 0, threads: int = 1) -> pd.DataFrame:
    """Uplift of every arm for new customers (``Xnew``) from models fitted on the whole campaign
    (``pseudo``: the DR pseudo-outcomes of :func:`cross_fit`, for the DR-learner)."""
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: F401  (loads OpenMP before the limit)
    from threadpoolctl import threadpool_limits

    mask = np.zeros(X.shape[1], bool) if mask is None else mask
    arm = np.asarray(arm).astype(str)
    p = {a: float(np.mean(arm == a)) for a in [*arms, control]}
    with threadpool_limits(limits=threads):
        return pd.DataFrame({a: _fit_predict(kind, X, np.asarray(y, float), arm, a, control, p, Xnew, mask, seed,
                                             pseudo.get(a)) for a in arms})


def segment_uplift(cells: pd.Series, y: np.ndarray, arm: np.ndarray, arms, control: str) -> pd.DataFrame:
    """Per-cell uplift of every arm (difference in conversion, arm minus holdout) shrunk to the
    arm's overall difference by empirical Bayes; one row per customer (columns: arms).

    The between-cell variance ``tau2`` is DerSimonian–Laird's; a cell's weight on its own
    difference is ``tau2 / (tau2 + se^2)`` (0 for a cell missing one of the two groups), with
    ``se^2 = p_a (1 - p_a) / n_a + p_0 (1 - p_0) / n_0`` from the overall rates."""
    cells = pd.Series(np.asarray(cells).astype(str))
    y = np.asarray(y, float)
    arm = np.asarray(arm).astype(str)
    out = pd.DataFrame(index=range(len(y)), columns=list(arms), dtype=float)
    shrink = {}
    for a in arms:
        d = pd.DataFrame({"cell": cells, "y": y, "arm": arm})
        ga = d[d.arm == a].groupby("cell")["y"].agg(["mean", "count"])
        gc = d[d.arm == control].groupby("cell")["y"].agg(["mean", "count"])
        j = ga.join(gc, lsuffix="_a", rsuffix="_c", how="outer")
        overall = float(y[arm == a].mean() - y[arm == control].mean())
        diff = j["mean_a"] - j["mean_c"]
        # a cell's sampling variance from the arm's and the holdout's overall rates (binomial): a
        # small cell's own rate (0% or 100%) would claim a precision it does not have
        pa, pc = y[arm == a].mean(), y[arm == control].mean()
        se2 = max(pa * (1 - pa), 1e-6) / j["count_a"] + max(pc * (1 - pc), 1e-6) / j["count_c"]
        ok = diff.notna() & np.isfinite(se2) & (j["count_a"] >= 2) & (j["count_c"] >= 2)
        w = 1 / se2[ok]
        mean_w = float((w * diff[ok]).sum() / w.sum()) if ok.any() else overall
        Q = float((w * (diff[ok] - mean_w) ** 2).sum())
        denom = float(w.sum() - (w ** 2).sum() / w.sum()) if ok.sum() > 1 else 0.0
        tau2 = max(0.0, (Q - (ok.sum() - 1)) / denom) if denom > 0 else 0.0
        weight = (tau2 / (tau2 + se2)).where(ok, 0.0)
        est = weight * diff.fillna(0) + (1 - weight) * overall
        out[a] = cells.map(est).fillna(overall).to_numpy(float)
        shrink[a] = {"tau2": tau2, "cells": int(len(j)), "mean_weight": float(weight.mean()) if len(j) else 0.0}
    out.attrs["shrinkage"] = shrink
    return out
