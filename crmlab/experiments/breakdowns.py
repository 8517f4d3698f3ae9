"""Breakdowns of an SMS experiment: effects per segment, conversions over the window, an A/A check."""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.experiments.metrics import compare_proportions, holm

__all__ = ["segment_effects", "cumulative_conversions", "aa_false_positive_rate"]


def segment_effects(outcomes: pd.DataFrame, segments: pd.Series, control: str) -> pd.DataFrame:
    """Per segment (e.g. lifecycle stage at send time): all messaged arms pooled vs the control,
    difference with Newcomb interval, p-value and Holm-adjusted p across segments."""
    seg = segments.reindex(outcomes.index.astype(str)).fillna("unknown").to_numpy()
    rows = []
    for s in sorted(set(seg)):
        m = seg == s
        t = outcomes[m & (outcomes["arm"] != control).to_numpy()]
        c = outcomes[m & (outcomes["arm"] == control).to_numpy()]
        if len(t) == 0 or len(c) == 0:
            continue
        r = compare_proportions(int(t["converted"].sum()), len(t), int(c["converted"].sum()), len(c))
        rows.append({"segment": s, "messaged": len(t), "control": len(c), "messaged_rate": r["rate"],
                     "control_rate": r["control_rate"], "diff": r["diff"], "ci_low": r["newcomb_low"],
                     "ci_high": r["newcomb_high"], "p_value": r["p_value"]})
    out = pd.DataFrame(rows).set_index("segment") if rows else pd.DataFrame()
    if len(out):
        out["p_holm"] = holm(out["p_value"])
    return out


def cumulative_conversions(outcomes: pd.DataFrame, window_hours: float, step: float = 1.0) -> pd.DataFrame:
    """Share of targeted customers converted by hour h after the (virtual) send, per arm (for the figure)."""
    hours = np.arange(0, window_hours + step, step)
    out = {}
    for arm, g in outcomes.groupby("arm"):
        h = np.sort(g["hours_to_buy"].dropna().to_numpy())
        out[arm] = np.searchsorted(h, hours, side="right") / len(g)
    return pd.DataFrame(out, index=pd.Index(hours, name="hours"))


def aa_false_positive_rate(converted: np.ndarray, n_splits: int = 1000, alpha: float = 0.05, seed: int = 0) -> float:
    """Split customers at random in halves ``n_splits`` times; share of splits where the pooled
    two-proportion z-test rejects at ``alpha`` (should be about ``alpha``). Vectorised."""
    from scipy import stats

    y = np.asarray(converted, bool).astype(float)
    rng = np.random.default_rng(seed)
    n = len(y)
    half = n // 2
    rej = 0
    for start in range(0, n_splits, 200):
        k = min(200, n_splits - start)
        order = rng.permuted(np.tile(np.arange(n), (k, 1)), axis=1)
        x1 = y[order[:, :half]].sum(axis=1)
        x2 = y.sum() - x1
        n1, n2 = half, n - half
        pooled = (x1 + x2) / n
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = np.where(se > 0, (x1 / n1 - x2 / n2) / np.where(se > 0, se, 1), 0.0)
        rej += int((2 * stats.norm.sf(np.abs(z)) < alpha).sum())
    return rej / n_splits
