"""The rebuild's event decoder gives exactly the mapper's events, whatever the store holds."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent

from domain.application import Portfolio, Provenance
from projections.event_decoder import event_decoder
from tests.histories import BASE, KINDS, TODAY, Step, apply_step, register_projects


def recorded(env: dict[str, str]) -> tuple[Portfolio, list[StoredEvent]]:
    """A portfolio with every kind of event (the reference's too), and its stored events."""
    portfolio = Portfolio(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo", **env}, today=lambda: TODAY
    )
    ids = register_projects(portfolio)
    programme = portfolio.create_programme(
        name="FTAP", envelope=Decimal("1e9"), provenance=Provenance(BASE, "tester", "test")
    ).id
    for n, kind in enumerate(list(KINDS) * 2):
        flag = n % 2 == 0
        apply_step(
            portfolio,
            ids,
            programme,
            Step(n % 4, kind, 10 * n, (Decimal(1000 + n), "Déploiement", "Amber", flag), 0),
        )
    notifications = portfolio.recorder.select_notifications(start=1, limit=10_000)
    return portfolio, list(notifications)


def as_seen(event: Any) -> tuple[type, list[tuple[str, Any]], list[type]]:
    """An event as code can see it: its class, its attributes in order, their types."""
    attributes = list(vars(event).items())
    return type(event), attributes, [type(value) for _, value in attributes]


@pytest.mark.parametrize(
    "env",
    [{}, {"COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"}],
    ids=["plain", "compressed"],
)
def test_every_stored_event_decodes_as_the_mapper_decodes_it(env: dict[str, str]) -> None:
    portfolio, stored = recorded(env)
    decode = event_decoder(portfolio.mapper)
    topics = {s.topic.rsplit(".", 1)[-1] for s in stored}
    assert {"DetailsRevised", "FundingAwarded", "Rebaselined", "Closed", "Registered"} <= topics
    for s in stored:
        fast = decode(s.originator_id, s.originator_version, s.topic, s.state)
        assert as_seen(fast) == as_seen(portfolio.mapper.to_domain_event(s))


def test_a_stored_event_that_does_not_decode_fails_as_it_does_with_the_mapper() -> None:
    portfolio, stored = recorded({})
    decode = event_decoder(portfolio.mapper)
    broken = replace(stored[-1], state=stored[-1].state[:-3])
    with pytest.raises(MapperDeserialisationError):
        decode(broken.originator_id, broken.originator_version, broken.topic, broken.state)
    unknown = replace(stored[-1], state=b'{"x":{"_type_":"nope","_data_":1}}')
    with pytest.raises(MapperDeserialisationError):
        decode(unknown.originator_id, unknown.originator_version, unknown.topic, unknown.state)
