"""Payment reminders (催付, issue 28): the Kaplan–Meier against lifelines, the readers, the
per-arm at-risk comparison by hand, the planted best delay recovered, the CLI contract."""
from __future__ import annotations

import json
from argparse import Namespace

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter

from crmlab.cli.main import main
from crmlab.cli.reminders import cmd_design_reminders
from crmlab.experiments.reminder_design import design_reminders, reminder_inputs
from crmlab.experiments.reminders import analyse_reminders, parse_delay, reminder_panel
from crmlab.ingest.payments import load_payment_orders, load_reminder_sends
from crmlab.ingest.readers import load_orders
from crmlab.schema import ORDER_ALIASES, CrmlabInputError
from crmlab.simulate.unpaid import ReminderSpec, reminder_truth, simulate_reminders, write_reminder_sample
from crmlab.stats.survival import kaplan_meier, km_step


# ----------------------------------------------------------------- Kaplan–Meier vs lifelines

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_km_equals_lifelines_with_ties_censoring_and_late_entry(seed):
    rng = np.random.default_rng(seed)
    n = 400
    t = np.round(rng.exponential(10, n), 1)  # rounded: many ties
    d = rng.uniform(size=n) < 0.7
    e = np.where(rng.uniform(size=n) < 0.5, np.minimum(np.round(rng.uniform(0, 5, n), 1), t), 0.0)
    for entry in (None, e):
        ref = KaplanMeierFitter().fit(t, d, entry=entry).survival_function_.iloc[:, 0]
        mine = km_step(kaplan_meier(t, d, entry), ref.index.to_numpy())
        assert np.max(np.abs(mine - ref.to_numpy())) < 1e-9


def test_km_on_the_reminder_data_equals_lifelines():
    """The same durations the reminder curves use (hours to payment, censored at closure or
    the observation end; an arm's orders entering at its delay)."""
    orders, sends = simulate_reminders(ReminderSpec(n_orders=3000, seed=5))
    panel = reminder_panel(load_payment_orders(orders), load_reminder_sends(sends))
    for arm, d in (("none", 0.0), ("6h", 6.0)):
        rows = panel[(panel["arm"] == arm) & (panel["paid_h"].isna() | (panel["paid_h"] > d))]
        rows = rows[~(rows["close_h"] <= d)]
        entry = np.full(len(rows), d)
        ref = KaplanMeierFitter().fit(rows["end_h"], rows["paid_h"].notna(), entry=entry).survival_function_
        mine = km_step(kaplan_meier(rows["end_h"], rows["paid_h"].notna(), entry), ref.index.to_numpy())
        assert np.max(np.abs(mine - ref.iloc[:, 0].to_numpy())) < 1e-9


# ----------------------------------------------------------------- reading

def test_delays_are_read_from_arm_names():
    assert [parse_delay(x) for x in ("none", "holdout", "1h", "6小时", "30min", "1d", "2.5h", "A@10:00")] == \
        [0.0, 0.0, 1.0, 6.0, 0.5, 24.0, 2.5, None]


def _taobao(tmp_path):
    rows = [  # 订单编号, 买家会员名, 订单创建时间, 订单付款时间, 订单状态, 买家实际支付金额
        ("T1", "u1", "2025-03-01 10:00:00", "2025-03-01 10:30:00", "交易成功", "100"),
        ("T1", "u1", "2025-03-01 10:00:00", "2025-03-01 10:30:00", "交易成功", "20"),  # a second line
        ("T2", "u2", "2025-03-01 11:00:00", "", "交易关闭", "50"),
        ("T3", "u3", "2025-03-02 09:00:00", "", "等待买家付款", "80"),
    ]
    p = tmp_path / "taobao.csv"
    pd.DataFrame(rows, columns=["订单编号", "买家会员名", "订单创建时间", "订单付款时间", "订单状态",
                                "买家实际支付金额"]).to_csv(p, index=False)
    return p


def test_taobao_headers_are_read_one_row_per_order(tmp_path):
    o = load_payment_orders(_taobao(tmp_path))
    assert list(o["order_id"]) == ["T1", "T2", "T3"]
    assert list(o["status"]) == ["paid", "cancelled", "unpaid"]
    assert o["amount"].tolist() == [120.0, 50.0, 80.0]
    assert o["paid_time"].isna().tolist() == [False, True, True]
    assert o.attrs["observation_end"] == pd.Timestamp("2025-03-02 09:00:00")


def test_other_commands_keep_their_order_time_and_leave_unpaid_orders_out(tmp_path):
    assert ORDER_ALIASES["order_time"] == ("订单付款时间", "付款时间", "下单时间", "订单创建时间", "order_date")
    o, led = load_orders(_taobao(tmp_path))
    assert (o["order_time"].iloc[0] == pd.Timestamp("2025-03-01 10:30:00"))  # 订单付款时间, as before
    assert (o["status"] == "paid").sum() == 1


