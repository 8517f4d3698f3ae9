"""The CLI at scale: the validation cache, the clean file and a SQL anchor on an N-order store.

    .venv/bin/python benchmarks/bench_scale.py --orders 30000000 --keep /work/bench_data/d30
    .venv/bin/python benchmarks/bench_scale.py --orders 5000000 --baseline
    .venv/bin/python benchmarks/bench_scale.py --orders 30000000 --parts limits --limits 2GB,4GB,default

Generates an N-order store as Parquet with DuckDB (string customer ids, ~N/4 customers with
a skewed number of orders each, three years, 90% paid), then runs each command as a user
would (a fresh ``crmlab`` process each) and prints wall time, peak RSS of the process tree,
the machine's load when the step started and ratios, in one run. The parts (``--parts``):

``sql``
    The physical-limit anchor: one DuckDB SQL query over the raw export (its own process,
    the same memory limit and threads) counting what ``retention --days 1,7,30`` counts
    (first paid day per customer, a paid order on day 1, 7, 30), with no validation and no
    ledger. Its counts are compared with crmlab's (``sql check``).
``cached``
    The validation cache as a user meets it, in a fresh ``--cache-dir``: the first command
    on the raw export validates and caches it; every later command (each command once, in a
    fresh process) reuses the clean copy.
``nocache``
    Each command on the raw export with ``--no-cache`` (validating again), and the check that
    its ``--json`` output (and the ``summary --out`` file) is identical to the cached runs'.
``clean``
    ``validate --clean-out`` then each command on the clean file (what the report runner reads).
``limits``
    ``retention`` without the cache and with it at each ``--limits`` value: how DuckDB's
    memory limit relates to peak RSS.

``--baseline`` also runs the pandas path of the last release before the engine (commit
``BASELINE``, checked out into a temporary folder from this repository's history) on the raw
export and prints the ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from _common import tmpdir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = "1ef066e"  # the last release whose loader and aggregations were pandas-only
DAYS = (1, 7, 30)
COMMANDS = ("summary", "retention", "magic-number")
#: -P: never the working folder first on sys.path (from the checkout it would shadow the baseline)
CRMLAB = [sys.executable, "-P", "-m", "crmlab.cli.main"]


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


#: the anchor: one pass over the raw export, per first-paid day the customers and how many
#: bought again on day 1, 7 and 30 (run in its own process; argv: export, out.json, memory limit)
SQL_REFERENCE = """
import json, os, sys, duckdb
src, out, limit = sys.argv[1:4]
con = duckdb.connect(config={"threads": str(os.cpu_count()), **({"memory_limit": limit} if limit else {})})
con.execute("SET enable_progress_bar = false")
rows = con.execute(f'''
  WITH paid AS (SELECT customer_id, CAST(order_time AS TIMESTAMP) AS t FROM read_parquet('{src}')
                WHERE status = 'paid'),
       f AS (SELECT customer_id, CAST(t AS DATE) AS d, min(CAST(t AS DATE)) OVER (PARTITION BY customer_id) AS d0
             FROM paid),
       c AS (SELECT customer_id, min(d0) AS d0, bool_or(d - d0 = 1) AS r1, bool_or(d - d0 = 7) AS r7,
                    bool_or(d - d0 = 30) AS r30 FROM f GROUP BY customer_id)
  SELECT strftime(d0, '%Y-%m-%d'), count(*), count(*) FILTER (r1), count(*) FILTER (r7), count(*) FILTER (r30)
  FROM c GROUP BY d0 ORDER BY d0''').fetchall()
last = con.execute(f"SELECT strftime(max(CAST(order_time AS TIMESTAMP)), '%Y-%m-%d %H:%M:%S') "
                   f"FROM read_parquet('{src}')").fetchone()[0]
