"""Changes between two dates over HTTP, every page followed, equal a plain fold of the events.

The expected answer is computed here from the domain events read back from the notification
log (no projection code): each project folded on both dates as known at `known_at`, then
compared field by field, with the events of each kind that apply in the window.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from domain.project import Project
from service.app import create_app
from service.config import Settings
from tests.e2e.conftest import bearer, make_token
from tests.e2e.test_summary_oracle import fresh_store, record
from tests.histories import BASE, Step, histories
from tests.oracle_figures import apply_event, recorded_project_events, streams_by_project

KINDS = ("entered", "left", "phase_changes", "cost_changes", "schedule_changes")
MOVES = {"Registered", "LeftPortfolio", "RejoinedPortfolio"}
RESPONSIBLE = {
    "entered": MOVES,
    "left": MOVES,
    "phase_changes": {"PhaseTransitioned", "Registered"},
    "cost_changes": {"CostReestimated", "Registered"},
    "schedule_changes": {"ScheduleReestimated", "Registered"},
}
FIELDS = {"phase_changes": "phase", "cost_changes": "cost", "schedule_changes": "end"}

windows = st.lists(
    st.tuples(
        st.integers(min_value=-100, max_value=1600), st.integers(min_value=0, max_value=1600)
    ),
    min_size=2,
    max_size=4,
)


def plain_project(
    events: list[tuple[int, Any]], day: date, known_at: datetime | None
) -> dict[str, Any] | None:
    """One project on `day` as known at `known_at`: its figures and its name, or None."""
    known = [(pos, e) for pos, e in events if known_at is None or e.timestamp <= known_at]
    registration = next((e for _, e in known if isinstance(e, Project.Registered)), None)
    if registration is None or registration.effective_date > day:
        return None
    registered_on = registration.effective_date
    timeline = sorted(
        (max(e.effective_date, registered_on), pos, e)
        for pos, e in known
        if max(e.effective_date, registered_on) <= day
    )
    project: dict[str, Any] = {}
    for _, _, event in timeline:
        apply_event(project, event)
        if isinstance(event, Project.Registered):
            project["name"] = event.name
        elif isinstance(event, Project.DetailsRevised) and "name" in event.changes:
            project["name"] = event.changes["name"]
    return project


def window_events(
    events: list[tuple[int, Any]], after: date, until: date, known_at: datetime | None
) -> list[tuple[str, int]]:
    """(type, version) of the project's events that apply in (after, until], known by then."""
    known = [e for _, e in events if known_at is None or e.timestamp <= known_at]
    registered_on = next(e for e in known if isinstance(e, Project.Registered)).effective_date
    found = [
        (max(e.effective_date, registered_on), e.originator_version, type(e).__name__)
        for e in known
        if after < max(e.effective_date, registered_on) <= until
    ]
    return [(kind, version) for _, version, kind in sorted(found)]


def expected_changes(
    streams: dict[Any, list[tuple[int, Any]]], after: date, until: date, known_at: datetime | None
) -> dict[str, list[dict[str, Any]]]:
    """What changed, by a plain fold: entries, exits and each compared field's moves."""
    found: dict[str, list[tuple[tuple[str, str], dict[str, Any]]]] = {k: [] for k in KINDS}
    for pid, events in streams.items():
        old = plain_project(events, after, known_at)
        new = plain_project(events, until, known_at)
        if new is None:
            continue
        key = (new["name"].casefold(), str(pid))
        base = {"id": str(pid), "name": new["name"], "ministry_code": new["ministry"]}
        moved = window_events(events, after, until, known_at)
        was_in, is_in = old is not None and old["followed"], new["followed"]
        if was_in != is_in:
            kind = "entered" if is_in else "left"
            chosen = [e for e in moved if e[0] in RESPONSIBLE[kind]]
            found[kind].append((key, {**base, "events": chosen}))
        if old is None:
            continue
        for kind, name in FIELDS.items():
            if kind != "phase_changes" and (old["withheld"] or new["withheld"]):
                continue
            if old[name] != new[name]:
                chosen = [e for e in moved if e[0] in RESPONSIBLE[kind]]
                change = {**base, "from": old[name], "to": new[name], "events": chosen}
                found[kind].append((key, change))
    return {kind: [c for _, c in sorted(found[kind], key=lambda f: f[0])] for kind in KINDS}


def every_page(
    client: FlaskClient, headers: dict[str, str], query: dict[str, str], limit: int
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The first answer, and each kind's changes from all its pages concatenated."""
    first = get(client, headers, {**query, "limit": str(limit)})
    pages = {kind: list(first[kind]) for kind in KINDS}
    for kind in KINDS:
        cursor = first["next"][kind]
        while cursor is not None:
            page = get(client, headers, {**query, "limit": str(limit), "cursor": cursor})
            assert set(page) & set(KINDS) == {kind}  # a cursor's answer holds its kind only
            assert 0 < len(page[kind]) <= limit
            pages[kind] += page[kind]
            cursor = page["next"][kind]
    return first, pages


def get(client: FlaskClient, headers: dict[str, str], query: dict[str, str]) -> dict[str, Any]:
    response = client.get("/api/portfolio/changes", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def comparable(change: dict[str, Any], kind: str) -> dict[str, Any]:
    """An answer's change with its values read back (amounts as Decimals, dates as dates)."""
    out = {k: change[k] for k in ("id", "name", "ministry_code")}
    out["events"] = [(e["type"], e["version"]) for e in change["events"]]
    if kind in FIELDS:
        read = {"cost_changes": _money, "schedule_changes": _day}.get(kind, lambda v: v)
        out["from"], out["to"] = read(change["from"]), read(change["to"])
    return out


def _money(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


@hypothesis_settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(
    history=histories,
    spans=windows,
    limit=st.sampled_from([1, 2, 3, 100]),
    pick=st.integers(min_value=0, max_value=10_000),
)
def test_every_page_of_the_changes_together_is_what_a_plain_fold_gives(
    settings: Settings, history: list[Step], spans: list[tuple[int, int]], limit: int, pick: int
) -> None:
    with fresh_store(settings) as services:
        record(services, history)
        client = create_app(services).test_client()
        headers = bearer(make_token(services, "auditor"))
        streams = streams_by_project(recorded_project_events(services.portfolio))
        stamps = sorted(event.timestamp for events in streams.values() for _, event in events)
        knowledge: list[datetime | None] = [None, stamps[pick % len(stamps)]]
        for start, length in spans:
            after = BASE + timedelta(days=start)
            until = after + timedelta(days=length)
            for known_at in knowledge:
                query = {"from": after.isoformat(), "to": until.isoformat()}
                if known_at is not None:
                    query["known_at"] = known_at.isoformat()
                first, pages = every_page(client, headers, query, limit)
                expected = expected_changes(streams, after, until, known_at)
                where = f"from={after} to={until} known_at={known_at} limit={limit}"
                assert first["counts"] == {k: len(expected[k]) for k in KINDS}, where
                for kind in KINDS:
                    assert [comparable(c, kind) for c in pages[kind]] == expected[kind], (
                        f"{where} {kind}"
                    )
                    assert first[kind] == pages[kind][:limit]