def test_bad_inputs_are_one_line_naming_file_column_and_rows(tmp_path):
    p = tmp_path / "o.csv"
    pd.DataFrame({"订单编号": ["a", "b", "c"], "买家会员名": ["x", "y", "z"],
                  "订单创建时间": ["2025-01-01 10:00"] * 3, "订单付款时间": ["2025-01-01 11:00", "soon", ""],
                  "金额": ["1", "2", "3"]}).to_csv(p, index=False)
    with pytest.raises(CrmlabInputError, match=r"o\.csv: column '订单付款时间' \(paid_time\).*rows 3"):
        load_payment_orders(p)
    q = tmp_path / "plain.csv"
    pd.DataFrame({"order_id": ["a"], "customer_id": ["x"], "order_time": ["2025-01-01"], "amount": [1]}).to_csv(q)
    with pytest.raises(CrmlabInputError, match="plain.csv: missing column 'created_time'"):
        load_payment_orders(q)
    orders, sends, reason = reminder_inputs(q, q)
    assert orders is None and "created time" in reason


# ----------------------------------------------------------------- the comparison by hand

def _hand_case():
    t0 = pd.Timestamp("2025-05-01 00:00:00")
    h = lambda x: t0 + pd.Timedelta(hours=x) if x is not None else pd.NaT  # noqa: E731
    # (order, arm, paid after h, amount): none arm a..f, 6h arm g..l
    spec = [("a", "none", 2, 100), ("b", "none", 10, 50), ("c", "none", None, 80), ("d", "none", None, 40),
            ("e", "none", 30, 60), ("f", "none", None, 20),
            ("g", "6h", 1, 70), ("h", "6h", 7, 100), ("i", "6h", 8, 40), ("j", "6h", None, 30),
            ("k", "6h", 50, 10), ("l", "6h", None, 90)]
    orders = pd.DataFrame({"order_id": [s[0] for s in spec], "customer_id": [s[0] for s in spec],
                           "created_time": t0, "paid_time": [h(s[2]) for s in spec],
                           "closed_time": pd.NaT, "status": ["paid" if s[2] is not None else "unpaid" for s in spec],
                           "amount": [float(s[3]) for s in spec]})
    orders.attrs["observation_end"] = t0 + pd.Timedelta(days=10)
    sends = pd.DataFrame({"order_id": [s[0] for s in spec], "customer_id": [s[0] for s in spec], "campaign_id": "r",
                          "variant": [s[1] for s in spec], "send_time": t0, "delivered": True,
                          "segments": 1.0, "cost": 0.05})
    return orders, sends


def test_each_arm_against_the_no_reminder_orders_unpaid_at_its_delay_by_hand():
    orders, sends = _hand_case()
    r = analyse_reminders(orders, sends, pay_window_hours=48, margin=0.5)
    none, six = r.arms.set_index("arm").loc["none"], r.arms.set_index("arm").loc["6h"]
    # none: a, b, e paid within 48 h of 6 orders
    assert none["orders"] == 6 and none["paid"] == 3
    # 6h at risk: h, i, j, k, l (g paid at 1 h: no reminder); paid within 48 h: h, i
    assert six["orders"] == 5 and six["paid"] == 2 and six["share_paid"] == pytest.approx(2 / 5)
    # none at risk at 6 h: b, c, d, e, f; paid within 48 h: b, e -> 2/5; revenue (50 + 60) / 5
    assert six["none_share_paid"] == pytest.approx(2 / 5)
    assert six["recovered_revenue"] == pytest.approx((100 + 40) / 5 - (50 + 60) / 5)
    assert six["unpaid_share_at_delay"] == pytest.approx(5 / 6)
    assert six["value_per_order"] == pytest.approx(5 / 6 * (0.5 * 6.0 - 0.05))
    assert six["cost"] == pytest.approx(0.05)


# ----------------------------------------------------------------- the planted best delay

def test_the_planted_best_delay_is_chosen_at_the_samples_size():
    """Small version of studies/reminders_recovery.py (200 seeds there)."""
    best = reminder_truth(ReminderSpec(), n=400_000)["best_arm"]
    assert best == "6h"
    chosen = []
    for seed in range(4):
        orders, sends = simulate_reminders(ReminderSpec(seed=seed))
        chosen.append(analyse_reminders(load_payment_orders(orders), load_reminder_sends(sends)).decision["arm"])
    assert chosen.count(best) >= 4, chosen


def test_no_effect_means_no_reminder_and_no_immortal_time_gain():
    """Reminders that change nothing: later arms' at-risk orders pay less (they are the ones
    still unpaid), yet against the no-reminder orders at the same delay nothing is recovered."""
    spec = ReminderSpec(effect=(0.0, 0.0, 0.0, 0.0, 0.0), seed=3)
    orders, sends = simulate_reminders(spec)
    r = analyse_reminders(load_payment_orders(orders), load_reminder_sends(sends))
    a = r.arms.set_index("arm")
    assert a.loc["24h", "share_paid"] < a.loc["1h", "share_paid"] - 0.2  # the naive view's gap
    assert (a.drop("none")["incremental_share"].abs() < 0.04).all()
    assert r.decision["arm"] == "none"


