"""Issue 29 without notebooks: ``--keep N``, "since last run" with intervals, alerts, the
robots' formats, the delivery file. Runs are made by hand (``run.json`` as the runner writes it)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from crmlab.report.changes import check_alerts, parse_number, since_last_run
from crmlab.report.chat import payload
from crmlab.report.delivery import parse_delivery
from crmlab.report.index import prune_runs
from crmlab.report.notify import build_notice


def _write_run(d: Path, run_at: str, ok: bool = True, heads: dict | None = None, marker: bool = True) -> Path:
    d.mkdir(parents=True)
    run = {"run_at": run_at, "ok": ok, "orders": "orders.csv", "sends": None, "period": {},
           "reports": [{"name": "01_x", "title": "01 X", "status": "ok" if ok else "failed", "ok": ok,
                        "error": None if ok else "01_x: failed in cell 3: KeyError: 'a'",
                        "headlines": heads or {"n": "1"}}]}
    if marker:
        run["crmlab_run"] = True
    (d / "run.json").write_text(json.dumps(run), encoding="utf-8")
    (d / "01_x.html").write_text("<html><head></head><body>x</body></html>", encoding="utf-8")
    return d


def test_keep_removes_only_older_successful_crmlab_runs(tmp_path):
    r = tmp_path / "reports"
    for i in range(1, 6):
        _write_run(r / f"2026-11-0{i}", f"2026-11-0{i} 08:00:00")
    _write_run(r / "2026-11-06.failed-080000", "2026-11-06 08:00:00", ok=False)
    _write_run(r / "mine", "2020-01-01 00:00:00", marker=False)  # not made by crmlab
    (r / "notes").mkdir()
    os.symlink("2026-11-02", r / "latest")  # latest points at an old run
    removed = prune_runs(r, 2)
    left = sorted(p.name for p in r.iterdir())
    # latest's run counts as one of the N kept; the newest other success is the second
    assert sorted(removed) == ["2026-11-01", "2026-11-03", "2026-11-04"]
    assert left == ["2026-11-02", "2026-11-05", "2026-11-06.failed-080000", "latest", "mine", "notes"]
    assert prune_runs(r, 2) == []
    with pytest.raises(Exception, match="at least 1"):
        prune_runs(r, 0)


def test_change_beyond_the_interval_and_in_percentage_points():
    def run(total, low, high, share):
        return {"reports": [{"name": "04_clv", "headlines": {
            "expected 12-month profit": {"value": total, "compare": f"90% range {low} to {high}"},
            "share": share}}]}
    # previous ¥1,000 lies outside this run's 90% interval ¥1,100–¥1,500: beyond it
    ch = {c.headline: c for c in since_last_run(run("¥1,300", "¥1,100", "¥1,500", "20.0%"),
                                                run("¥1,000", "¥900", "¥1,200", "22.5%"))}
    c = ch["expected 12-month profit"]
    assert (c.delta, c.direction, c.beyond_interval) == (300, "up", True)
    assert c.change == "+¥300 (+30%)"
    s = ch["share"]
    assert s.delta == pytest.approx(-0.025) and s.direction == "down" and s.beyond_interval is None
    assert s.change == "−2.5 pp"
    # previous ¥1,250 inside the interval: not beyond
    c2 = since_last_run(run("¥1,300", "¥1,100", "¥1,500", "20%"), run("¥1,250", "¥1", "¥2", "20%"))[0]
    assert c2.beyond_interval is False and c2.delta == 50


def test_text_headlines_have_no_change_and_numbers_parse_as_shown():
    assert parse_number("−5%") == (-0.05, "", "%")
    assert parse_number("¥218,318") == (218318.0, "¥", "")
    assert parse_number("no verdict") is None
    c = since_last_run({"reports": [{"name": "05", "headlines": {"decision": "b"}}]},
                       {"reports": [{"name": "05", "headlines": {"decision": "a"}}]})[0]
    assert c.direction == "n/a" and c.delta is None


def test_alerts_cross_thresholds_given_as_fractions_or_percent():
    d = parse_delivery({"webhooks": [{"kind": "wecom", "url": "http://x"}], "alerts": [
        {"report": "02", "headline": "next-month repurchase", "below": "20%"},
        {"report": "02", "headline": "next-month repurchase", "above": 0.5},
        {"report": "01", "headline": "paid orders", "above": 1000}]})
    run = {"reports": [
        {"name": "02_retention_repurchase", "headlines": {"next-month repurchase 次月复购率 (latest)": "18.2%"}},
        {"name": "01_store_overview", "headlines": {"paid orders 2025": {"value": "2,378"}}}]}
    got = check_alerts(run, d.alerts)
    assert len(got) == 2
    assert "18.2%" in got[0] and "below 20.0%" in got[0]
    assert "2,378" in got[1] and "above 1,000" in got[1]


def test_robot_formats_are_the_documented_ones():
    assert payload("wecom", "t", "**m**", "p") == {"msgtype": "markdown", "markdown": {"content": "**m**"}}
    assert payload("dingtalk", "t", "**m**", "p") == {"msgtype": "markdown", "markdown": {"title": "t", "text": "**m**"}}
    assert payload("feishu", "t", "**m**", "p") == {"msg_type": "text", "content": {"text": "p"}}


def test_notice_of_a_failed_run_names_notebook_cell_and_error(tmp_path):
    d = parse_delivery({"webhooks": [{"kind": "wecom", "url": "http://x"}]})
    n = build_notice(_write_run(tmp_path / "r" / "bad", "2026-11-01 08:00:00", ok=False), d)
    assert not n.ok and "FAILED 01_x" in n.subject and "failed in cell 3: KeyError" in n.text
    assert n.attachments == []


def test_a_page_with_a_phone_number_is_not_attached(tmp_path):
    run = _write_run(tmp_path / "r" / "one", "2026-11-01 08:00:00")
    (run / "01_x.html").write_text("<html><body>call 138 0013 8000</body></html>", encoding="utf-8")
    d = parse_delivery({"webhooks": [{"kind": "wecom", "url": "http://x"}], "attach": "html"})
    n = build_notice(run, d)
    assert n.attachments == [] or all(b"138 0013 8000" not in b for _, b, _ in n.attachments)
    assert any("01_x.html not attached" in x for x in n.notes)
    assert str(tmp_path) not in n.text + n.html + n.markdown


def test_a_hand_edited_previous_run_json_cannot_break_the_next_run(tmp_path):
    from crmlab.report.changes import since_record

    d = _write_run(tmp_path / "r" / "old", "2026-11-01 08:00:00")
    run = json.loads((d / "run.json").read_text())
    run["reports"][0]["headlines"] = ["not", "a", "mapping"]
    (d / "run.json").write_text(json.dumps(run))
    rec, page = since_record({"run_at": "2026-11-08 08:00:00", "orders": "orders.csv", "sends": None,
                              "reports": [{"name": "01_x", "headlines": {"n": "2"}}]}, tmp_path / "r")
    assert rec == {"run": "old", "run_at": "2026-11-01 08:00:00", "changes": []} and page == ""
