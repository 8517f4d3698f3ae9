"""crmlab's top-level API: ``import crmlab``, then ``crmlab.retention_table(...)`` and so on.

Each function here is a documented entry point to the analysis that lives in its own
module (named under "See Also"); nothing is computed twice. ``import crmlab`` stays fast:
the names resolve on first use (``crmlab.__getattr__``), which is when this package (and the
analyses under it) is imported. The functions live in :mod:`crmlab.api.loading` (loading,
engine, time zone), :mod:`crmlab.api.customers` (retention, repurchase, magic number,
customers) and :mod:`crmlab.api.models` (CLV, experiments, promotions). Every ``Examples`` section runs in ``make test`` on the simulated
store (``crmlab sample --out DIR --customers 2000 --seed 1``), from inside that folder.

The flow in a notebook:

>>> import crmlab
>>> crmlab.set_engine("duckdb")                 # once per notebook (or a SparkSession)
Engine(name='duckdb')
>>> crmlab.set_timezone("Asia/Shanghai")        # the store's time zone, once
'Asia/Shanghai'
>>> orders, ledger = crmlab.load("orders.csv")  # validated, every row accounted for
>>> ledger.used_rows, ledger.input_rows
(7856, 7856)
>>> crmlab.retention_table(orders)              # each result shows itself in a notebook
<RetentionTable: day-30 retention 0.7% of 1,837 eligible new buyers (all cohorts; a paid order on that day)
  engine duckdb · time zone Asia/Shanghai · observation end 2025-12-31 23:54:27>
"""
from __future__ import annotations

from crmlab.api.customers import (lifecycle_stages, magic_number, next_period_repurchase, period_repurchase_rate,
                                  repurchase_curve, retention_table, rfm_scores, segment_summary)
from crmlab.api.loading import (connect, get_engine, get_timezone, load, load_orders, load_sends, set_engine,
                                set_timezone)
from crmlab.api.models import analyse_experiment, fit_clv, promotion_review, rfm_summary, sample_size
from crmlab.targeting.pipeline import target

__all__ = ["load_orders", "load_sends", "load", "connect", "set_engine", "get_engine", "set_timezone",
           "get_timezone", "retention_table", "period_repurchase_rate", "next_period_repurchase", "repurchase_curve",
           "magic_number", "lifecycle_stages", "rfm_scores", "segment_summary", "rfm_summary", "fit_clv",
           "analyse_experiment", "sample_size", "promotion_review", "target"]

#: every function's Examples, found by doctest from here (they are defined in the submodules)
__test__ = {name: globals()[name] for name in __all__}
