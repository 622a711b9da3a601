"""Who is asking and what they may do: bearer tokens, roles, ministry scopes.

Every route under /api declares its policy with one of two decorators:

- `@require_role("admin", "manager")`: a token of one of these roles (401 without a token,
  403 with a token of another role). Commands use it; a manager is further limited to the
  ministries of its token by `require_ministry()` / `require_project_scope()` in the view.
- `@require_read(auditor_only=False)`: anonymous when PUBLIC_READ is true (the default), any
  token otherwise; with `auditor_only=True`, or when the request carries one of
  `auditor_params` (default: `known_at`), an admin or auditor token.

The policy is enforced by `authorize_request` (a before_request hook, so a refusal comes
before body checks and idempotency claims) and again when the view is called. A route under
/api that declares no policy is admin-only once DENY_UNDECLARED is set (until then only a bad
token is refused there; tests/e2e/test_auth.py lists the routes still undeclared). The OpenAPI
document and the docs are public.
Tokens are never logged nor echoed: only their id and name appear in answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar
from uuid import UUID

from flask import current_app, g, request

from domain.values import canonical_ministry
from service.blueprints import Blueprint
from service.context import current_services
from service.errors import Problem
from service.tokens import TokenRecord, TokenRefused, TokenStore

F = TypeVar("F", bound=Callable[..., Any])

HEADER = "Authorization"
SCHEME = "bearerAuth"
COMMAND_ROLES = ("admin", "manager")
AUDIT_ROLES = ("admin", "auditor")
ANY_ROLE = ("admin", "manager", "auditor", "subscriber")
SOURCE_ROLES = ("admin",)  # who may name an event's source; the importers record theirs
SOURCE_FIELD = "source"
_BODY_METHODS = ("POST", "PUT", "PATCH")
POLICY_ATTR = "_panorama_policy"
_PUBLIC_PREFIXES = ("/api/openapi.json", "/api/docs")
_DOC = Blueprint("auth_doc", __name__)  # never registered: its decorators only write docs
_UNSET = object()
# Undeclared /api routes: admin-only when True. False while /api/audit/* awaits its policy.
DENY_UNDECLARED = True


@dataclass(frozen=True)
class Policy:
    """Who may call a route: `roles`, or (roles None) a read as described above."""

    roles: tuple[str, ...] | None = None
    auditor_only: bool = False
    auditor_params: tuple[str, ...] = ("known_at",)


def token_store() -> TokenStore:
    store: TokenStore = current_app.extensions["panorama_tokens"]
    return store


def unauthorized(detail: str, *, invalid: bool = False) -> Problem:
    challenge = 'Bearer realm="panorama"' + (', error="invalid_token"' if invalid else "")
    return Problem(401, detail, field=HEADER, headers={"WWW-Authenticate": challenge})


def forbidden(detail: str) -> Problem:
    return Problem(403, detail, field=HEADER)


def current_token() -> TokenRecord | None:
    """The request's token (checked once per request), None without an Authorization header.

    A malformed header, an unknown or a revoked token is 401, an expired one 401 "expired".
    """
    cached = g.get("panorama_token", _UNSET)
    if cached is not _UNSET:
        assert cached is None or isinstance(cached, TokenRecord)
        return cached
    header = request.headers.get(HEADER)
    record: TokenRecord | None = None
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value or " " in value:
            raise unauthorized(f"{HEADER} must read: Bearer <token>", invalid=True)
        try:
            record = token_store().authenticate(value)
        except TokenRefused as refused:
            detail = "expired" if refused.reason == "expired" else f"the token is {refused.reason}"
            raise unauthorized(detail, invalid=True) from None
    g.panorama_token = record
    return record


def require_token(roles: Iterable[str] = ANY_ROLE) -> TokenRecord:
    """The request's token if its role is one of `roles`: else 401 (no token) or 403."""
    allowed = tuple(roles)
    token = current_token()
    if token is None:
        wanted = " or ".join(allowed)
        raise unauthorized(f"send {HEADER}: Bearer <token>, a token of role {wanted}")
    if token.role not in allowed:
        raise forbidden(f"a {token.role} token may not do this: it needs {' or '.join(allowed)}")
    return token


def current_actor() -> str:
    """The actor recorded on events: the token's ("token:<name>"); 401 without a token."""
    return require_token().actor


