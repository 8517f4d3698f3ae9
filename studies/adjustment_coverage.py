"""A/A coverage of the readout's regression adjustment (Lin 2013, HC2) and of the readout's
interval after re-randomisation (issue 28, "Must show").

1. **Lin on Hillstrom-shaped customers**: populations shaped like Hillstrom's MineThatData
   e-mail test (64,000 customers; recency 1-12 months; past-year spend from $29.99, skewed;
   newbie flag; about 1% convert; spend of a converter heavy-tailed, log-normal). Each
   population is split at random many times into a messaged arm (2/3) and a holdout (1/3)
   with no effect at all (A/A), and Lin's interacted OLS with HC2 errors
   (:func:`crmlab.experiments.precision.lin_many`, equal to
   :func:`crmlab.experiments.cuped.cuped_lin`) on past spend, recency and newbie gives a 95%
   interval for conversion and revenue per customer. Coverage = share of splits whose interval
   holds 0 (a third outcome, revenue plus 5% of last year's spend, is one the covariates
   predict, so the adjustment narrows the interval); also for the interval the readout reports (adjusted when it narrows the raw Welch
   interval, else raw: :func:`crmlab.experiments.precision.adjusted_effects`' rule).
2. **Re-randomisation** (Morgan & Rubin 2012): Hillstrom-shaped populations of 20,000 assigned
   with :func:`crmlab.experiments.balance.design_experiment` (``rerandomize``, max |SMD| below a
   threshold) under a new seed each time, and, beside it, with one draw of the same design;
   coverage of the raw Welch interval (conservative in theory under re-randomisation) and of
   Lin's (as under one draw: Li, Ding & Rubin 2018) for an outcome the covariates predict.

Prints each coverage with its 95% Clopper-Pearson interval.

    .venv/bin/python studies/adjustment_coverage.py [--populations 10] [--splits 200] [--customers 64000]
                                                    [--rerandomized 200]   (--populations 0: only part 2)
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import stats

from crmlab.experiments.balance import design_experiment
from crmlab.experiments.precision import lin_many
from crmlab.experiments.synthetic import hillstrom_like

Z95 = stats.norm.isf(0.025)


def welch_many(y: np.ndarray, treat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Difference of means and its unpooled standard error for each row of ``treat``."""
    out = []
    for M in (treat.astype(float), (~treat).astype(float)):
        n = M.sum(axis=1)
        m = M @ y / n
        v = (M @ y ** 2 - n * m ** 2) / (n - 1)
        out.append((m, v / n))
    return out[0][0] - out[1][0], np.sqrt(out[0][1] + out[1][1])


def clopper(k: int, n: int) -> tuple[float, float]:
    lo = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
    hi = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return float(lo), float(hi)


def aa_lin(populations: int, splits: int, customers: int, share: float = 2 / 3) -> pd.DataFrame:
    """Coverage of 0 by Lin's and by the reported interval over A/A splits."""
    rows = []
    for p in range(populations):
        x, conv, rev = hillstrom_like(customers, 1000 + p)
        rng = np.random.default_rng(2000 + p)
        T = np.array([rng.permutation(customers) < round(share * customers) for _ in range(splits)])
        carry = rev + 0.05 * x[:, 0]  # revenue plus 5% of last year's spend bought again: the covariates matter
        for metric, y in (("conversion", conv), ("revenue", rev), ("revenue+carry", carry)):
            est, se = lin_many(y, x, T)
            raw, raw_se = welch_many(y, T)
            lin_cover = np.abs(est) <= Z95 * se
            raw_cover = np.abs(raw) <= stats.t.isf(0.025, customers) * raw_se
            reported = np.where(se < raw_se, lin_cover, raw_cover)  # adjusted only when it narrows
            rows.append({"population": p, "metric": metric, "splits": splits, "lin": int(lin_cover.sum()),
                         "reported": int(reported.sum()), "raw": int(raw_cover.sum()),
                         "conversion_rate": conv.mean(), "variance_reduction": float(1 - np.mean(se ** 2 / raw_se ** 2))})
    return pd.DataFrame(rows)


