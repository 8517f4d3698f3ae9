"""The plan's cross-check against a CLV model: BG/NBD expected purchases of the old base.

:func:`clv_check` fits BG/NBD (:mod:`crmlab.clv`) on the orders before each year's cut and
compares the old customers' purchases it expects over the period with the plan's old
orders; :func:`crmlab.promotion.plan.analyse_promotion` runs it when asked and drops it
with a note when it fails. :func:`clv_note` says it in one sentence.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.clv import models as clv_models
from crmlab.present.formatting import pct

__all__ = ["clv_check", "clv_note"]


def clv_check(o, cuts: dict, periods: dict, target_old: float | None, last_old: float) -> dict:
    """BG/NBD expected purchases of the base existing at each cut, over each year's period
    (``target_old``: the plan's old orders, None when there is no plan).

    Wrapped by the caller: any failure drops the check with a note."""
    exp = {}
    for label in ("this_year", "last_year"):
        cut, (s, e) = cuts[label], periods[label]
        summ = clv_models.rfm_summary(o, observation_end=f"{cut - pd.Timedelta(days=1):%Y-%m-%d}", time_unit="D")
        fit = clv_models.fit_clv_models(summ, models=("bgnbd",))["bgnbd"].fitter
        a, n = float((s - cut).days), float((e - s).days + 1)
        f, r, T = (summ[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        with np.errstate(all="ignore"):
            v = (np.asarray(fit.conditional_expected_number_of_purchases_up_to_time(a + n, f, r, T), float)
                 - (np.asarray(fit.conditional_expected_number_of_purchases_up_to_time(a, f, r, T), float)
                    if a > 0 else 0.0))
        exp[label] = {"base_customers": int(len(summ)), "expected_purchases": float(np.nansum(v)),
                      "fitted_up_to": f"{cut - pd.Timedelta(days=1):%Y-%m-%d}"}
    lift = last_old / exp["last_year"]["expected_purchases"] if exp["last_year"]["expected_purchases"] > 0 else None
    model_orders = exp["this_year"]["expected_purchases"] * lift if lift else None
    return {"model": "bgnbd", "this_year": exp["this_year"],
            "last_year": {**exp["last_year"], "actual_old_orders": last_old, "actual_over_model": lift},
            "plan_old_orders": target_old, "model_old_orders": model_orders,
            "plan_over_model": target_old / model_orders - 1 if model_orders and target_old is not None else None,
            "note": ("BG/NBD counts purchase days of the customers who had bought before the cut and knows "
                     "nothing of promotions; last year's actual old orders over its prediction (the promotion's "
                     "pull) scales this year's prediction into comparable old orders")}


def clv_note(c: dict) -> str:
    """The cross-check in one sentence (for the plan's assumptions)."""
    t = c["this_year"]
    note = (f"CLV cross-check: BG/NBD fitted on the orders up to {t['fitted_up_to']} expects "
            f"{t['expected_purchases']:,.0f} purchases of the {t['base_customers']:,} existing customers over "
            "the period")
    if not c["model_old_orders"]:
        return note + "."
    note += (f"; scaled by last year's actual/model ratio ({c['last_year']['actual_over_model']:.2f}) that is "
             f"{c['model_old_orders']:,.0f} old-customer orders")
    if c["plan_old_orders"] is None:
        return note + " (no plan to compare with)."
    return note + (f" vs the plan's {c['plan_old_orders']:,.0f} ({pct(c['plan_over_model'], 1, sign=True)}).")
