"""What a fitted buy-till-you-die model expects, vectorised: P(alive), expected and discounted
purchases, the period-transactions probabilities, Gamma-Gamma spend, and simulated paths.

The same functions as lifetimes 0.11.3's ``conditional_probability_alive``,
``conditional_expected_number_of_purchases_up_to_time``, ``customer_lifetime_value`` and
``conditional_expected_average_profit`` (tested equal on CDNOW), on natural-scale parameters
``th`` and per-row histories (``x`` frequency, ``tx`` recency, ``T`` age). Pareto/NBD's
P(alive) comes from the likelihood's own parts (:mod:`crmlab.clv.likelihoods`).
"""
from __future__ import annotations

import numpy as np
from scipy.special import betainc, betaln, expit, gammaln, hyp2f1

from crmlab.clv.likelihoods import _LNY, _W, Rows, _pareto_parts

__all__ = ["p_alive", "expected_purchases", "discounted_purchases", "pmf_repeat", "gg_expected_spend",
           "simulate_paths"]

_MONTH = {"W": 4.345, "D": 30.0}  # lifetimes' time units per month in customer_lifetime_value


# ----------------------------------------------------------------------------- expectations

def p_alive(model: str, th, x, tx, T) -> np.ndarray:
    """P(alive at T | x, tx, T): lifetimes' ``conditional_probability_alive``."""
    x, tx, T = (np.asarray(v, float) for v in (x, tx, T))
    with np.errstate(all="ignore"):
        if model == "bgnbd":
            r, al, a, b = th
            lg = (r + x) * np.log((al + T) / (al + tx)) + np.log(a / (b + np.maximum(x, 1) - 1))
            return np.where(x == 0, 1.0, expit(-lg))
        if model == "mbgnbd":
            r, al, a, b = th
            return expit(-(np.log(a / (b + x)) + (r + x) * np.log((al + T) / (al + tx))))
        if model == "pareto_nbd":
            d = Rows(x, tx, T)
            return _pareto_parts(np.asarray(th, float), d, False)[2]
    raise ValueError(model)


def _expm1_over(c, L):
    """(e^{cL} − 1)/c, and L at c = 0."""
    c = np.asarray(c, float)
    small = np.abs(c * L) < 1e-8
    return np.where(small, L * (1 + c * L / 2), np.expm1(c * L) / np.where(c == 0, 1.0, c))


def expected_purchases(model: str, th, t, x, tx, T, alive=None) -> np.ndarray:
    """E[repeat purchases in (T, T+t] | x, tx, T]: lifetimes'
    ``conditional_expected_number_of_purchases_up_to_time``. ``alive`` (Pareto/NBD) reuses
    P(alive) when already known."""
    x, tx, T, t = (np.asarray(v, float) for v in (x, tx, T, t))
    with np.errstate(all="ignore"):
        if model in ("bgnbd", "mbgnbd"):
            r, al, a, b = th
            e = 1.0 if model == "mbgnbd" else 0.0
            _a, _b, _c = r + x, b + x + e, a + b + x - 1 + e
            z = t / (al + T + t)
            lh = np.log(hyp2f1(_a, _b, _c, z))
            alt = np.log(hyp2f1(_c - _a, _c - _b, _c, z)) + (_c - _a - _b) * np.log1p(-z)
            lh = np.where(np.isinf(lh), alt, lh)
            num = (a + b + x - 1 + e) / (a - 1) * (1 - np.exp(lh + (r + x) * np.log((al + T) / (al + t + T))))
            if model == "bgnbd":
                den = 1 + (x > 0) * (a / (b + np.maximum(x, 1) - 1)) * ((al + T) / (al + tx)) ** (r + x)
            else:
                den = 1 + (a / (b + x)) * ((al + T) / (al + tx)) ** (r + x)
            return np.where(t > 0, num / den, 0.0)
        if model == "pareto_nbd":
            r, al, s, be = th
            pa = p_alive(model, th, x, tx, T) if alive is None else alive
            L = np.log1p(t / (be + T))
            return (r + x) / (al + T) * (be + T) * _expm1_over(1 - s, L) * pa
    raise ValueError(model)


def discounted_purchases(model: str, th, x, tx, T, unit: str, months: int, discount_rate: float,
                         alive=None) -> np.ndarray:
    """Σ over months m = 1..months of E[purchases in month m] / (1 + d)^m, months as lifetimes
    counts them (``_customer_lifetime_value``: 4.345 weeks or 30 days)."""
    f = _MONTH[unit]
    if model == "pareto_nbd" and alive is None:
        alive = p_alive(model, th, x, tx, T)
    prev = np.zeros(len(np.atleast_1d(x)))
    out = np.zeros_like(prev)
    for m in range(1, months + 1):
        cur = expected_purchases(model, th, m * f, x, tx, T, alive)
        out += (cur - prev) / (1 + discount_rate) ** m
        prev = cur
    return out


