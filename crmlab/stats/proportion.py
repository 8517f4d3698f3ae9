"""Rates with their numerator, denominator and a Wilson 95% interval (statsmodels)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

__all__ = ["wilson", "rate_frame"]


def wilson(count, nobs, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval; NaN where ``nobs`` is 0 (a censored or empty cell)."""
    count = np.asarray(count, dtype=float)
    nobs = np.asarray(nobs, dtype=float)
    safe = np.where(nobs > 0, nobs, 1.0)
    lo, hi = proportion_confint(np.where(nobs > 0, count, 0.0), safe, alpha=alpha, method="wilson")
    lo = np.where(nobs > 0, lo, np.nan)
    hi = np.where(nobs > 0, hi, np.nan)
    return lo, hi


def rate_frame(numerator, denominator, index=None, alpha: float = 0.05,
               names: tuple[str, str] = ("numerator", "denominator")) -> pd.DataFrame:
    """``numerator, denominator, rate, ci_low, ci_high``; the rate is NaN when the denominator is 0."""
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    lo, hi = wilson(num, den, alpha)
    return pd.DataFrame({names[0]: num.astype(np.int64), names[1]: den.astype(np.int64), "rate": rate,
                         "ci_low": lo, "ci_high": hi}, index=index)