def require_ministry(*codes: str) -> None:
    """403 unless the token is an admin's or a manager's whose ministries include `codes`."""
    token = require_token(COMMAND_ROLES)
    portfolio = current_services().portfolio
    for code in codes:
        portfolio.check_ministry(code)  # an unknown code is a 422 naming ministry_code
    if token.role == "admin":
        return
    scope = {stable_ministry(code) for code in token.ministries}
    outside = sorted({stable_ministry(code) for code in codes} - scope)
    if outside:
        raise forbidden(
            f"this token manages {', '.join(token.ministries)}, not {', '.join(outside)}"
        )


def stable_ministry(code: str) -> str:
    """The ministry's stable code through the reference (MINDEF, MAr: MINARM), else `code`."""
    reference = current_services().portfolio.ministries()
    stable = reference.stable(code) if reference is not None else None
    return stable or canonical_ministry(code)


def require_project_scope(project_id: UUID) -> None:
    """403 unless the project's current ministry is in the token's scope (admins: always)."""
    if require_token(COMMAND_ROLES).role == "admin":
        return
    project = current_services().portfolio.get_project(project_id)
    require_ministry(project.ministry_code)


def enforce(policy: Policy) -> TokenRecord | None:
    """Apply a route's policy to the current request; the token, if any."""
    if policy.roles is not None:
        return require_token(policy.roles)
    if policy.auditor_only or any(name in request.args for name in policy.auditor_params):
        return require_token(AUDIT_ROLES)
    if not current_services().settings.public_read:
        return require_token(ANY_ROLE)
    return current_token()


def _protect(policy: Policy, security: list[dict[str, list[str]]]) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        @wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            enforce(policy)
            return func(*args, **kwargs)

        setattr(guarded, POLICY_ATTR, policy)
        documented = _DOC.doc(security=security)(guarded)
        for status, name in ((401, "UNAUTHORIZED"), (403, "FORBIDDEN")):
            documented = _DOC.alt_response(status, response=name)(documented)
        result: F = documented
        return result

    return decorate


def require_role(*roles: str) -> Callable[[F], F]:
    """Decorate a view (method): only tokens of these roles may call it."""
    return _protect(Policy(roles=roles), [{SCHEME: []}])


def require_read(
    auditor_only: bool = False, *, auditor_params: tuple[str, ...] = ("known_at",)
) -> Callable[[F], F]:
    """Decorate a read: public (PUBLIC_READ) or any token; audit reads need admin/auditor."""
    policy = Policy(auditor_only=auditor_only, auditor_params=auditor_params)
    return _protect(policy, [{SCHEME: []}] if auditor_only else [{}, {SCHEME: []}])


def _route_policy() -> Policy | None:
    view = current_app.view_functions.get(request.endpoint or "")
    method = "get" if request.method == "HEAD" else request.method.lower()
    view_class = getattr(view, "view_class", None)
    func = getattr(view_class, method, None) if view_class is not None else view
    policy: Policy | None = getattr(func, POLICY_ATTR, None)
    return policy


def forbid_foreign_source() -> None:
    """before_request, after the JSON checks: a `source` in a command body is the provenance
    of an official edition (`panorama:2019-03`); only SOURCE_ROLES may name one (else 403)."""
    if request.method not in _BODY_METHODS or not request.path.startswith("/api/"):
        return
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, RecursionError):  # refused by the JSON checks
        return
    if not isinstance(body, dict) or SOURCE_FIELD not in body:
        return
    token = current_token()
    if token is not None and token.role not in SOURCE_ROLES:
        raise Problem(
            403,
            f"a {token.role} token may not set {SOURCE_FIELD}: its commands are recorded"
            f" with source api (only {' or '.join(SOURCE_ROLES)} and the importers name one)",
            field=SOURCE_FIELD,
        )


def authorize_request() -> None:
    """before_request: enforce the matched route's policy (see DENY_UNDECLARED)."""
    if request.endpoint is None or request.method == "OPTIONS":
        return
    policy = _route_policy()
    if policy is not None:
        enforce(policy)
    elif request.path.startswith("/api/") and not request.path.startswith(_PUBLIC_PREFIXES):
        if DENY_UNDECLARED:
            require_token(("admin",))
        else:
            current_token()  # a bad token is refused all the same
