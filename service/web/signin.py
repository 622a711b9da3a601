"""`/sign-in` and `/sign-out`: a person pastes an API token once; a session cookie follows."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response

from service.auth import token_store
from service.tokens import TokenRefused
from service.web.blueprint import web
from service.web.pages import render_page
from service.web.security import require_secret
from service.web.session import sign_in as start_session
from service.web.session import sign_out as end_session


def _next_path() -> str:
    """Where to go after signing in: a path of this site only."""
    wanted = request.values.get("next") or ""
    if wanted.startswith("/") and not wanted.startswith(("//", "/\\")):
        return wanted
    return url_for("web.home")


@web.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    """The form (GET), or the token's check (POST): 401 with the form again when refused."""
    require_secret()
    error = None
    if request.method == "POST":
        try:
            record = token_store().authenticate(request.form.get("token", "").strip())
        except TokenRefused as refused:
            error = (
                gettext("This token has expired: ask for a new one.")
                if refused.reason == "expired"
                else gettext("This token is unknown, revoked or mistyped.")
            )
        else:
            start_session(record)
            return redirect(_next_path(), code=303)
    body = render_page("web/sign_in.html", error=error, next=_next_path())
    return body, 401 if error else 200


@web.route("/sign-out", methods=["POST"])
def sign_out() -> Response:
    """End the session (a POST with the CSRF token)."""
    end_session()
    return redirect(url_for("web.home"), code=303)
