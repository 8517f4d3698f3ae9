"""``crmlab target``: whom to message next, from a randomised campaign (issue 27)."""
from __future__ import annotations

import pandas as pd

from crmlab.cli.common import emit, load_orders_of, load_sends_of, writing
from crmlab.present.spreadsheet import write_csv
from crmlab.schema import CrmlabInputError
from crmlab.targeting.pipeline import target
from crmlab.targeting.result import SEND_LIST_COLUMNS

__all__ = ["cmd_target", "read_candidates"]


def read_candidates(path: str | None) -> list | None:
    """Customer ids from a CSV with a ``customer_id`` column (or a one-column file)."""
    if path is None:
        return None
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise CrmlabInputError(f"--candidates {path}: cannot read ({' '.join(str(e).split())[:160]})") from None
    if "customer_id" in df.columns:
        ids = df["customer_id"]
    elif len(df.columns) == 1:
        ids = df.iloc[:, 0]
    else:
        raise CrmlabInputError(f"--candidates {path}: no customer_id column (columns: {', '.join(df.columns[:8])})")
    ids = ids[ids.str.strip() != ""]
    if ids.empty:
        raise CrmlabInputError(f"--candidates {path}: no customer ids")
    return list(ids)


def cmd_target(a) -> int:
    orders, lo = load_orders_of(a)
    sends, ls = load_sends_of(a, lo.observation_end)
    candidates = read_candidates(a.candidates)
    try:
        r = target(sends, orders, campaign=a.campaign, candidates=candidates, window_hours=a.window_hours,
                   price_per_message=a.price_per_message, margin=a.margin, benefit=a.benefit, budget=a.budget,
                   budget_money=a.budget_money, learner=a.learner, seed=a.seed)
    except ValueError as e:
        if isinstance(e, CrmlabInputError):
            raise
        raise CrmlabInputError(str(e)) from None
    sl = r.send_list[list(SEND_LIST_COLUMNS)]
    writing("--out", a.out, lambda: write_csv(sl, a.out, raw=False, index=False))
    out = r.to_dict()
    out["out"] = a.out
    out["ledger"] = {"orders": lo.to_dict(), "sends": ls.to_dict()}

    def text(o):
        p, s = o["policy"], o["send_to_all"]
        lines = [f"learner {o['learner']}; Qini AUUC {o['qini']['auuc']:.4f} "
                 f"[{o['qini']['ci_low']:.4f}, {o['qini']['ci_high']:.4f}]"]
        if o["fallback"]:
            lines.append(f"fallback: {o['fallback']}")
        lines.append(f"policy: {p['messages']:,} messages, cost {p['cost']:,.2f}, expected incremental profit "
                     f"{p['incremental_profit']:,.2f} (by arm: {', '.join(f'{k} {v:,}' for k, v in p['by_arm'].items())})")
        lines.append(f"send {s['arm']} to everyone: expected incremental profit {s['incremental_profit']:,.2f}")
        lines += [f"warning: {w}" for w in o["warnings"]]
        lines.append(f"wrote {o['out']}")
        return "\n".join(lines)

    emit(out, a.json, text)
    return 0
