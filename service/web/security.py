"""Security headers of every page, the signing key of page sessions, CSRF tokens."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

from flask import Flask, Request, Response, current_app, request, session
from flask.sessions import SecureCookieSessionInterface

from service.config import Settings
from service.errors import Problem
from service.web.blueprint import web

log = logging.getLogger(__name__)
KEY_FILE = "web-secret-key"
CSRF_FIELD = "csrf_token"
SESSION_HOURS = 8


def secret_key(settings: Settings) -> str | None:
    """SECRET_KEY, else (embedded default only) a key generated once beside the database."""
    if settings.secret_key:
        return settings.secret_key
    if settings.is_postgres or settings.is_memory:
        return None
    return _generated(settings.sqlite_path.parent / KEY_FILE)


def _generated(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".web-key-")  # mode 600
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48) + "\n")
            os.link(tmp, path)  # atomic, and never replaces a key another process made
            log.warning("SECRET_KEY is not set: generated the pages' signing key in %s", path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, Secure whenever the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or bool(app.config["SESSION_COOKIE_SECURE"])


def content_security_policy(theme_css_url: str | None) -> str:
    """Our own origin only: no inline script, no third-party origin (the theme's, if set)."""
    styles = "'self'"
    if theme_css_url and urlparse(theme_css_url).scheme in {"http", "https"}:
        parsed = urlparse(theme_css_url)
        styles += f" {parsed.scheme}://{parsed.netloc}"
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            f"style-src {styles}",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def init_app(app: Flask) -> None:
    """The session cookie's settings and signing key, and the pages' headers."""
    settings: Settings = app.extensions["panorama"].settings
    app.secret_key = secret_key(settings)
    app.session_interface = SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="panorama_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )
    app.config["PANORAMA_CSP"] = content_security_policy(settings.theme_css_url)


@web.after_request
def page_headers(response: Response) -> Response:
    """CSP, no sniffing, no referrer to other origins, never framed."""
    response.headers["Content-Security-Policy"] = current_app.config["PANORAMA_CSP"]
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def require_secret() -> None:
    """503 when page sessions cannot be signed (production without SECRET_KEY)."""
    if not current_app.secret_key:
        raise Problem(503, "SECRET_KEY is not set: signing in is unavailable", field="SECRET_KEY")


def csrf_token() -> str:
    """This session's CSRF token (created on first use), for the hidden field of a form."""
    require_secret()
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def check_csrf(req: Request) -> None:
    """400 unless a form POST carries this session's CSRF token."""
    sent = req.form.get(CSRF_FIELD, "")
    expected = session.get("csrf", "")
    if not sent or not expected or not hmac.compare_digest(str(sent), str(expected)):
        raise Problem(400, "the form has expired or is not ours: reload it", field=CSRF_FIELD)


@web.before_request
def protect_forms() -> None:
    """Every state-changing page request carries the CSRF token of its session."""
    if request.method not in {"GET", "HEAD", "OPTIONS"}:
        require_secret()
        check_csrf(request)


@web.app_context_processor
def security_globals() -> dict[str, object]:
    return {"csrf_token": csrf_token, "csrf_field": CSRF_FIELD}
