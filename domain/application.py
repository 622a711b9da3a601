"""The command API: load aggregates, call their methods, save atomically, return plain values."""

from __future__ import annotations

import copy
import functools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    ProjectorFunction,
    project_aggregate,
)
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import (
    JSONTranscoder,
    PersistenceError,
    RecordConflictError,
    Recording,
    Transcoding,
)

from domain.currency import CURRENCY_ID, CurrencyMismatch, PortfolioCurrency, check_currency
from domain.errors import ProgrammeNotFound, ProjectNotFound, VersionConflict
from domain.ministry import MINISTRIES_ID, Alias, Ministries, Ministry
from domain.programme import FundingProgramme
from domain.project import Project
from domain.subscription import Rule, Subscription, SubscriptionNotFound
from domain.values import Provenance

A = TypeVar("A", bound=Aggregate)
log = logging.getLogger(__name__)
# Every this many events an aggregate's state is snapshotted (when IS_SNAPSHOTTING_ENABLED):
# a load that misses the cache reads the last snapshot and at most this many events.
SNAPSHOT_INTERVAL = 50

__all__ = ["CommandResult", "Portfolio", "Provenance", "recorded_with_events", "utc_today"]


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


def utc_today() -> date:
    """Today's date in UTC."""
    return datetime.now(UTC).date()


@dataclass
class _CacheFirst:
    """Inside a cache-first command: whether loads take the cached aggregate as it is
    (else from the store, the ordinary way), and the ids of those so taken."""

    trust: bool
    taken: list[UUID] = field(default_factory=list)
    committed: bool = False  # its events were recorded: whatever follows, never re-decided


_cache_first: ContextVar[_CacheFirst | None] = ContextVar("cache_first", default=None)
C = TypeVar("C", bound=Callable[..., CommandResult])


def cache_first(command: C) -> C:
    """Decide a command on the cached aggregate as it is; read the store only if needed.

    The aggregate cache fast-forwards every load from the store (the events after the
    cached version: what keeps it right across processes), one statement per command. A
    command that took its aggregates from the cache without that read, and whose events
    then committed, was decided on the latest state: its first event has the version after
    the cached one, and the store refuses a version already recorded (the events table's
    key; the table lock orders the inserts), so the save could succeed only if no event
    came after the cached version. Any other outcome (a refusal by the domain, a version
    conflict, If-Match's or the store's, any error but the database's own) may come from a
    cache another process has since moved past: the command is then decided again, the
    ordinary way, and that answer is the one given; but a command whose events were
    recorded is never decided again, whatever is raised after the commit. A command that
    commits nothing is never answered from the cache. The aggregate saved replaces the
    cached one (the library leaves the cache as it was when it fast-forwards), unless the
    cache holds a later one.
    """

    @functools.wraps(command)
    def run(self: Portfolio, *args: Any, **kwargs: Any) -> CommandResult:
        if _cache_first.get() is not None or self.repository.cache is None:
            return command(self, *args, **kwargs)
        first = _CacheFirst(trust=True)
        token = _cache_first.set(first)
        try:
            return command(self, *args, **kwargs)
        except PersistenceError:
            raise  # the database failed, not the state: never decided twice
        except Exception:
            if not first.taken or first.committed:
                raise  # read from the store already, or recorded: this is the answer
        finally:
            _cache_first.reset(token)
        token = _cache_first.set(_CacheFirst(trust=False))  # its save is cached too
        try:
            return command(self, *args, **kwargs)
        finally:
            _cache_first.reset(token)

    return run  # type: ignore[return-value]


