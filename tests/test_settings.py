"""Explicit context (issue 23): one session :class:`~crmlab.settings.Settings`; the old setters
are thin shims over it; a table loaded in a time zone carries it; ``get_engine`` never
changes the default engine."""
from __future__ import annotations

import pandas as pd
import pytest

import crmlab.settings as S
from crmlab.engine import connection
from crmlab.engine.loading import load
from crmlab.engine.connection import Engine, current_engine, get_engine, set_engine
from crmlab.ingest.readers import load_orders
from crmlab.ingest.values import get_timezone, set_timezone
from crmlab.present import formatting as fmt
from crmlab.schema import CrmlabInputError


@pytest.fixture(autouse=True)
def _session():
    saved, conns = S.current(), dict(connection._connections)
    yield
    S.use(saved)
    connection._connections.clear()
    connection._connections.update(conns)


@pytest.fixture
def orders_csv(tmp_path):
    p = tmp_path / "orders.csv"
    pd.DataFrame({"customer_id": ["c1", "c2", "c1"], "order_id": ["o1", "o2", "o3"],
                  "order_time": ["2024-01-02T13:00:00Z", "2024-01-03 09:00:00", "2024-02-03 09:00:00"],
                  "amount": [10, 20, 5]}).to_csv(p, index=False)
    return p


def test_the_setters_are_shims_over_the_session_settings(monkeypatch):
    monkeypatch.delenv(fmt.CURRENCY_ENV, raising=False)
    assert set_timezone("Europe/London") == "Europe/London" == S.current().timezone == get_timezone()
    assert set_timezone(None) == "Asia/Shanghai" == S.current().timezone
    with pytest.raises(CrmlabInputError, match="unknown time zone"):
        set_timezone("Mars/Olympus")
    assert fmt.set_currency("£") == "£" == S.current().currency
    assert fmt.money(1234) == "£1,234" and fmt.Formatter().money(1) == "£1"
    assert fmt.set_currency(None) == "£"  # None keeps the current one


def test_the_runner_currency_is_a_fallback_while_the_session_keeps_the_default(monkeypatch):
    monkeypatch.setenv(fmt.CURRENCY_ENV, "£")
    assert fmt.get_currency() == "£" and fmt.money(12) == "£12" and fmt.Formatter().money(12) == "£12"
    S.configure(currency="$")
    assert fmt.get_currency() == "$" and fmt.money(12) == "$12"


def test_get_engine_by_name_never_changes_the_default(monkeypatch):
    made = []

    def fake_connect(engine=None, **kw):
        made.append(engine)
        return Engine(engine or "duckdb", con=None)

    monkeypatch.setattr(connection, "connect", fake_connect)
    connection._connections.clear()
    default = set_engine("duckdb")
    spark = get_engine("spark")
    assert spark.name == "spark"
    assert get_engine() is default and get_engine().name == "duckdb"
    assert S.current().engine == "duckdb" and current_engine() is default
    assert get_engine("spark") is spark and made == ["duckdb", "spark"]  # one connection per engine


def test_orders_loaded_in_london_carry_london(orders_csv):
    o, led = load(orders_csv, timezone="Europe/London")
    assert o.settings.timezone == "Europe/London" and led.timezone == "Europe/London"
    assert S.current().timezone == "Asia/Shanghai"  # the session is untouched
    assert repr(led) == ("<Ledger: orders.csv: 3 of 3 rows used, 0 excluded; 3 orders, 2 customers\n"
                         "  engine duckdb · time zone Europe/London · observation end 2024-02-03 09:00:00>")
    df, _ = load_orders(orders_csv, timezone="Europe/London")
    o2, _ = load(df)
    assert o2.settings.timezone == "Europe/London"
    assert o.until("2024-01-31").observation_end == pd.Timestamp("2024-01-31 23:59:59.999999")


def test_a_london_table_says_london_on_its_card(orders_csv):
    import crmlab

    o, _ = load(orders_csv, timezone="Europe/London")
    assert "time zone Europe/London" in repr(crmlab.retention_table(o))
    assert "Asia/Shanghai" not in repr(crmlab.retention_table(o))


def test_settings_are_validated():
    with pytest.raises(CrmlabInputError, match="engine"):
        S.configure(engine="oracle")
    with pytest.raises(CrmlabInputError, match="interval_level"):
        S.Settings(interval_level=1.5)
    with pytest.raises(CrmlabInputError, match="no setting named"):
        S.configure(colour="red")
