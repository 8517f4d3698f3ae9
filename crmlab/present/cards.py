"""How result objects show themselves: an HTML card in a notebook, a readable line in a console.

Every result (:class:`~crmlab.analyses.retention.RetentionTable`, :class:`~crmlab.analyses.magic.RepurchaseCurve`,
:class:`~crmlab.analyses.magic.MagicNumber`, :class:`~crmlab.clv.pipeline.ClvResult`,
:class:`~crmlab.clv.models.FittedModel`, :class:`~crmlab.experiments.readout.ExperimentResult`,
:class:`~crmlab.experiments.design.SampleSize`, :class:`~crmlab.promotion.plan.PromotionResult`)
renders through a :class:`Card`, the way statsmodels' ``summary()`` renders in a notebook:

* a title and **the one-line finding**, with the headline number in it;
* a compact table (the few rows that matter; the object keeps every number);
* warnings, if any;
* a footer with the settings the result was computed under: engine, store time zone,
  observation end (and what else matters: window, calibration end), and what to call next.

``_repr_html_`` returns :meth:`Card.html`; ``__repr__`` returns :meth:`Card.text` (two lines,
no table). The card builders below compute nothing: they read the result's fields.
"""
from __future__ import annotations

import html as _html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Card", "pct", "money", "number", "settings", "run_settings", "retention_card", "curve_card",
           "magic_card", "clv_card", "model_card", "experiment_card", "sample_size_card", "promotion_card"]


# ----------------------------------------------------------------------------- formatting

def _missing(x) -> bool:
    return x is None or (isinstance(x, (float, np.floating)) and not np.isfinite(x)) or (
        not isinstance(x, str) and pd.isna(x))


def pct(x, digits: int = 1) -> str:
    """``0.1234`` -> ``"12.3%"``; missing -> ``"—"``."""
    return "—" if _missing(x) else f"{100 * float(x):.{digits}f}%"


def money(x, digits: int = 0) -> str:
    """``1234.5`` -> ``"¥1,235"``; missing -> ``"—"``."""
    return "—" if _missing(x) else f"¥{float(x):,.{digits}f}"


def number(x, digits: int = 0) -> str:
    """Thousands separators; ``digits`` after the point (significant figures when ``digits`` is
    ``None``); missing -> ``"—"``."""
    if _missing(x):
        return "—"
    if digits is None:
        return f"{float(x):,.4g}" if abs(float(x)) < 1e4 else f"{float(x):,.0f}"
    return f"{float(x):,.{digits}f}"


def _interval(lo, hi, fmt=pct) -> str:
    return "—" if _missing(lo) or _missing(hi) else f"[{fmt(lo)}, {fmt(hi)}]"


def _when(t) -> str | None:
    if _missing(t):
        return None
    t = pd.Timestamp(t)
    return f"{t:%Y-%m-%d %H:%M:%S}"


# ----------------------------------------------------------------------------- settings

def run_settings(o) -> dict:
    """What a result records when it is computed from the orders ``o`` (an OrderTable): the
    engine it ran in and the store time zone in force (:func:`crmlab.set_timezone`)."""
    from crmlab.ingest.values import get_timezone

    return {"engine": o.engine.name, "timezone": get_timezone()}


def settings(engine: str | None = None, timezone: str | None = None, observation_end=None, **more) -> dict:
    """The footer's settings, in order: engine, time zone, observation end, then ``more``
    (``None`` values left out). A result that did not record its engine or time zone shows
    the notebook's current ones (:func:`crmlab.set_engine`, :func:`crmlab.set_timezone`),
    never connecting to an engine to find out."""
    from crmlab.engine.connection import current_engine
    from crmlab.ingest.values import get_timezone

    if engine is None:
        cur = current_engine()
        engine = None if cur is None else cur.name
    out = {"engine": engine, "time zone": timezone or get_timezone(), "observation end": _when(observation_end)}
    out.update(more)
    return {k: v for k, v in out.items() if v is not None and v != ""}


