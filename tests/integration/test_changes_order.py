"""PostgreSQL orders and cuts the changes between two dates by the names' stored casefolded
keys in byte order: the same pages, in the same order, with the same cursors, as Python's
sort by casefolded name then id, ties and non-ASCII names included; a store made before the
keys (or whose keys another Unicode version made) gets them at start-up, and a name without
its key falls back to the sort in Python."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from psycopg import sql

from domain.application import Provenance
from projections import queries
from projections.rebuild import rebuild
from projections.registry import catch_up, setup_all
from projections.schema import LIVE, NAME_KEYS, PROJECTION
from service.bootstrap import Services, bootstrap
from service.config import Settings

BASE = date(2024, 1, 1)
TODAY = BASE + timedelta(days=60)
# casefold is not lower (ß, ﬁ, final sigma, dotted I), byte order is not a locale's (é > f),
# and several names fold alike (their ties go by id)
NAMES = [
    "Straße",
    "STRASSE",
    "strasse",
    "ﬁchier",
    "fichier",
    "Éole",
    "éole",
    "eole",
    "f",
    "ΣΊΣΥΦΟΣ",
    "σίσυφος",
    "İstanbul",
    "istanbul",
    "a-b",
    "ab",
    "AB",
    "a b",
    "Zèbre",
    "zebre",
    "123",
    "a\u00a0b",
]


@pytest.fixture
def services(pg_settings: Settings) -> Iterator[Services]:
    """The services on a fresh PostgreSQL schema (`pg_schema` drops it afterwards)."""
    made = bootstrap(pg_settings, today=lambda: TODAY)
    try:
        yield made
    finally:
        made.close()


def _register(services: Services) -> None:
    for i, name in enumerate(NAMES * 2):  # each name twice: ties on the whole name too
        services.portfolio.register_project(
            provenance=Provenance(BASE + timedelta(days=1 + i % 5), "tester", "test"),
            name=name,
            ministry_code="MJ",
            interministerial=False,
            start_date=BASE,
            phase="Cadrage",
            cost=Decimal(1000 + i),
            planned_end=BASE + timedelta(days=900),
        )
    catch_up(services.db, services.portfolio, PROJECTION)


def _pages(services: Services, limit: int, known_at: datetime | None) -> list[dict[str, Any]]:
    """Every page of the entered kind at `limit`, following the cursors."""
    found, cursor = [], None
    while True:
        with services.db.transaction(write=False) as tx:
            page = queries.changes(
                tx, None, BASE, BASE + timedelta(days=30), known_at, limit=limit, cursor=cursor
            )
        found.append(page)
        following = page["next"]["entered"]
        if following is None:
            return found
        cursor = queries.ChangesCursor.decode(following)


def _python_order(services: Services) -> list[tuple[str, str]]:
    with services.db.transaction(write=False) as tx:
        rows = tx.fetch_tuples(sql.SQL("SELECT project_id, name FROM {}").format(LIVE.spans))
    return sorted(((name or "").casefold(), pid) for pid, name in rows)


def test_pages_cut_in_sql_are_the_pages_sorted_in_python(services: Services) -> None:
    _register(services)
    later = datetime.now(UTC) + timedelta(days=1)  # as known later: looked up per project
    with services.db.transaction(write=False) as tx:
        paged = queries._paged(tx, BASE, BASE + timedelta(days=30), 5, ("entered",), None)
    assert paged is not None and paged[0]["entered"] == 2 * len(NAMES)
    for limit in (1, 3, 7, 100):
        fast, python = _pages(services, limit, None), _pages(services, limit, later)
        assert fast == python
        entered = [(c["name"].casefold(), c["id"]) for p in fast for c in p["entered"]]
        assert entered == _python_order(services)
        assert [p["offsets"]["entered"] for p in fast] == list(range(0, len(entered), limit))


def test_a_store_made_before_the_name_keys_gets_them_and_falls_back_until_then(
    services: Services,
) -> None:
    _register(services)
    expected = _pages(services, 4, None)
    with services.db.transaction() as tx:
        tx.execute(sql.SQL("DELETE FROM {}").format(LIVE.name_keys))
    with services.db.transaction(write=False) as tx:  # no key: sorted in Python
        assert queries._paged(tx, BASE, BASE + timedelta(days=30), 4, ("entered",), None) is None
    assert _pages(services, 4, None) == expected
    setup_all(services.db)
    with services.db.transaction(write=False) as tx:
        keys = dict(
            tx.fetch_tuples(sql.SQL("SELECT name, name_key FROM {}").format(LIVE.name_keys))
        )
        paged = queries._paged(tx, BASE, BASE + timedelta(days=30), 4, ("entered",), None)
    assert paged is not None and len(paged[2]["entered"]) == 4
    assert keys == {name: name.casefold() for name in NAMES}
    assert _pages(services, 4, None) == expected


def test_a_rebuild_gives_every_name_its_key(services: Services) -> None:
    _register(services)
    expected = _pages(services, 5, None)
    with services.db.transaction() as tx:
        tx.execute(sql.SQL("DELETE FROM {}").format(LIVE.name_keys))
    rebuild(services.db, services.portfolio)
    with services.db.transaction(write=False) as tx:
        keys = dict(
            tx.fetch_tuples(sql.SQL("SELECT name, name_key FROM {}").format(LIVE.name_keys))
        )
        paged = queries._paged(tx, BASE, BASE + timedelta(days=30), 5, ("entered",), None)
    assert keys == {name: name.casefold() for name in NAMES}
    assert paged is not None and len(paged[2]["entered"]) == 5
    assert _pages(services, 5, None) == expected


def test_keys_made_under_another_unicode_version_are_made_anew_at_start_up(
    services: Services,
) -> None:
    """A store whose keys were made by another Python (another Unicode version, or the first,
    unversioned table) keeps none of them: wrong keys would order the pages wrongly."""
    _register(services)
    expected = _pages(services, 4, None)
    with services.db.transaction() as tx:  # as if made elsewhere, with keys that differ
        tx.execute(sql.SQL("ALTER TABLE {} RENAME TO pr_name_keys_u9_0_0").format(LIVE.name_keys))
        tx.execute(sql.SQL("UPDATE pr_name_keys_u9_0_0 SET name_key = reverse(name_key)"))
        tx.execute(sql.SQL("CREATE TABLE pr_name_keys AS TABLE pr_name_keys_u9_0_0"))
    setup_all(services.db)
    with services.db.transaction(write=False) as tx:
        keys = dict(
            tx.fetch_tuples(sql.SQL("SELECT name, name_key FROM {}").format(LIVE.name_keys))
        )
        left = tx.fetch_tuples(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND left(table_name, 12) = 'pr_name_keys' ORDER BY 1"
        )
    assert keys == {name: name.casefold() for name in NAMES}
    assert left == [(NAME_KEYS,)]
    assert _pages(services, 4, None) == expected
