"""The engine room: connecting, order tables in an engine, and the shared aggregate builders.

Analyses build Ibis expressions on an :class:`~crmlab.engine.sources.OrderTable` and bring
back only small results; the backend (embedded DuckDB by default, PySpark for
warehouse-sized stores) is chosen at the edge:

* :mod:`crmlab.engine.connection` — :func:`~crmlab.engine.connection.connect`,
  :func:`~crmlab.engine.connection.set_engine`, :func:`~crmlab.engine.connection.get_engine`;
* :mod:`crmlab.engine.sources` — :class:`~crmlab.engine.sources.OrderTable`,
  :func:`~crmlab.engine.sources.order_table`, clean files;
* :mod:`crmlab.engine.loading` — :func:`~crmlab.engine.loading.load`: an export into the
  engine with its ledger;
* :mod:`crmlab.engine.aggregates` — the aggregates every analysis shares.

The package itself imports none of them, so a module that needs only the connection (the
command line's argument checks) does not load Ibis.
"""
