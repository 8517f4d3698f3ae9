"""Study: does a store that ran as planted reach 100% of its promotion targets within the
attainment interval, and how often (coverage of 100% by the interval, per phase × type × metric)?

Stores from crmlab's own simulator (``crmlab.simulate``), fully covered: they open on
2022-01-01, so every growth window of the 2025 Double 11 plan lies inside the export. The
store "runs as planted": the same promotion pull every year, acquisition growing as the
simulator plants it (``_day_weights``: 1.0 → 1.6 over the export), and no campaign effect
(``extra_conversion`` 0: the SMS campaign of 2025-11-01 would add orders last year did not
have). Also shown: the sample's layout (opening 2024-01-01), where the plan is withheld.

Run: ``.venv/bin/python studies/promotion_attainment.py [n_stores] [n_customers]``
(defaults 40 and 10,000; about 3 s a store on one core). Prints the coverage table.
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from crmlab.ingest.readers import load_orders
from crmlab.promotion.plan import analyse_promotion
from crmlab.simulate.store import StoreSpec, simulate_store

METRICS = ("buyers", "orders", "sales", "aov", "orders_per_buyer")


def one_store(seed: int, n_customers: int, start: str = "2022-01-01") -> pd.DataFrame:
    """The review of a planted store's 2025 Double 11 (targets from estimated growth)."""
    spec = StoreSpec(n_customers=n_customers, seed=seed, start=start, extra_conversion=(0.0, 0.0, 0.0, 0.0))
    orders = simulate_store(spec)[0]
    r = analyse_promotion(load_orders(orders, observation_end="2025-12-31")[0], date="2025-11-11", clv_check=False)
    rv = r.review
    rv = rv[rv.index.get_level_values("metric").isin(METRICS)]
    return rv.assign(seed=seed, covers=(rv["attainment_low"] <= 1) & (1 <= rv["attainment_high"]))


def main(n_stores: int = 40, n_customers: int = 10_000) -> pd.DataFrame:
    rows = pd.concat([one_store(s, n_customers) for s in range(n_stores)])
    g = rows.groupby(level=["phase", "type", "metric"], sort=False)
    out = pd.DataFrame({"coverage": g["covers"].mean(), "median_attainment": g["attainment"].median(),
                        "median_half_width": g.apply(lambda f: ((f["attainment_high"] - f["attainment_low"]) / 2)
                                                     .median())})
    pd.set_option("display.width", 160)
    print(f"{n_stores} stores × {n_customers:,} customers, 90% attainment intervals; share covering 100%:")
    print(out.round(3).to_string())
    print("overall coverage:", round(float(rows["covers"].mean()), 3))
    return out


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
