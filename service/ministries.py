"""The ministries reference over HTTP: list (public read), register and amend (admin)."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validates_schema

from domain.ministry import Alias, Ministry
from service.auth import current_actor, require_read
from service.blueprints import Blueprint
from service.commands import SUCCESS_HEADERS, Reply, answer, attempt, command, run
from service.context import current_services
from service.errors import Problem
from service.schemas import CommandResultSchema, IsoDate, Strict, Text

ministries = Blueprint(
    "ministries",
    __name__,
    url_prefix="/api/ministries",
    description="The ministries reference: stable codes, names and the aliases editions used.",
)
ADMIN = ("admin",)


class AliasSchema(Strict):
    code = Text(50, blank=False, required=True)
    valid_from = IsoDate(allow_none=True, load_default=None, data_key="from")
    valid_to = IsoDate(allow_none=True, load_default=None, data_key="to")


class MinistryRegistrationSchema(Strict):
    code = Text(50, blank=False, required=True)  # the stable code
    name = Text(300, blank=False, required=True)
    aliases = fields.List(fields.Nested(AliasSchema), load_default=list)


class MinistryAmendmentSchema(Strict):
    name = Text(300, blank=False)  # the new current name
    valid_from = IsoDate(allow_none=True, load_default=None)  # the new name applies from
    alias = fields.Nested(AliasSchema, metadata={"description": "another code it was seen under"})

    @validates_schema
    def _something(self, data: dict[str, Any], **_: Any) -> None:
        if "name" not in data and "alias" not in data:
            raise ValidationError("Give a new name, an alias, or both.", field_name="name")


class AliasView(Schema):
    code = fields.String()
    valid_from = fields.Date(allow_none=True, data_key="from")
    valid_to = fields.Date(allow_none=True, data_key="to")


class FormerName(Schema):
    name = fields.String()
    valid_from = fields.Date(allow_none=True, data_key="from")


class MinistrySchema(Schema):
    code = fields.String(metadata={"description": "the stable code"})
    name = fields.String(metadata={"description": "the current name"})
    aliases = fields.List(fields.Nested(AliasView))
    names = fields.List(fields.Nested(FormerName), metadata={"description": "oldest first"})


class MinistryListSchema(Schema):
    version = fields.Integer(metadata={"description": "the reference's version (If-Match)"})
    items = fields.List(fields.Nested(MinistrySchema))


def _view(ministry: Ministry) -> dict[str, Any]:
    return {
        "code": ministry.code,
        "name": ministry.name,
        "aliases": list(ministry.aliases),
        "names": [{"name": name, "valid_from": since} for name, since in ministry.names],
    }


def _alias(body: dict[str, Any]) -> Alias:
    return Alias(body["code"], body.get("valid_from"), body.get("valid_to"))


@ministries.route("")
class Ministries(MethodView):
    @ministries.response(200, MinistryListSchema)
    @require_read()
    def get(self) -> tuple[dict[str, Any], dict[str, str]]:
        """Every ministry: stable code, current name, aliases with their dates."""
        reference = current_services().portfolio.ministries()
        found = sorted(reference.ministries.values(), key=lambda m: m.code) if reference else []
        version = reference.version if reference is not None else 0
        return {"version": version, "items": [_view(m) for m in found]}, {"ETag": f'"{version}"'}

    @ministries.arguments(MinistryRegistrationSchema)
    @ministries.response(201, CommandResultSchema, headers=SUCCESS_HEADERS)
    @command(ministries, roles=ADMIN)
    def post(self, body: dict[str, Any]) -> Reply | Response:
        """Register a ministry (admin); its codes and aliases must name no other ministry."""
        portfolio = current_services().portfolio
        actor = current_actor()
        aliases = [_alias(a) for a in body["aliases"]]
        return run(
            lambda: attempt(
                lambda expected: portfolio.register_ministry(
                    body["code"], body["name"], actor=actor, aliases=aliases, expected=expected
                )
            ),
            lambda result: answer(result, location="/api/ministries"),
        )


@ministries.route("/<code>")
class MinistryAmendment(MethodView):
    @ministries.response(200, MinistrySchema)
    @require_read()
    def get(self, code: str) -> dict[str, Any]:
        """One ministry, by its stable code or one of its aliases."""
        reference = current_services().portfolio.ministries()
        stable = reference.stable(code) if reference is not None else None
        if reference is None or stable is None:
            raise Problem(404, f"no ministry has the code {code!r}", field="code")
        return _view(reference.ministries[stable])

    @ministries.arguments(MinistryAmendmentSchema)
    @ministries.response(201, CommandResultSchema, headers=SUCCESS_HEADERS)
    @command(ministries, roles=ADMIN)
    def patch(self, body: dict[str, Any], code: str) -> Reply | Response:
        """Rename a ministry and/or add an alias (admin), by its stable code."""
        portfolio = current_services().portfolio
        actor = current_actor()

        return run(
            lambda: attempt(
                lambda expected: portfolio.amend_ministry(
                    code,
                    actor=actor,
                    name=body.get("name"),
                    valid_from=body["valid_from"],
                    alias=_alias(body["alias"]) if "alias" in body else None,
                    expected=expected,
                )
            )
        )
