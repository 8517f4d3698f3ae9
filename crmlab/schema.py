"""The one error crmlab raises for bad input: the CLI prints it on one line and exits 2."""
from __future__ import annotations

__all__ = ["CrmlabInputError"]


class CrmlabInputError(ValueError):
    """A fatal problem with an input: the CLI prints it on one line and exits 2."""
