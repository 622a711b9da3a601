"""No secret reaches a log line: credential-like URL parameters and API tokens are redacted.

`redact()` rewrites one line; `RedactingFilter` applies it to a record (message, arguments
and traceback); `install()` puts it where records are made, so every logger of the process
(ours, werkzeug's, gunicorn's, Celery's) is covered; `RedactingGunicornLogger` also filters
gunicorn's access and error logs, whatever else the process does.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any
from urllib.parse import unquote

from gunicorn.glogging import Logger as GunicornLogger

REDACTED = "[REDACTED]"
# A query parameter is secret when its name holds one of these (access_token, api_key, ...).
SECRET_NAME = re.compile(
    r"token|key|secret|passw|pwd|signature|sig$|^sig|auth|credential|session|cookie",
    re.IGNORECASE,
)
TOKEN_PREFIX = "pnr_"
_TOKEN = re.compile(r"pnr_[A-Za-z0-9_\-]+")
_QUERY_PAIR = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;?#\s\"'<>]+)=(?P<value>[^&;#\s\"'<>]*)")
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/@:\s]*):[^/@\s]*@")
LOGGERS = ("gunicorn.access", "gunicorn.error", "werkzeug")


def _pair(match: re.Match[str]) -> str:
    name, value = match["name"], match["value"]
    secret = SECRET_NAME.search(unquote(name)) or TOKEN_PREFIX in unquote(value)
    return f"{match['lead']}{name}={REDACTED}" if secret and value else match[0]


def redact(text: str) -> str:
    """The text with secret query values, URL passwords and API tokens replaced."""
    if "=" in text:
        text = _QUERY_PAIR.sub(_pair, text)
    if "@" in text:
        text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    if TOKEN_PREFIX in text:
        text = _TOKEN.sub(TOKEN_PREFIX + REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and traceback through redact(); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """The record, its message (arguments merged in) and traceback redacted in place."""
    if getattr(record, "_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a record that cannot be formatted is left to the handler's own error
        return record
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    setattr(record, "_redacted", True)  # noqa: B010 - LogRecord declares no such slot
    return record


_lock = threading.Lock()
_installed = False


def install() -> None:
    """Redact every record this process makes from now on (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        for name in LOGGERS:
            logging.getLogger(name).addFilter(RedactingFilter())
        _installed = True


class RedactingGunicornLogger(GunicornLogger):
    """gunicorn's logger with redaction on its access and error logs (`logger_class`).

    Its `atoms` (the values an access-log line is formatted from) leave out the request's
    and response's headers and the WSGI environ, `{name}i`, `{name}o` and `{name}e`, when
    the access-log format names none of them (the default does not): gunicorn adds them all
    to every line's atoms, which `SafeAtoms` then copies (17.5 µs a command's line, 5.7
    without them). A format holding a `{` gets gunicorn's own atoms (asked once per
    `setup`). The other atoms are gunicorn's (27.0), computed the same way
    (`tests/unit/test_access_atoms.py` compares the lines).
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.access_log, self.error_log):
            if not any(isinstance(f, RedactingFilter) for f in log.filters):
                log.addFilter(RedactingFilter())
        # setup() runs again on a configuration reload
        self._all_atoms = "{" in cfg.access_log_format

    def atoms(self, resp: Any, req: Any, wsgi: Any, request_time: Any) -> dict[str, Any]:
        if self._all_atoms:
            atoms: dict[str, Any] = super().atoms(resp, req, wsgi, request_time)
            return atoms
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        seconds, microseconds = request_time.seconds, request_time.microseconds
        method, protocol = wsgi["REQUEST_METHOD"], wsgi["SERVER_PROTOCOL"]
        return {
            "h": wsgi.get("REMOTE_ADDR", "-"),
            "l": "-",
            "u": self._get_user(wsgi) or "-",
            "t": self.now(),
            "r": f"{method} {wsgi['RAW_URI']} {protocol}",
            "s": status,
            "m": wsgi.get("REQUEST_METHOD"),
            "U": wsgi.get("PATH_INFO"),
            "q": wsgi.get("QUERY_STRING"),
            "H": wsgi.get("SERVER_PROTOCOL"),
            "b": sent is not None and str(sent) or "-",
            "B": sent,
            "f": wsgi.get("HTTP_REFERER", "-"),
            "a": wsgi.get("HTTP_USER_AGENT", "-"),
            "T": seconds,
            "D": (seconds * 1000000) + microseconds,
            "M": (seconds * 1000) + int(microseconds / 1000),
            "L": f"{seconds}.{microseconds:06d}",
            "p": f"<{os.getpid()}>",
        }
