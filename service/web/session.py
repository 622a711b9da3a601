"""Who is signed in on the pages: a session cookie naming an active API token.

The cookie holds the token's id only (never the token); each request checks that the token
is still active and then applies it exactly as a bearer token: same roles, same ministries
(`service.auth.current_token` finds it in `g`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, g, redirect, request, session, url_for

from service.auth import HEADER, token_store
from service.tokens import TokenRecord
from service.web.blueprint import web

F = TypeVar("F", bound=Callable[..., Any])


def init_app(app: Flask) -> None:
    app.add_template_global(signed_in, "signed_in")


@web.before_request
def load_signed_in() -> None:
    """Make the session's token the request's token (an Authorization header still wins)."""
    token_id = session.get("tid")
    if token_id is None or HEADER in request.headers:
        return
    record = token_store().active_record(str(token_id))
    if record is None:  # revoked since: the session ends
        session.clear()
        return
    g.panorama_token = record


def signed_in() -> TokenRecord | None:
    """The signed-in person's token record, or None."""
    record = g.get("panorama_token")
    return record if isinstance(record, TokenRecord) else None


def sign_in(record: TokenRecord) -> None:
    """Start a fresh session for `record` (a new CSRF token too)."""
    session.clear()
    session.permanent = True
    session["tid"] = record.id


def sign_out() -> None:
    session.clear()


def require_page_role(*roles: str) -> Callable[[F], F]:
    """Decorate a page view: anonymous people go to /sign-in, other roles get a 403 page."""

    def decorate(func: F) -> F:
        @wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            from service.auth import forbidden

            record = signed_in()
            if record is None:
                return redirect(url_for("web.sign_in", next=request.full_path))
            if record.role not in roles:
                raise forbidden(f"this page needs a {' or '.join(roles)} sign-in")
            return func(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate
