"""Big promotions (大促) in the simulated store: repeat orders pulled into each promotion's
warm-up or onto its day, and the figures truth.json records for each promotion."""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.simulate.spec import StoreSpec

__all__ = ["promotion_pull", "promotion_truth"]


def promotion_pull(paid: pd.DataFrame, spec: StoreSpec) -> tuple[pd.DataFrame, dict]:
    """Pull repeat orders due in the ``promotion_pull_days`` after each promotion day into
    its warm-up or onto the day, keeping each gap on its side of ``window_days``."""
    rng = np.random.default_rng([spec.seed, 1111])
    idx = paid.sort_values(["cust", "k"], kind="stable").index
    t = paid.loc[idx, "order_time"].to_numpy().copy()
    cust, k = paid.loc[idx, "cust"].to_numpy(), paid.loc[idx, "k"].to_numpy()
    has_next = np.r_[cust[1:] == cust[:-1], False]
    day, hour = np.timedelta64(1, "D"), np.timedelta64(1, "h")
    W = np.timedelta64(spec.window_days, "D")
    start, end = pd.Timestamp(spec.start), pd.Timestamp(spec.end)
    out: dict = {}
    for name, md, share in spec.promotions:
        for year in range(start.year, end.year + 1):
            D = pd.Timestamp(f"{year}-{md}")
            if D - pd.Timedelta(days=spec.promotion_warm_up_days) < start or D + pd.Timedelta(days=31) > end:
                continue
            lo = np.datetime64(D + pd.Timedelta(days=1))
            cand = np.flatnonzero((t >= lo) & (t < lo + spec.promotion_pull_days * day) & (k >= 2))
            pull = rng.uniform(size=len(cand)) < share
            on_day = rng.uniform(size=len(cand)) < spec.promotion_day_share
            back = rng.integers(1, spec.promotion_warm_up_days + 1, len(cand))
            secs = rng.uniform(8 * 3600, 24 * 3600, len(cand))
            n = {"pulled_to_day": 0, "pulled_to_warm_up": 0, "kept_by_gap_rule": 0}
            for j, i in enumerate(cand):
                if not pull[j]:
                    continue
                new = np.datetime64(D - pd.Timedelta(days=0 if on_day[j] else int(back[j]))
                                    + pd.Timedelta(seconds=float(secs[j])))
                ok = new - t[i - 1] > hour and (t[i] - t[i - 1] <= W or new - t[i - 1] > W + day)
                if has_next[i]:
                    ok = ok and (t[i + 1] - t[i] > W or t[i + 1] - new <= W - day)
                if ok:
                    t[i] = new
                    n["pulled_to_day" if on_day[j] else "pulled_to_warm_up"] += 1
                else:
                    n["kept_by_gap_rule"] += 1
            out.setdefault(name, {})[str(year)] = {"date": f"{D:%Y-%m-%d}", **n}
    paid = paid.copy()
    paid.loc[idx, "order_time"] = t
    return paid, out


def promotion_truth(allo: pd.DataFrame, spec: StoreSpec, pulls: dict) -> dict:
    """Pulls and each promotion's warm-up and day figures (paid orders, new = first paid
    order on or after D-71, the default period's start), computed here with plain pandas."""
    p = allo[allo["status"] == "paid"]
    first = p.groupby("cust")["order_time"].min().dt.normalize()
    day = p["order_time"].dt.normalize()
    out = {"pull_days": spec.promotion_pull_days, "warm_up_days": spec.promotion_warm_up_days,
           "day_share": spec.promotion_day_share, "first_order_weights": {"11-10..11-12": 6.0, "06-17..06-18": 3.0}}
    for name, md, share in spec.promotions:
        years = {}
        for year, n in pulls.get(name, {}).items():
            D = pd.Timestamp(n["date"])
            new = first.reindex(p["cust"]).to_numpy() >= np.datetime64(D - pd.Timedelta(days=71))
            figs = {}
            for ph, (a, b) in {"warm_up": (-10, -1), "day": (0, 0)}.items():
                m = ((day >= D + pd.Timedelta(days=a)) & (day <= D + pd.Timedelta(days=b))).to_numpy()
                figs[ph] = {"orders": int(m.sum()), "sales": round(float(p["amount"].to_numpy()[m].sum()), 2),
                            "new_buyers": int(p["cust"][m & new].nunique()),
                            "old_buyers": int(p["cust"][m & ~new].nunique()),
                            "old_orders": int((m & ~new).sum()),
                            "old_sales": round(float(p["amount"].to_numpy()[m & ~new].sum()), 2)}
            years[year] = {**n, **figs}
        out[name] = {"month_day": md, "pull_share": share, "years": years}
    return out
