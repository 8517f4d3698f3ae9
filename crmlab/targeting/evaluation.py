"""Evaluating uplift scores on randomised data: Qini curve, AUUC, uplift@k, calibration.

All on held-out (cross-fitted) scores of a randomised campaign. With several arms, the
evaluation sample is the holdout plus the customers who got the arm the model recommends
for them (under randomisation a random part of each arm), scored by that arm's uplift.

**Qini curve** (Radcliffe 2007; the definition of scikit-uplift's ``qini_curve``): customers
sorted by score, highest first; at each distinct score, with ``n_t``, ``n_c`` treated and
control customers so far and ``y_t``, ``y_c`` their conversions,
``Q = y_t - y_c * n_t / n_c`` (0 while ``n_c = 0``), starting at (0, 0).

**AUUC** here is the area between the Qini curve and the random line, both scaled per
customer of the sample: with ``s = n / N`` and ``q = Q / N``, ``AUUC = ∫ q ds - q(1) / 2``
(trapezoids). 0 means the ranking is no better than random; its bootstrap interval
(percentile, customers resampled within treated and control) including 0 is
"no targeting gain shown".

**uplift@k**: in the top ``k`` share by score, treated conversion rate minus control
conversion rate (percentage points). The bootstrap reuses the sorted order with resampling
weights (multinomial counts), so a replicate costs one pass, not a sort.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["qini_curve", "auuc", "uplift_at_k", "bootstrap_weights", "Resampler", "evaluate_scores", "calibration_table"]


def _sorted(score, y, treated, weight=None):
    order = np.argsort(-np.asarray(score, float), kind="mergesort")
    s = np.asarray(score, float)[order]
    y = np.asarray(y, float)[order]
    t = np.asarray(treated, float)[order]
    w = np.ones(len(s)) if weight is None else np.asarray(weight, float)[order]
    return s, y, t, w, order


def _cums(y, t, w) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Running sums over sorted arrays: customers, treated, treated and control conversions."""
    wy = w * y
    return np.cumsum(w), np.cumsum(w * t), np.cumsum(wy * t), np.cumsum(wy * (1 - t))


def _points(s) -> np.ndarray:
    """The last row of each distinct score of sorted scores."""
    return np.r_[np.flatnonzero(np.diff(s)), len(s) - 1] if len(s) else np.array([], int)


def _curve_cums(cums, idx) -> tuple[np.ndarray, np.ndarray]:
    n_all, n_t, y_t, y_c = (c[idx] for c in cums)
    n_c = n_all - n_t
    ratio = np.divide(n_t, n_c, out=np.zeros_like(n_t), where=n_c != 0)
    return np.r_[0.0, n_all], np.r_[0.0, y_t - y_c * ratio]


def _curve_sorted(s, y, t, w) -> tuple[np.ndarray, np.ndarray]:
    """Qini points (cumulative customers, Q) at each distinct score of sorted arrays."""
    return _curve_cums(_cums(y, t, w), _points(s))


def _top_cums(cums, cut: int) -> float:
    """:func:`_top_rates` from the running sums (a bootstrap replicate's: no pass of its own)."""
    n_all, n_t, y_t, y_c = (float(c[cut - 1]) for c in cums)
    n_c = n_all - n_t
    return y_t / n_t - y_c / n_c if n_t > 0 and n_c > 0 else float("nan")


def qini_curve(score, y, treated, weight=None) -> tuple[np.ndarray, np.ndarray]:
    """The Qini curve: (customers so far, incremental conversions Q) at each distinct score,
    from (0, 0). ``weight`` (optional) counts each customer that many times."""
    s, y, t, w, _ = _sorted(score, y, treated, weight)
    return _curve_sorted(s, y, t, w)


def _auuc_from(n, q) -> float:
    N = n[-1]
    if N <= 0:
        return float("nan")
    x, v = n / N, q / N
    return float(np.sum((x[1:] - x[:-1]) * (v[1:] + v[:-1]) / 2) - v[-1] / 2)


def auuc(score, y, treated, weight=None) -> float:
    """Area between the Qini curve and the random line, per customer (module doc)."""
    return _auuc_from(*qini_curve(score, y, treated, weight))


def _top_rates(y, t, w, cut: int) -> float:
    wt, wc = (w * t)[:cut], (w * (1 - t))[:cut]
    if wt.sum() <= 0 or wc.sum() <= 0:
        return float("nan")
    return float((wt * y[:cut]).sum() / wt.sum() - (wc * y[:cut]).sum() / wc.sum())


def uplift_at_k(score, y, treated, share: float, weight=None) -> float:
    """Treated minus control conversion rate in the top ``share`` of customers by score."""
    s, y, t, w, _ = _sorted(score, y, treated, weight)
    return _top_rates(y, t, w, max(1, int(np.ceil(share * len(s)))))


