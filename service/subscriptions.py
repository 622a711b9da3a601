"""Alert subscriptions, alerts and their deliveries over HTTP.

A subscriber's token manages its own subscriptions only (another's answers 404, as if it
did not exist); an admin's manages all. The webhook secret is in the creation answer only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from flask import Response
from flask.views import MethodView
from marshmallow import EXCLUDE, Schema

from domain.application import CommandResult
from domain.errors import InvalidValue
from domain.ministry import UnknownMinistry
from domain.subscription import (
    Rule,
    Subscription,
    SubscriptionNotFound,
    make_channel,
    make_rule,
    rule_from_payload,
    rule_payload,
)
from projections import alert_queries, outbox
from projections import alert_schema as alerts_projection
from service.auth import require_role, require_token
from service.blueprints import Blueprint
from service.commands import (
    COMMAND_HEADERS,
    Reply,
    answer,
    command,
    committed,
    expected_version,
    run,
)
from service.context import current_services
from service.errors import Problem
from service.queries import wait_for_position
from service.schemas import CommandResultSchema
from service.subscription_schemas import (
    AlertArgs,
    AlertSchema,
    DeliverySchema,
    RedeliveredSchema,
    SubscriptionCreatedSchema,
    SubscriptionCreateSchema,
    SubscriptionPatchSchema,
    SubscriptionSchema,
)
from service.tokens import TokenRecord

ROLES = ("admin", "subscriber")
RULE_FIELDS = ("metric", "comparator", "threshold", "clear_threshold", "scope", "scope_value")
CHANNEL_FIELDS = ("channel", "url", "email", "secret", "digest")
T = TypeVar("T")

_ETAG = {"ETag": {"description": "The subscription's version", "schema": {"type": "string"}}}


def _if_match(func: Callable[..., Any]) -> Callable[..., Any]:
    """Document the optional If-Match header and its 400/412 answers."""
    func = alerting.doc(parameters=[COMMAND_HEADERS["If-Match"]])(func)
    func = alerting.alt_response(400, response="BAD_REQUEST")(func)
    return alerting.alt_response(412, response="PRECONDITION_FAILED")(func)


alerting = Blueprint(
    "alerting", __name__, url_prefix="/api", description="Alert subscriptions and alerts."
)


def _owner_filter() -> str | None:
    """None for an admin (everything), else the token id whose subscriptions are shown."""
    token = require_token(ROLES)
    return None if token.role == "admin" else token.id


def _checked(build: Callable[[], T]) -> T:
    try:
        return build()
    except InvalidValue as error:
        raise Problem(422, error.message, field=error.field) from None


def own(subscription_id: UUID, *, deleted_too: bool = False) -> Subscription:
    """The subscription if the token may see it (a deleted one only if `deleted_too`), else 404."""
    owner = _owner_filter()
    subscription = current_services().portfolio.get_subscription(subscription_id)
    hidden = subscription.deleted and not deleted_too
    if hidden or (owner is not None and subscription.owner != owner):
        raise SubscriptionNotFound(subscription_id)
    return subscription


def _record(subscription: Subscription) -> dict[str, Any]:
    return _fields(
        subscription.id,
        subscription.owner,
        subscription.version,
        subscription.rule,
        subscription.channel,
    )


def _fields(
    id_: UUID, owner: str, version: int, rule: dict[str, Any], channel: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": id_,
        "owner": owner,
        "version": version,
        "rule": rule_from_payload(rule).as_dict(),
        "channel": {"kind": channel["channel"], "target": channel["target"]},
        "digest": bool(channel.get("digest", False)),
    }


def _created(result: CommandResult, owner: str, rule: Rule, channel: dict[str, Any]) -> Reply:
    """The creation answer, from what was saved (it is rendered inside the save)."""
    body, status, headers = answer(result, location=f"/api/subscriptions/{result.id}")
    record = _fields(result.id, owner, result.version, rule_payload(rule), channel)
    return {**body, **record, "secret": channel["secret"]}, status, headers


def _answer(result: CommandResult, secret: str | None, status: int = 201) -> Any:
    subscription = current_services().portfolio.get_subscription(result.id)
    body, _, headers = committed(result, location=f"/api/subscriptions/{result.id}")
    return {**body, **_record(subscription), "secret": secret}, status, headers


def _rule(body: dict[str, Any], current: Rule | None = None) -> Rule:
    given = {k: body[k] for k in RULE_FIELDS if k in body}
    merged = (current.as_dict() if current else {}) | given
    if current is not None and "comparator" not in given and "metric" in given:
        merged.pop("comparator")
    rule = _checked(lambda: make_rule(**merged))
    if rule.scope == "ministry" and rule.scope_value is not None:
        return replace(rule, scope_value=_stable_scope(rule.scope_value))
    return rule


def _stable_scope(code: str) -> str:
    """A ministry scope as its stable code (MINDEF: MINARM), so it covers the whole history."""
    try:
        ministry = current_services().portfolio.check_ministry(code)
    except UnknownMinistry as error:
        raise Problem(422, error.message, field="scope_value") from None
    return ministry.code if ministry is not None else code


def _channel(body: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    policy = current_services().settings.webhook_policy()
    kind = body.get("channel") or (current or {}).get("channel")
    same = current is not None and current["channel"] == kind
    target = current["target"] if same and current is not None else None
    url = body.get("url", target if kind == "webhook" else None)
    email = body.get("email", target if kind == "email" else None)
    secret = body.get("secret", current.get("secret") if same and current else None)
    digest = bool(body.get("digest", (current or {}).get("digest", False)))
    channel = _checked(
        lambda: make_channel(str(kind), url=url, email=email, secret=secret, digest=digest)
    )
    if channel["channel"] == "webhook":
        _checked(lambda: policy.admit(channel["target"]))
    if channel["channel"] == "email" and not current_services().settings.smtp_url:
        raise Problem(
            422,
            "e-mail alerts cannot be sent: this deployment has no SMTP_URL; use a webhook",
            field="channel",
        )
    return channel


def subscriptions() -> list[dict[str, Any]]:
    """The token's live subscriptions (an admin's: everyone's), from the alerts read model."""
    owner = _owner_filter()
    with current_services().db.transaction(write=False) as tx:
        rows = alert_queries.subscription_rows(tx, owner)
    return [
        {
            "id": r["id"],
            "owner": r["owner"],
            "version": int(r["version"]),
            "rule": rule_from_payload(json.loads(r["rule"])).as_dict(),
            "channel": {"kind": r["channel"], "target": r["target"]},
            "digest": bool(r["digest"]),
        }
        for r in rows
    ]