# ----------------------------------------------------------------------------- the card

_CSS = ("font-family:var(--jp-content-font-family, sans-serif);max-width:62em;border-left:3px solid #1f5fa8;"
        "padding:2px 0 2px 10px;margin:4px 0")


@dataclass
class Card:
    """What a result shows: ``title`` (the class), ``about`` (what it is), the one-line
    ``finding``, a compact ``table`` (values already formatted as text), ``caption``,
    ``notes`` (warnings), ``settings`` and ``hint`` (what to call next)."""

    title: str
    about: str | None
    finding: str
    table: pd.DataFrame | None = None
    caption: str | None = None
    notes: tuple = ()
    settings: dict = field(default_factory=dict)
    hint: str | None = None

    def text(self) -> str:
        """``<title: finding>`` and the settings on a second line."""
        s = " · ".join(f"{k} {v}" for k, v in self.settings.items())
        warn = f" ({len(self.notes)} warning{'s' if len(self.notes) != 1 else ''})" if self.notes else ""
        return f"<{self.title}: {self.finding}{warn}" + (f"\n  {s}>" if s else ">")

    def html(self) -> str:
        e = _html.escape
        parts = [f'<div class="crmlab-result" style="{_CSS}">',
                 f'<div><b>{e(self.title)}</b>' + (f' · {e(self.about)}' if self.about else "") + "</div>",
                 f'<div style="margin:3px 0 6px 0">{e(self.finding)}</div>']
        if self.table is not None and len(self.table):
            t = self.table.astype(object).where(self.table.notna(), "—")
            parts.append(t.to_html(border=0, escape=True, na_rep="—", classes="crmlab-table", index_names=False))
            if self.caption:
                parts.append(f'<div style="color:#555;font-size:88%">{e(self.caption)}</div>')
        if self.notes:
            parts.append('<ul style="color:#8a3324;margin:4px 0;padding-left:1.3em">'
                         + "".join(f"<li>⚠ {e(n)}</li>" for n in self.notes) + "</ul>")
        foot = [f"{e(k)} <b>{e(str(v))}</b>" for k, v in self.settings.items()]
        if self.hint:
            foot.append(e(self.hint))
        if foot:
            parts.append(f'<div style="color:#666;font-size:85%;margin-top:4px">{" · ".join(foot)}</div>')
        parts.append("</div>")
        return "\n".join(parts)


# ----------------------------------------------------------------------------- retention

_KIND_WORDS = {"exact": "a paid order on that day", "on_or_after": "a paid order on that day or later",
               "bracket": "a paid order within those days"}


def _key_day(table):
    """The headline day: day 30 when there is one, else the last day with eligible customers."""
    elig = table.eligible.loc["all cohorts"]
    if 30 in table.rates.columns and elig[30] > 0:
        return 30
    ok = [c for c in table.rates.columns if elig[c] > 0]
    return ok[-1] if ok else table.rates.columns[-1]


def retention_card(t, last: int = 6) -> Card:
    """:class:`~crmlab.analyses.retention.RetentionTable`: the all-cohorts row and the latest cohorts."""
    d = _key_day(t)
    n = int(t.eligible.at["all cohorts", d])
    label = f"days {d}" if isinstance(d, str) else f"day-{d}"
    finding = (f"{label} retention {pct(t.rates.at['all cohorts', d])} of {n:,} eligible new buyers "
               f"(all cohorts; {_KIND_WORDS.get(t.kind, t.kind)})")
    cohorts = [c for c in t.rates.index if c != "all cohorts"]
    rows = cohorts[-last:] + ["all cohorts"]
    tab = t.rates.loc[rows].apply(lambda col: col.map(pct))
    tab.columns = [f"day {c}" if not isinstance(c, str) else f"days {c}" for c in t.rates.columns]
    tab.insert(0, "new buyers", t.size.loc[rows].map(number))
    cap = (f"the latest {min(last, len(cohorts))} of {len(cohorts)} cohorts by {t.cohort}; — : not yet observable "
           "(censored), never 0")
    return Card("RetentionTable", f"cohort retention by {t.cohort} ({t.kind})", finding, tab, cap,
                settings=settings(getattr(t, "engine", None), getattr(t, "timezone", None), t.observation_end),
                hint=".plot() curves, .plot(kind='heatmap'); .to_frame(): every cell with its interval")


