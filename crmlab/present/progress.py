"""What a long command is doing, shown while it does it — and only where someone is watching.

On a terminal, a command that runs longer than :data:`DELAY_S` seconds shows its stage on
stderr (``validating the export``, ``the cohort aggregate``, ``fitting 4 models``) with the
elapsed time, and a progress bar where the amount of work is known (models fitted, notebooks
run). Under cron (stderr not a terminal), with ``--json`` or ``--quiet`` nothing extra is
printed. In JupyterLab the same stages show as one notebook progress bar (tqdm's ``auto``
mode), never as a wall of log lines.

>>> with progress.stages(enabled=True) as p:                 # doctest: +SKIP
...     with p.stage("validating the export"):
...         ...
...     for name in p.track(models, "fitting models"):
...         ...
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Iterable, Iterator, TypeVar

from tqdm.auto import tqdm

__all__ = ["DELAY_S", "Progress", "stages", "watching"]

#: nothing is shown for work shorter than this (seconds)
DELAY_S = 2.0
T = TypeVar("T")


def watching(stream=None) -> bool:
    """Whether someone is watching ``stream`` (default stderr): a terminal, or a notebook."""
    stream = stream or sys.stderr
    if "ipykernel" in sys.modules:
        return True
    return bool(getattr(stream, "isatty", lambda: False)())


class Progress:
    """Stages of one command, each with its elapsed time; silent when not ``enabled``."""

    def __init__(self, enabled: bool, stream=None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.started = time.monotonic()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """A stage whose length is unknown: a spinner-free line with the elapsed time."""
        if not self.enabled:
            yield
            return
        bar = tqdm(total=None, desc=name, file=self.stream, delay=DELAY_S, leave=False,
                   bar_format="crmlab: {desc} … {elapsed}")
        try:
            yield
        finally:
            bar.close()

    def track(self, items: Iterable[T], name: str, total: int | None = None) -> Iterator[T]:
        """Iterate ``items`` with a progress bar (``total`` from ``len(items)`` when it has one)."""
        if not self.enabled:
            yield from items
            return
        yield from tqdm(items, desc=f"crmlab: {name}", total=total, file=self.stream, delay=DELAY_S,
                        leave=False, unit="", bar_format="{desc} {n_fmt}/{total_fmt} {bar:20} {elapsed}")


@contextlib.contextmanager
def stages(enabled: bool | None = None, quiet: bool = False, as_json: bool = False, stream=None) -> Iterator[Progress]:
    """A :class:`Progress` for one command: shown when ``enabled`` (default: someone is
    :func:`watching`) and neither ``quiet`` nor ``as_json``."""
    on = (watching(stream) if enabled is None else enabled) and not quiet and not as_json
    yield Progress(on, stream)
