"""Named domain errors: every broken rule raises one of these."""

from __future__ import annotations

from uuid import UUID


class DomainError(Exception):
    """A command was refused because it breaks a rule of the domain."""

    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field


class InvalidValue(DomainError):
    """A value is outside what the domain accepts (negative amount, unknown phase...)."""


class PhaseTransitionNotAllowed(DomainError):
    field = "phase"


class NarrativeRequired(DomainError):
    field = "narrative"


class EffectiveDateNotAllowed(DomainError):
    field = "effective_date"


class ProjectIsClosed(DomainError):
    """Nothing but a reopening is accepted after closure."""


class ProjectNotClosed(DomainError):
    pass


class FiguresAlreadyWithheld(DomainError):
    pass


class FiguresNotWithheld(DomainError):
    pass


class NotInPortfolio(DomainError):
    pass


class AlreadyInPortfolio(DomainError):
    pass


class EnvelopeOverCommitted(DomainError):
    field = "amount"


class EnvelopeBelowCommitted(DomainError):
    field = "envelope"


class UnknownCall(DomainError):
    field = "call"


class CallAlreadyOpen(DomainError):
    field = "call"


class NothingChanged(DomainError):
    """A revision that would not change anything is refused rather than recorded."""


class NotFound(Exception):
    """An aggregate that does not exist was named."""

    kind = "aggregate"

    def __init__(self, aggregate_id: UUID | str) -> None:
        super().__init__(f"{self.kind} {aggregate_id} not found")
        self.aggregate_id = aggregate_id


class ProjectNotFound(NotFound):
    kind = "project"


class ProgrammeNotFound(NotFound):
    kind = "funding programme"


class VersionConflict(Exception):
    """The caller's expected version is not the stored one (a stale or concurrent update)."""

    def __init__(self, expected: int, actual: int | None) -> None:
        super().__init__(f"expected version {expected}, current version is {actual}")
        self.expected = expected
        self.actual = actual
