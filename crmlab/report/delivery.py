"""The delivery file (``-d delivery.yaml``): who is told about a run, how, and when to alert.

Keys (issue 29; every key optional except that something must be delivered somewhere)::

    smtp:     {host, port, tls: none|starttls|ssl, user, password_env, from}
    success:  [addresses]        # mail when every report ran (or was skipped)
    failure:  [addresses]        # mail when a report failed: the notebook, cell and error line
    webhooks: [{kind: wecom|dingtalk|feishu, url, secret_env}]
    alerts:   [{report, headline, below | above}]
    attach:   html | pdf | none  # the pages as one zip, as PDFs, or only the run's location
    attach_max_mb: 10            # above it the mail carries the run's location instead
    run_url: https://intranet/reports/   # where readers open the runs (else the run folder's name)

Passwords and secrets are never in the file: ``password_env`` / ``secret_env`` name the
environment variables holding them; their values are read only when sending and never
printed. A malformed file is one line and exit 2 (:class:`CrmlabInputError`) before any
report runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from crmlab.schema import CrmlabInputError

__all__ = ["Delivery", "Smtp", "Webhook", "Alert", "load_delivery", "parse_delivery", "KINDS", "ATTACH"]

#: the team-chat robots crmlab can post to
KINDS = ("wecom", "dingtalk", "feishu")
#: what a success mail carries
ATTACH = ("html", "pdf", "none")
_TLS = ("none", "starttls", "ssl")
_KEYS = {"smtp", "success", "failure", "webhooks", "alerts", "attach", "attach_max_mb", "run_url"}
_SMTP_KEYS = {"host", "port", "tls", "user", "password_env", "from"}
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;.][^@\s<>,;]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Smtp:
    """How to reach the mail server; the password is read from ``$password_env`` when sending."""

    host: str
    port: int
    tls: str = "starttls"
    user: str | None = None
    password_env: str | None = None
    sender: str = "crmlab@localhost"


@dataclass(frozen=True)
class Webhook:
    """A group robot: ``kind`` (wecom, dingtalk, feishu), its URL, its signing secret's env var."""

    kind: str
    url: str
    secret_env: str | None = None


@dataclass(frozen=True)
class Alert:
    """Alert when headline ``headline`` of ``report`` is below / above a threshold."""

    report: str
    headline: str
    below: float | None = None
    above: float | None = None


@dataclass(frozen=True)
class Delivery:
    """A parsed, checked delivery file."""

    smtp: Smtp | None = None
    success: tuple[str, ...] = ()
    failure: tuple[str, ...] = ()
    webhooks: tuple[Webhook, ...] = ()
    alerts: tuple[Alert, ...] = ()
    attach: str = "html"
    attach_max_mb: float = 10.0
    run_url: str | None = None
    source: str = field(default="delivery file", compare=False)


def _bad(where: str, what: str) -> CrmlabInputError:
    return CrmlabInputError(f"{where}: {what}")


def _addresses(v: Any, key: str, where: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
        raise _bad(where, f"{key} must be a list of e-mail addresses")
    bad = [a for a in v if not _ADDRESS.match(a.strip())]
    if bad:
        raise _bad(where, f"{key}: not an e-mail address: {bad[0]!r}")
    return tuple(a.strip() for a in v)


def _env_name(v: Any, key: str, where: str) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not _ENV_NAME.match(v):
        raise _bad(where, f"{key} must name an environment variable (e.g. CRMLAB_SMTP_PASSWORD), "
                          "never hold the password itself")
    return v


def _smtp(v: Any, where: str) -> Smtp | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise _bad(where, "smtp must be a mapping with host, port, tls, user, password_env, from")
    if "password" in v:
        raise _bad(where, "smtp: the password is never in the file: name its environment variable in password_env")
    unknown = sorted(set(v) - _SMTP_KEYS)
    if unknown:
        raise _bad(where, f"smtp: unknown key {unknown[0]!r} (have: {', '.join(sorted(_SMTP_KEYS))})")
    host = v.get("host")
    if not isinstance(host, str) or not host.strip():
        raise _bad(where, "smtp: host is required")
    tls = str(v.get("tls", "starttls")).lower()
    if tls not in _TLS:
        raise _bad(where, f"smtp: tls must be one of {', '.join(_TLS)}, got {v.get('tls')!r}")
    port = v.get("port", {"ssl": 465, "starttls": 587, "none": 25}[tls])
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise _bad(where, f"smtp: port must be a number from 1 to 65535, got {port!r}")
    user = v.get("user")
    if user is not None and not isinstance(user, str):
        raise _bad(where, "smtp: user must be text")
    sender = v.get("from") or user or "crmlab@localhost"
    if not isinstance(sender, str) or not _ADDRESS.match(sender.strip()):
        raise _bad(where, f"smtp: from must be an e-mail address, got {sender!r}")
    pw = _env_name(v.get("password_env"), "smtp: password_env", where)
    if user and not pw:
        raise _bad(where, "smtp: user is set but password_env is not (the variable holding the password)")
    return Smtp(host.strip(), port, tls, user, pw, sender.strip())


def _webhooks(v: Any, where: str) -> tuple[Webhook, ...]:
    if v is None:
        return ()
    if not isinstance(v, list):
        raise _bad(where, "webhooks must be a list of {kind, url, secret_env}")
    out = []
    for i, w in enumerate(v, 1):
        if not isinstance(w, dict) or set(w) - {"kind", "url", "secret_env"}:
            raise _bad(where, f"webhooks[{i}] must have only kind, url and secret_env")
        kind = str(w.get("kind", "")).lower()
        if kind not in KINDS:
            raise _bad(where, f"webhooks[{i}]: kind must be one of {', '.join(KINDS)}, got {w.get('kind')!r}")
        url = w.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^\s]+$", url):
            raise _bad(where, f"webhooks[{i}]: url must be an http(s) URL")
        if "secret" in w:
            raise _bad(where, f"webhooks[{i}]: the secret is never in the file: name its variable in secret_env")
        out.append(Webhook(kind, url, _env_name(w.get("secret_env"), f"webhooks[{i}]: secret_env", where)))
    return tuple(out)


