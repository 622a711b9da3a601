"""The command API: load aggregates, call their methods, save atomically, return plain values."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import JSONTranscoder, RecordConflictError, Recording, Transcoding

from domain.errors import ProgrammeNotFound, ProjectNotFound, VersionConflict
from domain.programme import FundingProgramme
from domain.project import Project
from domain.subscription import Rule, Subscription, SubscriptionNotFound

A = TypeVar("A", bound=Aggregate)


class DateAsISO(Transcoding):
    """Dates round-trip through the event store as ISO strings."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


@dataclass(frozen=True)
class CommandResult:
    """What a command returns: the aggregate, its new version and the log position."""

    id: UUID
    version: int
    position: int
    # the new version of every aggregate the save recorded (the first one's included)
    versions: Mapping[UUID, int] = field(default_factory=dict, compare=False)


RecordWithEvents = Callable[[CommandResult], tuple[Any, Sequence[Any]]]
# The keyword under which save() hands the recorder a row to commit with the events
# (projections/recorders.py).
WITH_EVENTS = "with_events"
_with_events: ContextVar[RecordWithEvents | None] = ContextVar("with_events", default=None)


@contextmanager
def recorded_with_events(write: RecordWithEvents) -> Iterator[None]:
    """Saves in this block also run `write(result)`'s statement in the events' transaction.

    The statement must change exactly one row, else the save records nothing
    (projections.recorders.WriteRefused).
    """
    token = _with_events.set(write)
    try:
        yield
    finally:
        _with_events.reset(token)


@dataclass(frozen=True)
class Provenance:
    """Who records an event, from where, and when it is true in the world."""

    effective_date: date
    actor: str
    source: str = "api"
    narrative: str | None = None
    correction: bool = False

    def as_kwargs(self, today: date) -> dict[str, Any]:
        return {
            "effective_date": self.effective_date,
            "actor": self.actor,
            "source": self.source,
            "narrative": self.narrative,
            "correction": self.correction,
            "today": today,
        }


def utc_today() -> date:
    """Today's date in UTC."""
    return datetime.now(UTC).date()


