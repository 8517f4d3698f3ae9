"""CUPED: variance reduction with a pre-experiment covariate (Deng, Xu, Kohavi & Walker 2013).

For a comparison of an arm with its control, X is each targeted customer's figure from the
N days before their send (paid spend for revenue, paid orders for conversion) and Y the
outcome in the window. Over the two groups pooled (sample moments, ddof 1):

    theta = cov(X, Y) / var(X),      Y' = Y - theta (X - mean X)

and Welch's t-test on Y' gives the difference (unchanged in expectation: randomisation makes
X independent of the arm), its interval and p-value. ``variance_reduction`` = 1 - (width of
the CUPED interval / width of the raw Welch interval)^2, the share of the variance of the
difference that the pre-period explains. It is what GrowthBook, Statsig and Eppo call
CUPED; the regression-adjusted estimate (OLS of Y on the arm and X) is nearly the same.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["cuped_welch"]


def _welch(a: np.ndarray, b: np.ndarray, alpha: float) -> tuple[float, float, float, float, float]:
    r = stats.ttest_ind(a, b, equal_var=False)
    ci = r.confidence_interval(1 - alpha)
    return float(r.statistic), float(r.df), float(r.pvalue), float(ci.low), float(ci.high)


def cuped_welch(y_arm, x_arm, y_control, x_control, alpha: float = 0.05) -> dict:
    """CUPED-adjusted difference ``arm - control`` (see the module doc).

    Returns ``diff``, ``welch_t``, ``df``, ``p_value``, ``ci_low``, ``ci_high`` (all on Y'),
    ``theta``, ``variance_reduction``, and the raw Welch interval ``raw_ci_low``/``raw_ci_high``.
    """
    ya, xa = np.asarray(y_arm, float), np.asarray(x_arm, float)
    yc, xc = np.asarray(y_control, float), np.asarray(x_control, float)
    x, y = np.concatenate([xa, xc]), np.concatenate([ya, yc])
    nan = float("nan")
    if min(len(ya), len(yc)) < 2:
        return {"diff": nan, "welch_t": nan, "df": nan, "p_value": nan, "ci_low": nan, "ci_high": nan,
                "theta": nan, "variance_reduction": nan, "raw_ci_low": nan, "raw_ci_high": nan}
    vx = float(np.var(x, ddof=1))
    theta = float(np.cov(x, y, ddof=1)[0, 1] / vx) if vx > 0 else 0.0
    mx = float(x.mean())
    adj_a, adj_c = ya - theta * (xa - mx), yc - theta * (xc - mx)
    with np.errstate(invalid="ignore", divide="ignore"):
        t, df, p, lo, hi = _welch(adj_a, adj_c, alpha)
        _, _, _, rlo, rhi = _welch(ya, yc, alpha)
    raw_w, w = rhi - rlo, hi - lo
    vr = 1 - (w / raw_w) ** 2 if np.isfinite(raw_w) and raw_w > 0 else nan
    return {"diff": float(adj_a.mean() - adj_c.mean()), "welch_t": t, "df": df, "p_value": p, "ci_low": lo,
            "ci_high": hi, "theta": theta, "variance_reduction": float(vr), "raw_ci_low": rlo, "raw_ci_high": rhi}