def _number(x: Any, what: str, where: str) -> float:
    if isinstance(x, str):
        s = x.strip()
        try:
            return float(s[:-1]) / 100 if s.endswith("%") else float(s)
        except ValueError:
            pass
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    raise _bad(where, f"{what} must be a number (0.2 or '20%'), got {x!r}")


def _alerts(v: Any, where: str) -> tuple[Alert, ...]:
    if v is None:
        return ()
    if not isinstance(v, list):
        raise _bad(where, "alerts must be a list of {report, headline, below | above}")
    out = []
    for i, a in enumerate(v, 1):
        if not isinstance(a, dict) or set(a) - {"report", "headline", "below", "above"}:
            raise _bad(where, f"alerts[{i}] must have only report, headline and below or above")
        if not all(isinstance(a.get(k), str) and a.get(k) for k in ("report", "headline")):
            raise _bad(where, f"alerts[{i}]: report and headline are required (text)")
        if ("below" in a) == ("above" in a) and not ("below" in a and "above" in a):
            raise _bad(where, f"alerts[{i}]: give below or above")
        out.append(Alert(a["report"], a["headline"],
                         _number(a["below"], f"alerts[{i}]: below", where) if "below" in a else None,
                         _number(a["above"], f"alerts[{i}]: above", where) if "above" in a else None))
    return tuple(out)


def parse_delivery(data: Any, where: str = "delivery file") -> Delivery:
    """Check a loaded delivery file (a mapping) and return it as a :class:`Delivery`.

    Raises
    ------
    CrmlabInputError
        Anything malformed: an unknown key, a password in the file, a bad address, kind or URL.
    """
    if not isinstance(data, dict):
        raise _bad(where, "must be a mapping of smtp, success, failure, webhooks, alerts, attach")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise _bad(where, f"unknown key {unknown[0]!r} (have: {', '.join(sorted(_KEYS))})")
    attach = str(data.get("attach", "html")).lower()
    if attach not in ATTACH:
        raise _bad(where, f"attach must be one of {', '.join(ATTACH)}, got {data.get('attach')!r}")
    cap = _number(data.get("attach_max_mb", 10), "attach_max_mb", where)
    run_url = data.get("run_url")
    if run_url is not None and (not isinstance(run_url, str) or not re.match(r"^https?://\S+$", run_url)):
        raise _bad(where, "run_url must be an http(s) URL")
    d = Delivery(_smtp(data.get("smtp"), where), _addresses(data.get("success"), "success", where),
                 _addresses(data.get("failure"), "failure", where), _webhooks(data.get("webhooks"), where),
                 _alerts(data.get("alerts"), where), attach, cap, run_url, where)
    if (d.success or d.failure) and d.smtp is None:
        raise _bad(where, "success/failure addresses need an smtp section")
    if not (d.success or d.failure or d.webhooks):
        raise _bad(where, "nobody to tell: give success or failure addresses, or webhooks")
    return d


def load_delivery(path: str | Path) -> Delivery:
    """Read and check the delivery file at ``path`` (YAML)."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise CrmlabInputError(f"{p.name}: cannot read the delivery file ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise CrmlabInputError(f"{p.name}: not valid YAML{line}") from None
    return parse_delivery(data, p.name)

