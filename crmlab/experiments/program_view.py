"""What a page shows of a programme readout (:class:`crmlab.experiments.program.ProgramReadout`):
the reason it cannot answer, its one-sentence verdict, its cards, its chart and its monthly table.

Notebook 05's section "Programme holdout 长期对照组" is made of these; every figure is the
readout's own (the same numbers ``crmlab program --json`` prints), written by the run's
:class:`~crmlab.present.formatting.Formatter` (currency, interval level).

The verdict never says more than the cumulative interval supports: an interval above zero
says the programme raised repurchase (by at least its lower end), one below zero that it
lowered it, one across zero that no effect is shown either way, with the range it allows.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from crmlab.experiments.program import ProgramReadout
from crmlab.present.figures import COLORS, pct_axis, style
from crmlab.present.formatting import integer

__all__ = ["unanswered", "program_sentence", "program_cards", "program_figure", "program_alt", "monthly_table",
           "months_words"]


def months_words(n: int) -> str:
    """``1 month``, ``12 months``."""
    return f"{n} month{'' if n == 1 else 's'}"


def unanswered(r: ProgramReadout) -> str | None:
    """Why the readout cannot answer (one line), or None when it can: no held-out customer
    (share or salt not the design's), too few in either group, or no whole month yet."""
    c = r.customers
    if not c["held_out"]:
        return (f"no customer falls in the held-out share {r.holdout_share:g} with salt {r.salt!r}: check the share "
                "and the salt against the design")
    if not r.months and min(c["held_out"], c["messaged"]) < 2:
        return f"only {c['held_out']} held-out and {c['messaged']} messaged customers: nothing to compare"
    leaked = c.get("held_out_messaged", 0)
    if leaked * 2 > c["held_out"]:  # most of the "held-out" were messaged: not the design's holdout
        return (f"{leaked:,} of the {c['held_out']:,} held-out customers were messaged: the share "
                f"{r.holdout_share:g} or the salt {r.salt!r} is not the design's")
    if not r.months:
        return (f"no whole month between the programme start {r.start:%Y-%m-%d} and the observation end "
                f"{r.observation_end:%Y-%m-%d}: the first month is not over yet")
    return None


def program_sentence(r: ProgramReadout) -> str:
    """The verdict in one sentence: what the cumulative repurchase difference says, with its
    interval at the run's level (plain text; no markup)."""
    f, c = r.fmt, r.cumulative
    if not c:
        return unanswered(r) or "no readout"
    name = f.interval_name(r.interval_level)
    diff, lo, hi = f.pp(c["diff"]), f.pp(c["ci_low"]), f.pp(c["ci_high"])
    rates = (f"{f.pct(c['messaged_rate'])} of messaged and {f.pct(c['held_out_rate'])} of held-out customers "
             f"bought again in the {months_words(c['month'])} since {r.start:%Y-%m-%d}")
    if c["ci_low"] > 0:
        return (f"The programme raised repurchase: {rates}, {diff} ({name} {lo} to {hi}), so by at least "
                f"{lo} at this level.")
    if c["ci_high"] < 0:
        return (f"The programme lowered repurchase: {rates}, {diff} ({name} {lo} to {hi}), so by at least "
                f"{f.pp(-c['ci_high'], sign=False)} at this level.")
    leaked = r.customers.get("held_out_messaged", 0)
    return (f"No effect of the programme on repurchase is shown yet: {rates}, {diff} ({name} {lo} to {hi}); "
            f"the interval includes zero, so the effect may be anywhere in that range"
            + (f" or beyond it: {leaked:,} held-out customers were messaged, which dilutes the difference."
               if leaked else "."))


def _card(value: str, note: str | None = None) -> dict:
    """A card as ``crmlab.report.notebook.kpi`` makes it (no arrow: the sentence reads the sign)."""
    return {"value": value, "compare": None, "note": note, "tone": None}


def program_cards(r: ProgramReadout) -> dict[str, dict]:
    """The readout's cards: ``{label: card}`` for ``nb.kpis``."""
    f, c, n = r.fmt, r.cumulative, r.customers
    name = f.interval_name(r.interval_level)
    b = c["incremental_buyers"]
    return {
        f"bought again, {months_words(c['month'])}": _card(
            f"{f.pct(c['messaged_rate'])} vs {f.pct(c['held_out_rate'])}", "messaged vs held out"),
        "cumulative difference": _card(f.pp(c["diff"]), f"{name} {f.interval(c['ci_low'], c['ci_high'], 'pp')}"),
        "incremental buyers": _card(integer(b["estimate"]),
                                    f"{name} {integer(b['ci_low'])} to {integer(b['ci_high'])}"),
        "revenue per customer, difference": _card(f.money(c["revenue_diff"], sign=True),
                                      f"{name} {f.interval(c['revenue_ci_low'], c['revenue_ci_high'], 'money')}"),
        "held out": _card(f"{integer(n['held_out'])} of {integer(n['held_out'] + n['messaged'])}",
                          f"share {r.holdout_share:g}, a stable hash of the id"),
    }


def program_figure(r: ProgramReadout) -> Figure:
    """The share of each group with a paid order since the start, month by month (the
    cumulative rates of :attr:`ProgramReadout.months`); the legend under the axes."""
    m = pd.DataFrame(r.months)
    with style():
        fig = Figure(figsize=(8, 4), constrained_layout=True)
        ax = fig.subplots()
        ax.plot(m["month"], m["cumulative_messaged_rate"], marker="o", lw=2, color=COLORS[0],
                label="messaged (the programme) 营销组")
        ax.plot(m["month"], m["cumulative_held_out_rate"], marker="s", lw=2, ls="--", color=COLORS[1],
                label="held out of every campaign 长期对照组")
        pct_axis(ax)
        ax.set_xticks(m["month"])
        ax.set_xlabel(f"months since {r.start:%Y-%m-%d}")
        ax.set_ylabel("bought again since the start")
        ax.set_title("长期对照组 Cumulative repurchase, messaged vs held out")
        ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    return fig


def program_alt(r: ProgramReadout) -> str:
    """The chart's text alternative: what it shows and where it ends."""
    f, c = r.fmt, r.cumulative
    return (f"Line chart: the share of customers with a paid order since {r.start:%Y-%m-%d}, month 1 to {c['month']}, "
            f"messaged against held out; after {months_words(c['month'])} {f.pct(c['messaged_rate'])} against "
            f"{f.pct(c['held_out_rate'])} ({f.pp(c['diff'])}).")


def monthly_table(r: ProgramReadout) -> pd.DataFrame:
    """One row per covered month: the month's rates and difference with its interval, the
    cumulative difference with its interval and the month's revenue per customer difference
    (numbers; the page formats them)."""
    m = pd.DataFrame(r.months)
    f = r.fmt
    name = f.interval_name(r.interval_level)
    out = pd.DataFrame({
        "from": m["from"], "messaged": m["messaged_rate"], "held out": m["held_out_rate"], "difference": m["diff"],
        name: [f.interval(a, b, "pp") for a, b in zip(m["ci_low"], m["ci_high"])],
        "cumulative difference": m["cumulative_diff"],
        f"cumulative {name}": [f.interval(a, b, "pp") for a, b in zip(m["cumulative_ci_low"], m["cumulative_ci_high"])],
        "revenue per customer difference": m["revenue_diff"]})
    out.index = pd.Index(m["month"], name="month")
    return out