def mutate_all(aggregate: Any, events: Iterable[Any]) -> Any:
    """eventsourcing's `project_aggregate` without its per-event `isinstance` against a
    runtime Protocol (≈0.1 ms of CPU per load, a tenth of the load): the events of this
    store are the aggregates' own event classes, each with its `mutate`."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class Portfolio(Application[UUID]):
    """The portfolio of projects and funding programmes."""

    name = "Panorama"
    snapshotting_intervals = {
        Project: SNAPSHOT_INTERVAL,
        FundingProgramme: SNAPSHOT_INTERVAL,
        Subscription: SNAPSHOT_INTERVAL,
    }

    def __init__(
        self, env: dict[str, str] | None = None, *, today: Callable[[], date] = utc_today
    ) -> None:
        super().__init__(env)
        self.today = today
        self._reference: Ministries | None = None
        self._reference_lock = threading.Lock()
        self._cache_lock = threading.Lock()  # cache-first saves: compare, then put

    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Any:
        """Given settings are the whole configuration: the process environment is not read."""
        if env is None:
            return super().construct_env(name, env)
        from eventsourcing.utils import Environment

        return Environment(name, {**type(self).env, **env})

    def take_snapshot(
        self,
        aggregate_id: UUID,
        version: int | None = None,
        projector_func: ProjectorFunction[Any, Any] = project_aggregate,
    ) -> None:
        """Snapshot an aggregate; a failure is logged, never raised: the events have committed."""
        try:
            super().take_snapshot(aggregate_id, version, projector_func)
        except Exception:
            log.warning("no snapshot of %s at version %s", aggregate_id, version, exc_info=True)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's save; for aggregates only (every command), their events collected
        without `ProcessingEvent.collect_events`' two runtime-Protocol isinstance checks per
        object (≈0.15 ms of CPU a command): an aggregate is never a domain event, and an
        `Aggregate` has `collect_events`."""
        if not all(isinstance(obj, Aggregate) for obj in objs):
            return super().save(*objs, **kwargs)
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            assert isinstance(obj, Aggregate)
            processing_event.events.extend(obj.collect_events())
            processing_event.aggregates[obj.id] = obj
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        mode = _cache_first.get()
        if mode is not None:  # committed: an error after this never decides it again
            mode.committed = True
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # the library's deprecated hook, kept
        return recordings

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshot from the aggregate just saved when it is at the snapshot's version.

        The library rebuilds the aggregate from the store at that version (the last snapshot
        and the 50 events after it: ≈0.3 ms of CPU per command, amortised); the aggregate in
        hand is that very state, its events having just committed. A save whose events pass
        the interval in the middle (the aggregate is then further on) is left to the library.
        """
        if self.snapshots is None:
            return
        for event in processing_event.events:
            aggregate: Any = processing_event.aggregates.get(event.originator_id)
            if aggregate is None:
                continue
            interval = self.snapshotting_intervals.get(type(aggregate))
            if interval is None or event.originator_version % interval:
                continue
            if aggregate.version != event.originator_version:
                self.take_snapshot(event.originator_id, event.originator_version)
                continue
            try:
                snapshot_class: Any = getattr(type(aggregate), "Snapshot", self.snapshot_class)
                self.snapshots.put([snapshot_class.take(aggregate)])
            except Exception:
                version = aggregate.version
                log.warning("no snapshot of %s at version %s", aggregate.id, version, exc_info=True)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # -- projects ----------------------------------------------------------------------------
    def register_project(
        self,
        *,
        provenance: Provenance,
        id: UUID | None = None,  # noqa: A002
        name: str,
        ministry_code: str,
        ministry_name: str | None = None,
        description: str | None = None,
        interministerial: bool = False,
        functional_zone: str | None = None,
        programmes: list[str] | None = None,
        links: list[str] | None = None,
        start_date: date | None = None,
        phase: str = "Cadrage",
        cost: Decimal | None = None,
        planned_end: date | None = None,
    ) -> CommandResult:
        """Register a project; `id` may be given for deterministic imports."""
        self.check_ministry(ministry_code)
        project = Project.register(
            id=id,
            name=name,
            ministry_code=ministry_code,
            ministry_name=ministry_name,
            description=description,
            interministerial=interministerial,
            functional_zone=functional_zone,
            programmes=programmes,
            links=links,
            start_date=start_date,
            phase=phase,
            cost=cost,
            planned_end=planned_end,
            provenance=provenance,
            today=self.today(),
        )
        return self._save(project)

    @cache_first
    def revise_details(
        self,
        project_id: UUID,
        changes: dict[str, Any],
        *,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Record new identity details (name, ministry, description, ...)."""
        self.check_ministry(changes.get("ministry_code"))
        project = self._project_at(project_id, expected_version)
        project.revise_details(changes, provenance=provenance, today=self.today())
        return self._save(project)

    @cache_first
    def transition_phase(
        self,
        project_id: UUID,
        phase: str,
        *,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Move to another phase: forward may skip phases, backward needs a narrative."""
        project = self._project_at(project_id, expected_version)
        project.transition_phase(phase, provenance=provenance, today=self.today())
        return self._save(project)

    @cache_first
    def reestimate_cost(
        self,
        project_id: UUID,
        amount: Decimal,
        *,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Record a new estimate of the project's total cost."""
        project = self._project_at(project_id, expected_version)
        project.reestimate_cost(amount, provenance=provenance, today=self.today())
        return self._save(project)

    @cache_first
    def reestimate_schedule(
        self,
        project_id: UUID,
        planned_end: date,
        *,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Record a new planned end date."""
        project = self._project_at(project_id, expected_version)
        project.reestimate_schedule(planned_end, provenance=provenance, today=self.today())
        return self._save(project)

    @cache_first
    def rebaseline(
        self,
        project_id: UUID,
        *,
        baseline_cost: Decimal | None,
        baseline_end: date | None,
        approver: str,
        reason: str,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Replace the baseline cost and/or end date, with an approver and a reason."""
        project = self._project_at(project_id, expected_version)
        project.rebaseline(
            baseline_cost=baseline_cost,
            baseline_end=baseline_end,
            approver=approver,
            reason=reason,
            provenance=provenance,
            today=self.today(),
        )
        return self._save(project)

    @cache_first
    def report_status(
        self,
        project_id: UUID,
        rating: str,
        *,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Record a RAG / météo rating; a Red rating needs a narrative."""
        project = self._project_at(project_id, expected_version)
        project.report_status(rating, provenance=provenance, today=self.today())
        return self._save(project)

    @cache_first
    def withhold_figures(
        self, project_id: UUID, *, provenance: Provenance, expected_version: int | None = None
    ) -> CommandResult:
        """Stop publishing the project's figures (they are kept, not erased)."""
        project = self._project_at(project_id, expected_version)
        project.withhold_figures(provenance=provenance, today=self.today())
        return self._save(project)

    @cache_first
    def disclose_figures(
        self, project_id: UUID, *, provenance: Provenance, expected_version: int | None = None
    ) -> CommandResult:
        """Publish the project's figures again."""
        project = self._project_at(project_id, expected_version)
        project.disclose_figures(provenance=provenance, today=self.today())
        return self._save(project)

    @cache_first
    def leave_portfolio(
        self, project_id: UUID, *, provenance: Provenance, expected_version: int | None = None
    ) -> CommandResult:
        """Record that the project is no longer followed by the portfolio."""
        project = self._project_at(project_id, expected_version)
        project.leave_portfolio(provenance=provenance, today=self.today())
        return self._save(project)

    @cache_first
    def rejoin_portfolio(
        self, project_id: UUID, *, provenance: Provenance, expected_version: int | None = None
    ) -> CommandResult:
        """Record that the project is followed by the portfolio again."""
        project = self._project_at(project_id, expected_version)
        project.rejoin_portfolio(provenance=provenance, today=self.today())
        return self._save(project)

    @cache_first
    def close_project(
        self,
        project_id: UUID,
        outcome: str,
        *,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Close the project, completed or abandoned: it then accepts only a reopening."""
        project = self._project_at(project_id, expected_version)
        project.close(outcome, provenance=provenance, today=self.today())
        return self._save(project)

    @cache_first
    def reopen_project(
        self, project_id: UUID, *, provenance: Provenance, expected_version: int | None = None
    ) -> CommandResult:
        """Reopen a closed project (the one command a closed project accepts); needs a narrative."""
        project = self._project_at(project_id, expected_version)
        project.reopen(provenance=provenance, today=self.today())
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
        self,
        *,
        name: str,
        envelope: Decimal,
        currency: str | None = None,
        provenance: Provenance,
    ) -> CommandResult:
        """Create a funding programme with its envelope, in the portfolio's currency."""
        portfolio_currency = self.currency()
        currency = check_currency(currency or portfolio_currency or "EUR")
        if portfolio_currency is not None and currency != portfolio_currency:
            raise CurrencyMismatch(
                f"this portfolio is in {portfolio_currency}: a programme in {currency} would add "
                f"{currency} to its projects' funding; create it in {portfolio_currency}"
            )
        programme = FundingProgramme.create(
            name=name,
            envelope=envelope,
            currency=currency,
            provenance=provenance,
            today=self.today(),
        )
        return self._save(programme)

    def open_call(
        self,
        programme_id: UUID,
        call: str,
        *,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Open a call on a programme."""
        programme = self.get_programme(programme_id)
        self._check_version(programme, expected_version)
        programme.open_call(call, provenance=provenance, today=self.today())
        return self._save(programme)

    def award_funding(
        self,
        programme_id: UUID,
        *,
        project_id: UUID,
        amount: Decimal,
        call: str | None = None,
        provenance: Provenance,
        expected_version: int | None = None,
        currency: str | None = None,
    ) -> CommandResult:
        """Award funding: recorded on the programme and on the project in one atomic save."""
        programme = self.get_programme(programme_id)
        self._check_version(programme, expected_version)
        self._check_programme_currency(programme, currency)
        project = self.get_project(project_id)
        today = self.today()
        programme.award(project_id, amount, call, provenance=provenance, today=today)
        project.receive_funding(programme_id, amount, call, provenance=provenance, today=today)
        return self._save(programme, project)

    def revise_envelope(
        self,
        programme_id: UUID,
        *,
        envelope: Decimal,
        reason: str,
        provenance: Provenance,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Revise a programme's envelope from the effective date (never below committed)."""
        programme = self.get_programme(programme_id)
        self._check_version(programme, expected_version)
        programme.revise_envelope(envelope, reason, provenance=provenance, today=self.today())
        return self._save(programme)

    def record_funding(
        self,
        programme_id: UUID,
        *,
        project_id: UUID,
        amount: Decimal,
        kind: str,
        call: str | None = None,
        provenance: Provenance,
        expected_version: int | None = None,
        currency: str | None = None,
    ) -> CommandResult:
        """Record announced, engaged or disbursed money; announced goes to the project too."""
        if kind == "announced":
            return self.award_funding(
                programme_id,
                project_id=project_id,
                amount=amount,
                call=call,
                provenance=provenance,
                expected_version=expected_version,
                currency=currency,
            )
        programme = self.get_programme(programme_id)
        self._check_version(programme, expected_version)
        self._check_programme_currency(programme, currency)
        self.get_project(project_id)
        programme.award(project_id, amount, call, kind, provenance=provenance, today=self.today())
        return self._save(programme)

    @staticmethod
    def _check_programme_currency(programme: FundingProgramme, currency: str | None) -> None:
        if currency is not None and check_currency(currency) != programme.currency:
            raise CurrencyMismatch(
                f"the programme {programme.name!r} awards in {programme.currency}, "
                f"not {check_currency(currency)}"
            )

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

    # -- reference data: ministries -----------------------------------------------------------
    def ministries(self) -> Ministries | None:
        """The ministries reference as recorded (cached, brought up to date), None if unseeded."""
        with self._reference_lock:
            cached = self._reference
            if cached is None:
                try:
                    cached = self.repository.get(MINISTRIES_ID)
                except AggregateNotFoundError:
                    return None
            else:
                for event in self.events.get(MINISTRIES_ID, gt=cached.version):
                    cached = event.mutate(cached)  # type: ignore[attr-defined]
            assert isinstance(cached, Ministries)
            self._reference = cached
            return cached

    def check_ministry(self, code: str | None) -> Ministry | None:
        """The ministry `code` names; UnknownMinistry (422) once the reference is seeded."""
        reference = self.ministries()
        if code is None or reference is None:
            return None
        return reference.resolve(code)

    def register_ministry(
        self,
        code: str,
        name: str,
        *,
        actor: str,
        aliases: Sequence[Alias] = (),
        source: str = "api",
        expected: int | None = None,
    ) -> CommandResult:
        """Register a ministry under a new stable code (an admin's amendment of the reference)."""
        reference = self._reference_for_change(actor, source, expected)
        reference.register(code, name, actor=actor, source=source, aliases=tuple(aliases))
        return self._save(reference)

    def amend_ministry(
        self,
        code: str,
        *,
        actor: str,
        name: str | None = None,
        valid_from: date | None = None,
        alias: Alias | None = None,
        expected: int | None = None,
    ) -> CommandResult:
        """Rename a ministry and/or add an alias it was published under, in one save."""
        reference = self._reference_for_change(actor, "api", expected)
        if name is not None:
            reference.rename(code, name, valid_from=valid_from, actor=actor, source="api")
        if alias is not None:
            reference.add_alias(code, alias, actor=actor, source="api")
        return self._save(reference)

    def seed_ministries(
        self, seed: Sequence[Ministry], *, actor: str = "seed", source: str = "seed"
    ) -> CommandResult | None:
        """Record what the seed has that the reference lacks (idempotent; None: nothing new).

        A ministry or alias an admin already recorded is left as it is.
        """
        reference = self._reference_for_change(actor, source, None)
        for ministry in seed:
            if reference.stable(ministry.code) is None:
                fresh = [a for a in ministry.aliases if reference.stable(a.code) is None]
                reference.register(
                    ministry.code, ministry.name, actor=actor, source=source, aliases=tuple(fresh)
                )
                continue
            for alias in ministry.aliases:
                if reference.stable(alias.code) is None:
                    reference.add_alias(ministry.code, alias, actor=actor, source=source)
        if not reference.pending_events:
            return None
        try:
            return self._save(reference)
        except VersionConflict:  # another process seeded at the same time
            return None

    def _reference_for_change(self, actor: str, source: str, expected: int | None) -> Ministries:
        try:
            reference: Aggregate = self.repository.get(MINISTRIES_ID)
        except AggregateNotFoundError:
            reference = Ministries.start(actor=actor, source=source)
        assert isinstance(reference, Ministries)
        self._check_version(reference, expected)
        return reference

    # -- reference data: the portfolio's currency --------------------------------------------
    def currency(self) -> str | None:
        """The portfolio's currency as recorded, or None before its first start."""
        try:
            recorded: Aggregate = self.repository.get(CURRENCY_ID)
        except AggregateNotFoundError:
            return None
        assert isinstance(recorded, PortfolioCurrency)
        return recorded.currency

    def configure_currency(self, currency: str, *, actor: str = "setup") -> str:
        """Record the currency on first use; later, refuse a different one (CurrencyMismatch)."""
        wanted = check_currency(currency, "PORTFOLIO_CURRENCY")
        recorded = self.currency()
        if recorded is None:
            try:
                self._save(PortfolioCurrency.configure(wanted, actor=actor))
                return wanted
            except VersionConflict:  # configured by another process in the meantime
                recorded = self.currency()
        if recorded != wanted:
            raise CurrencyMismatch(
                f"this portfolio is in {recorded}, not {wanted}: its currency was recorded on "
                f"first use and cannot change: set PORTFOLIO_CURRENCY={recorded}, or point "
                "DATABASE_URL at another database for a portfolio in another currency"
            )
        return wanted

    # -- helpers -----------------------------------------------------------------------------
    def _project_at(self, project_id: UUID, expected_version: int | None) -> Project:
        """The project, if it is still at the version the caller saw (else VersionConflict)."""
        project = self.get_project(project_id)
        self._check_version(project, expected_version)
        return project

    def _get(self, aggregate_id: UUID, kind: type[A], not_found: type[Exception]) -> A:
        mode = _cache_first.get()
        aggregate: Aggregate | None = None
        if mode is not None and mode.trust:
            aggregate = self._cached_copy(aggregate_id)
            if aggregate is not None:
                mode.taken.append(aggregate_id)
        if aggregate is None:
            try:
                aggregate = self.repository.get(aggregate_id, projector_func=mutate_all)
            except AggregateNotFoundError:
                raise not_found(aggregate_id) from None
        if not isinstance(aggregate, kind):
            raise not_found(aggregate_id)
        return aggregate

    def _cached_copy(self, aggregate_id: UUID) -> Aggregate | None:
        """A copy of the cached aggregate as it is (no read of the store), None if absent."""
        cache = self.repository.cache
        if cache is None:
            return None
        try:
            cached = cache.get(aggregate_id)
        except KeyError:
            return None
        if not isinstance(cached, Aggregate):
            return None
        copied: Aggregate = copy.deepcopy(cached)
        return copied

    def _cache_saved(self, aggregates: Sequence[Aggregate]) -> None:
        """After a cache-first save: the saved aggregates become the cached ones."""
        cache = self.repository.cache
        if cache is None:
            return
        with self._cache_lock:
            for aggregate in aggregates:
                try:
                    cached = cache.get(aggregate.id)
                except KeyError:
                    cached = None
                if cached is None or cached.version < aggregate.version:
                    cache.put(aggregate.id, aggregate)

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
        position = max(r.notification.id for r in recordings)
        if _cache_first.get() is not None:
            self._cache_saved([first, *others])  # the latest state: its events committed
        return replace(result, position=position)
