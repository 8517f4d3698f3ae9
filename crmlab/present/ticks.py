"""Percent axes that label every tick exactly: the chart side of the formatter.

Kept apart from :mod:`crmlab.present.formatting` so that formatting a number never loads
matplotlib (the CLI and ``import crmlab`` stay light).
"""
from __future__ import annotations

from matplotlib.ticker import FixedLocator, Formatter as _Formatter, MaxNLocator as _MaxNLocator, PercentFormatter

from crmlab.present.formatting import MINUS, _decimals_for

__all__ = ["PercentTicks", "percent_locator", "percent_labels", "fix_percent_axes"]




class PercentTicks(_Formatter):
    """Percent tick labels with the fewest decimals that label every tick exactly: ticks at
    0, 0.005, 0.01 read ``0.0%, 0.5%, 1.0%`` (matplotlib's ``PercentFormatter(decimals=0)``
    printed ``0%, 0%, 1%``). ``xmax``: the data value that is 100% (1 for shares)."""

    def __init__(self, xmax: float = 1.0, symbol: str = "%"):
        self.xmax = float(xmax)
        self.symbol = symbol
        self.decimals = 0

    def set_locs(self, locs):
        super().set_locs(locs)
        vmin, vmax = (self.axis.get_view_interval() if self.axis is not None else (min(locs, default=0),
                                                                                   max(locs, default=0)))
        lo, hi = min(vmin, vmax), max(vmin, vmax)
        tol = 1e-9 * max(abs(lo), abs(hi), 1e-12)
        shown = [v for v in locs if lo - tol <= v <= hi + tol] or list(locs)
        self.decimals = _decimals_for(shown, 100.0 / self.xmax)

    def __call__(self, x, pos=None):
        v = round(100.0 * x / self.xmax, self.decimals)
        if v == 0:
            v = 0.0
        text = f"{abs(v):,.{self.decimals}f}{self.symbol}"
        return (MINUS + text) if v < 0 else text


def percent_locator(nbins: int | str = 6):
    """Ticks on nice steps (1, 2, 2.5, 5 × 10ⁿ) of the data scale."""
    return _MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10])


def percent_labels(lo: float, hi: float, nbins: int = 6, xmax: float = 1.0) -> list[str]:
    """The tick labels a percent axis from ``lo`` to ``hi`` shows (for tests and checks)."""
    loc = percent_locator(nbins)
    ticks = [t for t in loc.tick_values(lo, hi) if lo - 1e-12 <= t <= hi + 1e-12]
    f = PercentTicks(xmax)
    f.set_locs(ticks)
    return [f(t) for t in ticks]


def fix_percent_axes(fig) -> int:
    """Give every percent axis of ``fig`` (one labelled by matplotlib's ``PercentFormatter``,
    colour bars included) :class:`PercentTicks` and nice tick steps. Returns how many."""
    n = 0
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            f = axis.get_major_formatter()
            if isinstance(f, PercentFormatter):
                axis.set_major_formatter(PercentTicks(f.xmax))
                if not isinstance(axis.get_major_locator(), FixedLocator):
                    axis.set_major_locator(percent_locator())
                n += 1
    return n