def gg_expected_spend(th, x, m) -> np.ndarray:
    """Gamma-Gamma E[spend per purchase | x, m] (lifetimes' conditional_expected_average_profit)."""
    p, q, v = th
    x, m = np.asarray(x, float), np.asarray(m, float)
    wgt = p * x / (p * x + q - 1)
    return (1 - wgt) * (v * p / (q - 1)) + wgt * m


def pmf_repeat(model: str, th, t, n_max: int) -> np.ndarray:
    """P(X(t) = n), n = 0..n_max−1, and P(X(t) >= n_max) in the last column, for a new
    customer observed for ``t`` (array): the period-transactions check's expectations."""
    t = np.asarray(t, float)[:, None]
    n = np.arange(n_max)[None, :].astype(float)
    with np.errstate(all="ignore"):
        if model in ("bgnbd", "mbgnbd", "nbd"):
            r, al = th[0], th[1]
            q = t / (al + t)
            lnb = gammaln(r + n) - gammaln(r) - gammaln(n + 1) + r * np.log(al / (al + t)) + n * np.log(q)
            nb = np.exp(lnb)
            surv = np.where(n > 0, betainc(np.maximum(n, 1), r, q), 1.0)  # P(K >= n) under the NBD
            if model == "nbd":
                p = nb
            else:
                a, b = th[2], th[3]
                if model == "bgnbd":
                    p = (np.exp(betaln(a, b + n) - betaln(a, b)) * nb
                         + np.where(n > 0, np.exp(betaln(a + 1, b + n - 1) - betaln(a, b)), 0.0) * surv)
                else:
                    p = np.exp(betaln(a, b + n + 1) - betaln(a, b)) * nb + np.exp(betaln(a + 1, b + n) - betaln(a, b)) * surv
        elif model == "pareto_nbd":
            r, al, s, be = th
            Gt = -np.expm1(-s * np.log1p(t / be))  # P(death before t)
            g = Gt[:, :, None] * np.exp(_LNY)[None, None, :]  # death-time CDF values on the nodes
            tau = be * np.expm1(-np.log1p(-g) / s)
            nn = n[:, :, None]
            lnb_tau = (gammaln(r + nn) - gammaln(r) - gammaln(nn + 1) + r * np.log(al / (al + tau))
                       + nn * np.log(tau / (al + tau)))
            integral = (np.exp(lnb_tau) * _W).sum(-1) * Gt
            lnb_t = gammaln(r + n) - gammaln(r) - gammaln(n + 1) + r * np.log(al / (al + t)) + n * np.log(t / (al + t))
            p = np.exp(lnb_t) * (1 - Gt) + integral
        else:
            raise ValueError(model)
    p = np.nan_to_num(p)
    return np.column_stack([p, np.clip(1 - p.sum(1), 0, 1)])


# ----------------------------------------------------------------------------- simulation

def simulate_paths(model: str, th, x, tx, T, grid, reps: int, rng, alive=None) -> np.ndarray:
    """Future repeat purchases simulated from the fitted model given each row's history:
    cumulative counts at the times ``grid`` (increasing, from the end of the history), shape
    (reps, rows, len(grid)). Alive with P(alive); then λ ~ Gamma(r+x, α+T); BG/MBG: dies
    after each purchase with p ~ Beta(a, b+x [+1]); Pareto/NBD: dies at rate μ ~ Gamma(s, β+T)."""
    x, tx, T = (np.asarray(v, float) for v in (x, tx, T))
    grid = np.asarray(grid, float)
    n = len(x)
    pa = p_alive(model, th, x, tx, T) if alive is None else alive
    shape = (reps, n)
    live = rng.random(shape) < pa
    r, al = th[0], th[1]
    lam = rng.gamma(r + x, 1.0 / (al + T), size=shape)
    edges = np.concatenate([[0.0], grid])
    if model == "pareto_nbd":
        s, be = th[2], th[3]
        mu = rng.gamma(s, 1.0 / (be + T), size=shape)
        death = rng.exponential(1.0, size=shape) / np.maximum(mu, 1e-300)
        expo = np.clip(np.minimum(death[..., None], edges[1:]) - edges[:-1], 0, None)
        counts = rng.poisson(lam[..., None] * expo).cumsum(-1)
    else:
        a, b = th[2], th[3]
        p = rng.beta(a, b + x + (1.0 if model == "mbgnbd" else 0.0), size=shape)
        G = rng.geometric(np.clip(p, 1e-300, 1.0))
        k = rng.poisson(lam[..., None] * np.diff(edges)).cumsum(-1)
        counts = np.minimum(k, G[..., None])
    return counts * live[..., None]
