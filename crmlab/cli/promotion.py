"""``crmlab promotion``: a big promotion's figures, plan and review."""
from __future__ import annotations

import pandas as pd

from crmlab.cli.common import emit, load_orders_of, writing
from crmlab.present.spreadsheet import write_csv
from crmlab.promotion import plan

__all__ = ["cmd_promotion"]


def cmd_promotion(a) -> int:
    o, led = load_orders_of(a)
    r = plan.analyse_promotion(o, date=a.date, last_year_date=a.last_year_date, phases=a.phases, growth=a.growth,
                          clv_check=not a.no_clv_check)
    if a.warm_up_out:
        warm = plan.warm_up_list(o, r)
        writing("--warm-up-out", a.warm_up_out, lambda: write_csv(warm, a.warm_up_out, raw=a.csv_raw, index=False))
    out = r.to_dict()
    out["ledger"] = led.to_dict()

    def text(d):
        frames = (("last", r.last_year), ("this", r.this_year)) + ((("target", r.plan),) if r.plan is not None else ())
        t = pd.DataFrame({f"{m} {k}": f[m] for m in ("buyers", "sales") for k, f in frames})
        if r.reviewed and r.plan is not None:
            rv = r.review.xs("sales", level="metric")
            t[f"sales attainment ({r.fmt.interval_name()})"] = [f"{100 * a:.1f}% ({100 * lo:.0f}–{100 * hi:.0f}%)" if pd.notna(a) else "–"
                                     for a, lo, hi in zip(rv["attainment"], rv["attainment_low"],
                                                          rv["attainment_high"])]
        g = ", ".join(f"{k} " + (f"{100 * v:+.1f}%" if v is not None else "none") + f" ({d['growth_source'][k]})"
                      for k, v in d["growth"].items())
        head = f"promotion {d['date']} vs {d['last_year_date']}; growth {g}\n"
        if r.plan_reason:
            head += r.plan_reason + "\n"
        return (head + t.to_string(float_format=lambda x: f"{x:,.0f}") + "\n"
                + "\n".join(f"- {s}" for s in r.assumptions))

    emit(out, a.json, text)
    return 0
