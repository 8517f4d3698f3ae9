"""The send log's opt-out column (退订) is read, not dropped: blank is "did not unsubscribe",
an unreadable flag is excluded with its reason."""
from __future__ import annotations

import pandas as pd

from crmlab.ingest.readers import load_sends


def test_opt_out_read_under_its_chinese_name_with_blank_and_unreadable_values(tmp_path):
    rows = [("c1", "M1", "A", "2025-01-01 10:00:00", "是"), ("c2", "M1", "A", "2025-01-01 10:00:00", ""),
            ("c3", "M1", "A", "2025-01-01 10:00:00", "否"), ("c4", "M1", "A", "2025-01-01 10:00:00", "maybe"),
            ("c5", "M1", "A", "2025-01-01 10:00:00", "true")]
    p = tmp_path / "sends.csv"
    pd.DataFrame(rows, columns=["customer_id", "campaign_id", "variant", "send_time", "退订"]).to_csv(p, index=False)
    sends, led = load_sends(str(p))
    got = dict(zip(sends["customer_id"], sends["opt_out"]))
    assert got == {"c1": True, "c2": False, "c3": False, "c5": True}  # by hand
    assert led.excluded == {"unreadable_opt_out_flag": 1} and led.examples["unreadable_opt_out_flag"] == [4]


def test_without_the_column_there_is_none(tmp_path):
    p = tmp_path / "sends.csv"
    pd.DataFrame([("c1", "M1", "A", "2025-01-01 10:00:00")],
                 columns=["customer_id", "campaign_id", "variant", "send_time"]).to_csv(p, index=False)
    assert "opt_out" not in load_sends(str(p))[0].columns