json.dump({"days": rows, "last_order": last}, open(out, "w"))
"""


def load_now() -> float:
    """The machine's 1-minute load average (other jobs share the cores: read ratios more than seconds)."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run(cmd: list[str], env: dict | None = None, stdout: str | None = None) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds (user + system), peak RSS (MiB, the largest of the process and the
    children it waited for: ``wait4``'s usage) and exit code; ``stdout``: a file for the command's
    output (else discarded). CPU seconds depend much less than wall seconds on other jobs sharing
    the cores."""
    t0 = time.perf_counter()
    with open(stdout or os.devnull, "wb") as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        el = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode:
            err.seek(0)
            sys.stderr.write(err.read().decode(errors="replace")[-2000:])
    return el, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, p.returncode


def command(name: str, src: str, tmp: str, tag: str, extra: list[str]) -> list[str]:
    """``crmlab NAME`` on ``src`` with ``--json`` (``summary`` also writes ``--out``)."""
    args = {"summary": ["summary", "--orders", src, "--out", os.path.join(tmp, f"summary{tag}.parquet")],
            "retention": ["retention", "--orders", src, "--days", ",".join(map(str, DAYS))],
            "magic-number": ["magic-number", "--orders", src],
            "validate": ["validate", "--orders", src]}[name]
    return CRMLAB + args + ["--json"] + extra


class Bench:
    """The steps of one run: timings, outputs and the printed table."""

    def __init__(self, export: str, tmp: str, a: argparse.Namespace) -> None:
        self.export, self.tmp, self.a = export, tmp, a
        self.eng = (["--engine", a.engine] if a.engine != "duckdb" else []) + \
                   (["--memory-limit", a.memory_limit] if a.memory_limit else [])
        self.times: dict[str, tuple[float, float]] = {}
        self.out: dict[str, str] = {}

    def _ratio(self, times: tuple[float, float], to: str | None) -> str:
        """``wall ratio / CPU ratio`` against step ``to`` (blank when it did not run)."""
        if to not in self.times:
            return " " * 12
        return f"{f'{times[0] / self.times[to][0]:.1f}/{times[1] / self.times[to][1]:.1f}×':>12}"

    def step(self, label: str, cmd: list[str], out_tag: str | None = None, ratio_to: str | None = None,
             env: dict | None = None) -> float:
        """Run one step, print its line; ``ratio_to``: also print seconds / that step's seconds."""
        load = load_now()
        path = os.path.join(self.tmp, f"{out_tag}.json") if out_tag else None
        s, cpu, mib, rc = run(cmd, env, stdout=path)
        if rc == 0:
            self.times[label] = (s, cpu)
        if path:
            self.out[out_tag] = path
        print(f"{label:<34} {s:>7.1f} {cpu:>7.1f} {mib / 1024:>6.2f} {load:>5.1f}  "
              f"{self._ratio((s, cpu), 'sql reference')} {self._ratio((s, cpu), ratio_to)}"
              + ("" if rc == 0 else f"  (exit {rc})"), flush=True)
        return s

    def sql(self) -> None:
        self.step("sql reference", [sys.executable, "-c", SQL_REFERENCE, self.export,
                                    os.path.join(self.tmp, "sql.json"), _duckdb_limit(self.a.memory_limit)])
        self.out["sql"] = os.path.join(self.tmp, "sql.json")

    def cached(self) -> None:
        cache = tempfile.mkdtemp(prefix="cache-", dir=self.tmp)
        c = ["--cache-dir", cache] + self.eng
        first = self.a.first
        self.step(f"{first} first (validates, caches)", command(first, self.export, self.tmp, "-first", c),
                  f"{first}-first")
        for name in (*COMMANDS, "validate"):
            self.step(f"{name} later (cache)", command(name, self.export, self.tmp, "-cached", c), f"{name}-cached",
                      ratio_to=f"{first} first (validates, caches)")
        shutil.rmtree(cache, ignore_errors=True)

    def nocache(self) -> None:
        for name in COMMANDS:
            self.step(f"{name} --no-cache", command(name, self.export, self.tmp, "-nocache", ["--no-cache"] + self.eng),
                      f"{name}-nocache", ratio_to=f"{name} later (cache)")

    def clean(self) -> None:
        clean = os.path.join(self.tmp, "clean.parquet")
        self.step("validate --clean-out", command("validate", self.export, self.tmp, "", ["--clean-out", clean,
                                                                                          "--no-cache"] + self.eng))
        for name in COMMANDS:
            self.step(f"{name} (clean file)", command(name, clean, self.tmp, "-clean", self.eng), f"{name}-clean",
                      ratio_to=f"{name} later (cache)")

    def limits(self) -> None:
        for lim in self.a.limits.split(","):
            flag = [] if lim == "default" else ["--memory-limit", lim]
            cache = tempfile.mkdtemp(prefix="cache-", dir=self.tmp)
            c = ["--cache-dir", cache] + flag
            self.step(f"retention first, limit {lim}", command("retention", self.export, self.tmp, "", c))
            self.step(f"retention later, limit {lim}", command("retention", self.export, self.tmp, "", c))
            shutil.rmtree(cache, ignore_errors=True)

    def baseline(self) -> None:
        """The pandas-only release on the raw export (its flags only: no --json, engine or cache)."""
        env = dict(os.environ, PYTHONPATH=baseline_checkout())
        for name in ("validate", "retention", "magic-number"):
            args = [x for x in command(name, self.export, self.tmp, "-base", []) if x != "--json"]
            self.step(f"{name} pandas-only release", args, env=env,
                      ratio_to=f"{name} later (cache)" if name != "validate" else "validate --clean-out")


