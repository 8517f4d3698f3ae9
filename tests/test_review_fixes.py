"""What the last review of issues 26-28 found: a cohort named by the data (02 with
``cohort=channel``) is text in the cohort table, never markup; the reminder designs need two arms
to compare; the programme readout refuses a holdout share of 0 in one line."""
from __future__ import annotations

import pytest

from crmlab.analyses.retention import retention_table
from crmlab.analyses.retention_view import cohort_grid, grid_styler
from crmlab.cli.main import main
from crmlab.experiments.reminder_design import parse_arms
from crmlab.report import notebook as nb
from crmlab.schema import CrmlabInputError
from tests.test_retention_repurchase import hand

EVIL = '<img src=x onerror="alert(1)">'


def test_a_channel_cohort_is_text_in_the_cohort_table():
    o = hand({"channel": [EVIL] * 10 + ["天猫"] * 10})
    page = nb.escaped(grid_styler(cohort_grid(retention_table(o, cohort="channel", days=(1, 7))))).to_html()
    assert "<img" not in page and "&lt;img src=x" in page


@pytest.mark.parametrize("spec", [",,,", "none", "6h"])
def test_a_reminder_design_needs_two_arms(spec):
    with pytest.raises(CrmlabInputError, match="at least two arms"):
        parse_arms(spec)


def test_the_programme_readout_refuses_a_share_of_zero(tmp_path, capsys):
    for name in ("orders.csv", "sends.csv"):
        (tmp_path / name).write_text("customer_id\n", encoding="utf-8")
    rc = main(["program", "--orders", str(tmp_path / "orders.csv"), "--sends", str(tmp_path / "sends.csv"),
               "--holdout-share", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--holdout-share" in err[0], err