# ----------------------------------------------------------------------------- magic number

def curve_card(c) -> Card:
    """:class:`~crmlab.analyses.magic.RepurchaseCurve`: the rate per order count with its interval."""
    t = c.table
    ok = t[t["enough"] & t["rate"].notna()]
    head = ", ".join(f"{pct(r, 0)} after {int(k)} order{'s' if k > 1 else ''}"
                     for k, r in zip(ok["k"].head(3), ok["rate"].head(3)))
    finding = (f"P(order k+1 within {c.window_days} days): {head} (censoring-aware)" if len(ok) else
               f"no order count has {c.min_at_risk} customers with a full {c.window_days}-day window")
    shown = t[t["at_risk"] > 0]
    tab = pd.DataFrame({"at risk": shown["at_risk"].map(number), "repurchased": shown["repurchased"].map(number),
                        "rate": shown["rate"].map(pct),
                        "95% CI": [_interval(a, b) for a, b in zip(shown["ci_low"], shown["ci_high"])],
                        "naive": shown["naive_rate"].map(pct), "Kaplan-Meier": shown["km_rate"].map(pct)},
                       index=pd.Index(shown["k"].astype(int), name="k orders"))
    few = int((~shown["enough"]).sum())
    cap = "naive: ≥k+1 / ≥k orders, biased low for recent customers" + (
        f"; {few} order count(s) with fewer than {c.min_at_risk} at risk" if few else "")
    return Card("RepurchaseCurve", f"repurchase within {c.window_days} days by order count", finding, tab, cap,
                settings=settings(None, None, c.observation_end),
                hint=".plot(); crmlab.magic_number(curve)")


def magic_card(m) -> Card:
    """:class:`~crmlab.analyses.magic.MagicNumber`: the answer, what each rule says, the plateau test."""
    others = ", ".join(f"{k} {'—' if v is None else v}" for k, v in m.rules.items() if k != m.rule)
    if m.magic_number is not None:
        finding = (f"magic number {m.magic_number} orders ({m.rule} rule; {others}"
                   + ("; the rules agree)" if m.agree else ")"))
    else:
        finding = f"no magic number by the {m.rule} rule ({others}): {m.reason}"
    notes = ()
    tab = None
    if m.plateau is not None:
        p = m.plateau
        tab = pd.DataFrame({"at risk": p["at_risk"].map(number), "rate": p["rate"].map(pct),
                            "pooled": p["pooled_rate"].map(pct), "difference": p["difference"].map(lambda x: pct(x, 1)),
                            "p (TOST)": p["p_value"].map(lambda x: f"{x:.3g}"),
                            "equivalent": p["equivalent"].map({True: "yes", False: "no"}),
                            "needed at risk": p["needed_at_risk"].map(number)},
                           index=pd.Index(p["group"], name="k"))
    return Card("MagicNumber", "the repurchase magic number", finding, tab, "the plateau's equivalence test: each rate within the tolerance of "
                "the pooled rate (two one-sided tests)" if tab is not None else None, notes,
                settings=settings(None, None, None),
                hint="an association among customers who got there, not the effect of one more order")


# ----------------------------------------------------------------------------- CLV

