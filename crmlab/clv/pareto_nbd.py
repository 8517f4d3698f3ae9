"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987): purchases at a gamma-distributed Poisson
rate while alive; lifetimes exponential with a gamma-distributed dropout rate."""
from __future__ import annotations

from crmlab.clv import likelihoods as lk
from crmlab.clv.base import PurchaseModel
from crmlab.clv.bgnbd import purchase_starts
from crmlab.present.result import result

__all__ = ["ParetoNBDModel"]


@result(frozen=False)
class ParetoNBDModel(PurchaseModel, model="pareto_nbd"):
    """Pareto/NBD, parameters ``r``, ``alpha`` (purchase rate) and ``s``, ``beta`` (dropout rate)."""

    name: str = "pareto_nbd"

    @staticmethod
    def starts(rows: lk.Rows) -> list:
        return purchase_starts(rows, pareto=True)
