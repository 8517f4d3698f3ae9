"""Shared fixtures: a small simulated store written once per test session."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from crmlab.ingest.readers import load_orders, load_sends
from crmlab.simulate.store import write_sample

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _session_settings():
    """Each test starts from the session settings it found and leaves them so: a test that
    calls ``set_currency("$")`` or ``set_timezone(...)`` does not change the next test's."""
    from crmlab import settings

    saved = settings.current()
    yield
    settings.use(saved)


@pytest.fixture(scope="session", autouse=True)
def _validation_cache(tmp_path_factory):
    """The validation cache (crmlab.engine.cache) of this test session in its own folder, never
    the user's ~/.cache/crmlab; the notebook kernels the runner starts inherit it."""
    os.environ["CRMLAB_CACHE_DIR"] = str(tmp_path_factory.mktemp("validation_cache"))
    os.environ.pop("CRMLAB_NO_CACHE", None)
    yield


@pytest.fixture(scope="session")
def small_store(tmp_path_factory) -> Path:
    """3,000 customers, seed 1: fast enough for the report runner tests."""
    d = tmp_path_factory.mktemp("small_store")
    write_sample(str(d), n_customers=3000, seed=1)
    return d


@pytest.fixture(scope="session")
def small_report(small_store, tmp_path_factory):
    """Every report notebook run once on the 3,000-customer sample into reports/{date}: shared by
    tests/test_report.py (the runner) and tests/test_reports_html.py (the pages a reader sees)."""
    from crmlab.report.runner import run_reports

    root = tmp_path_factory.mktemp("reports")
    res = run_reports(str(small_store / "orders.csv"), str(small_store / "sends.csv"),
                      out=str(root / "{date}"), quiet=True)
    return res, root


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Path:
    """The default-size simulated store (20,000 customers, seed 0)."""
    d = tmp_path_factory.mktemp("store")
    write_sample(str(d), n_customers=20_000, seed=0)
    return d


@pytest.fixture(scope="session")
def store_orders(store):
    return load_orders(store / "orders.csv", observation_end="2025-12-31")


@pytest.fixture(scope="session")
def store_sends(store):
    return load_sends(store / "sends.csv", observation_end="2025-12-31")


@pytest.fixture(scope="session")
def store_truth(store) -> dict:
    return json.loads((store / "truth.json").read_text(encoding="utf-8"))


def wilson_by_hand(x: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval from its closed form (an independent check of statsmodels')."""
    import math

    p = x / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return c - h, c + h


def orders_frame(rows: list[tuple]) -> pd.DataFrame:
    """Hand fixtures: rows of (customer_id, order_time, amount[, status])."""
    out = []
    for i, r in enumerate(rows):
        c, t, a = r[:3]
        s = r[3] if len(r) > 3 else "paid"
        out.append({"customer_id": c, "order_id": f"o{i}", "order_time": t, "amount": a, "status": s})
    return pd.DataFrame(out)
