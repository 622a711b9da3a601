"""The Subscription aggregate: who is alerted, on which rule, through which channel.

A rule is a metric, a comparator and a threshold, an optional clear threshold (hysteresis)
and a scope. Its condition is pure (`Rule.next_active`): the projection of alerts calls it
with the previous condition state and the new value, and records an alert when it flips.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import secrets
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import InvalidValue, NotFound
from domain.values import RATING_RANK, RATINGS, canonical_ministry

PROJECT_METRICS = ("budget_drift_pct", "schedule_drift_pct", "current_cost", "rating_at_or_worse")
PORTFOLIO_METRICS = ("portfolio_total_cost_engaged", "portfolio_mean_budget_drift_pct")
PROGRAMME_METRICS = ("programme_commitment_share_pct",)  # committed / envelope x 100
METRICS = PROJECT_METRICS + PORTFOLIO_METRICS + PROGRAMME_METRICS
COMPARATORS = (">", ">=", "<", "<=")
SCOPES = ("project", "ministry", "portfolio", "programme")
CHANNELS = ("webhook", "email")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SubscriptionNotFound(NotFound):
    kind = "subscription"


@dataclass(frozen=True)
class Rule:
    """A threshold rule; thresholds are Decimals (a rating is its rank, Green = 0)."""

    metric: str
    comparator: str
    threshold: Decimal
    clear: Decimal | None
    scope: str
    scope_value: str | None

    def holds(self, value: Decimal, bound: Decimal) -> bool:
        c = self.comparator
        return (
            value > bound
            if c == ">"
            else value >= bound
            if c == ">="
            else value < bound
            if c == "<"
            else value <= bound
        )

    def next_active(self, active: bool, value: Decimal | None) -> bool:
        """The condition after `value`: raised past the threshold, cleared only past `clear`.

        An unknown value (no baseline, figures withheld) keeps the previous state.
        """
        if value is None:
            return active
        if not active:
            return self.holds(value, self.threshold)
        return self.holds(value, self.threshold if self.clear is None else self.clear)

    def as_dict(self) -> dict[str, Any]:
        """The rule as the API shows it (a rating threshold as its level)."""
        return {
            "metric": self.metric,
            "comparator": self.comparator,
            "threshold": show_threshold(self.metric, self.threshold),
            "clear_threshold": None
            if self.clear is None
            else show_threshold(self.metric, self.clear),
            "scope": self.scope,
            "scope_value": self.scope_value,
        }


def show_threshold(metric: str, value: Decimal) -> str:
    return RATINGS[int(value)] if metric == "rating_at_or_worse" else str(value)


def _threshold(metric: str, raw: Any, field: str) -> Decimal:
    if metric == "rating_at_or_worse":
        if raw not in RATING_RANK:
            raise InvalidValue(f"{field} must be one of {', '.join(RATINGS)}", field=field)
        return Decimal(RATING_RANK[raw])
    try:
        value = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        raise InvalidValue(f"{field} must be a decimal number", field=field) from None
    if not value.is_finite() or value.adjusted() >= 15 or abs(value) > Decimal("1e15"):
        raise InvalidValue(f"{field} must be a finite number below 1e15", field=field)
    return value


def make_rule(
    *,
    metric: str,
    comparator: str | None = None,
    threshold: Any,
    clear_threshold: Any = None,
    scope: str,
    scope_value: str | None = None,
) -> Rule:
    """Check a rule and return it; InvalidValue names the field that is wrong."""
    if metric not in METRICS:
        raise InvalidValue(f"metric must be one of {', '.join(METRICS)}", field="metric")
    if metric == "rating_at_or_worse":
        if comparator not in (None, ">="):
            raise InvalidValue("a rating rule compares with >= (at or worse)", field="comparator")
        comparator = ">="
    if comparator not in COMPARATORS:
        raise InvalidValue(f"comparator must be one of {' '.join(COMPARATORS)}", field="comparator")
    value = _threshold(metric, threshold, "threshold")
    clear = (
        None if clear_threshold is None else _threshold(metric, clear_threshold, "clear_threshold")
    )
    upward = comparator in (">", ">=")
    if clear is not None and (clear > value if upward else clear < value):
        side = "at or below" if upward else "at or above"
        raise InvalidValue(
            f"with {comparator}, the clear threshold must be {side} the threshold",
            field="clear_threshold",
        )
    if scope not in SCOPES:
        raise InvalidValue(f"scope must be one of {', '.join(SCOPES)}", field="scope")
    if metric in PORTFOLIO_METRICS and scope != "portfolio":
        raise InvalidValue(f"{metric} is a portfolio metric: its scope is portfolio", field="scope")
    if (metric in PROGRAMME_METRICS) != (scope == "programme"):
        raise InvalidValue(
            f"{PROGRAMME_METRICS[0]} is the metric of a programme scope, and only it",
            field="scope",
        )
    if scope == "portfolio":
        scope_value = None
    elif scope == "programme":
        try:
            scope_value = str(UUID(str(scope_value)))
        except ValueError:
            raise InvalidValue(
                "a programme scope names a funding programme id", field="scope_value"
            ) from None
    elif scope == "project":
        try:
            scope_value = str(UUID(str(scope_value)))
        except ValueError:
            raise InvalidValue("a project scope names a project id", field="scope_value") from None
    elif not (scope_value or "").strip() or len(str(scope_value)) > 64:
        raise InvalidValue("a ministry scope names a ministry code", field="scope_value")
    else:
        scope_value = canonical_ministry(str(scope_value))
    return Rule(metric, comparator, value, clear, scope, scope_value)


_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


def check_host(host: str) -> None:
    """A host name of ASCII labels, a dotted-quad IPv4 or an IPv6 literal; nothing else."""
    if ":" in host:
        try:
            if "%" in host:
                raise ValueError("a zone id")
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidValue("the webhook host is not an IPv6 address", field="url") from None
        return
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if not all(_LABEL.match(label) for label in labels) or len(host) > 253:
        raise InvalidValue(
            "a webhook host is a domain name (letters, digits, hyphens) or an address",
            field="url",
        )
    if _NUMERIC.match(labels[-1]):
        try:
            ipaddress.IPv4Address(".".join(labels))
        except ValueError:
            raise InvalidValue(
                "a numeric webhook host is written as a dotted quad a.b.c.d", field="url"
            ) from None


# Separators, controls, surrogates, private use, unassigned: never in a name (the rest of
# the non-ASCII characters are judged by IDNA 2008 in workers/webhook_policy.py).
_NOT_IN_NAMES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cs", "Co", "Cn"})
_NOT_IDNA = "the webhook URL names a host that is not a valid international domain name ({})"
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def _check_international(host: str) -> None:
    """A host with a non-ASCII character or an `xn--` label: its shape only (stdlib).

    The domain checks that every label is non-empty, its ASCII characters letters, digits or
    hyphens, and no character a space or control, once folded (NFKC, case, the full stops
    。．｡ read as dots). IDNA 2008 itself (UTS 46, the A-labels
    that are resolved and sent) is applied where webhooks are posted, by
    `workers/webhook_policy.py`, at subscription and at every delivery.
    """
    folded = unicodedata.normalize("NFKC", host).casefold().translate(_DOTS)
    labels = folded[:-1].split(".") if folded.endswith(".") else folded.split(".")
    for label in labels:
        if not label or len(label) > 63 or label.startswith("-") or label.endswith("-"):
            raise InvalidValue(
                _NOT_IDNA.format("an empty label or a hyphen at an end"), field="url"
            )
        if not all(
            c == "-" or c.isalnum() if c.isascii() else unicodedata.category(c) not in _NOT_IN_NAMES
            for c in label
        ):
            raise InvalidValue(_NOT_IDNA.format("a space, control or symbol"), field="url")


def _written_host(netloc: str) -> str:
    """A netloc's host as written (no user info, no port), for a host that is no IPv6 literal."""
    return netloc.rpartition("@")[2].partition(":")[0]