def subscription(subscription_id: UUID) -> dict[str, Any]:
    """One of the token's subscriptions as the API shows it (never its secret); else 404."""
    return _record(own(subscription_id))


def deliveries(subscription_id: UUID) -> list[dict[str, Any]]:
    """Every delivery attempt of one of the token's subscriptions, in order; else 404.

    A deleted subscription's log stays readable by its owner and by admins (an audit trail).
    """
    own(subscription_id, deleted_too=True)
    with current_services().db.transaction(write=False) as tx:
        return alert_queries.deliveries(tx, str(subscription_id))


def rule_of(body: dict[str, Any], current: Rule | None = None) -> Rule:
    """The rule a body describes (merged over `current`), checked: 422 naming the field."""
    return _rule(body, current)


def creation(body: dict[str, Any]) -> tuple[TokenRecord, Rule, dict[str, Any]]:
    """Who subscribes, to which rule, through which channel: checked (422 naming the field)."""
    token = require_token(ROLES)
    return token, _rule(body), _channel(body)


def create(token: TokenRecord, rule: Rule, channel: dict[str, Any]) -> CommandResult:
    """Record the subscription of `token` (its owner) to `rule` through `channel`."""
    return current_services().portfolio.create_subscription(
        owner=token.id, rule=rule, channel=channel, actor=token.actor
    )


def change(
    subscription_id: UUID, body: dict[str, Any], expected: int | None
) -> tuple[CommandResult, str | None]:
    """Change the rule and/or channel (at version `expected` if given): the result, and the
    newly generated secret to show once (None when the secret did not change)."""
    subscription = own(subscription_id)
    rule = None
    if any(k in body for k in RULE_FIELDS):
        rule = _rule(body, rule_from_payload(subscription.rule))
    channel = None
    if any(k in body for k in CHANNEL_FIELDS):
        channel = _channel(body, subscription.channel)
    if rule is None and channel is None:
        raise Problem(422, "send a rule or a channel field to change", field="body")
    old_secret = subscription.channel.get("secret")
    result = current_services().portfolio.change_subscription(
        subscription_id,
        actor=require_token(ROLES).actor,
        rule=rule,
        channel=channel,
        expected=expected,
    )
    new = None if channel is None else channel["secret"]
    return result, new if new and new != old_secret and "secret" not in body else None


def delete(subscription_id: UUID, expected: int | None) -> CommandResult:
    """Delete one of the token's subscriptions (at version `expected` if given)."""
    own(subscription_id)
    return current_services().portfolio.delete_subscription(
        subscription_id, actor=require_token(ROLES).actor, expected=expected
    )