def bootstrap_weights(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Resampling counts: each group (e.g. treated and control, or the arms) resampled with
    replacement to its own size (one pass per group)."""
    return Resampler(groups).weights(rng)


class Resampler:
    """Stratified bootstrap counts for a fixed grouping (group indices computed once)."""

    def __init__(self, groups: np.ndarray) -> None:
        _, codes = np.unique(np.asarray(groups), return_inverse=True)
        self.n = len(codes)
        self.idx = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)] if self.n else []

    def weights(self, rng: np.random.Generator) -> np.ndarray:
        """One replicate's counts (how many times each customer is drawn)."""
        w = np.zeros(self.n)
        for idx in self.idx:
            w[idx] = np.bincount(rng.integers(0, len(idx), len(idx)), minlength=len(idx))
        return w


def _widened(point: float, q_lo: float, q_hi: float, widen: float) -> tuple[float, float]:
    return point - widen * (point - q_lo), point + widen * (q_hi - point)


def evaluate_scores(score, y, treated, shares=(0.1, 0.2, 0.3, 0.5, 1.0), n_boot: int = 200, level: float = 0.95,
                    seed: int = 0, points: int = 101, widen: float = 1.0) -> dict:
    """Qini curve (``points`` shares), AUUC and uplift@k, each with a percentile bootstrap interval.

    Returns ``{"auuc", "ci_low", "ci_high", "curve": [{"share", "uplift"}], "uplift_at_k":
    [{"share", "uplift_pp", "ci_low", "ci_high"}], "n", "n_boot"}``; ``uplift`` on the curve
    is ``Q / N`` (incremental conversions per customer of the sample) at that share.

    ``widen`` stretches each interval about its point (``sqrt(2)`` for 2-fold cross-fitted
    scores: fold 1's scores learn fold 2's chance pattern and vice versa, so the two halves of
    the curve can move together, and a bootstrap that treats customers as independent gives at
    worst half the variance; ``sqrt(2)`` is that bound).
    """
    s, y, t, w, _ = _sorted(score, y, treated)
    n, q = _curve_sorted(s, y, t, w)
    N = len(s)
    grid = np.linspace(0, 1, points)
    curve = [{"share": float(g), "uplift": float(np.interp(g * N, n, q) / N) if N else None} for g in grid]
    cuts = [max(1, int(np.ceil(k * N))) for k in shares]
    rng = np.random.default_rng(seed)
    res = Resampler(t)
    boot_a, boot_k = np.empty(n_boot), np.empty((n_boot, len(shares)))
    idx = _points(s)
    for b in range(n_boot):
        cums = _cums(y, t, res.weights(rng))
        boot_a[b] = _auuc_from(*_curve_cums(cums, idx))
        boot_k[b] = [_top_cums(cums, c) for c in cuts]
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    at_k = []
    for j, (k, c) in enumerate(zip(shares, cuts)):
        v = boot_k[:, j][np.isfinite(boot_k[:, j])]
        pt = _top_rates(y, t, w, c)
        ci = _widened(pt, np.quantile(v, lo), np.quantile(v, hi), widen) if len(v) and np.isfinite(pt) else (None,
                                                                                                             None)
        at_k.append({"share": float(k), "uplift_pp": 100 * pt, "ci_low": None if ci[0] is None else 100 * float(ci[0]),
                     "ci_high": None if ci[1] is None else 100 * float(ci[1])})
    a = _auuc_from(n, q)
    a_lo, a_hi = _widened(a, np.nanquantile(boot_a, lo), np.nanquantile(boot_a, hi), widen)
    return {"auuc": a, "ci_low": float(a_lo), "ci_high": float(a_hi), "curve": curve, "uplift_at_k": at_k,
            "n": int(N), "n_boot": int(n_boot), "widen": float(widen)}


def calibration_table(predicted, y, treated, bins: int = 10) -> pd.DataFrame:
    """Predicted vs observed uplift by decile of the prediction (decile 1 = highest):
    ``customers``, ``treated``, ``control``, ``predicted_pp`` (mean), ``observed_pp``
    (treated minus control conversion rate, missing when a group is empty)."""
    p = np.asarray(predicted, float)
    order = np.argsort(-p, kind="mergesort")
    dec = np.empty(len(p), int)
    dec[order] = np.minimum((np.arange(len(p)) * bins) // max(len(p), 1), bins - 1) + 1
    d = pd.DataFrame({"decile": dec, "p": p, "y": np.asarray(y, float), "t": np.asarray(treated, bool)})
    rows = []
    for k, g in d.groupby("decile"):
        yt, yc = g.loc[g.t, "y"], g.loc[~g.t, "y"]
        obs = 100 * (yt.mean() - yc.mean()) if len(yt) and len(yc) else np.nan
        rows.append({"decile": int(k), "customers": len(g), "treated": int(g.t.sum()), "control": int((~g.t).sum()),
                     "predicted_pp": 100 * g.p.mean(), "observed_pp": obs})
    return pd.DataFrame(rows).set_index("decile")
