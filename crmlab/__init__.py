"""crmlab: old-customer CRM analytics for online stores.

Layers, top to bottom: :mod:`crmlab.io` (loading, validation, the ledger) ->
:mod:`crmlab.engine` (orders in DuckDB or Spark via Ibis; the shared aggregates) -> analyses
(:mod:`~crmlab.retention`, :mod:`~crmlab.repurchase`, :mod:`~crmlab.lifecycle`,
:mod:`~crmlab.rfm`, :mod:`~crmlab.magic`, :mod:`~crmlab.clv`, :mod:`~crmlab.experiments`)
-> :mod:`crmlab.figures` -> notebooks -> :mod:`crmlab.report` (the papermill runner).
"""
__version__ = "0.1.0"

from crmlab.io import CrmlabInputError, Ledger, load_orders, load_sends  # noqa: E402

__all__ = ["__version__", "CrmlabInputError", "Ledger", "load_orders", "load_sends"]
