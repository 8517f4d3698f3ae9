"""Team chat: a run's notice to WeCom (企业微信), DingTalk (钉钉) and Feishu (飞书) group robots.

Each robot takes a JSON POST in its documented format:

* WeCom group robot: ``{"msgtype": "markdown", "markdown": {"content": ...}}``; the answer
  ``{"errcode": 0}`` means delivered.
* DingTalk custom robot: ``{"msgtype": "markdown", "markdown": {"title": ..., "text": ...}}``;
  with a signing secret, ``&timestamp=T&sign=S`` on the URL where ``T`` is the time in
  milliseconds and ``S`` the URL-encoded base64 of HMAC-SHA256(key=secret, ``"T\\nsecret"``);
  the answer ``{"errcode": 0}``.
* Feishu custom bot: ``{"msg_type": "text", "content": {"text": ...}}``; with a signing secret,
  ``"timestamp"`` (seconds) and ``"sign"`` = base64 of HMAC-SHA256(key=``"T\\nsecret"``, empty
  message) in the body; the answer ``{"code": 0}`` (older bots: ``{"StatusCode": 0}``).

Only the standard library (urllib) is used. A robot that cannot be reached or answers with an
error is a :class:`~crmlab.report.mail.DeliveryError` (one line; the URL's token is not shown).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

from crmlab.report.delivery import Webhook
from crmlab.report.mail import TIMEOUT, DeliveryError

__all__ = ["payload", "dingtalk_sign", "feishu_sign", "post"]


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's ``sign``: URL-encoded base64 HMAC-SHA256 of ``"timestamp\\nsecret"`` keyed by the secret."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode("utf-8"), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's ``sign``: base64 HMAC-SHA256 keyed by ``"timestamp\\nsecret"`` of an empty message."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode("utf-8"), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def payload(kind: str, title: str, markdown: str, text: str) -> dict:
    """The JSON body robot ``kind`` expects (markdown for WeCom and DingTalk, plain text for Feishu)."""
    if kind == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": markdown}}
    if kind == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": title, "text": markdown}}
    if kind == "feishu":
        return {"msg_type": "text", "content": {"text": text}}
    raise ValueError(f"unknown webhook kind {kind!r}")


def _secret(hook: Webhook) -> str | None:
    if not hook.secret_env:
        return None
    s = os.environ.get(hook.secret_env)
    if s is None:
        raise DeliveryError(f"{hook.kind} message not sent: the environment variable {hook.secret_env} "
                            "(its signing secret) is not set")
    return s


def _where(url: str) -> str:
    p = urllib.parse.urlsplit(url)
    return f"{p.scheme}://{p.netloc}{p.path}"  # the access token in the query is not shown


def post(hook: Webhook, title: str, markdown: str, text: str, timeout: float = TIMEOUT,
         now: float | None = None) -> dict:
    """Post the notice to ``hook``; returns the robot's answer.

    Raises
    ------
    DeliveryError
        The robot cannot be reached or answers with an error (one line).
    """
    body, url, secret = payload(hook.kind, title, markdown, text), hook.url, _secret(hook)
    now = time.time() if now is None else now
    if secret and hook.kind == "dingtalk":
        ts = int(now * 1000)
        url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={dingtalk_sign(secret, ts)}"
    elif secret and hook.kind == "feishu":
        body = {"timestamp": str(int(now)), "sign": feishu_sign(secret, int(now)), **body}
    req = urllib.request.Request(url, data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                                 headers={"Content-Type": "application/json; charset=utf-8"}, method="POST")
    where = f"{hook.kind} message not sent: {_where(hook.url)}"
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (http(s) checked in the file)
            raw = r.read()
    except urllib.error.HTTPError as e:
        raise DeliveryError(f"{where} answered HTTP {e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DeliveryError(f"{where} cannot be reached ({getattr(reason, 'strerror', None) or reason})") from None
    try:
        answer = json.loads(raw.decode("utf-8") or "{}")
    except ValueError:
        answer = {}
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0))) if isinstance(answer, dict) else 0
    if code not in (0, None):
        msg = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or ""
        raise DeliveryError(f"{where} refused it: {code} {' '.join(str(msg).split())[:120]}")
    return answer if isinstance(answer, dict) else {}
