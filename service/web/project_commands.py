"""`/projects/<id>/<form>`: a manager's form posted from the project page.

The post goes through the API's own steps: the same roles and ministry scope
(`require_project_scope`), the same schema, the same typed `Portfolio` command with the
form's version as If-Match, and the pages' one form idempotency (service/web/forms.py: the
outcome is committed with the events, so a double submit records once). A stale version is a 409
page with the changes recorded since; a refusal a 422 page with the message by its field.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from flask import Response, flash, url_for
from flask_babel import gettext
from marshmallow import ValidationError

from domain.errors import DomainError, VersionConflict
from service.auth import require_project_scope
from service.commands import provenance
from service.context import current_services
from service.errors import Problem
from service.queries import wait_for_position
from service.web.blueprint import web
from service.web.forms import claim_form, recorded, refusal, required_version, schema_errors
from service.web.i18n import page_lang
from service.web.pages import render_page
from service.web.project_forms import COMMANDS, COMMON, Command, Form, build, defaults, typed
from service.web.project_view import helpers
from service.web.reads import events_since, latest_figures, services
from service.web.session import require_page_role
from service.web.state import today

SOURCE = "web"
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
    expected = required_version(VERSION_FIELD)
    try:
        body = command.schema().load(_body(command, values))
    except ValidationError as e:
        return _refused(command, pid, expected, values, schema_errors(e.messages, "effective_date"))
    replay = claim_form()
    if replay is not None:
        if replay.status_code == 303:
            flash(gettext("This form had already been sent: the change was recorded once."))
        return replay
    prov, rest = provenance(body)
    portfolio = current_services().portfolio
    try:
        answer = recorded(
            lambda: command.run(portfolio, UUID(pid), prov, expected, rest),
            lambda result: _done(pid, result.position),
        )
    except VersionConflict:
        return _conflict(command, pid, expected, values)
    except DomainError as e:
        field = e.field if e.field in (*command.fields, *COMMON) else command.fields[0]
        return _refused(command, pid, expected, values, {field: refusal(e)})
    flash(gettext(command.done))
    return answer


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
