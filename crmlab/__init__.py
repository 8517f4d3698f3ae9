"""crmlab: old-customer CRM analytics for online stores.

In a notebook, one import::

    import crmlab

    crmlab.set_engine("duckdb")                  # or your SparkSession; once per notebook
    crmlab.set_timezone("Asia/Shanghai")         # the store's time zone; once
    orders, ledger = crmlab.load("orders.csv")   # validated; every input row accounted for
    crmlab.retention_table(orders)               # results show themselves; .plot(ax=None)
    curve = crmlab.repurchase_curve(orders)
    crmlab.magic_number(curve)
    clv = crmlab.fit_clv(orders)
    clv.model.print_summary()
    crmlab.analyse_experiment(crmlab.load_sends("sends.csv")[0], orders)

The API (``crmlab.__all__``, documented in :mod:`crmlab.api`): loading (:func:`load_orders`,
:func:`load_sends`, :func:`load`), settings (:func:`connect`, :func:`set_engine`,
:func:`get_engine`, :func:`set_timezone`, :func:`get_timezone`), retention and repurchase
(:func:`retention_table`, :func:`period_repurchase_rate`, :func:`next_period_repurchase`),
the magic number (:func:`repurchase_curve`, :func:`magic_number`), customers
(:func:`lifecycle_stages`, :func:`rfm_scores`, :func:`segment_summary`), CLV
(:func:`rfm_summary`, :func:`fit_clv`), experiments (:func:`analyse_experiment`,
:func:`sample_size`), promotions (:func:`promotion_review`), and :class:`Ledger`,
:class:`CrmlabInputError`. Names resolve on first use, so ``import crmlab`` loads neither
the engine (Ibis, DuckDB) nor the statistics (statsmodels, SciPy).

Layers, bottom to top (a module imports only its own layer or below; ``tests/test_architecture.py``):
:mod:`crmlab.schema`, :mod:`crmlab.settings`, :mod:`crmlab.privacy` -> :mod:`crmlab.present` (the one
formatter, the Result base, charts) -> :mod:`crmlab.ingest` and :mod:`crmlab.engine` -> :mod:`crmlab.stats`
-> the analyses (:mod:`crmlab.analyses`, :mod:`crmlab.clv`, :mod:`crmlab.experiments`,
:mod:`crmlab.promotion`, :mod:`crmlab.simulate`) -> :mod:`crmlab.report` (notebook helpers, HTML, the
papermill runner; the notebooks and templates are package data) -> :mod:`crmlab.api`, :mod:`crmlab.cli`
and this package.
"""
from crmlab._version import __version__

#: name -> module it comes from (functions: crmlab.api's documented entry points)
_API = {
    "load_orders": "crmlab.api", "load_sends": "crmlab.api", "load": "crmlab.api",
    "connect": "crmlab.api", "set_engine": "crmlab.api", "get_engine": "crmlab.api",
    "set_timezone": "crmlab.api", "get_timezone": "crmlab.api",
    "retention_table": "crmlab.api", "period_repurchase_rate": "crmlab.api", "next_period_repurchase": "crmlab.api",
    "repurchase_curve": "crmlab.api", "magic_number": "crmlab.api",
    "lifecycle_stages": "crmlab.api", "rfm_scores": "crmlab.api", "segment_summary": "crmlab.api",
    "rfm_summary": "crmlab.api", "fit_clv": "crmlab.api",
    "analyse_experiment": "crmlab.api", "sample_size": "crmlab.api",
    "promotion_review": "crmlab.api",
    "Ledger": "crmlab.ingest.readers", "CrmlabInputError": "crmlab.schema",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    import importlib
    import importlib.util

    module = _API.get(name)
    if module is None:
        # a submodule on first use (``crmlab.present.figures.retention_curves``), else no such name
        if not name.startswith("_") and importlib.util.find_spec(f"crmlab.{name}") is not None:
            return importlib.import_module(f"crmlab.{name}")
        raise AttributeError(f"module 'crmlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