def webhook_host(url: str) -> str:
    """The host of a webhook URL, once the URL's syntax passed: lower-cased when ASCII, as
    written when international (its A-labels are made by `workers/webhook_policy.py`).

    An http(s) URL without userinfo whose host is a domain name, a dotted-quad IPv4 or an
    IPv6 literal (syntax only: no socket, no DNS). Where the host may be (resolution,
    address classes) is decided by the layer that posts webhooks (workers/webhook_policy.py).
    """
    if len(url) > 2000 or any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise InvalidValue("the webhook URL is too long or holds spaces", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidValue("the webhook URL does not parse", field="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValue("a webhook URL is http:// or https:// with a host", field="url")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidValue("a webhook URL must not carry user:password@", field="url")
    if port == 0:
        raise InvalidValue("the webhook URL names port 0", field="url")
    if parts.netloc.startswith("["):
        host = parts.hostname
    else:
        host = _written_host(parts.netloc)
        if not host.isascii() or any(label.startswith("xn--") for label in host.lower().split(".")):
            _check_international(host)
            return host
        host = host.lower()
    check_host(host)
    return host


def check_webhook_url(url: str) -> str:
    """The URL, if `webhook_host` accepts it."""
    webhook_host(url)
    return url


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def make_channel(
    channel: str,
    *,
    url: str | None,
    email: str | None,
    secret: str | None,
    digest: bool = False,
) -> dict[str, Any]:
    """Check a channel (a webhook URL by its syntax only); a webhook gets a secret if none.

    `digest`: the subscription's alerts are also summed up in its owner's daily digest.
    """
    if channel == "webhook":
        if not url:
            raise InvalidValue("a webhook channel needs a url", field="url")
        check_webhook_url(url)
        if secret is not None and not 16 <= len(secret) <= 200:
            raise InvalidValue("a webhook secret has 16 to 200 characters", field="secret")
        return {
            "channel": channel,
            "target": url,
            "secret": secret or new_secret(),
            "digest": digest,
        }
    if channel == "email":
        if not email or not _EMAIL.match(email) or len(email) > 254:
            raise InvalidValue("an e-mail channel needs an address", field="email")
        return {"channel": channel, "target": email, "secret": None, "digest": digest}
    raise InvalidValue(f"channel must be one of {', '.join(CHANNELS)}", field="channel")


class Subscription(Aggregate):
    """A subscriber's rule and channel; owner is the id of the subscriber's token."""

    class Event(Aggregate.Event):
        actor: str

        def apply(self, aggregate: Subscription) -> None:
            """Change the subscription's state."""

    class Created(Aggregate.Created):
        actor: str
        owner: str
        rule: dict[str, Any]
        channel: dict[str, Any]

        def apply(self, aggregate: Subscription) -> None:
            aggregate.owner = self.owner
            aggregate.rule = self.rule
            aggregate.channel = self.channel
            aggregate.deleted = False

    class RuleChanged(Event):
        rule: dict[str, Any]

        def apply(self, aggregate: Subscription) -> None:
            aggregate.rule = self.rule

    class ChannelChanged(Event):
        channel: dict[str, Any]

        def apply(self, aggregate: Subscription) -> None:
            aggregate.channel = self.channel

    class Deleted(Event):
        def apply(self, aggregate: Subscription) -> None:
            aggregate.deleted = True

    def __init__(self, **_: Any) -> None:  # state is set by Created.apply
        pass

    owner: str
    rule: dict[str, Any]
    channel: dict[str, Any]
    deleted: bool

    @classmethod
    def create(cls, *, owner: str, rule: Rule, channel: dict[str, Any], actor: str) -> Subscription:
        return cls._create(
            cls.Created,
            id=cls.create_id(),
            actor=actor,
            owner=owner,
            rule=rule_payload(rule),
            channel=channel,
        )

    def change_rule(self, rule: Rule, actor: str) -> None:
        self._check_live()
        self.trigger_event(self.RuleChanged, actor=actor, rule=rule_payload(rule))

    def change_channel(self, channel: dict[str, Any], actor: str) -> None:
        self._check_live()
        self.trigger_event(self.ChannelChanged, actor=actor, channel=channel)

    def delete(self, actor: str) -> None:
        self._check_live()
        self.trigger_event(self.Deleted, actor=actor)

    def _check_live(self) -> None:
        if self.deleted:
            raise InvalidValue("the subscription was deleted", field="id")


def rule_payload(rule: Rule) -> dict[str, Any]:
    """A rule as stored in events (Decimals as text)."""
    return {
        "metric": rule.metric,
        "comparator": rule.comparator,
        "threshold": str(rule.threshold),
        "clear": None if rule.clear is None else str(rule.clear),
        "scope": rule.scope,
        "scope_value": rule.scope_value,
    }


def rule_from_payload(data: dict[str, Any]) -> Rule:
    clear = data.get("clear")
    return Rule(
        data["metric"],
        data["comparator"],
        Decimal(data["threshold"]),
        None if clear is None else Decimal(clear),
        data["scope"],
        data.get("scope_value"),
    )
