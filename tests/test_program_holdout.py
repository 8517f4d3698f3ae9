"""The programme-level holdout (长期对照组, issue 28): the stable hash, the simulator's planted
truth, the readout by hand on a small store, its coverage of a planted cumulative effect over
seeds (the full study: studies/program_coverage.py), and ``crmlab program`` end to end."""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crmlab.cli.main import main
from crmlab.cli.parser import COMMANDS
from crmlab.experiments.program import DEFAULT_SALT, program_holdout_mask, program_readout
from crmlab.settings import current
from crmlab.simulate.program import ProgramSpec, program_truth, simulate_program, write_program_sample


def test_the_hash_is_stable_and_holds_out_its_share():
    ids = [f"C{i:06d}" for i in range(60_000)]
    m = program_holdout_mask(ids, 0.05, "s1")
    # written out: the first 8 bytes of BLAKE2b("s1|C000007") as a big-endian integer / 2^64
    u = int.from_bytes(hashlib.blake2b(b"s1|C000007", digest_size=8).digest(), "big") / 2 ** 64
    assert m[7] == (u < 0.05)
    # the share: Binomial(60,000, 0.05), 99.9% band
    lo, hi = stats.binom.ppf([0.0005, 0.9995], len(ids), 0.05)
    assert lo <= m.sum() <= hi
    # stable: the same customer is held out in any export, in any order, among any other customers
    sub = ids[::-1][:5000]
    assert (program_holdout_mask(sub, 0.05, "s1") == m[::-1][:5000]).all()
    # a larger share keeps every customer a smaller one held out (nested), another salt is another draw
    assert program_holdout_mask(ids, 0.10, "s1")[m].all()
    other = program_holdout_mask(ids, 0.05, "s2")
    overlap = (m & other).sum()  # independent draws: about 0.05^2 of the customers
    assert overlap <= stats.binom.ppf(0.9995, len(ids), 0.05 ** 2)
    assert COMMANDS["program"][2]  # the salts of design and program default to the same text
    flags = {f[0][0]: f[1] for f in COMMANDS["program"][2] if isinstance(f, tuple) and f[0] != "one of"}
    assert flags["--salt"]["default"] == DEFAULT_SALT
    design = {f[0][0]: f[1] for f in COMMANDS["design"][2] if isinstance(f, tuple) and f[0] != "one of"}
    assert design["--program-salt"]["default"] == DEFAULT_SALT


def test_the_planted_holdout_truth_is_the_gamma_poisson_closed_form():
    """Without a message effect the programme is the holdout: the model run on many customers
    must then give the closed form 1 - (1 + m scale)^-shape the truth uses for the holdout."""
    spec = ProgramSpec(months=4, message_effect=0.0, truth_customers=200_000)
    t = program_truth(spec)
    for row in t["months"]:
        se = math.sqrt(row["cumulative_held_out_rate"] * (1 - row["cumulative_held_out_rate"]) / 200_000)
        assert abs(row["cumulative_diff"]) < 4.5 * se
        assert row["cumulative_held_out_rate"] == pytest.approx(1 - (1 + row["month"] * 0.25) ** -0.8, rel=1e-12)
    assert program_truth(ProgramSpec(months=4, truth_customers=100_000))["months"][-1]["cumulative_diff"] > 0.05


def _hand_store():
    """Customers c0..c39 (all bought before 2025-01-01), the programme from 2025-01-01, orders
    in January and February, the observation ending 2025-03-10 (March not covered whole)."""
    ids = [f"c{i}" for i in range(40)]
    rows = [(c, "2024-06-01 10:00:00", 50.0) for c in ids]
    for i, c in enumerate(ids):
        if i % 2 == 0:
            rows.append((c, "2025-01-15 10:00:00", 10.0 + i))
        if i % 3 == 0:
            rows.append((c, "2025-02-03 10:00:00", 20.0))
        if i % 5 == 0:
            rows.append((c, "2025-03-05 10:00:00", 99.0))  # in a month the data has not finished
    o = pd.DataFrame([{"customer_id": c, "order_id": f"o{k}", "order_time": pd.Timestamp(t), "amount": a,
                       "status": "paid"} for k, (c, t, a) in enumerate(rows)])
    o.attrs["observation_end"] = pd.Timestamp("2025-03-10 12:00:00")
    s = pd.DataFrame({"customer_id": ids[:30], "campaign_id": "x", "variant": "p",
                      "send_time": pd.Timestamp("2025-01-02 10:00:00"), "delivered": True,
                      "opt_out": [i == 3 for i in range(30)]})
    return ids, o, s


