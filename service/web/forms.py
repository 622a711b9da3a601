"""Page forms as commands: an idempotency key and the version they were rendered from.

A form carries a fresh `idempotency_key` (hidden) and, for a change, the `version` it was
rendered from. Submitting claims the key in the API's store (service/idempotency.py), so a
double submit records once and a retry answers the first answer again; the page's answer
is written in the same transaction as the command's events, exactly as the API's.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, g, request

from domain.application import CommandResult
from domain.errors import DomainError
from service.auth import current_actor
from service.commands import notify_committed
from service.errors import Problem
from service.idempotency import KEY_PATTERN, IdempotencyStore, StoredResponse, outcome_with_events
from service.web.refusals import translated
from service.web.security import CSRF_FIELD

KEY_FIELD = "idempotency_key"
VERSION_FIELD = "version"


def new_key() -> str:
    """A fresh idempotency key for a form about to be rendered."""
    return str(uuid.uuid4())


def _store() -> IdempotencyStore:
    store: IdempotencyStore = current_app.extensions["panorama_idempotency"]
    return store


def fingerprint() -> str:
    """Method, path and the form's fields (its CSRF token left out), hashed."""
    digest = hashlib.sha256()
    for part in (request.method, request.path):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    for name in sorted(request.form):
        if name == CSRF_FIELD:
            continue
        for value in request.form.getlist(name):
            digest.update(f"{name}={value}".encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def claim_form() -> Response | None:
    """Claim the form's key: the stored answer of an earlier submit, or None to run it."""
    key = request.form.get(KEY_FIELD, "")
    if not re.fullmatch(KEY_PATTERN, key):
        raise Problem(400, "the form has no idempotency key: reload it", field=KEY_FIELD)
    claimed = _store().claim(current_actor(), key, fingerprint())
    if isinstance(claimed, StoredResponse):
        replay = Response(claimed.body, status=claimed.status, headers=claimed.headers)
        replay.headers["Idempotent-Replayed"] = "true"
        return replay
    g.idempotency_claim = claimed  # completed or released by the app's handlers
    return None


def form_version(field: str = VERSION_FIELD) -> int | None:
    """The version the form was rendered from (its If-Match, in `field`), None when absent."""
    raw = request.form.get(field, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 15:
        raise Problem(400, "the form's version is not a version number", field=field)
    return int(raw)


def required_version(field: str = VERSION_FIELD) -> int:
    """`form_version`, which this form must carry: a 400 page when it lacks it."""
    found = form_version(field)
    if found is None:
        raise Problem(400, "the form lacks the version it was rendered from", field=field)
    return found


def recorded(
    command: Callable[[], CommandResult], answer: Callable[[CommandResult], Response]
) -> Response:
    """Run the command; its page `answer` is stored with its events under the form's key."""
    with outcome_with_events(_store(), answer) as rendered:
        result = command()
    notify_committed(result)
    return rendered[-1] if rendered else answer(result)


def refusal(error: DomainError) -> str:
    """The domain's refusal in the page's language (service/web/refusals.py)."""
    return translated(error.message)


def field_errors(problem: Problem) -> dict[str, Any]:
    """A refusal as the form shows it: the message by field (next to it) and for the summary."""
    return {problem.field or "form": translated(problem.detail)}


def schema_errors(messages: Any, default: str) -> dict[str, str]:
    """A schema's refusal by field (`default` for a message of the whole form), translated."""
    found = messages if isinstance(messages, dict) else {default: messages}
    return {k: translated(str(v[0] if isinstance(v, list) else v)) for k, v in found.items()}
