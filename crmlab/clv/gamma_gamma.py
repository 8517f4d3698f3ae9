"""Gamma-Gamma (Fader, Hardie & Lee 2005b): the spend per purchase of repeat customers, gamma
with a gamma-distributed scale; assumes spend is independent of purchase frequency."""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.clv import likelihoods as lk
from crmlab.clv.base import FittedModel, failed, fit_rows
from crmlab.present.result import result

__all__ = ["GammaGammaModel", "fit_gamma_gamma", "MIN_REPEAT_CUSTOMERS"]

#: the fewest repeat customers (frequency > 0, positive spend) Gamma-Gamma is fitted to: below
#: it the spend model fails and no CLV in money is computed (04 is then skipped by the runner)
MIN_REPEAT_CUSTOMERS = 10


@result(frozen=False)
class GammaGammaModel(FittedModel, model="gamma_gamma"):
    """Gamma-Gamma, parameters ``p``, ``q``, ``v``; fitted on repeat customers with positive spend."""

    name: str = "gamma_gamma"

    @staticmethod
    def starts(rows: lk.Rows) -> list:
        return [("default", [1.0, 1.0, float(np.average(rows.tx, weights=rows.w))]), ("other", [5.0, 3.0, 50.0]),
                ("lifetimes' default", [1.0, 1.0, 1.0])]

    @classmethod
    def fit_summary(cls, summary: pd.DataFrame, penalizer: float = 0.0, suffix: str = "") -> FittedModel:
        """Fit to the repeat customers of an RFM summary; ``failed`` with fewer than 10 of them,
        or when q <= 1 (no finite mean spend)."""
        f, m = f"frequency{suffix}", f"monetary_value{suffix}"
        settings = summary.attrs.get("settings")
        rep = summary[(summary[f] > 0) & (summary[m] > 0)]
        if len(rep) < MIN_REPEAT_CUSTOMERS:
            return failed("gamma_gamma", f"needs at least {MIN_REPEAT_CUSTOMERS} repeat customers with positive spend; "
                          f"found {len(rep)}",
                          (), len(rep), 0, settings)
        rows = lk.Rows.from_customers(rep[f].to_numpy(float), rep[m].to_numpy(float), np.zeros(len(rep)))[0]
        gg = fit_rows("gamma_gamma", rows, len(rep), cls.starts(rows), penalizer, settings=settings)
        if gg.ok and gg.params_["q"] <= 1:
            return failed("gamma_gamma", f"q = {gg.params_['q']:.3g} <= 1: the fitted spend distribution has no "
                          "finite mean", gg.attempts, len(rep), len(rows), settings)
        return gg


def fit_gamma_gamma(summary: pd.DataFrame, penalizer: float = 0.0, suffix: str = "") -> FittedModel:
    """Gamma-Gamma spend model on repeat customers (frequency > 0, monetary value > 0).

    ``failed`` with fewer than 10 such customers, or when q <= 1 (no finite mean spend)."""
    return GammaGammaModel.fit_summary(summary, penalizer, suffix)