def test_readout_by_hand_on_a_small_store():
    ids, o, s = _hand_store()
    held = program_holdout_mask(ids, 0.3, "hand")
    assert 3 <= held.sum() <= 37  # both groups present with this salt
    r = program_readout(o, s, holdout_share=0.3, salt="hand", months=6)
    assert [m["month"] for m in r.months] == [1, 2]  # March is missing, not 0
    z = stats.norm.isf((1 - current().interval_level) / 2)
    jan = np.array([i % 2 == 0 for i in range(40)])
    feb = np.array([i % 3 == 0 for i in range(40)])
    for m, got in zip(r.months, (jan, feb)):
        a, b = got[~held].mean(), got[held].mean()
        se = math.sqrt(a * (1 - a) / (~held).sum() + b * (1 - b) / held.sum())
        assert (m["messaged_rate"], m["held_out_rate"]) == pytest.approx((a, b), rel=1e-12)
        assert (m["ci_low"], m["ci_high"]) == pytest.approx((a - b - z * se, a - b + z * se), rel=1e-12)
    anyb = jan | feb
    rev = np.array([(10.0 + i if i % 2 == 0 else 0) + (20.0 if i % 3 == 0 else 0) for i in range(40)])
    c = r.cumulative
    assert c["month"] == 2 and c["diff"] == pytest.approx(anyb[~held].mean() - anyb[held].mean(), rel=1e-12)
    d = rev[~held].mean() - rev[held].mean()
    se = math.sqrt(rev[~held].var(ddof=1) / (~held).sum() + rev[held].var(ddof=1) / held.sum())
    assert (c["revenue_diff"], c["revenue_ci_high"]) == pytest.approx((d, d + z * se), rel=1e-12)
    assert c["incremental_buyers"]["estimate"] == pytest.approx(c["diff"] * (~held).sum(), rel=1e-12)
    # who was messaged: the first 30 ids, so held-out customers among them leaked (warned)
    leaked = int(held[:30].sum())
    assert r.customers == {"messaged": int((~held).sum()), "held_out": int(held.sum()),
                           "messaged_reached": int((~held[:30]).sum()), "held_out_messaged": leaked}
    assert any("held-out customers were messaged" in w for w in r.warnings) == (leaked > 0)
    # dose-response: January customer-months with one message vs none (messages in January only)
    dr = {x["messages"]: x for x in r.dose_response}
    one = np.zeros((40, 2), bool)
    one[:30, 0] = True
    sel = one & ~held[:, None]
    grid = np.column_stack([jan, feb])
    assert dr["1"]["customer_months"] == sel.sum()
    assert dr["1"]["repurchase_rate"] == pytest.approx(grid[sel].mean(), rel=1e-12)
    assert dr["1"]["opt_outs"] == int(not held[3])
    assert dr["1"]["opt_out_per_message"] == pytest.approx(int(not held[3]) / (~held[:30]).sum(), rel=1e-12)
    assert dr["held out"]["customer_months"] == 2 * held.sum() and dr["held out"]["opt_out_rate"] is None
    assert "months covered whole only" in r.method and "2 of the 6 months" in " ".join(r.warnings)


