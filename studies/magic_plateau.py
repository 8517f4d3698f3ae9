"""How often the plateau rule finds the planted magic number (M = 3), shown or indicated, and how often it
claims a plateau that is not there.

Part 1, recovery: per store size, the (magic number, level) found over seeds of the simulated store
(heterogeneous propensity, planted rates 30%, 45%, then 62%).
Part 2, false plateaus: seeded binomial draws of constructed curves at the at-risk counts of the
20,000- and 50,000-customer stores (tests/test_magic_plateau.py), counting the claims that are wrong
by the curve's own truth (a plateau that includes two order counts 3 points or more apart, or a k
where the rate still rises).

Run: ``.venv/bin/python studies/magic_plateau.py [sizes...] [seeds]`` (part 1; default 20,000 50,000
100,000 and 20 seeds) or ``.venv/bin/python studies/magic_plateau.py false [draws]`` (part 2).
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_magic import _paid_orders, curve_of  # noqa: E402
from test_magic_plateau import STORE_20K, STORE_50K  # noqa: E402

from crmlab.analyses.magic import magic_number, repurchase_curve  # noqa: E402
from crmlab.simulate.store import StoreSpec, simulate_store  # noqa: E402

#: constructed curves (k = 1..10) and which answers are wrong for each: claim(M, K) -> bool
CURVES = {
    "flat 62 (truth M = 3)": ([0.30, 0.45] + [0.62] * 8, lambda m, k: m is not None and m < 3),
    "62/62/65 then 65 (M = 5; 3 and 4 are 3 pts from 5)": ([0.30, 0.45, 0.62, 0.62] + [0.65] * 6,
                                                          lambda m, k: m in (3, 4) and k >= 5),
    "62/62/65 then 63.5 (no plateau over 3..5)": ([0.30, 0.45, 0.62, 0.62, 0.65] + [0.635] * 5,
                                                   lambda m, k: m in (3, 4) and k >= 5),
    "60/62/64 then 64 (not from 3)": ([0.30, 0.45, 0.60, 0.62] + [0.64] * 6, lambda m, k: m == 3 and k >= 5),
    "62 x3 then rising 58..70": ([0.30, 0.45, 0.62, 0.62, 0.62, 0.58, 0.61, 0.64, 0.67, 0.70],
                                 lambda m, k: m is not None),
}


def recovery(sizes=(20_000, 50_000, 100_000), seeds: int = 20) -> None:
    for size in sizes:
        found = []
        for seed in range(seeds):
            orders, _, truth, _ = simulate_store(StoreSpec(seed=seed, n_customers=size))
            m = magic_number(repurchase_curve(_paid_orders(orders)))
            found.append((m.magic_number, m.level))
        ok = sum(f[0] == 3 for f in found)
        print(f"{size:>7,} customers, seeds 0..{seeds - 1}: M = 3 on {ok} ({100 * ok / seeds:.0f}%), "
              f"found {dict(Counter(found))}", flush=True)


def false_plateaus(draws: int = 500) -> None:
    rng = np.random.default_rng(2026)
    for store, n in (("20k", np.array(STORE_20K)), ("50k", np.array(STORE_50K))):
        for name, (rates, wrong) in CURVES.items():
            got = Counter()
            bad = 0
            for _ in range(draws):
                m = magic_number(curve_of(rng.binomial(n, rates), n))
                got[(m.magic_number, m.level)] += 1
                bad += wrong(m.magic_number, m.through_k or 0)
            print(f"{store} {name}: wrong {bad}/{draws} ({100 * bad / draws:.1f}%), {dict(got.most_common(4))}",
                  flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["false"]:
        false_plateaus(int(sys.argv[2]) if len(sys.argv) > 2 else 500)
    else:
        args = [int(a) for a in sys.argv[1:]]
        recovery(tuple(args[:-1]) or (20_000, 50_000, 100_000), args[-1] if args else 20)
