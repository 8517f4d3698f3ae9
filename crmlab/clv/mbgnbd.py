"""MBG/NBD (Batislam, Denizel & Filiztekin 2007): BG/NBD with a dropout chance at the first
purchase too, so one-time buyers can drop out."""
from __future__ import annotations

from crmlab.clv import likelihoods as lk
from crmlab.clv.base import PurchaseModel
from crmlab.clv.bgnbd import purchase_starts
from crmlab.present.result import result

__all__ = ["ModifiedBetaGeoModel"]


@result(frozen=False)
class ModifiedBetaGeoModel(PurchaseModel, model="mbgnbd"):
    """MBG/NBD, parameters ``r``, ``alpha`` (purchase rate) and ``a``, ``b`` (dropout)."""

    name: str = "mbgnbd"

    @staticmethod
    def starts(rows: lk.Rows) -> list:
        return purchase_starts(rows)
