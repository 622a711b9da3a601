"""Alert e-mails through SMTP (`SMTP_URL`): plain text and HTML in one message."""

from __future__ import annotations

import html
import smtplib
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_SENDER = "panorama-alerts@localhost"


def alert_text(payload: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of an alert's e-mail."""
    rule = payload["rule"]
    project = payload.get("project") or {}
    what = project.get("name") or payload["subject"]
    verb = "raised" if payload["type"] == "alert.raised" else "cleared"
    subject = f"[Panorama] {rule['metric']} {verb} for {what}"
    lines = [
        f"Alert {payload['id']} ({verb})",
        f"Rule: {rule['metric']} {rule['comparator']} {rule['threshold']}"
        + (f" (clears at {rule['clear_threshold']})" if rule["clear_threshold"] else ""),
        f"Subject: {what} ({payload['subject']})",
        f"Value: {payload['value_before']} -> {payload['value_after']}",
        f"Cause: {payload['cause']['type']} at log position {payload['cause']['position']}",
        *(f"{name}: {link}" for name, link in payload["links"].items()),
    ]
    text = "\n".join(lines) + "\n"
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines[1:])
    body = f"<html><body><p>{html.escape(lines[0])}</p><ul>{items}</ul></body></html>"
    return subject, text, body


def send_email(smtp_url: str, to: str, payload: dict[str, Any], timeout: float) -> str | None:
    """Send the alert's e-mail; None when the server accepted it, else the error."""
    subject, text, body = alert_text(payload)
    return send_message(smtp_url, to, subject, text, body, f"<{payload['id']}@panorama>", timeout)


def send_message(
    smtp_url: str, to: str, subject: str, text: str, body: str, message_id: str, timeout: float
) -> str | None:
    """Send one message (plain text and HTML); None when the server accepted it, else the error."""
    parts = urlsplit(smtp_url)
    query = parse_qs(parts.query)
    sender = query.get("from", [DEFAULT_SENDER])[0]
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    message["Message-ID"] = message_id
    message.set_content(text)
    message.add_alternative(body, subtype="html")
    secure = parts.scheme == "smtps"
    port = parts.port or (465 if secure else 25)
    factory = smtplib.SMTP_SSL if secure else smtplib.SMTP
    try:
        with factory(parts.hostname or "localhost", port, timeout=timeout) as smtp:
            if query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes"):
                smtp.starttls()
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        return f"{type(error).__name__}: {error}"[:500]
    return None
