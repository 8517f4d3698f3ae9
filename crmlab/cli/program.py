"""``crmlab program``: the whole SMS programme against its long-term holdout (长期对照组)."""
from __future__ import annotations

import os

from crmlab.cli.common import emit, load_orders_of, load_sends_of
from crmlab.experiments.program import program_readout
from crmlab.experiments.program_view import unanswered
from crmlab.schema import CrmlabInputError

__all__ = ["cmd_program"]


def cmd_program(a) -> int:
    """Read out the programme (:func:`crmlab.experiments.program.program_readout`): JSON keys
    ``holdout_share``, ``salt``, ``start``, ``observation_end``, ``interval_level``, ``customers``,
    ``months``, ``cumulative``, ``dose_response``, ``warnings``, ``method``, ``ledger``."""
    orders, lo = load_orders_of(a)
    sends, ls = load_sends_of(a, lo.observation_end)
    try:
        r = program_readout(orders, sends, holdout_share=a.holdout_share, salt=a.salt, months=a.months,
                            start=a.start)
    except ValueError as e:
        if isinstance(e, CrmlabInputError):
            raise
        raise CrmlabInputError(str(e)) from None
    out = r.to_dict()
    out.pop("settings", None)
    why = unanswered(r)  # the reasons report 05 skips its programme section for, one definition
    if why:  # nothing to read out, or not the design's holdout: say why, exit 2
        raise CrmlabInputError(f"{os.path.basename(str(lo.file))}: {why} (check --holdout-share, --salt and "
                               "--start against the design)")
    out["ledger"] = {"orders": lo.to_dict(), "sends": ls.to_dict()}

    def text(o):
        f = r.fmt
        c = o["customers"]
        lines = [f"programme from {o['start'][:10]}: {c['messaged']:,} messaged, {c['held_out']:,} held out "
                 f"(share {o['holdout_share']:g}, salt {o['salt']!r})"]
        for m in o["months"]:
            lines.append(f"  month {m['month']:>2} ({m['from']}): messaged {f.pct(m['messaged_rate'])}, held out "
                         f"{f.pct(m['held_out_rate'])}, {f.pp(m['diff'])} {f.interval(m['ci_low'], m['ci_high'], 'pp')}; "
                         f"cumulative {f.pp(m['cumulative_diff'])}")
        lines.append(r.headline())
        lines += [f"warning: {w}" for w in o["warnings"]]
        return "\n".join(lines)

    emit(out, a.json, text)
    return 0