# ----------------------------------------------------------------- CLI, sample, design, card

@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("rsample")
    truth = write_reminder_sample(str(out), n_customers=1500, seed=1, truth_orders=200_000)
    return out, truth


def test_sample_reminders_truth_and_export_readable_by_every_command(sample):
    out, truth = sample
    assert truth["reminders"]["best_arm"] == "6h" and truth["reminders"]["orders"] == 10_000
    o, led = load_orders(out / "orders.csv")
    assert led.used_rows + led.excluded_rows == led.input_rows
    assert set(o["status"].astype(str)) <= {"paid", "unpaid", "refunded", "cancelled"}


def test_cli_reminders_json_contract(sample, capsys):
    out, _ = sample
    rc = main(["reminders", "--orders", str(out / "orders.csv"), "--sends", str(out / "sends.csv"),
               "--arms", "none,1h,6h,12h,24h", "--pay-window-hours", "72", "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    d = json.loads(cap.out)
    assert {"arms", "km", "decision", "warnings"} <= set(d)
    assert [x["arm"] for x in d["arms"]] == ["none", "1h", "6h", "12h", "24h"]
    for x in d["arms"]:
        assert list(x)[:8] == ["arm", "orders", "paid", "share_paid", "ci_low", "ci_high", "recovered_revenue", "cost"]
    assert set(d["km"]) == {"none", "1h", "6h", "12h", "24h"}
    assert set(d["km"]["6h"][0]) == {"hours", "share_paid"}
    assert set(d["decision"]) >= {"arm", "reason"} and d["decision"]["arm"] == "6h"


def test_cli_without_created_time_is_one_line_exit_2(tmp_path, capsys):
    q = tmp_path / "plain.csv"
    pd.DataFrame({"order_id": ["a"], "customer_id": ["x"], "order_time": ["2025-01-01"], "amount": [1]}).to_csv(q)
    assert main(["reminders", "--orders", str(q), "--sends", str(q)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "created_time" in err


def test_design_reminders_randomises_open_unpaid_orders(tmp_path):
    orders = load_payment_orders(_taobao(tmp_path))
    more = pd.DataFrame({"order_id": [f"U{i}" for i in range(10)], "customer_id": "c",
                         "created_time": pd.Timestamp("2025-03-02 08:00"), "paid_time": pd.NaT, "closed_time": pd.NaT,
                         "status": "unpaid", "amount": 5.0})
    o = pd.concat([orders, more], ignore_index=True)
    o.attrs.update(orders.attrs)
    d1, d2 = design_reminders(o, "none,6h", seed=4), design_reminders(o, "none,6h", seed=4)
    assert d1["orders"] == 11 and d1["arms"] == {"none": 6, "6h": 5} or d1["arms"] == {"none": 5, "6h": 6}
    pd.testing.assert_frame_equal(d1["assignment"], d2["assignment"])
    six = d1["assignment"][d1["assignment"]["arm"] == "6h"]
    assert ((six["send_time"] - six["created_time"]) == pd.Timedelta(hours=6)).all()
    a = Namespace(orders=str(_taobao(tmp_path)), columns=None, observation_end=None, timezone="Asia/Shanghai",
                  decimal=".", dayfirst=None, arms="none,6h", seed=0, out=str(tmp_path / "a.csv"), json=True,
                  csv_raw=False, sheet=None)
    assert cmd_design_reminders(a) == 0
    assert pd.read_csv(tmp_path / "a.csv")["order_id"].tolist() == ["T3"]


def test_card_and_chart():
    orders, sends = _hand_case()
    r = analyse_reminders(orders, sends, pay_window_hours=48)
    html = r._repr_html_()
    assert "Payment reminders" in html and "90% interval" in html
    fig = r.plot()
    assert len(fig.axes[0].lines) >= 2


def test_the_result_speaks_in_its_own_context_and_arms_match_by_delay():
    from crmlab.settings import Settings

    orders, sends = _hand_case()
    london = Settings(currency="£", timezone="Europe/London", interval_level=0.5)
    r = analyse_reminders(orders, sends, arms=["无", "6小时"], pay_window_hours=48, settings=london)
    assert list(r.arms["arm"]) == ["none", "6h"]  # 无 = none, 6小时 = 6h
    for text in (repr(r), r._repr_html_(), r.headline()):
        assert "¥" not in text and "Asia/Shanghai" not in text
    assert "£" in r._repr_html_() and "50% interval" in r._repr_html_()
    json.dumps(r.to_dict())
