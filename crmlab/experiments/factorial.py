"""Copy x send time: main effects and their interaction, on the scale the effects are reported in.

Arms named ``COPY@HH:MM`` (the control left out) form a factorial design. The readout reports
differences in conversion in percentage points, so the interaction is tested on that
**additive** scale: from the cell rates p (copy c, time t) with variances p(1 - p)/n, the
contrast (p[B,17] - p[B,10]) - (p[A,17] - p[A,10]) with a Wald interval and test (a joint
Wald chi-square for bigger designs). This is the saturated linear probability model with
HC0 robust errors (tests/test_experiments_decision.py checks it against statsmodels OLS).
A main effect is the difference of a factor's levels averaged over the other factor's
levels (equal weights), with its Wald interval.

A logit-scale test (a binomial GLM with and without the interaction, likelihood ratio) is
kept under ``logit``: effects that add up in points (copy B +2.5 points at both times)
interact on the log-odds scale, so it reports an "interaction" the analyst would not see in
the table of points.
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm
from scipy import stats

from crmlab.experiments.clocks import ARM_PATTERN
from crmlab.experiments.metrics import compare_proportions

__all__ = ["factorial_effects", "cell_table", "additive_contrast"]


def _time_key(t: str) -> tuple[int, ...]:
    return tuple(int(x) for x in t.split(":"))


def cell_table(outcomes: pd.DataFrame, control: str) -> pd.DataFrame | None:
    """Per messaged arm ``copy``, ``time``, ``n``, ``buyers``, ``rate``, ``cost_per_message``
    (None unless every messaged arm is named ``COPY@HH:MM``)."""
    df = outcomes[outcomes["arm"] != control]
    if df.empty:
        return None
    g = df.groupby("arm", sort=True)
    t = pd.DataFrame({"n": g.size(), "buyers": g["converted"].sum().astype(int), "cost": g["cost"].sum()})
    parts = [ARM_PATTERN.match(str(a)) for a in t.index]
    if any(m is None for m in parts):
        return None
    t.index = pd.MultiIndex.from_tuples([(m["copy"], m["time"]) for m in parts], names=["copy", "time"])
    t["rate"] = t["buyers"] / t["n"]
    t["cost_per_message"] = t["cost"] / t["n"]
    return t


def additive_contrast(cells: pd.DataFrame, L: np.ndarray, alpha: float = 0.05) -> dict:
    """Wald test of the contrasts ``L`` (rows) of the cell rates (independent cells, variance
    p(1-p)/n each). One row: ``diff`` with a 100(1 - alpha)% interval; ``chi2``, ``df``, ``p_value``."""
    p = cells["rate"].to_numpy(float)
    v = p * (1 - p) / cells["n"].to_numpy(float)
    L = np.atleast_2d(np.asarray(L, float))
    est = L @ p
    cov = L @ np.diag(v) @ L.T
    try:
        chi2 = float(est @ np.linalg.solve(cov, est))
    except np.linalg.LinAlgError:
        chi2 = float("nan")
    df = L.shape[0]
    out = {"chi2": chi2, "df": df, "p_value": float(stats.chi2.sf(chi2, df)) if np.isfinite(chi2) else float("nan")}
    if df == 1:
        se = float(np.sqrt(cov[0, 0]))
        z = stats.norm.isf(alpha / 2)
        out.update(diff=float(est[0]), se=se, ci_low=float(est[0] - z * se), ci_high=float(est[0] + z * se))
    return out


def _main_effect_rows(cells: pd.DataFrame, copies, times, name: str, lev: str, ref: str) -> np.ndarray:
    idx = list(cells.index)
    row = np.zeros(len(idx))
    others = times if name == "copy" else copies
    for o in others:
        a, b = ((lev, o), (ref, o)) if name == "copy" else ((o, lev), (o, ref))
        row[idx.index(a)] += 1 / len(others)
        row[idx.index(b)] -= 1 / len(others)
    return row


def _logit(cells: pd.DataFrame, copies, times) -> tuple[dict, dict]:
    """Main-effect odds ratios and the interaction's likelihood-ratio test: binomial GLMs on the
    cell counts (the same estimates as on one row per customer, at any number of customers)."""
    d = cells.reset_index()[["copy", "time", "n", "buyers"]]
    d["copy"] = pd.Categorical(d["copy"], categories=copies)
    d["time"] = pd.Categorical(d["time"], categories=times)
    y = np.column_stack([d["buyers"], d["n"] - d["buyers"]]).astype(float)

    def fit(formula):
        X = patsy.dmatrix(formula, d, return_type="dataframe")
        with warnings.catch_warnings():  # the saturated fit reproduces the cell rates: not separation
            warnings.simplefilter("ignore")
            return sm.GLM(y, X, family=sm.families.Binomial()).fit()

    main, full = fit("C(copy) + C(time)"), fit("C(copy) * C(time)")
    ci = main.conf_int()
    ors = {}
    for name, levels in (("copy", copies), ("time", times)):
        for lev in levels[1:]:
            term = f"C({name})[T.{lev}]"
            ors[f"{name}: {lev} vs {levels[0]}"] = {
                "odds_ratio": float(np.exp(main.params[term])), "or_ci_low": float(np.exp(ci.loc[term, 0])),
                "or_ci_high": float(np.exp(ci.loc[term, 1])), "p_value": float(main.pvalues[term])}
    inter = [t for t in full.params.index if "]:C(" in t]  # level names like 17:00 contain ':' too
    lr = 2 * (full.llf - main.llf)
    one = len(inter) == 1
    fci = full.conf_int()
    logit = {"scale": "logit", "p_value": float(stats.chi2.sf(lr, len(inter))), "lr_chi2": float(lr), "df": len(inter),
             "odds_ratio": float(np.exp(full.params[inter[0]])) if one else None,
             "or_ci_low": float(np.exp(fci.loc[inter[0], 0])) if one else None,
             "or_ci_high": float(np.exp(fci.loc[inter[0], 1])) if one else None}
    return ors, logit


def factorial_effects(outcomes: pd.DataFrame, control: str, alpha: float = 0.05) -> dict | None:
    """Copy x send time from arms named ``COPY@HH:MM`` (the control left out); None otherwise.

    Returns ``copies``, ``times``, ``cells`` (per arm n, buyers, rate, cost per message);
    ``effects`` (per factor level vs the first: pooled difference with Newcomb interval and the
    GLM's odds ratio); ``additive`` (main effects averaged over the other factor, Wald);
    ``interaction`` (``scale: "additive"``, ``diff``, ``ci_low``, ``ci_high``, ``p_value``,
    ``contrast``) and ``logit`` (the GLM's interaction test).
    """
    cells = cell_table(outcomes, control)
    if cells is None:
        return None
    copies = sorted(cells.index.get_level_values("copy").unique())
    times = sorted(cells.index.get_level_values("time").unique(), key=_time_key)
    if len(copies) < 2 or len(times) < 2:
        return None
    full_design = len(cells) == len(copies) * len(times)
    try:
        ors, logit = _logit(cells, copies, times) if full_design else ({}, None)
    except (np.linalg.LinAlgError, ValueError, KeyError):  # separation, an empty level
        ors, logit = {}, None
    effects, additive = {}, {}
    for name, levels in (("copy", copies), ("time", times)):
        for lev in levels[1:]:
            key = f"{name}: {lev} vs {levels[0]}"
            lv = cells.index.get_level_values(name)
            (x1, n1), (x0, n0) = (cells.loc[lv == v, ["buyers", "n"]].sum() for v in (lev, levels[0]))
            pooled = compare_proportions(int(x1), int(n1), int(x0), int(n0))
            effects[key] = {**ors.get(key, {"odds_ratio": None, "or_ci_low": None, "or_ci_high": None,
                                            "p_value": pooled["p_value"]}),
                            "rate": pooled["rate"], "reference_rate": pooled["control_rate"], "diff": pooled["diff"],
                            "diff_ci_low": pooled["newcomb_low"], "diff_ci_high": pooled["newcomb_high"],
                            "n": int(n1), "reference_n": int(n0)}
            if full_design:
                additive[key] = additive_contrast(cells, _main_effect_rows(cells, copies, times, name, lev, levels[0]),
                                                  alpha)
    interaction = None
    if full_design:
        idx = list(cells.index)
        rows = []
        for c, t in itertools.product(copies[1:], times[1:]):
            r = np.zeros(len(idx))
            r[idx.index((c, t))] += 1
            r[idx.index((c, times[0]))] -= 1
            r[idx.index((copies[0], t))] -= 1
            r[idx.index((copies[0], times[0]))] += 1
            rows.append(r)
        interaction = {"scale": "additive", **additive_contrast(cells, np.array(rows), alpha)}
        interaction.setdefault("diff", None)
        interaction.setdefault("ci_low", None)
        interaction.setdefault("ci_high", None)
        c1, t1, c0, t0 = copies[1], times[1], copies[0], times[0]
        interaction["contrast"] = (f"({c1}@{t1} - {c1}@{t0}) - ({c0}@{t1} - {c0}@{t0})" if len(rows) == 1
                                   else f"joint Wald test of {len(rows)} contrasts")
    cell_out = {f"{c}@{t}": {"n": int(r["n"]), "buyers": int(r["buyers"]), "rate": float(r["rate"]),
                             "cost_per_message": float(r["cost_per_message"])} for (c, t), r in cells.iterrows()}
    return {"copies": copies, "times": times, "cells": cell_out, "effects": effects, "additive": additive,
            "interaction": interaction, "logit": logit}
