"""Experiment design: sample size and power for two proportions, seeded stratified assignment.

Sample size uses the normal approximation of R's ``power.prop.test`` (strict = FALSE):

    n = (z_a * sqrt(2 pbar qbar) + z_b * sqrt(p1 q1 + p2 q2))^2 / (p1 - p2)^2,   pbar = (p1 + p2) / 2

with z_a = qnorm(1 - alpha/2) (two-sided) or qnorm(1 - alpha) (one-sided). For unequal
arms (``ratio`` = n2 / n1) the same formula with pbar = (p1 + r p2) / (1 + r),
2 pbar qbar -> pbar qbar (1 + 1/r) and p2 q2 -> p2 q2 / r (Fleiss); ratio 1 gives R's value.
"""
from __future__ import annotations

import math
from dataclasses import field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats

from crmlab.present.formatting import integer, number, pct, pp
from crmlab.present.result import Card, Result, result
from crmlab.settings import Settings, current

__all__ = ["SampleSize", "sample_size", "power_two_proportions", "minimum_detectable_effect", "Assignment", "assign",
           "design_summary"]


@result
class SampleSize(Result):
    """Customers per arm to detect ``baseline`` -> ``target`` (``n_per_arm`` rounded up from
    ``n_exact``; ``n_other_arm`` = ``n_per_arm`` x ``ratio``); ``settings``: the context."""

    n_per_arm: int
    n_exact: float
    n_other_arm: int
    baseline: float
    target: float
    alpha: float
    power: float
    ratio: float
    alternative: str
    settings: Settings = field(default_factory=current)

    def _card(self) -> Card:
        """Customers per arm, the exact n, the proportions and their difference."""
        other = f" ({self.n_other_arm:,} in the other arm)" if self.ratio != 1 else ""
        finding = (f"{self.n_per_arm:,} customers per arm{other} to detect {pct(self.baseline)} → {pct(self.target)} "
                   f"({self.alternative}, α = {self.alpha:g}, power {self.power:g})")
        tab = pd.DataFrame({"value": [number(self.n_exact, 2), pct(self.baseline, 2), pct(self.target, 2),
                                      pp(self.target - self.baseline, 2), f"{self.ratio:g}"]},
                           index=["n (exact)", "baseline", "target", "difference", "ratio n2/n1"])
        return Card("SampleSize", "customers per arm for two proportions", finding, tab,
                    "R's power.prop.test (normal approximation)")


def _z_alpha(alpha: float, alternative: str) -> float:
    if alternative not in ("two-sided", "one-sided"):
        raise ValueError("alternative must be 'two-sided' or 'one-sided'")
    return stats.norm.isf(alpha / 2 if alternative == "two-sided" else alpha)


def _check_p(*ps: float) -> None:
    for p in ps:
        if not 0 < p < 1:
            raise ValueError(f"proportions must lie strictly between 0 and 1, got {p}")


def power_two_proportions(baseline: float, target: float, n_per_arm: float, alpha: float = 0.05, ratio: float = 1.0,
                          alternative: str = "two-sided") -> float:
    """Power of the two-proportion test with ``n_per_arm`` in the baseline arm (R's power.prop.test)."""
    _check_p(baseline, target)
    p1, p2, r = baseline, target, ratio
    pbar = (p1 + r * p2) / (1 + r)
    za = _z_alpha(alpha, alternative)
    num = math.sqrt(n_per_arm) * abs(p1 - p2) - za * math.sqrt(pbar * (1 - pbar) * (1 + 1 / r))
    return float(stats.norm.cdf(num / math.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / r)))


def sample_size(baseline: float, target: float | None = None, relative_lift: float | None = None,
                alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0,
                alternative: str = "two-sided", settings: Settings | None = None) -> SampleSize:
    """Customers per arm for two proportions (see the module doc for the formula).

    Give ``target`` (e.g. 0.12) or ``relative_lift`` (e.g. 0.2 for +20%). ``settings``: the
    result's context (default: the session's).
    Example: 0.10 vs 0.12 at power 0.8 -> 3,840.85, so 3,841 per arm.
    """
    if (target is None) == (relative_lift is None):
        raise ValueError("give exactly one of target or relative_lift")
    p1 = baseline
    p2 = target if target is not None else baseline * (1 + relative_lift)
    _check_p(p1, p2)
    if p1 == p2:
        raise ValueError("baseline and target are equal: no effect to detect")
    r = ratio
    pbar = (p1 + r * p2) / (1 + r)
    za, zb = _z_alpha(alpha, alternative), stats.norm.ppf(power)
    n = (za * math.sqrt(pbar * (1 - pbar) * (1 + 1 / r)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / r)) ** 2 \
        / (p1 - p2) ** 2
    return SampleSize(math.ceil(n - 1e-9), float(n), math.ceil(n * r - 1e-9), p1, p2, alpha, power, r, alternative,
                      settings if settings is not None else current())


def minimum_detectable_effect(baseline: float, n_per_arm: float, alpha: float = 0.05, power: float = 0.8,
                              ratio: float = 1.0, alternative: str = "two-sided") -> float:
    """The smallest target above ``baseline`` detectable with ``n_per_arm`` (returns the difference)."""
    _check_p(baseline)
    f = lambda p2: power_two_proportions(baseline, p2, n_per_arm, alpha, ratio, alternative) - power  # noqa: E731
    hi = 1 - 1e-9
    if f(hi) < 0:
        return float("nan")
    return float(optimize.brentq(f, baseline + 1e-9, hi, xtol=1e-12) - baseline)


