"""Study: the lead-in on exports cut from simulated stores, and on-or-after retention with a horizon.

Prints, per seed:

* lead-in: a store simulated from 2022-01-01 to 2025-12-31, its export cut to start on
  2024-01-01 (two years). Whether the cut export is detected as truncated; the default
  lead-in; the new buyers per month of 2025 in the cut export (with the lead-in) against the
  full store's (truth: first paid order ever in that month), and without the lead-in the
  first month's "new" buyers against the truth; the share of the cut export's "new" buyers
  of 2025 who in truth bought before 2024 (the lead-in's residual error) for lead-ins of
  0, 90, 182 and 365 days (computed in pandas from the simulated orders, not by crmlab).
* retention: on a stationary store (no promotion pulls, no campaign effect), day-30
  on-or-after retention by monthly cohort with a 180-day horizon (cohorts with full
  follow-up) and under the old rule (orders up to the observation end): the chi-square
  homogeneity p-value across cohorts for each.

Run: ``.venv/bin/python benchmarks/study_lead_in_retention.py [SEEDS]`` (default 5 seeds).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

import crmlab
from crmlab.analyses.overview import monthly_overview
from crmlab.analyses.retention import retention_table
from crmlab.simulate.store import StoreSpec, simulate_store

CUT = pd.Timestamp("2024-01-01")


def paid_frame(orders: pd.DataFrame) -> pd.DataFrame:
    """Paid orders (one row per order) of a simulated export, in pandas."""
    paid = orders[orders["status"].isin(["paid", "交易成功"])]
    return paid.groupby("order_id").agg(customer_id=("customer_id", "first"),
                                        order_time=("order_time", "first")).reset_index()


def lead_in_study(seed: int, n: int = 6000) -> dict:
    orders, *_ = simulate_store(StoreSpec(n_customers=n, seed=seed, start="2022-01-01"))
    orders["order_time"] = pd.to_datetime(orders["order_time"])
    p = paid_frame(orders)
    first_ever = p.groupby("customer_id")["order_time"].min()
    with tempfile.TemporaryDirectory() as d:
        cut_csv = Path(d) / "cut.csv"
        orders[orders["order_time"] >= CUT].to_csv(cut_csv, index=False)
        o, led = crmlab.load(str(cut_csv))
        o0, _ = crmlab.load(str(cut_csv), lead_in_days=0)
        m_cut, m0 = monthly_overview(o), monthly_overview(o0)
    truth = first_ever[first_ever >= CUT].dt.to_period("M").value_counts().sort_index()
    months = [m for m in m_cut.index if not m_cut.at[m, "lead_in"]]
    excess = (m_cut.loc[months, "new_buyers"] - truth.reindex(months).fillna(0)).sum()
    out = {"seed": seed, "truncated": led.truncation["left_truncated"], "lead_in_days": led.truncation["lead_in_days"],
           "new_2025_cut": int(m_cut.loc[months, "new_buyers"].sum()), "new_2025_truth": int(truth.reindex(months).sum()),
           "excess_share": excess / m_cut.loc[months, "new_buyers"].sum(),
           "first_month_new_without": int(m0["new_buyers"].iloc[0]),
           "first_month_new_truth": int(truth.iloc[0])}
    pc = p[p["order_time"] >= CUT]
    first_cut = pc.groupby("customer_id")["order_time"].min()
    for days in (0, 90, 182, 365):
        hs = CUT + pd.Timedelta(days=days)
        new = first_cut[first_cut >= hs].index
        out[f"misclassified_{days}d"] = float((first_ever.loc[new] < CUT).mean())
    return out


def stationary_spec(seed: int, n: int = 8000) -> StoreSpec:
    return StoreSpec(n_customers=n, seed=seed, promotions=(), extra_conversion=(0.0, 0.0, 0.0, 0.0))


def old_rule(p: pd.DataFrame, end: pd.Timestamp, day: int = 30) -> pd.DataFrame:
    """The old on-or-after rule by hand: any paid order on day >= ``day`` up to the end, among
    customers whose day ``day`` is complete."""
    first = p.groupby("customer_id")["order_time"].min().rename("first")
    j = p.join(first, on="customer_id")
    j["day"] = (j["order_time"].dt.normalize() - j["first"].dt.normalize()).dt.days
    hit = j.groupby("customer_id")["day"].max() >= day
    observed = (end.normalize() - pd.Timedelta(days=1) - first.dt.normalize()).dt.days >= day
    df = pd.DataFrame({"cohort": first.dt.to_period("M"), "hit": hit.reindex(first.index), "obs": observed})
    df = df[df["obs"]]
    return df.groupby("cohort")["hit"].agg(["sum", "count"])


def chi2_p(retained: np.ndarray, eligible: np.ndarray) -> float:
    table = np.vstack([retained, eligible - retained])
    return float(chi2_contingency(table)[1])


def retention_study(seed: int) -> dict:
    orders, *_ = simulate_store(stationary_spec(seed))
    orders["order_time"] = pd.to_datetime(orders["order_time"])
    o, led = crmlab.load(orders)
    t = retention_table(o, cohort="month", days=(30,), kind="on_or_after", horizon_days=180)
    full = [c for c in t.rates.index if c != "all cohorts" and t.eligible.at[c, 30] == t.size[c]]
    new_p = chi2_p(t.retained.loc[full, 30].to_numpy(), t.eligible.loc[full, 30].to_numpy())
    old = old_rule(paid_frame(orders), pd.Timestamp(led.observation_end))
    old = old[old["count"] > 0]
    old_p = chi2_p(old["sum"].to_numpy(), old["count"].to_numpy())
    rates = t.rates.loc[full, 30]
    return {"seed": seed, "cohorts": len(full), "horizon_rate_min": rates.min(), "horizon_rate_max": rates.max(),
            "horizon_chi2_p": new_p, "old_rate_first": old["sum"].iloc[0] / old["count"].iloc[0],
            "old_rate_last": old["sum"].iloc[-1] / old["count"].iloc[-1], "old_chi2_p": old_p}


def main(seeds: int = 5) -> None:
    pd.set_option("display.width", 200)
    print("lead-in (store from 2022-01-01, export cut at 2024-01-01):")
    print(pd.DataFrame([lead_in_study(s) for s in range(seeds)]).round(4).to_string(index=False))
    print("\non-or-after day-30 retention, stationary store, horizon 180 vs the old rule:")
    print(pd.DataFrame([retention_study(s) for s in range(seeds)]).round(4).to_string(index=False))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