def model_card(f) -> Card:
    """:class:`~crmlab.clv.models.FittedModel`: parameters with standard errors and intervals."""
    from crmlab.clv.models import LABELS

    name = LABELS.get(f.name, f.name)
    if f.params_ is None:
        return Card("FittedModel", name, "not fitted yet: .fit(summary)")
    rows = (f"{f.n_customers:,} customers" + (f" ({f.n_rows:,} distinct rows)" if f.n_rows else "")
            if f.name != "gamma_gamma" else f"{f.n_customers:,} repeat customers")
    if f.status == "failed":
        return Card("FittedModel", name, f"failed on {rows}", notes=(f.error,) if f.error else ())
    finding = f"fitted on {rows}, log-likelihood {f.log_likelihood:,.2f}, status {f.status}"
    s = f.summary
    tab = pd.DataFrame({"estimate": s["estimate"].map(lambda x: number(x, None)),
                        "std. error": s["std_error"].map(lambda x: number(x, None)),
                        "95% CI": [_interval(a, b, lambda x: number(x, None)) for a, b in zip(s["ci_low"], s["ci_high"])]},
                       index=s.index)
    return Card("FittedModel", name, finding, tab, "intervals on the log scale (always positive)",
                (f.error,) if f.error else (), hint=".summary, .print_summary(), .params_")


def clv_card(r) -> Card:
    """:class:`~crmlab.clv.pipeline.ClvResult`: the headline, the models side by side."""
    from crmlab.clv.models import LABELS

    rows = {}
    met = r.holdout["metrics"] if r.holdout is not None else None
    for k, m in r.models.items():
        row = {"status": m.status, "log-likelihood": number(m.log_likelihood, 1) if m.ok else "—"}
        if met is not None:
            if k in met.index:
                row["holdout predicted"] = (f"{number(met.at[k, 'predicted_total'])} "
                                            f"{_interval(met.at[k, 'predicted_low'], met.at[k, 'predicted_high'], number)}")
                row["actual"] = number(met.at[k, "actual_total"])
                row["error"] = f"{100 * met.at[k, 'total_error']:+.1f}%"
                row["MAE"] = number(met.at[k, "mae"], 3)
            else:
                row.update({"holdout predicted": "—", "actual": "—", "error": "—", "MAE": "—"})
        row["chosen"] = "✓" if k == r.chosen_model else ""
        rows[LABELS.get(k, k)] = row
    rows["Gamma-Gamma (spend)"] = {"status": r.gamma_gamma.status,
                                   "log-likelihood": number(r.gamma_gamma.log_likelihood, 1) if r.gamma_gamma.ok else "—"}
    tab = pd.DataFrame(rows).T.fillna("")
    hold = r.parameters.get("calibration_end")
    cap = (f"holdout repeat purchases after {hold} with the {100 * r.holdout['level']:.0f}% prediction interval; "
           f"chosen: {r.choice_reason}") if r.holdout is not None else f"chosen: {r.choice_reason}"
    return Card("ClvResult", "customer lifetime value", r.headline(), tab, cap, tuple(r.warnings),
                settings(getattr(r, "engine", None), getattr(r, "timezone", None), r.observation_end,
                         **{"time unit": {"W": "weeks", "D": "days"}.get(r.time_unit, r.time_unit)}),
                hint=".model.print_summary(); .values per customer; .plot()")


# ----------------------------------------------------------------------------- experiments

def experiment_card(r) -> Card:
    """:class:`~crmlab.experiments.readout.ExperimentResult`: the decision, arms and comparisons."""
    d = r.decision or {}
    if d.get("blockers"):
        finding = "no verdict yet: " + "; ".join(d["blockers"])
    else:
        finding = d.get("reason") or r.verdict
    a = r.arms
    tab = pd.DataFrame({"targeted": a["targeted"].map(number), "buyers": a["buyers"].map(number),
                        "conversion": a["conversion_rate"].map(lambda x: pct(x, 2)),
                        "revenue / targeted": a["revenue_per_targeted"].map(lambda x: money(x, 2))}, index=a.index)
    c = r.comparisons
    tab[f"vs {r.control} (pp)"] = ""
    tab["Holm p"] = ""
    for arm in c.index:
        tab.at[arm, f"vs {r.control} (pp)"] = (f"{100 * c.at[arm, 'diff']:+.2f} "
                                               f"[{100 * c.at[arm, 'ci_low']:.2f}, {100 * c.at[arm, 'ci_high']:.2f}]")
        tab.at[arm, "Holm p"] = f"{c.at[arm, 'p_holm']:.3g}"
    return Card("ExperimentResult", "SMS experiment readout", finding, tab,
                f"converted: a paid order within {r.window_hours:g} hours of the send; each arm against the "
                f"{r.control} on its own clock", tuple(r.warnings),
                settings(None, None, None, window=f"{r.window_hours:g} h"),
                hint=".decision, .comparisons, .plot()")


