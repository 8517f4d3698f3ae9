"""``crmlab clv``: customer lifetime value from the orders."""
from __future__ import annotations

from crmlab.cli.common import emit, load_orders_of, local_arg, writing
from crmlab.clv.models import LABELS, clv_pipeline
from crmlab.present.spreadsheet import write_csv

__all__ = ["cmd_clv"]


def cmd_clv(a) -> int:
    orders, led = load_orders_of(a)
    r = clv_pipeline(orders, time_unit=a.time_unit, calibration_end=local_arg(a.calibration_end, a),
                     holdout_days=a.holdout_days, model=a.model, horizon_months=a.horizon_months,
                     discount_rate=a.discount_rate, margin=a.margin)
    for path, flag, frame in ((a.summary_out, "--summary-out", r.summary), (a.values_out, "--values-out", r.values)):
        if path:
            writing(flag, path, lambda: write_csv(frame.reset_index(), path, raw=a.csv_raw, index=False))
    out = r.to_dict()
    out["ledger"] = led.to_dict()

    def text(o):
        lines = [f"{o['customers']:,} customers, {o['repeat_customers']:,} repeat",
                 f"model: {LABELS[o['chosen_model']]} ({o['choice_reason']})"]
        for k, m in o["models"].items():
            if m["status"] == "failed":
                lines.append(f"  {LABELS[k]:12s} failed: {m['error']}")
                continue
            lines.append(f"  {LABELS[k]:12s} {m['status']:8s} LL {m['log_likelihood']:.1f}  "
                         + ", ".join(f"{p}={v:.4g}" for p, v in m["params"].items()))
        if o["holdout"]:
            lines.append(f"holdout after {o['holdout']['calibration_end'][:10]} (predicted, "
                         f"{r.fmt.level()} prediction interval incl. model error from the backtests, actual):")
            for k, m in o["holdout"]["models"].items():
                lines.append(f"  {LABELS[k]:12s} " + (f"failed: {m['error']}" if m["status"] == "failed" else
                             f"{m['predicted_total']:,.0f} [{m['predicted_low']:,.0f}, {m['predicted_high']:,.0f}]"
                             f" vs {m['actual_total']:,.0f} ({m['total_error']:+.1%}), Poisson deviance "
                             f"{m.get('deviance', float('nan')):.3f}"))
        lines.append(r.headline())
        lines += [f"warning: {w}" for w in o["warnings"]]
        return "\n".join(lines)

    emit(out, a.json, text)
    return 0
