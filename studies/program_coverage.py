"""Coverage of the programme readout's intervals over simulated programme stores (issue 28,
"Must show": the estimate's interval covers the planted cumulative effect at its nominal rate).

Each store is :func:`crmlab.simulate.program.simulate_program` with its own seed and salt
(the sample's size by default: 20,000 customers, 5% held out, 12 months, campaigns that choose
recent buyers, opt-outs); :func:`crmlab.experiments.program.program_readout` reads it out at the
session's interval level (90%). The truth is :func:`crmlab.simulate.program.program_truth`
(closed form for the holdout, the model on 400,000 customers for the programme). Prints, per
figure, how often the interval covers the truth (95% Clopper-Pearson interval of that share),
the mean estimate against the truth and the mean half-width.

    .venv/bin/python studies/program_coverage.py [--stores 200] [--customers 20000] [--share 0.05]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from scipy import stats

from crmlab.experiments.program import program_readout
from crmlab.settings import current
from crmlab.simulate.program import ProgramSpec, program_truth, simulate_program

FIGURES = (("cumulative repurchase", "cumulative_diff", "cumulative_ci_low", "cumulative_ci_high"),
           ("cumulative revenue/customer", "cumulative_revenue_diff", "cumulative_revenue_ci_low",
            "cumulative_revenue_ci_high"),
           ("repurchase in the month", "diff", "ci_low", "ci_high"),
           ("revenue in the month", "revenue_diff", "revenue_ci_low", "revenue_ci_high"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stores", type=int, default=200)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--share", type=float, default=0.05)
    ap.add_argument("--months", type=int, default=12)
    a = ap.parse_args()
    t0 = time.time()
    base = ProgramSpec(n_customers=a.customers, holdout_share=a.share, months=a.months)
    truth = {r["month"]: r for r in program_truth(base)["months"]}
    show = sorted({1, 3, 6, a.months} & set(truth))
    rec = {(m, f[0]): [] for m in show for f in FIGURES}
    for s in range(a.stores):
        spec = replace(base, seed=1000 + s, salt=f"study-{s}")
        o, sends = simulate_program(spec)
        r = program_readout(o, sends, holdout_share=spec.holdout_share, salt=spec.salt, months=a.months)
        rows = {m["month"]: m for m in r.months}
        for m in show:
            for name, est, lo, hi in FIGURES:
                x = rows[m]
                rec[(m, name)].append((x[lo] <= truth[m][est] <= x[hi], x[est], (x[hi] - x[lo]) / 2))
    level = current().interval_level
    print(f"{a.stores} stores, {a.customers:,} customers, {a.share:.0%} held out, {a.months} months; "
          f"nominal {level:.0%} intervals")
    for (m, name), v in rec.items():
        k, n = sum(x[0] for x in v), len(v)
        lo = stats.beta.ppf(0.025, k, n - k + 1) if k else 0.0
        hi = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
        est = np.mean([x[1] for x in v])
        print(f"  month {m:>2} {name:28s} coverage {k / n:.1%} [{lo:.1%}, {hi:.1%}]  mean estimate "
              f"{est:.4g} vs truth {truth[m][FIGURES[[f[0] for f in FIGURES].index(name)][1]]:.4g}, "
              f"mean half-width {np.mean([x[2] for x in v]):.4g}")
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