def aa_rerandomized(seeds: int, customers: int, threshold: float, draws: int, populations: int = 5) -> dict:
    """Coverage of the raw and Lin intervals when the assignment is re-randomised, beside one
    draw of the same design (same populations, seeds apart): Hillstrom-shaped populations with an
    outcome the covariates predict (revenue plus 5% of last year's spend)."""
    out = {k: 0 for k in ("raw", "lin", "raw_one", "lin_one")}
    worst, one_smd, used, ratio = [], [], [], []
    per = -(-seeds // populations)
    for p in range(populations):
        x, conv, rev = hillstrom_like(customers, 77 + p)
        y = rev + 0.05 * x[:, 0]
        feats = pd.DataFrame(x, columns=["history", "recency", "newbie"], index=[f"c{i}" for i in range(customers)])
        T, T1 = [], []
        for s in range(per):
            d = design_experiment(feats, ["A"], holdout=1 / 3, seed=10_000 * s, rerandomize=draws, threshold=threshold)
            d1 = design_experiment(feats, ["A"], holdout=1 / 3, seed=10_000 * s + 5_000)
            for dd, into in ((d, T), (d1, T1)):
                into.append((dd["assignment"].set_index("customer_id")["arm"].reindex(feats.index) == "A").to_numpy())
            worst.append(d["max_abs_smd"])
            one_smd.append(d1["max_abs_smd"])
            used.append(d["rerandomized"]["draws"])
        for tag, M in (("", np.array(T)), ("_one", np.array(T1))):
            est, se = lin_many(y, x, M)
            raw, raw_se = welch_many(y, M)
            out["raw" + tag] += int((np.abs(raw) <= Z95 * raw_se).sum())
            out["lin" + tag] += int((np.abs(est) <= Z95 * se).sum())
            if not tag:
                ratio.append(np.std(raw) / np.mean(raw_se))
    return {"seeds": per * populations, "populations": populations, "customers": customers, "threshold": threshold,
            "mean_max_abs_smd_one_draw": float(np.mean(one_smd)), "mean_max_abs_smd_rerandomized": float(np.mean(worst)),
            "mean_draws": float(np.mean(used)), **out, "raw_sd_over_se": float(np.mean(ratio))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--populations", type=int, default=10)
    ap.add_argument("--splits", type=int, default=200)
    ap.add_argument("--customers", type=int, default=64_000)
    ap.add_argument("--rerandomized", type=int, default=200, help="seeds of the re-randomisation study")
    a = ap.parse_args()
    t0 = time.time()
    r = aa_lin(a.populations, a.splits, a.customers) if a.populations else pd.DataFrame(
        columns=["metric", "splits", "lin", "reported", "raw", "conversion_rate", "variance_reduction"])
    if a.populations:
        print(f"A/A on Hillstrom-shaped customers: {a.populations} populations x {a.splits} splits, "
              f"{a.customers:,} customers, 2/3 messaged vs 1/3 holdout; conversion {r['conversion_rate'].mean():.2%}")
    for metric, g in r.groupby("metric", sort=False):
        n = int(g["splits"].sum())
        for col in ("lin", "reported", "raw"):
            k = int(g[col].sum())
            lo, hi = clopper(k, n)
            print(f"  {metric:13s} {col:8s} coverage {k / n:.2%} [{lo:.2%}, {hi:.2%}] over {n} splits"
                  + (f"; mean variance reduction {g['variance_reduction'].mean():.1%}" if col == "lin" else ""))
    rr = aa_rerandomized(a.rerandomized, 20_000, 0.01, 200)
    print(f"re-randomised designs: {rr['seeds']} seeds over {rr['populations']} populations, {rr['customers']:,} "
          f"customers, max |SMD| < "
          f"{rr['threshold']:g} (mean {rr['mean_draws']:.1f} draws): mean max |SMD| {rr['mean_max_abs_smd_one_draw']:.4f} "
          f"in one draw, {rr['mean_max_abs_smd_rerandomized']:.4f} re-randomised")
    for col in ("raw", "lin", "raw_one", "lin_one"):
        lo, hi = clopper(rr[col], rr["seeds"])
        what = "re-randomised" if not col.endswith("_one") else "one draw     "
        print(f"  {col.split('_')[0]:4s} {what} coverage {rr[col] / rr['seeds']:.2%} [{lo:.2%}, {hi:.2%}]")
    print(f"  raw estimate's spread / its mean standard error: {rr['raw_sd_over_se']:.3f} (below 1: conservative)")
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
