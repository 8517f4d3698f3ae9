"""One :class:`Settings` object: how crmlab reads, computes and shows a store's numbers.

Settings travel explicitly. A result carries the settings it was computed under (its
context), and every text it shows — a card, the CLI's output, a notebook finding, a chart
axis, the index headline — is formatted from them by the one formatter
(:class:`crmlab.present.formatting.Formatter`). The report runner hands them to each
notebook as parameters; the CLI builds them from its flags.

A notebook or a console session may set its defaults once (:func:`configure`, or the
shortcuts :func:`crmlab.set_timezone`, :func:`crmlab.set_engine`); :func:`current` returns
them. Nothing else in crmlab keeps a setting in a module global or an environment variable.

Examples
--------
>>> from crmlab.settings import Settings
>>> s = Settings(currency="£", timezone="Europe/London")
>>> s.replace(interval_level=0.5).interval_level
0.5
"""
from __future__ import annotations

import math
import zoneinfo
from dataclasses import asdict, dataclass, fields, replace as _replace

from crmlab.schema import CrmlabInputError

__all__ = ["Settings", "DEFAULT", "ENGINES", "current", "configure", "use"]

#: the engines crmlab runs on (:mod:`crmlab.engine.connection`)
ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class Settings:
    """How crmlab reads, computes and shows numbers.

    Parameters
    ----------
    engine : str
        ``"duckdb"`` (embedded, the default) or ``"spark"``.
    spark_master : str or None
        The Spark master URL when ``engine="spark"`` (``local[2]``, ``spark://host:7077``).
    timezone : str
        The store's IANA time zone: naive times are read as local to it, times with an
        offset are converted to it, and every date shown is in it.
    currency : str
        The symbol put before every money figure (``¥``, ``£``, ``$``).
    interval_level : float
        The level of the intervals results report (strictly between 0 and 1).
    memory_limit : str or None
        DuckDB's memory limit (``600MB``, ``60%``); ``None``: 40% of RAM, at most half of RAM
        less 2 GiB (:func:`crmlab.engine.connection.default_memory_limit`).
    """

    engine: str = "duckdb"
    spark_master: str | None = None
    timezone: str = "Asia/Shanghai"
    currency: str = "¥"
    interval_level: float = 0.90
    memory_limit: str | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise CrmlabInputError(f"engine: choose from {', '.join(ENGINES)}, not {self.engine!r}")
        try:
            zoneinfo.ZoneInfo(str(self.timezone))
        except Exception:
            raise CrmlabInputError(f"timezone: {str(self.timezone)[:80]!r} is not an IANA time zone name "
                                   "(e.g. Asia/Shanghai, Europe/London)") from None
        if not isinstance(self.currency, str) or not 0 < len(self.currency) <= 8 or any(
                c in self.currency for c in "<>&\"'\n\r\t"):
            raise CrmlabInputError(f"currency: a symbol of 1-8 plain characters (¥, £, $, HK$), not {self.currency!r:.40}")
        level = self.interval_level
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not math.isfinite(level) \
                or not 0 < level < 1:
            raise CrmlabInputError(f"interval_level: a number strictly between 0 and 1, not {level!r:.40}")

    def replace(self, **changes) -> "Settings":
        """A copy with ``changes`` (validated); ``None`` values are ignored."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise CrmlabInputError(f"settings: no setting named {unknown[0]!r} (have: {', '.join(sorted(known))})")
        return _replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        """Every setting by name (JSON-safe)."""
        return asdict(self)


#: the defaults: DuckDB, Asia/Shanghai, ¥, 90% intervals
DEFAULT = Settings()
_session: list[Settings] = [DEFAULT]


def current() -> Settings:
    """The session's settings: :data:`DEFAULT` unless :func:`configure` or :func:`use` changed them."""
    return _session[0]


def use(settings: Settings) -> Settings:
    """Make ``settings`` the session's settings (a notebook's first cell); returns them."""
    if not isinstance(settings, Settings):
        raise CrmlabInputError(f"settings: expected a crmlab Settings, not {type(settings).__name__}")
    _session[0] = settings
    return settings


def configure(**changes) -> Settings:
    """Change some of the session's settings (``configure(currency="£")``); returns them all."""
    return use(current().replace(**changes))