def test_intervals_cover_the_planted_cumulative_effect_over_seeds():
    """24 simulated programme stores (3,000 customers, 30% held out, 6 months): the nominal
    interval of the cumulative repurchase and revenue difference covers the planted truth at
    its rate (binomial band), and the z-scores spread like N(0, 1)."""
    base = ProgramSpec(n_customers=3000, holdout_share=0.3, months=6, truth_customers=200_000)
    truth = program_truth(base)["months"][-1]
    level = current().interval_level
    hits, zs, opt = [], [], np.zeros(2)
    for seed in range(24):
        spec = ProgramSpec(**{**base.__dict__, "seed": 100 + seed, "salt": f"s{seed}"})
        o, s = simulate_program(spec)
        r = program_readout(o, s, holdout_share=spec.holdout_share, salt=spec.salt, months=6)
        c = r.cumulative
        for d in r.dose_response:  # the planted opt-out chance per message, whatever the month's rank
            if d["opt_out_per_message"] is not None:
                m = d["customer_months"] if d["messages"] == "3" else None
                opt += (0, 0) if m is None else (d["opt_out_per_message"] * m, m)
        for est, lo, hi, key in ((c["diff"], c["ci_low"], c["ci_high"], "cumulative_diff"),
                                 (c["revenue_diff"], c["revenue_ci_low"], c["revenue_ci_high"], "cumulative_revenue_diff")):
            hits.append(lo <= truth[key] <= hi)
            zs.append((est - truth[key]) / ((hi - lo) / 2) * stats.norm.isf((1 - level) / 2))
    # the third message of a month: opt-outs / messages against the planted 1% (99.9% binomial band)
    assert stats.binom.ppf(0.0005, opt[1], 0.01) <= round(opt[0]) <= stats.binom.ppf(0.9995, opt[1], 0.01)
    lo_ok = stats.binom.ppf(0.001, len(hits), level)
    assert sum(hits) >= lo_ok, (sum(hits), len(hits))
    assert 0.6 < np.std(zs) < 1.4 and abs(np.mean(zs)) < 0.6


def test_crmlab_program_end_to_end(tmp_path, capsys):
    truth = write_program_sample(str(tmp_path), n_customers=2500, holdout_share=0.2, months=4,
                                 truth_customers=20_000)
    assert truth["holdout"]["salt"] == DEFAULT_SALT
    rc = main(["program", "--orders", str(tmp_path / "orders.csv"), "--sends", str(tmp_path / "sends.csv"),
               "--holdout-share", "0.2", "--months", "6", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    for k in ("holdout_share", "salt", "start", "interval_level", "customers", "months", "cumulative",
              "dose_response", "warnings"):
        assert k in out
    assert [m["month"] for m in out["months"]] == [1, 2, 3, 4]  # the fifth month is not covered whole
    assert set(out["months"][0]) >= {"month", "messaged_rate", "held_out_rate", "diff", "ci_low", "ci_high"}
    assert out["customers"]["held_out_messaged"] == 0
    ids = pd.read_csv(tmp_path / "orders.csv", usecols=["customer_id"])["customer_id"].unique()
    assert out["customers"]["held_out"] == int(program_holdout_mask(ids, 0.2).sum())
    assert out["start"].startswith("2025-01-01")
    # another salt than the design's: its "held-out" customers were mostly messaged, so there is
    # no holdout to read against — one line naming the flags, exit 2, never a verdict
    rc = main(["program", "--orders", str(tmp_path / "orders.csv"), "--sends", str(tmp_path / "sends.csv"),
               "--holdout-share", "0.2", "--salt", "not-the-design", "--json"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "held-out customers were messaged" in err and "--salt" in err


def test_bad_programme_values_are_one_line(tmp_path, capsys):
    o = tmp_path / "o.csv"
    o.write_text("customer_id,order_id,order_time,amount\nc1,o1,2025-01-01 10:00:00,10\n", encoding="utf-8")
    for argv, flag in ((["program", "--orders", str(o), "--sends", str(o), "--holdout-share", "0.9"], "--holdout-share"),
                       (["program", "--orders", str(o), "--sends", str(o), "--months", "0"], "--months"),
                       (["design", "--orders", str(o), "--arms", "A", "--out", str(tmp_path / "a.csv"),
                         "--program-holdout", "-0.1"], "--program-holdout")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert flag in err and len(err.splitlines()) == 1