def sample_size_card(s) -> Card:
    """:class:`~crmlab.experiments.design.SampleSize`."""
    other = f" ({s.n_other_arm:,} in the other arm)" if s.ratio != 1 else ""
    finding = (f"{s.n_per_arm:,} customers per arm{other} to detect {pct(s.baseline)} → {pct(s.target)} "
               f"({s.alternative}, α = {s.alpha:g}, power {s.power:g})")
    tab = pd.DataFrame({"value": [f"{s.n_exact:,.2f}", pct(s.baseline, 2), pct(s.target, 2),
                                  f"{100 * (s.target - s.baseline):+.2f} pp", f"{s.ratio:g}"]},
                       index=["n (exact)", "baseline", "target", "difference", "ratio n2/n1"])
    return Card("SampleSize", "customers per arm for two proportions", finding, tab, "R's power.prop.test (normal approximation)")


# ----------------------------------------------------------------------------- promotion

def promotion_card(p) -> Card:
    """:class:`~crmlab.promotion.plan.PromotionResult`: sales per phase, last year, this year, target."""
    ty, ly, plan = p.this_year, p.last_year, p.plan
    names = [ph.name for ph in p.phases] + ["period"]
    if p.reviewed:
        per, per_t = ty.at[("period", "all"), "sales"], plan.at[("period", "all"), "sales"]
        finding = f"{p.date:%Y-%m-%d} reviewed: "
        if "day" in names:
            day, t = ty.at[("day", "all"), "sales"], plan.at[("day", "all"), "sales"]
            finding += f"day sales {money(day)}" + (f", {pct(day / t, 0)} of the target {money(t)}" if t else "") + "; "
        finding += (f"whole period {money(per)}" + (f", {pct(per / per_t, 0)} of target" if per_t else "")
                    + ("" if p.complete("period") else " (not over yet)"))
    else:
        g = ", ".join(f"{k} {100 * v:+.1f}%" for k, v in p.growth.items())
        finding = (f"plan for {p.date:%Y-%m-%d}: period sales target {money(plan.at[('period', 'all'), 'sales'])} "
                   f"from {number(plan.at[('period', 'all'), 'buyers'])} buyers (growth {g})")
    rows = {}
    for ph in names:
        r = {"last year": money(ly.at[(ph, "all"), "sales"]), "this year": money(ty.at[(ph, "all"), "sales"]),
             "target": money(plan.at[(ph, "all"), "sales"])}
        t = plan.at[(ph, "all"), "sales"]
        r["attainment"] = pct(ty.at[(ph, "all"), "sales"] / t, 0) if p.reviewed and t else "—"
        s = ty.at[(ph, "all"), "sales"]
        r["old share"] = pct(ty.at[(ph, "old"), "sales"] / s, 0) if s else "—"
        rows[ph] = r
    tab = pd.DataFrame(rows).T
    tab.index.name = "phase (sales, all buyers)"
    return Card("PromotionResult", "big promotion plan and review", finding, tab,
                "phases are store-local calendar days; old share: this year's old customers' share of sales",
                settings=settings(getattr(p, "engine", None), getattr(p, "timezone", None), p.observation_end),
                hint=".plot(); .review, .plan, .assumptions")
