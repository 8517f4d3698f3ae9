"""The send log's opt-out column (退订) is read, not dropped: blank is "did not unsubscribe",
an unreadable flag is excluded with its reason."""
from __future__ import annotations

import pandas as pd

from crmlab.ingest.readers import load_sends


def test_opt_out_read_under_its_chinese_name_with_blank_and_float_values(tmp_path):
    rows = [("c1", "是"), ("c2", ""), ("c3", "否"), ("c4", "1.0"), ("c5", "true"), ("c6", "0.0")]
    p = tmp_path / "sends.csv"
    pd.DataFrame([(c, "M1", "A", "2025-01-01 10:00:00", v) for c, v in rows],
                 columns=["customer_id", "campaign_id", "variant", "send_time", "退订"]).to_csv(p, index=False)
    sends, led = load_sends(str(p))
    got = dict(zip(sends["customer_id"], sends["opt_out"]))
    assert got == {"c1": True, "c2": False, "c3": False, "c4": True, "c5": True, "c6": False}  # by hand
    assert led.excluded == {}


def test_an_unreadable_opt_out_never_drops_a_send(tmp_path):
    rows = [("c1", ""), ("c2", "TD"), ("c3", "")]  # opt-outs written as a code the reader does not know
    p = tmp_path / "sends.csv"
    pd.DataFrame([(c, "M1", "A", "2025-01-01 10:00:00", v) for c, v in rows],
                 columns=["customer_id", "campaign_id", "variant", "send_time", "opt_out"]).to_csv(p, index=False)
    sends, led = load_sends(str(p))
    assert len(sends) == 3 and led.excluded == {} and "opt_out" not in sends.columns
    assert any("column opt_out: 1 value(s) not read as yes/no (rows 2)" in w for w in led.warnings)


def test_without_the_column_there_is_none(tmp_path):
    p = tmp_path / "sends.csv"
    pd.DataFrame([("c1", "M1", "A", "2025-01-01 10:00:00")],
                 columns=["customer_id", "campaign_id", "variant", "send_time"]).to_csv(p, index=False)
    assert "opt_out" not in load_sends(str(p))[0].columns