@alerting.route("/subscriptions")
class Subscriptions(MethodView):
    @alerting.arguments(SubscriptionCreateSchema)
    @alerting.response(201, SubscriptionCreatedSchema)
    @command(alerting, if_match=False, roles=ROLES)
    def post(self, body: dict[str, Any]) -> Reply | Response:
        """Subscribe the token to a rule and a channel; the webhook secret is shown once."""
        token, rule, channel = creation(body)
        return run(
            lambda: create(token, rule, channel),
            lambda result: _created(result, token.id, rule, channel),
            SubscriptionCreatedSchema(),
        )

    @alerting.response(200, SubscriptionSchema(many=True))
    @require_role(*ROLES)
    def get(self) -> list[dict[str, Any]]:
        """The token's subscriptions (an admin's: everyone's), from the alerts read model."""
        return subscriptions()


@alerting.route("/subscriptions/<uuid:subscription_id>")
class SubscriptionItem(MethodView):
    @alerting.response(200, SubscriptionSchema, headers=_ETAG)
    @alerting.alt_response(404, response="NOT_FOUND")
    @require_role(*ROLES)
    def get(self, subscription_id: UUID) -> Any:
        """One subscription (never its secret); its version is the ETag."""
        record = subscription(subscription_id)
        return record, {"ETag": f'"{record["version"]}"'}

    @alerting.arguments(SubscriptionPatchSchema)
    @alerting.response(200, SubscriptionCreatedSchema)
    @alerting.alt_response(404, response="NOT_FOUND")
    @alerting.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @_if_match
    @require_role(*ROLES)
    def patch(self, body: dict[str, Any], subscription_id: UUID) -> Any:
        """Change the rule and/or the channel; a newly generated secret is shown once.

        If-Match (the ETag of a GET) makes it conditional: another version is 412.
        """
        result, shown = change(subscription_id, body, expected_version())
        return _answer(result, shown, 200)

    @alerting.response(200, CommandResultSchema)
    @alerting.alt_response(404, response="NOT_FOUND")
    @_if_match
    @require_role(*ROLES)
    def delete(self, subscription_id: UUID) -> Any:
        """Delete a subscription: no more alerts, pending deliveries are cancelled.

        If-Match (the ETag of a GET) makes it conditional: another version is 412.
        """
        body, _, headers = committed(delete(subscription_id, expected_version()))
        return body, 200, headers


@alerting.route("/subscriptions/<uuid:subscription_id>/deliveries")
class Deliveries(MethodView):
    @alerting.response(200, DeliverySchema(many=True))
    @alerting.alt_response(404, response="NOT_FOUND")
    @require_role(*ROLES)
    def get(self, subscription_id: UUID) -> list[dict[str, Any]]:
        """Every delivery attempt of the subscription's alerts, in order."""
        return deliveries(subscription_id)


@alerting.route("/alerts")
class Alerts(MethodView):
    @alerting.arguments(AlertArgs, location="query", unknown=None)
    @alerting.response(200, AlertSchema(many=True))
    @require_role(*ROLES)
    def get(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Alerts raised and cleared (the token's own; an admin's: all), oldest first."""
        wait_for_position(args.get("min_position"), alerts_projection.NAME)
        return alerts(args)


def alerts(args: dict[str, Any]) -> list[dict[str, Any]]:
    """The token's alerts (an admin's: all), filtered by subscription, project, from, to."""
    owner = _owner_filter()
    with current_services().db.transaction(write=False) as tx:
        return alert_queries.alerts(
            tx,
            owner=owner,
            subscription=_opt(args.get("subscription")),
            project=_opt(args.get("project")),
            start=args.get("from_"),
            end=args.get("to"),
        )


def _opt(value: UUID | None) -> str | None:
    return None if value is None else str(value)


class EmptySchema(Schema):
    """No field is read: send {}."""

    class Meta:
        unknown = EXCLUDE


@alerting.route("/alerts/<uuid:alert_id>/redeliver")
class Redeliver(MethodView):
    @alerting.arguments(EmptySchema)
    @alerting.response(202, RedeliveredSchema)
    @alerting.alt_response(404, response="NOT_FOUND")
    @command(alerting, if_match=False, roles=ROLES)
    def post(self, _body: dict[str, Any], alert_id: UUID) -> dict[str, Any]:
        """Deliver an alert again now (a fresh 24-hour window), e.g. after a dead letter."""
        redeliver_alert(alert_id)
        return {"alert_id": str(alert_id), "status": "pending"}


def redeliver_alert(alert_id: UUID) -> None:
    """Make one of the token's alerts due again now (404 when it is not the token's)."""
    owner = _owner_filter()
    services = current_services()
    with services.db.transaction(write=False) as tx:
        sid = alert_queries.alert_subscription(tx, str(alert_id))
        sub_owner = None if sid is None else alert_queries.subscription_owner(tx, sid)
    if sid is None or (owner is not None and sub_owner != owner):
        raise Problem(404, f"alert {alert_id} not found")
    if not outbox.redeliver(services.db, str(alert_id), datetime.now(UTC)):
        raise Problem(404, f"alert {alert_id} has no delivery")
    services.after_commit(0)