class Portfolio(Application[UUID]):
    """The portfolio of projects and funding programmes."""

    name = "Panorama"

    def __init__(
        self, env: dict[str, str] | None = None, *, today: Callable[[], date] = utc_today
    ) -> None:
        super().__init__(env)
        self.today = today

    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Any:
        """Given settings are the whole configuration: the process environment is not read."""
        if env is None:
            return super().construct_env(name, env)
        from eventsourcing.utils import Environment

        return Environment(name, {**type(self).env, **env})

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # -- projects ----------------------------------------------------------------------------
    def register_project(
        self,
        prov: Provenance,
        *,
        id: UUID | None = None,
        **details: Any,  # noqa: A002
    ) -> CommandResult:
        """Register a project; `id` may be given for deterministic imports."""
        kwargs = prov.as_kwargs(self.today())
        kwargs.pop("correction")
        project = Project.register(id=id, **details, **kwargs)
        return self._save(project)

    def change_project(
        self,
        project_id: UUID,
        command: Callable[..., None] | str,
        prov: Provenance,
        *,
        expected_version: int | None = None,
        **args: Any,
    ) -> CommandResult:
        """Load a project, call one of its command methods, and save what it recorded."""
        project = self.get_project(project_id)
        self._check_version(project, expected_version)
        method = getattr(project, command) if isinstance(command, str) else command
        method(**args, **prov.as_kwargs(self.today()))
        return self._save(project)

    def get_project(self, project_id: UUID) -> Project:
        """The project's current state, or ProjectNotFound."""
        return self._get(project_id, Project, ProjectNotFound)

    def project_events(self, project_id: UUID) -> list[DomainEventProtocol[UUID]]:
        """Every event of a project's stream, in recording order."""
        self.get_project(project_id)
        return list(self.events.get(project_id))

    # -- funding programmes ------------------------------------------------------------------
    def create_programme(
        self, prov: Provenance, *, name: str, envelope: Decimal, currency: str = "EUR"
    ) -> CommandResult:
        """Create a funding programme with its envelope."""
        kwargs = prov.as_kwargs(self.today())
        kwargs.pop("correction")
        programme = FundingProgramme.create(
            name=name, envelope=envelope, currency=currency, **kwargs
        )
        return self._save(programme)

    def open_call(
        self,
        programme_id: UUID,
        call: str,
        prov: Provenance,
        *,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Open a call on a programme."""
        programme = self.get_programme(programme_id)
        self._check_version(programme, expected_version)
        programme.open_call(call, **prov.as_kwargs(self.today()))
        return self._save(programme)

    def award_funding(
        self,
        programme_id: UUID,
        prov: Provenance,
        *,
        project_id: UUID,
        amount: Decimal,
        call: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Award funding: recorded on the programme and on the project in one atomic save."""
        programme = self.get_programme(programme_id)
        self._check_version(programme, expected_version)
        project = self.get_project(project_id)
        today = self.today()
        programme.award(project_id, amount, call, **prov.as_kwargs(today))
        project.receive_funding(programme_id, amount, call, **prov.as_kwargs(today))
        return self._save(programme, project)

    def revise_envelope(
        self,
        programme_id: UUID,
        prov: Provenance,
        *,
        envelope: Decimal,
        reason: str,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Revise a programme's envelope from the effective date (never below committed)."""
        programme = self.get_programme(programme_id)
        self._check_version(programme, expected_version)
        programme.revise_envelope(envelope, reason, **prov.as_kwargs(self.today()))
        return self._save(programme)

    def record_funding(
        self,
        programme_id: UUID,
        prov: Provenance,
        *,
        project_id: UUID,
        amount: Decimal,
        kind: str,
        call: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Record announced, engaged or disbursed money; announced goes to the project too."""
        if kind == "announced":
            return self.award_funding(
                programme_id,
                prov,
                project_id=project_id,
                amount=amount,
                call=call,
                expected_version=expected_version,
            )
        programme = self.get_programme(programme_id)
        self._check_version(programme, expected_version)
        self.get_project(project_id)
        programme.award(project_id, amount, call, kind, **prov.as_kwargs(self.today()))
        return self._save(programme)

    def programme_events(self, programme_id: UUID) -> list[DomainEventProtocol[UUID]]:
        """Every event of a programme's stream, in recording order."""
        self.get_programme(programme_id)
        return list(self.events.get(programme_id))

    def get_programme(self, programme_id: UUID) -> FundingProgramme:
        """The programme's current state, or ProgrammeNotFound."""
        return self._get(programme_id, FundingProgramme, ProgrammeNotFound)

    # -- subscriptions -----------------------------------------------------------------------
    def create_subscription(
        self, *, owner: str, rule: Rule, channel: dict[str, Any], actor: str
    ) -> CommandResult:
        """Subscribe `owner` (a token id) to a checked rule through a checked channel."""
        return self._save(Subscription.create(owner=owner, rule=rule, channel=channel, actor=actor))

    def change_subscription(
        self,
        subscription_id: UUID,
        *,
        actor: str,
        rule: Rule | None = None,
        channel: dict[str, Any] | None = None,
        expected: int | None = None,
    ) -> CommandResult:
        """Change a subscription's rule and/or channel (both in one save).

        `expected`: the version the caller saw (If-Match); another is VersionConflict.
        """
        subscription = self.get_subscription(subscription_id)
        self._check_version(subscription, expected)
        if rule is not None:
            subscription.change_rule(rule, actor)
        if channel is not None:
            subscription.change_channel(channel, actor)
        return self._save(subscription)

    def delete_subscription(
        self, subscription_id: UUID, *, actor: str, expected: int | None = None
    ) -> CommandResult:
        """Delete a subscription: no more alerts are raised for it."""
        subscription = self.get_subscription(subscription_id)
        self._check_version(subscription, expected)
        subscription.delete(actor)
        return self._save(subscription)

    def get_subscription(self, subscription_id: UUID) -> Subscription:
        """The subscription's current state, or SubscriptionNotFound."""
        return self._get(subscription_id, Subscription, SubscriptionNotFound)

    # -- helpers -----------------------------------------------------------------------------
    def _get(self, aggregate_id: UUID, kind: type[A], not_found: type[Exception]) -> A:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise not_found(aggregate_id) from None
        if not isinstance(aggregate, kind):
            raise not_found(aggregate_id)
        return aggregate

    @staticmethod
    def _check_version(aggregate: Aggregate, expected: int | None) -> None:
        if expected is not None and expected != aggregate.version:
            raise VersionConflict(expected, aggregate.version)

    def _save(self, first: Aggregate, *others: Aggregate) -> CommandResult:
        versions = {a.id: a.version for a in (first, *others)}
        result = CommandResult(id=first.id, version=first.version, position=0, versions=versions)
        kwargs: dict[str, Callable[[Sequence[int]], Any]] = {}
        record = _with_events.get()
        if record is not None:
            kwargs[WITH_EVENTS] = lambda ids: record(replace(result, position=max(ids)))
        try:
            recordings: Sequence[Recording[UUID]] = self.save(first, *others, **kwargs)
        except RecordConflictError:
            # Another writer saved the same version first: the caller's view was stale.
            raise VersionConflict(first.version - 1, None) from None
        return replace(result, position=max(r.notification.id for r in recordings))
