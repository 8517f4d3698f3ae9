"""The CLI at scale: validate, summary, retention and magic-number on an N-order store.

    .venv/bin/python benchmarks/bench_scale.py --orders 5000000 [--baseline] [--engine duckdb|spark]

Generates an N-order store as Parquet with DuckDB (string customer ids, ~N/4 customers
with a skewed number of orders each, three years, 90% paid), then runs each command as a
user would (a fresh ``crmlab`` process each), printing wall time and peak RSS of the
process tree: on the export, and on the clean file ``validate --clean-out`` wrote (what a
scheduled job or the report runner reads). ``--baseline`` runs the same commands with the pandas path of the last
release before the engine (commit ``BASELINE``, checked out into a temporary folder from
this repository's history) in the same run and prints the ratios.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = "1ef066e"  # the last release whose loader and aggregations were pandas-only


def generate(n: int, path: str, seed: float = 0.42) -> None:
    """An N-order store as Parquet, written by DuckDB (no pandas frame of N rows)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SELECT setseed({seed})")
    n_cust = max(n // 4, 1)
    con.execute(f"""
        COPY (
          SELECT 'C' || CAST(floor({n_cust} * pow(random(), 1.6)) AS BIGINT) AS customer_id,
                 'O' || i AS order_id,
                 strftime(TIMESTAMP '2023-01-01 00:00:00' + to_seconds(CAST(floor(random() * 94608000) AS BIGINT)),
                          '%Y-%m-%d %H:%M:%S') AS order_time,
                 round(10 + random() * 290, 2) AS amount,
                 CASE WHEN random() < 0.9 THEN 'paid' WHEN random() < 0.5 THEN 'unpaid' ELSE 'refunded' END AS status
          FROM range({n}) t(i)
        ) TO '{path}' (FORMAT parquet)""")


def run(cmd: list[str], env: dict | None = None) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB, the largest of the process and its children) and exit code."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    el = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return el, usage.ru_maxrss / 1024, p.returncode


def steps(orders: str, tmp: str, engine: str | None, memory_limit: str | None = None) -> dict[str, list[str]]:
    """Each command on the export, then on the clean file ``validate --clean-out`` wrote."""
    eng = (["--engine", engine] if engine else []) + (["--memory-limit", memory_limit] if memory_limit else [])
    clean = os.path.join(tmp, "clean.parquet")
    out = {"validate": ["validate", "--orders", orders, "--clean-out", clean, *eng]}
    for src, tag in ((orders, ""), (clean, " (clean)")):
        out[f"summary{tag}"] = ["summary", "--orders", src, "--out", os.path.join(tmp, "summary.parquet"), *eng]
        out[f"retention{tag}"] = ["retention", "--orders", src, "--days", "1,7,30", *eng]
        out[f"magic-number{tag}"] = ["magic-number", "--orders", src, *eng]
    return out


def baseline_checkout() -> str:
    d = tempfile.mkdtemp(prefix="crmlab-baseline-")
    subprocess.run(f"git -C {ROOT} archive {BASELINE} crmlab | tar -x -C {d}", shell=True, check=True)
    return d


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=5_000_000)
    ap.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"])
    ap.add_argument("--baseline", action="store_true", help="also run the last pandas-only release")
    ap.add_argument("--memory-limit", help="DuckDB's memory limit for every command (default: crmlab's, 60%% of RAM)")
    ap.add_argument("--keep", help="a folder to generate into and keep (reused when the file is there)")
    a = ap.parse_args()
    tmp = a.keep or tempfile.mkdtemp(prefix="crmlab-scale-")
    os.makedirs(tmp, exist_ok=True)
    path = os.path.join(tmp, f"orders_{a.orders}.parquet")
    t0 = time.perf_counter()
    if not os.path.exists(path):
        generate(a.orders, path)
    print(f"generated {a.orders:,} orders in {time.perf_counter() - t0:.1f} s ({os.path.getsize(path) / 2**20:.0f} MiB)")
    # -P: never the working folder first on sys.path (from the checkout it would shadow the baseline)
    crmlab = [sys.executable, "-P", "-m", "crmlab.cli.main"]
    base_dir = baseline_checkout() if a.baseline else None
    print(f"{'step':<22} {'engine':>7} {'s':>7} {'MiB':>7}" + (f" {'pandas s':>9} {'MiB':>7} {'faster':>7} {'less mem':>8}"
                                                               if base_dir else ""))
    print(f"DuckDB memory limit: {a.memory_limit or 'default (60% of RAM)'}")
    for name, args in steps(path, tmp, a.engine, a.memory_limit).items():
        s, mib, rc = run(crmlab + args)
        line = f"{name:<22} {a.engine:>7} {s:>7.1f} {mib:>7.0f}" + ("" if rc == 0 else f" (exit {rc})")
        if base_dir and not name.startswith("summary") and "(clean)" not in name:
            env = dict(os.environ, PYTHONPATH=base_dir)
            bargs = [x for x in args if x not in ("--engine", a.engine, "--memory-limit", a.memory_limit)]
            if "--clean-out" in bargs:
                i = bargs.index("--clean-out")
                del bargs[i:i + 2]
            bs, bmib, brc = run([sys.executable, "-P", "-m", "crmlab.cli.main", *bargs], env=env)
            line += f" {bs:>9.1f} {bmib:>7.0f} {bs / s:>6.1f}× {bmib / mib:>7.1f}×" + ("" if brc == 0 else f" (exit {brc})")
        elif base_dir:
            line += f" {'(new)':>9}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
