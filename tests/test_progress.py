"""Progress on long work: shown where someone watches (a terminal, a notebook), never under cron,
with --json or --quiet."""
from __future__ import annotations

import io

from crmlab.present import progress


def test_nothing_is_shown_when_nobody_watches_or_json_is_asked():
    s = io.StringIO()  # not a terminal: as under cron
    with progress.stages(stream=s) as p:
        with p.stage("validating"):
            pass
        assert list(p.track([1, 2], "fitting")) == [1, 2]
    with progress.stages(enabled=True, as_json=True, stream=s) as p:
        assert not p.enabled
    with progress.stages(enabled=True, quiet=True, stream=s) as p:
        assert not p.enabled
    assert s.getvalue() == ""


def test_stages_and_counts_are_shown_to_a_watcher(monkeypatch):
    monkeypatch.setattr(progress, "DELAY_S", 0)
    s = io.StringIO()
    with progress.stages(enabled=True, stream=s) as p:
        with p.stage("validating the export"):
            pass
        assert list(p.track(["a", "b", "c"], "fitting models")) == ["a", "b", "c"]
    text = s.getvalue()
    assert "validating the export" in text and "fitting models" in text and "/3" in text  # a bar with the known amount of work
