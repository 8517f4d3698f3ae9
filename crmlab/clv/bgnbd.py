"""BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): purchases at a
gamma-distributed Poisson rate; after each repeat purchase the customer drops out with a
beta-distributed probability. One-time buyers stay alive by construction."""
from __future__ import annotations

import numpy as np

from crmlab.clv import likelihoods as lk
from crmlab.clv.base import PurchaseModel
from crmlab.present.result import result

__all__ = ["BetaGeoModel", "purchase_starts"]


def purchase_starts(rows: lk.Rows, pareto: bool = False) -> list:
    """The three starting points every purchase model tries (r, α, then the dropout pair)."""
    rate = max(float(np.dot(rows.w, rows.x)) / max(float(np.dot(rows.w, rows.T)), 1e-9), 1e-6)
    tmax = max(float(rows.T.max()), 1e-6)
    return [("default", [1.0, 1.0 / rate, 1.0, 1.0 if not pareto else tmax]),
            ("other starting values", [0.1, 0.1 * tmax, 0.1, 0.1 * (1 if not pareto else tmax)]),
            ("third starting values", [0.5, 0.5 / rate, 2.0, 5.0 if not pareto else 0.5 * tmax])]


@result(frozen=False)
class BetaGeoModel(PurchaseModel, model="bgnbd"):
    """BG/NBD, parameters ``r``, ``alpha`` (purchase rate) and ``a``, ``b`` (dropout).

    Examples
    --------
    >>> m = BetaGeoModel()            # doctest: +SKIP
    >>> m.fit(summary).summary        # doctest: +SKIP
    """

    name: str = "bgnbd"

    @staticmethod
    def starts(rows: lk.Rows) -> list:
        return purchase_starts(rows)
