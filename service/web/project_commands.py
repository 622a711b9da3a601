"""`/projects/<id>/<form>`: a manager's form posted from the project page.

The post goes through the API's own steps: the same roles and ministry scope
(`require_project_scope`), the same schema, the same typed `Portfolio` command with the
form's version as If-Match, the same idempotency store (the form's hidden key; the outcome
is committed with the events, so a double submit records once). A stale version is a 409
page with the changes recorded since; a refusal a 422 page with the message by its field.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from uuid import UUID

from flask import Response, current_app, flash, g, request, url_for
from flask_babel import gettext
from marshmallow import ValidationError

from domain.errors import DomainError, VersionConflict
from service.auth import current_actor, require_project_scope
from service.commands import notify_committed, provenance
from service.context import current_services
from service.errors import Problem
from service.idempotency import KEY_PATTERN, IdempotencyStore, StoredResponse, outcome_with_events
from service.queries import wait_for_position
from service.web.blueprint import web
from service.web.i18n import page_lang
from service.web.pages import render_page
from service.web.project_forms import COMMANDS, COMMON, Command, Form, build, defaults, typed
from service.web.project_view import helpers
from service.web.reads import events_since, latest_figures, services
from service.web.security import CSRF_FIELD
from service.web.session import require_page_role
from service.web.state import today

SOURCE = "web"
KEY_FIELD = "idempotency_key"
VERSION_FIELD = "expected_version"


def project_uuid(project_id: str) -> str:
    """The id as the read model writes it; a 404 page for anything but a UUID."""
    try:
        return str(UUID(project_id))
    except ValueError:
        raise Problem(404, f"no project {project_id!r}: ids are UUIDs", field="id") from None


def _command(name: str) -> Command:
    found = COMMANDS.get(name)
    if found is None:
        raise Problem(404, f"no form {name!r} on a project page", field="form")
    return found


def _in_scope(project_id: str) -> None:
    """The API's scope check; an unknown project is a 404 page."""
    from domain.errors import ProjectNotFound

    try:
        require_project_scope(UUID(project_id))
    except ProjectNotFound:
        raise Problem(404, f"project {project_id} not found", field="id") from None


@web.route("/projects/<project_id>/<form>", methods=["GET"])
@require_page_role("manager", "admin")
def project_form(project_id: str, form: str) -> Any:
    """One form on a page of its own (the page a refusal or a conflict shows)."""
    pid, command = project_uuid(project_id), _command(form)
    _in_scope(pid)
    _, version = events_since(pid, 0)
    values = defaults(command.name, latest_figures(pid), today().isoformat())
    return _form_page(pid, build(form, pid, version, values))


@web.route("/projects/<project_id>/<form>", methods=["POST"])
@require_page_role("manager", "admin")
def project_command(project_id: str, form: str) -> Any:
    """Run the form's command; 303 to the project page on success (read-your-writes)."""
    pid, command = project_uuid(project_id), _command(form)
    _in_scope(pid)
    values = typed()
    expected = _expected_version()
    try:
        body = command.schema().load(_body(command, values))
    except ValidationError as e:
        return _refused(command, pid, expected, values, _messages(e.messages))
    store: IdempotencyStore = current_app.extensions["panorama_idempotency"]
    claimed = store.claim(current_actor(), _key(), _fingerprint())
    if isinstance(claimed, StoredResponse):
        if claimed.status == 303:
            flash(gettext("This form had already been sent: the change was recorded once."))
        replay = Response(claimed.body, status=claimed.status, headers=claimed.headers)
        replay.headers["Idempotent-Replayed"] = "true"
        return replay
    g.idempotency_claim = claimed  # the app's hooks store a refusal or release the claim
    prov, rest = provenance(body)
    portfolio = current_services().portfolio
    try:
        with outcome_with_events(store, lambda result: _done(pid, result.position)) as rendered:
            result = command.run(portfolio, UUID(pid), prov, expected, rest)
    except VersionConflict:
        return _conflict(command, pid, expected, values)
    except DomainError as e:
        field = e.field if e.field in (*command.fields, *COMMON) else command.fields[0]
        return _refused(command, pid, expected, values, {field: e.message})
    notify_committed(result)
    flash(gettext(command.done))
    return rendered[-1] if rendered else _done(pid, result.position)


def _done(project_id: str, position: int) -> Response:
    """The 303 to the project page, once the read model has the change (min_position)."""
    target = url_for("web.project", project_id=project_id, lang=page_lang(), min_position=position)
    return Response(status=303, headers={"Location": target})


def _body(command: Command, values: dict[str, str]) -> dict[str, Any]:
    """The command's body as the API takes it, from the typed values."""
    body: dict[str, Any] = {"effective_date": values["effective_date"], "source": SOURCE}
    if values["narrative"].strip():
        body["narrative"] = values["narrative"]
    for name in command.fields:
        value = values[name].strip()
        if name == "amount":  # "1 250 000,50" as a French reader types it
            value = re.sub(r"[\s\u00a0\u202f]", "", value).replace(",", ".")
        body[name] = value
    return body


def _messages(messages: Any) -> dict[str, str]:
    found = messages if isinstance(messages, dict) else {"effective_date": messages}
    return {k: str(v[0] if isinstance(v, list) else v) for k, v in found.items()}


def _expected_version() -> int:
    raw = request.form.get(VERSION_FIELD, "")
    if not re.fullmatch(r"[0-9]{1,15}", raw):
        raise Problem(400, "the form lacks the version it was rendered from", field=VERSION_FIELD)
    return int(raw)


def _key() -> str:
    key = request.form.get(KEY_FIELD, "")
    if not re.fullmatch(KEY_PATTERN, key):
        raise Problem(400, "the form lacks its idempotency key: reload it", field=KEY_FIELD)
    return key


def _fingerprint() -> str:
    """The form's path and fields (not its CSRF token), hashed."""
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\0".encode())
    for name, value in sorted(request.form.items(multi=True)):
        if name != CSRF_FIELD:
            digest.update(f"{name}={value}\0".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _refused(
    command: Command, pid: str, version: int, values: dict[str, str], errors: dict[str, str]
) -> tuple[str, int]:
    return _form_page(pid, build(command.name, pid, version, values, errors)), 422


def _conflict(command: Command, pid: str, expected: int, values: dict[str, str]) -> tuple[str, int]:
    """409: what was recorded since the form's version, and the form kept, on the new one."""
    wait_for_position(services().portfolio.recorder.max_notification_id() or 0)
    since, version = events_since(pid, expected)
    form = build(command.name, pid, version, values)
    return _form_page(pid, form, {"expected": expected, "events": since}), 409


def _form_page(pid: str, form: Form, conflict: dict[str, Any] | None = None) -> str:
    """A form on its own page, with the project's current figures (and a conflict)."""
    return render_page(
        "web/project_form.html",
        project=latest_figures(pid),
        form=form,
        conflict=conflict,
        **helpers(),
    )
