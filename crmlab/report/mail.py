"""E-mail: a run's notice as an HTML + plain-text message with attachments, sent with smtplib.

The password comes from the environment variable the delivery file names, only while
sending; it is never printed, logged or put in an error message. Every failure to send
(unreachable host, refused login, refused recipient) is a :class:`DeliveryError` with one
line saying which, for the caller to report (exit 3: the run itself is kept).
"""
from __future__ import annotations

import os
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Sequence

from crmlab.report.delivery import Smtp

__all__ = ["DeliveryError", "build_mail", "send_mail", "TIMEOUT"]

#: seconds to wait for the mail server / a webhook before giving up
TIMEOUT = 15.0


class DeliveryError(Exception):
    """A notice could not be delivered (one line; the run is kept)."""


def build_mail(sender: str, to: Sequence[str], subject: str, text: str, html_body: str,
               attachments: Sequence[tuple[str, bytes, str]] = ()) -> EmailMessage:
    """The message: a plain-text part, an HTML alternative, then ``(name, bytes, mime)`` attachments."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, ", ".join(to), subject
    msg["Date"], msg["Message-ID"] = formatdate(localtime=True), make_msgid(domain="crmlab")
    msg.set_content(text, charset="utf-8")
    msg.add_alternative(html_body, subtype="html", charset="utf-8")
    for name, data, mime in attachments:
        main, _, sub = mime.partition("/")
        msg.add_attachment(data, maintype=main, subtype=sub or "octet-stream", filename=name)
    return msg


def _password(smtp: Smtp) -> str | None:
    if not smtp.user:
        return None
    pw = os.environ.get(smtp.password_env or "")
    if pw is None:
        raise DeliveryError(f"mail not sent: the environment variable {smtp.password_env} (the SMTP password) "
                            "is not set")
    return pw


def send_mail(smtp: Smtp, msg: EmailMessage, to: Sequence[str], timeout: float = TIMEOUT) -> None:
    """Send ``msg`` to ``to`` through ``smtp`` (TLS as configured; login when ``user`` is set).

    Raises
    ------
    DeliveryError
        One line: the server cannot be reached, refused the login or the recipients.
    """
    where = f"{smtp.host}:{smtp.port}"
    password = _password(smtp)
    try:
        if smtp.tls == "ssl":
            conn = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        with conn:
            if smtp.tls == "starttls":
                conn.starttls(context=ssl.create_default_context())
            if smtp.user:
                conn.login(smtp.user, password)
            refused = conn.send_message(msg, from_addr=smtp.sender, to_addrs=list(to))
    except smtplib.SMTPAuthenticationError as e:
        raise DeliveryError(f"mail not sent: {where} refused the login of {smtp.user} ({e.smtp_code}); "
                            f"check the user and ${smtp.password_env}") from None
    except smtplib.SMTPRecipientsRefused as e:
        raise DeliveryError(f"mail not sent: {where} refused every recipient ({', '.join(e.recipients)})") from None
    except smtplib.SMTPNotSupportedError as e:
        raise DeliveryError(f"mail not sent: {where} does not support this ({e}); check tls") from None
    except smtplib.SMTPException as e:
        raise DeliveryError(f"mail not sent: {where}: {type(e).__name__}: {' '.join(str(e).split())[:200]}") from None
    except (socket.timeout, TimeoutError):
        raise DeliveryError(f"mail not sent: {where} did not answer within {timeout:g} s") from None
    except ssl.SSLError as e:
        raise DeliveryError(f"mail not sent: {where}: TLS failed ({e.reason or e}); check tls") from None
    except OSError as e:
        raise DeliveryError(f"mail not sent: cannot reach {where} ({e.strerror or e})") from None
    if refused:
        raise DeliveryError(f"mail sent, but {where} refused {', '.join(sorted(refused))}")
