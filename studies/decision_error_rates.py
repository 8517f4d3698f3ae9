"""Wrong-call rates of the SMS copy x send-time decision over planted factorial stores.

Usage: ``.venv/bin/python studies/decision_error_rates.py [--stores 200] [--n-per-arm 10000]``

Each store: 4 arms (copy A/B x 10:00/17:00) of ``n-per-arm`` customers plus a holdout of the
same size, planted extra conversions (:data:`crmlab.experiments.decision_study.SCENARIOS`),
value per campaign order 100, margin 0.3, 0.05 per billed part. A call is wrong when the
chosen arm's planted profit per message is more than 0.03 below the best arm's, or, when all
arms are planted alike, when the decision claims a detectable difference. Prints a Markdown
table (docs/methods/experiments.md carries it).
"""
from __future__ import annotations

import argparse
import time

from crmlab.experiments.decision_study import SCENARIOS, error_rates


def main() -> None:
    """Run the study and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stores", type=int, default=200)
    p.add_argument("--n-per-arm", type=int, default=10000)
    p.add_argument("--seed0", type=int, default=1000)
    p.add_argument("--scenarios", default="", help="comma-separated scenario numbers (1-based; default all)")
    a = p.parse_args()
    t0 = time.time()
    print(f"{a.stores} stores per scenario, {a.n_per_arm:,} customers per arm, seeds {a.seed0}..\n")
    print("| scenario | stores | wrong calls | rate | 95% upper bound | factor view used |")
    print("|---|---:|---:|---:|---:|---:|")
    names = list(SCENARIOS)
    pick = [names[int(i) - 1] for i in a.scenarios.split(",") if i] or names
    for r in error_rates(a.stores, a.n_per_arm, a.seed0, scenarios=pick):
        print(f"| {r['scenario']} | {r['stores']} | {r['wrong']} | {100 * r['wrong_rate']:.1f}% | "
              f"{100 * r['upper_95']:.1f}% | {100 * r['factor_view']:.0f}% |", flush=True)
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