@result
class Assignment(Result):
    """``table``: customer_id, arm, stratum. ``balance``: customers per stratum and arm with the
    planned and actual shares and a chi-square goodness-of-fit p-value per stratum;
    ``settings``: the context."""

    table: pd.DataFrame
    balance: pd.DataFrame
    seed: int
    settings: Settings = field(default_factory=current)

    def to_frame(self) -> pd.DataFrame:
        """One row per customer: ``customer_id``, ``arm``, ``stratum``."""
        return self.table.copy()

    def _card(self) -> Card:
        """Customers per arm, and how evenly each stratum was split."""
        arms = [c for c in self.balance.columns if c not in ("customers", "max_share_gap", "chi2_p")]
        per_arm = self.table["arm"].value_counts().reindex(arms, fill_value=0)
        strata = len(self.balance)
        finding = (f"{len(self.table):,} customers in {len(arms)} arms ("
                   + ", ".join(f"{a} {integer(n)}" for a, n in per_arm.items())
                   + f"), seed {self.seed}" + (f", {strata} strata" if strata > 1 else ""))
        b = self.balance
        tab = pd.DataFrame({**{a: b[a].map(integer) for a in arms}, "customers": b["customers"].map(integer),
                            "largest share gap": b["max_share_gap"].map(lambda x: pp(x, 2, sign=False)),
                            "balance p": b["chi2_p"].map(lambda x: number(x, 3))}, index=b.index)
        return Card("Assignment", "seeded assignment of customers to arms", finding, tab,
                    "each stratum split in the planned shares (largest remainders); balance p: chi-square "
                    "goodness of fit of the stratum's arm sizes", hint=".to_frame(): one row per customer")


def _counts(n: int, shares: np.ndarray) -> np.ndarray:
    raw = n * shares
    c = np.floor(raw).astype(int)
    rest = n - c.sum()
    c[np.argsort(-(raw - c), kind="stable")[:rest]] += 1  # largest remainders
    return c


def assign(customers, arms: Sequence[str], holdout_share: float = 0.1, stratify_by: str | None = None,
           seed: int = 0, holdout_name: str = "holdout", settings: Settings | None = None) -> Assignment:
    """Seeded, reproducible assignment of customers to arms plus a no-message holdout.

    Parameters
    ----------
    customers : DataFrame (index or ``customer_id`` column) or sequence of ids
    arms : e.g. ``["A@10:00", "A@17:00", "B@10:00", "B@17:00"]`` (share equally what the
        holdout leaves)
    holdout_share : float
        Share of customers who get no message (0 for none).
    stratify_by : str, optional
        A column of ``customers`` (lifecycle stage, RFM segment): each stratum is split
        in the planned shares exactly (up to rounding), so the arms are balanced on it.
    seed : int
    settings : Settings, optional
        The result's context (default: the session's).
    """
    if isinstance(customers, pd.DataFrame):
        df = customers.reset_index() if "customer_id" not in customers.columns else customers.copy()
        df = df.rename(columns={"index": "customer_id"}) if "customer_id" not in df.columns else df
    else:
        df = pd.DataFrame({"customer_id": list(customers)})
    if df["customer_id"].duplicated().any():
        raise ValueError("customer ids must be unique")
    names = list(arms) + ([holdout_name] if holdout_share > 0 else [])
    shares = np.array([(1 - holdout_share) / len(arms)] * len(arms) + ([holdout_share] if holdout_share > 0 else []))
    rng = np.random.default_rng(seed)
    strata = df[stratify_by].astype(str) if stratify_by else pd.Series("all", index=df.index)
    keys, code = np.unique(strata.to_numpy(dtype=str), return_inverse=True)  # sorted, as before
    ids, arms_of, idx_all, grid = df["customer_id"].to_numpy(), [], [], np.zeros((len(keys), len(names)), int)
    for k in range(len(keys)):
        idx = np.flatnonzero(code == k)
        n_k = _counts(len(idx), shares)
        arms_of.append(rng.permutation(np.repeat(np.arange(len(names)), n_k)))
        idx_all.append(idx)
        grid[k] = n_k
    idx = np.concatenate(idx_all)
    table = pd.DataFrame({"customer_id": ids[idx], "arm": np.array(names, dtype=object)[np.concatenate(arms_of)],
                          "stratum": keys[code[idx]].astype(object)})
    counts = pd.DataFrame(grid, index=pd.Index(keys.astype(object), name="stratum"),
                          columns=pd.Index(names, name="arm"))
    p = [stats.chisquare(row, row.sum() * shares).pvalue if row.sum() else np.nan for row in grid]
    bal = counts.copy()
    bal["customers"] = counts.sum(axis=1)
    bal["max_share_gap"] = (counts.div(counts.sum(axis=1), axis=0) - shares).abs().max(axis=1)
    bal["chi2_p"] = p
    return Assignment(table, bal, seed, settings if settings is not None else current())


def design_summary(arms: Sequence[str], n_per_arm: int, baseline: float, price_per_message: float,
                   segments: dict | None = None, alpha: float = 0.05, power: float = 0.8,
                   holdout_name: str = "holdout") -> pd.DataFrame:
    """Arms, planned n, the detectable difference against the holdout, and the expected SMS cost."""
    mde = minimum_detectable_effect(baseline, n_per_arm, alpha, power)
    rows = []
    for a in arms:
        seg = 0 if a == holdout_name else (segments or {}).get(a, 1)
        rows.append({"arm": a, "planned_n": n_per_arm, "detectable_difference": np.nan if a == holdout_name else mde,
                     "segments_per_message": seg, "expected_cost": n_per_arm * seg * price_per_message})
    return pd.DataFrame(rows).set_index("arm")
