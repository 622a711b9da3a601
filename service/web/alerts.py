"""`/alerts`: a subscriber's rules, their preview, the alerts raised and their deliveries.

Every change calls the API's own command functions (service/subscriptions.py) with the
same validation; forms carry the version they were rendered from and an idempotency key
(service/web/forms.py), so a double submit records once.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID

from flask import Response, make_response, redirect, request, url_for
from flask_babel import gettext
from marshmallow import ValidationError, fields

from domain.errors import NotFound, VersionConflict
from domain.subscription import COMPARATORS, METRICS, PORTFOLIO_METRICS, SCOPES
from domain.values import RATINGS
from projections.alert_queries import shown
from service import subscriptions as api
from service.commands import notify_committed
from service.errors import Problem
from service.schemas import IsoDate
from service.subscription_schemas import SubscriptionCreateSchema, SubscriptionPatchSchema
from service.web.blueprint import mark, web
from service.web.forms import claim_form, field_errors, form_version, new_key, recorded
from service.web.pages import download, render_page
from service.web.reads import alert_conditions, alert_preview, reading
from service.web.session import require_page_role
from service.web.state import PageArgs, page_state, today

ROLES = ("subscriber", "admin")
CHANNEL_TARGETS = {"url": "webhook", "email": "email"}
NULLABLE = ("comparator", "clear_threshold", "scope_value", "url", "email")
METRIC_LABELS = {
    "budget_drift_pct": mark("Budget drift (%)"),
    "schedule_drift_pct": mark("Schedule drift (%)"),
    "current_cost": mark("Current cost"),
    "rating_at_or_worse": mark("Rating at or worse than"),
    "portfolio_total_cost_engaged": mark("Portfolio: total cost engaged"),
    "portfolio_mean_budget_drift_pct": mark("Portfolio: mean budget drift (%)"),
    "programme_commitment_share_pct": mark("Programme: share of the envelope committed (%)"),
}
SCOPE_LABELS = {
    "project": mark("One project"),
    "ministry": mark("One ministry"),
    "portfolio": mark("Every project (portfolio)"),
    "programme": mark("One funding programme"),
}
ALERT_HEADER = (
    "created_at",
    "kind",
    "subscription_id",
    "subject",
    "name",
    "metric",
    "before",
    "after",
    "delivery",
)


class NoticeArgs(PageArgs):
    """What the page after a change says happened (a redirect's notice)."""

    saved = fields.Integer()
    redelivered = fields.Integer()
    deleted = fields.Integer()


class AlertsArgs(NoticeArgs):
    """The list's period: alerts recorded from `from` to `to` (both days included)."""

    from_ = IsoDate(data_key="from")
    to = IsoDate()


def _not_found(subscription_id: UUID) -> Problem:
    return Problem(404, gettext("Subscription %(id)s was not found.", id=subscription_id))


def _owned(subscription_id: UUID) -> Any:
    try:
        return api.own(subscription_id)
    except NotFound:
        raise _not_found(subscription_id) from None


@web.route("/alerts")
@require_page_role(*ROLES)
def alerts() -> Any:
    """The signed-in subscriber's rules and the alerts raised and cleared in the period."""
    state = page_state(AlertsArgs)
    start, end = state.args.get("from_"), state.args.get("to")
    found = api.alerts(
        {
            "from_": None if start is None else datetime.combine(start, time(), UTC),
            "to": None if end is None else datetime.combine(end + timedelta(days=1), time(), UTC),
        }
    )
    with reading(state) as read:
        reflects = read.reflects
    if state.format:
        return download(state, "alerts", ALERT_HEADER, [_alert_row(a) for a in found], reflects)
    rules = api.subscriptions()
    return render_page(
        "web/alerts.html",
        state=state,
        rules=rules,
        active=alert_conditions([r["id"] for r in rules]),
        alerts=found,
        labels=_labels(rules),
        reflects=reflects,
        start=start,
        end=end,
        metric_label=metric_label,
    )


def _alert_row(alert: dict[str, Any]) -> list[Any]:
    figures = alert.get("figures_after") or alert.get("figures_before") or {}
    return [
        alert["created_at"],
        alert["kind"],
        alert["subscription_id"],
        alert["subject"],
        figures.get("name", ""),
        alert["metric"],
        alert["value_before"],
        alert["value_after"],
        alert["delivery"],
    ]


def _labels(rules: list[dict[str, Any]]) -> dict[str, str]:
    return {str(r["id"]): rule_text(r["rule"]) for r in rules}


def metric_label(metric: str) -> str:
    """A metric's name in the page's language."""
    return gettext(METRIC_LABELS.get(metric, metric))


def rule_text(rule: dict[str, Any]) -> str:
    """A rule as one line: "Budget drift (%) > 20 (clears at 15)"."""
    text = f"{metric_label(rule['metric'])} {rule['comparator']} {rule['threshold']}"
    if rule.get("clear_threshold") is not None:
        text += " " + gettext("(clears at %(value)s)", value=rule["clear_threshold"])
    return text


@web.route("/alerts/<uuid:subscription_id>")
@require_page_role(*ROLES)
def subscription(subscription_id: UUID) -> Any:
    """One rule: its definition, its alerts, and every delivery attempt with a redeliver."""
    page_state(NoticeArgs)
    try:
        record = api.subscription(subscription_id)
        log = api.deliveries(subscription_id)
    except NotFound:
        raise _not_found(subscription_id) from None
    found = api.alerts({"subscription": subscription_id})
    return render_page(
        "web/alert_subscription.html",
        sub=record,
        rule_line=rule_text(record["rule"]),
        log=_by_alert(found, log),
        active=alert_conditions([subscription_id]).get(str(subscription_id), 0),
        key=new_key(),
        metric_label=metric_label,
    )


def _by_alert(found: list[dict[str, Any]], log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The delivery log grouped by alert, in the alerts' order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in log:
        groups.setdefault(str(row["alert_id"]), []).append(row)
    return [{"alert": a, "attempts": groups.get(a["id"], [])} for a in found]


# -- the rule form ---------------------------------------------------------------------------
def _form_values(record: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the form shows: the submitted fields, else the subscription's, else defaults."""
    if request.method == "POST":
        values: dict[str, Any] = {
            k: request.form.get(k, "").strip() for k in (*api.RULE_FIELDS, "channel")
        }
        values |= {
            "url": request.form.get("url", "").strip(),
            "email": request.form.get("email", "").strip(),
            "digest": request.form.get("digest") == "on",
        }
        return values
    if record is None:
        return {
            "metric": "budget_drift_pct",
            "comparator": ">",
            "scope": "portfolio",
            "channel": "webhook",
            "digest": False,
        }
    rule, channel = record["rule"], record["channel"]
    return {
        **{k: "" if rule.get(k) is None else str(rule[k]) for k in api.RULE_FIELDS},
        "channel": channel["kind"],
        "url": channel["target"] if channel["kind"] == "webhook" else "",
        "email": channel["target"] if channel["kind"] == "email" else "",
        "digest": record["digest"],
    }


def _body(values: dict[str, Any], schema: Any) -> dict[str, Any]:
    """The form as the API's JSON body, checked by the API's own schema (422 naming the field)."""
    body: dict[str, Any] = {}
    for name in (*api.RULE_FIELDS, "channel", "url", "email"):
        value = values.get(name) or None
        if name in CHANNEL_TARGETS and values.get("channel") != CHANNEL_TARGETS[name]:
            continue  # the other channel's field
        if value is not None or name in NULLABLE:
            body[name] = value
    body["digest"] = bool(values.get("digest"))
    try:
        loaded: dict[str, Any] = schema().load(body)
    except ValidationError as e:
        messages = e.messages if isinstance(e.messages, dict) else {"form": e.messages}
        name = sorted(messages)[0]
        found = messages[name]
        raise Problem(
            422, str(found[0] if isinstance(found, list) else found), field=name
        ) from None
    return loaded


def _preview(values: dict[str, Any], current: Any = None) -> dict[str, Any]:
    """The projects (or the portfolio) that would cross the form's rule today."""
    body = {k: values.get(k) or None for k in api.RULE_FIELDS}
    rule = api.rule_of({k: v for k, v in body.items() if v is not None or k in NULLABLE}, current)
    found = alert_preview(rule)
    found["projects"] = [(st, shown(rule.metric, str(v))) for st, v in found["projects"]]
    if found["value"] is not None:
        found["value"] = shown(rule.metric, str(found["value"]))
    return {**found, "rule": rule, "portfolio": rule.metric in PORTFOLIO_METRICS}


def _form(
    template_values: dict[str, Any],
    *,
    record: dict[str, Any] | None,
    errors: dict[str, str] | None = None,
    preview: dict[str, Any] | None = None,
    conflict: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    body = render_page(
        "web/alert_form.html",
        values=template_values,
        sub=record,
        errors=errors or {},
        preview=preview,
        conflict=conflict,
        key=new_key(),
        version=None if record is None else record["version"],
        metrics=[(m, metric_label(m)) for m in METRICS],
        comparators=COMPARATORS,
        scopes=[(s, gettext(SCOPE_LABELS[s])) for s in SCOPES],
        ratings=RATINGS,
        today=today(),
        metric_label=metric_label,
    )
    return make_response(body, status)


def _refused(problem: Problem, values: dict[str, Any], record: dict[str, Any] | None) -> Response:
    return _form(
        values,
        record=record,
        errors=field_errors(problem),
        status=problem.status,
    )


@web.route("/alerts/new", methods=["GET", "POST"])
@require_page_role(*ROLES)
def new_rule() -> Any:
    """The rule form; Preview re-renders it with today's crossings, Save subscribes."""
    page_state()
    values = _form_values()
    if request.method == "GET":
        return _form(values, record=None)
    if request.form.get("action") == "preview":
        try:
            return _form(values, record=None, preview=_preview(values))
        except Problem as problem:
            return _refused(problem, values, None)
    replay = claim_form()
    if replay is not None:
        return replay
    try:
        token, rule, channel = api.creation(_body(values, SubscriptionCreateSchema))
    except Problem as problem:
        return _refused(problem, values, None)

    def created(result: Any) -> Response:
        record = {
            "id": result.id,
            "version": result.version,
            "rule": rule.as_dict(),
            "channel": {"kind": channel["channel"], "target": channel["target"]},
            "digest": bool(channel.get("digest")),
        }
        page = render_page(
            "web/alert_saved.html",
            sub=record,
            rule_line=rule_text(record["rule"]),
            secret=channel.get("secret"),
            created=True,
        )
        return make_response(page, 201)

    return recorded(lambda: api.create(token, rule, channel), created)


@web.route("/alerts/<uuid:subscription_id>/edit", methods=["GET", "POST"])
@require_page_role(*ROLES)
def edit_rule(subscription_id: UUID) -> Any:
    """The rule form filled with the subscription; Save changes it at the form's version."""
    page_state()
    try:
        record = api.subscription(subscription_id)
    except NotFound:
        raise _not_found(subscription_id) from None
    values = _form_values(record)
    if request.method == "GET":
        return _form(values, record=record)
    if request.form.get("action") == "preview":
        try:
            return _form(values, record=record, preview=_preview(values))
        except Problem as problem:
            return _refused(problem, values, record)
    replay = claim_form()
    if replay is not None:
        return replay
    expected = form_version()
    try:
        body = _body(values, SubscriptionPatchSchema)
        result, secret = api.change(subscription_id, body, expected)
    except Problem as problem:
        return _refused(problem, values, record)
    except VersionConflict:
        conflict = {"expected": expected, "current": record["version"], "theirs": record}
        return _form(values, record=record, conflict=conflict, status=409)
    notify_committed(result)
    if secret:
        saved = api.subscription(subscription_id)
        page = render_page(
            "web/alert_saved.html",
            sub=saved,
            rule_line=rule_text(saved["rule"]),
            secret=secret,
            created=False,
        )
        return make_response(page, 200)
    return redirect(
        url_for(
            "web.subscription",
            subscription_id=subscription_id,
            lang=request.args.get("lang"),
            saved=1,
        ),
        code=303,
    )


@web.route("/alerts/<uuid:subscription_id>/delete", methods=["GET", "POST"])
@require_page_role(*ROLES)
def delete_rule(subscription_id: UUID) -> Any:
    """A confirmation page (GET); deleting the subscription at the form's version (POST)."""
    page_state()
    try:
        record = api.subscription(subscription_id)
    except NotFound:
        raise _not_found(subscription_id) from None
    if request.method == "POST":
        replay = claim_form()
        if replay is not None:
            return replay
        try:
            notify_committed(api.delete(subscription_id, form_version()))
        except VersionConflict:
            raise Problem(
                409,
                gettext(
                    "This subscription was changed since the confirmation was shown: review it"
                    " and confirm again."
                ),
                field="version",
            ) from None
        return redirect(url_for("web.alerts", lang=request.args.get("lang"), deleted=1), code=303)
    return render_page(
        "web/alert_delete.html", sub=record, rule_line=rule_text(record["rule"]), key=new_key()
    )


@web.route("/alerts/deliveries/<uuid:alert_id>/redeliver", methods=["POST"])
@require_page_role(*ROLES)
def redeliver(alert_id: UUID) -> Any:
    """Deliver an alert again now (the API's redeliver), then back to its subscription."""
    page_state()
    replay = claim_form()
    if replay is not None:
        return replay
    api.redeliver_alert(alert_id)
    back = request.form.get("subscription_id", "")
    try:
        target = url_for(
            "web.subscription",
            subscription_id=UUID(back),
            lang=request.args.get("lang"),
            redelivered=1,
        )
    except ValueError:
        target = url_for("web.alerts", lang=request.args.get("lang"))
    return redirect(target + "#deliveries", code=303)
