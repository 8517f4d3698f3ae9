"""Benchmark helpers: synthetic order lines and measuring one call in a fresh process."""
from __future__ import annotations

import atexit
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd


def synthetic_lines(n_lines: int, seed: int = 0, lines_per_order: float = 1.25) -> pd.DataFrame:
    """``n_lines`` order lines, about ``n_lines / 4`` customers with string ids, two years."""
    rng = np.random.default_rng(seed)
    n_orders = int(n_lines / lines_per_order)
    n_cust = max(n_lines // 4, 1)
    order_of_line = np.sort(rng.integers(0, n_orders, n_lines))
    cust_of_order = rng.integers(0, n_cust, n_orders)
    t0 = np.datetime64("2024-01-01T00:00:00")
    secs = rng.integers(0, 730 * 86400, n_orders)
    return pd.DataFrame({
        "customer_id": np.char.add("C", cust_of_order[order_of_line].astype(str)),
        "order_id": np.char.add("O", order_of_line.astype(str)),
        "order_time": (t0 + secs[order_of_line].astype("timedelta64[s]")).astype(str),
        "amount": np.round(rng.gamma(5, 20, n_lines), 2),
        "status": rng.choice(["paid", "paid", "paid", "unpaid"], n_lines),
    })


def measure(code: str, setup: str = "", result: str | None = None) -> dict:
    """Run ``code`` in a fresh Python; return its wall time (s) and peak RSS (MiB).

    ``result``: an expression evaluated after the timing and the memory reading; its value
    comes back pickled as ``"result"``, for the equality checks."""
    fd, out = tempfile.mkstemp(prefix="crmlab-bench-", suffix=".pkl")
    os.close(fd)
    prog = f"""
import json, pickle, resource, time
{setup}
_t0 = time.perf_counter()
{code}
el = time.perf_counter() - _t0
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
if {result is not None}:
    with open({out!r}, "wb") as _f:
        pickle.dump({result or "None"}, _f)
print(json.dumps({{"seconds": el, "peak_mib": int(hwm) / 1024}}))
"""
    try:
        r = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, check=True)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        if result is not None:
            with open(out, "rb") as f:
                res["result"] = pickle.load(f)
        return res
    finally:
        os.remove(out)


def tmpdir(prefix: str = "crmlab-bench-") -> str:
    """A temporary folder removed when the benchmark exits (also on Ctrl-C or SIGTERM)."""
    d = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, d, True)
    return d


def _terminate_as_exit(signum, frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _terminate_as_exit)


__all__ = ["synthetic_lines", "measure", "tmpdir", "os"]