def _duckdb_limit(text: str | None) -> str:
    if not text:
        return ""
    sys.path.insert(0, ROOT)
    from crmlab.engine.connection import memory_limit_of

    return memory_limit_of(text)


def identical(out: dict[str, str], tmp: str) -> list[str]:
    """The commands whose output differs between the cache (first, later), no cache and the clean file."""
    import pandas as pd

    bad = []
    for name in COMMANDS:
        runs = {k: v for k, v in out.items() if k.startswith(name + "-")}
        texts = {k: open(v, encoding="utf-8").read().replace(f"summary{k[len(name):]}.parquet", "summary.parquet")
                 for k, v in runs.items()}
        texts = {k: v for k, v in texts.items() if not k.endswith("-clean")}  # a clean file's ledger names it
        if len(set(texts.values())) > 1:
            bad.append(f"{name}: --json differs between {sorted(texts)}")
        if name == "summary":
            bad += _same_frames([pd.read_parquet(os.path.join(tmp, f"summary{k[len(name):]}.parquet"))
                                 for k in runs])
    return bad


def _same_frames(frames: list) -> list[str]:
    """Equal RFM frames: ids and counts exactly; a mean amount to 1e-12 relative (a sum of doubles
    depends on the order DuckDB's threads add them in, in any two runs)."""
    import numpy as np

    frames = [f.sort_values("customer_id").reset_index(drop=True) for f in frames]
    exact = [c for c in frames[0].columns if c != "monetary_value"]
    if any(not f[exact].equals(frames[0][exact]) for f in frames[1:]):
        return ["summary: --out files differ"]
    worst = max((float(np.max(np.abs(f.monetary_value - frames[0].monetary_value)
                               / np.maximum(np.abs(frames[0].monetary_value), 1))) for f in frames[1:]), default=0.0)
    return [] if worst <= 1e-12 else [f"summary: monetary_value differs by up to {worst:.1e} (relative)"]


def sql_check(out: dict[str, str]) -> list[str]:
    """Cohort sizes and day-1/7/30 counts of crmlab's retention against the SQL reference's
    (cohorts from the lead-in's end; a day counts once its last microsecond is observed)."""
    import pandas as pd

    key = next((k for k in ("retention-cached", "retention-first", "retention-nocache") if k in out), None)
    if key is None or "sql" not in out:
        return ["nothing to compare"]
    ours, ref = json.load(open(out[key])), json.load(open(out["sql"]))
    start = (ours["ledger"].get("truncation") or {}).get("history_start") or "0000"
    end = pd.Timestamp(ours["observation_end"])
    days = pd.DataFrame(ref["days"], columns=["d0", "size", *[f"r{n}" for n in DAYS]])
    days = days[days.d0 >= str(start)[:10]]
    bad = []
    for c in ours["cohorts"]:
        sel = days if c["cohort"] == "all cohorts" else days[days.d0.str[:7] == c["cohort"]]
        if c["size"] != sel["size"].sum():
            bad.append(f"{c['cohort']}: size {c['size']} vs {sel['size'].sum()}")
        for n in DAYS:
            ok = sel[pd.to_datetime(sel.d0) + pd.Timedelta(days=n + 1) - pd.Timedelta(microseconds=1) <= end]
            cell = c["days"][str(n)]
            if (cell["eligible"], cell["retained"]) != (ok["size"].sum(), ok[f"r{n}"].sum()):
                bad.append(f"{c['cohort']} day {n}: {cell['eligible']}/{cell['retained']} vs "
                           f"{ok['size'].sum()}/{ok[f'r{n}'].sum()}")
    return bad


def baseline_checkout() -> str:
    d = tmpdir("crmlab-baseline-")
    subprocess.run(f"git -C {ROOT} archive {BASELINE} crmlab | tar -x -C {d}", shell=True, check=True)
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=5_000_000)
    ap.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"])
    ap.add_argument("--parts", default="sql,cached,nocache,clean",
                    help="comma-separated: sql, cached, nocache, clean, limits (default: all but limits)")
    ap.add_argument("--first", default="retention", choices=COMMANDS, help="the command that validates and caches")
    ap.add_argument("--limits", default="2GB,4GB,default", help="the memory limits of --parts limits")
    ap.add_argument("--baseline", action="store_true", help="also run the last pandas-only release")
    ap.add_argument("--memory-limit", help="DuckDB's memory limit for every command (default: crmlab's)")
    ap.add_argument("--keep", help="a folder to generate into and keep (reused when the file is there)")
    a = ap.parse_args()
    tmp = a.keep or tmpdir("crmlab-scale-")  # removed at exit unless --keep
    os.makedirs(tmp, exist_ok=True)
    path = os.path.join(tmp, f"orders_{a.orders}.parquet")
    t0 = time.perf_counter()
    if not os.path.exists(path):
        generate(a.orders, path)
    print(f"{a.orders:,} orders: {path} ({os.path.getsize(path) / 2**20:.0f} MiB, {time.perf_counter() - t0:.1f} s); "
          f"engine {a.engine}; DuckDB memory limit: {a.memory_limit or 'crmlab default'}; {os.cpu_count()} cores")
    print(f"{'step':<34} {'wall s':>7} {'CPU s':>7} {'GiB':>6} {'load':>5} {'÷SQL wall/CPU':>13} "
          f"{'ratio wall/CPU':>12}")
    b = Bench(path, tmp, a)
    for part in a.parts.split(",") + (["baseline"] if a.baseline else []):
        getattr(b, part.strip())()
    print("GiB: peak RSS; load: 1-minute load average at the step's start (2 cores). ratio: a later command ÷ the "
          "first; --no-cache and clean-file steps ÷ the same command through the cache; the pandas-only release ÷ "
          "crmlab")
    if any(k.endswith(("-first", "-cached", "-nocache")) for k in b.out):
        bad = identical(b.out, tmp)
        print("identical with and without the cache:", "yes" if not bad else "NO: " + "; ".join(bad))
    if "sql" in b.out:
        bad = sql_check(b.out)
        print("retention counts equal to the SQL reference's:", "yes" if not bad else "NO: " + "; ".join(bad[:5]))


if __name__ == "__main__":
    main()
