"""Importing the panorama history: folding the events gives back every edition."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from domain.application import Portfolio, Provenance
from importers.errors import BackdatedEdition, ImportRejected
from importers.matching import Aliases, project_id
from importers.model import Edition
from importers.panorama import parse_panorama
from importers.run import import_editions
from tests.unit.imports.conftest import DERIVED, LONG, RAW
from tests.unit.imports.helpers import event_count, portfolio_as_of, series_ids, totals
from tests.unit.imports.test_panorama_data import EXPECTED, SUMMARY

MEUR = Decimal(1_000_000)
INTERMINISTERIAL = {r["edition_ref"]: int(r["interministerial_projects"]) for r in SUMMARY}


@pytest.fixture(scope="module")
def editions() -> list[Edition]:
    return parse_panorama(LONG)


@pytest.fixture
def imported(portfolio: Portfolio, editions: list[Edition]) -> Portfolio:
    summary = import_editions(portfolio, editions)
    assert summary.editions == [e.source for e in editions]
    return portfolio


def test_folding_the_events_gives_each_editions_figures(
    imported: Portfolio, editions: list[Edition]
) -> None:
    ids = series_ids(editions)
    for edition in editions:
        states = portfolio_as_of(imported, ids, edition.date)
        rows, costed, total = totals(states)
        expected = EXPECTED[edition.ref]
        assert (rows, costed, (total / MEUR).quantize(expected[2])) == expected, edition.ref
        assert sum(s.interministerial for s in states) == INTERMINISTERIAL[edition.ref]
    march_2018 = portfolio_as_of(imported, ids, date(2018, 2, 28))
    in_cadrage = [s.cost for s in march_2018 if s.phase == "Cadrage" and s.cost and not s.withheld]
    assert sum(in_cadrage, Decimal(0)) / MEUR == Decimal("114.92")


def test_events_carry_the_edition_as_provenance(imported: Portfolio) -> None:
    events = imported.project_events(project_id("panorama", "sirhen"))
    first = events[0]
    assert (type(first).__name__, first.source, first.actor) == (
        "Registered",
        "panorama:2016-11",
        "import",
    )
    assert first.effective_date == date(2016, 11, 3)
    assert first.cost == Decimal(496_400_000)
    kinds = [(type(e).__name__, e.source) for e in events]
    assert ("LeftPortfolio", "panorama:2018-11") in kinds
    last = [type(e).__name__ for e in events if e.source == "panorama:2019-03"]
    assert last[0] == "RejoinedPortfolio" and "FiguresWithheld" in last
    assert "volontairement pas publiés" in (events[-1].narrative or "")


def test_a_phase_moving_back_is_explained(imported: Portfolio) -> None:
    events = imported.project_events(project_id("panorama", "segurfontenoy"))
    [back] = [e for e in events if type(e).__name__ == "PhaseTransitioned"]
    assert (back.previous_phase, back.phase, back.source) == (
        "Déploiement", "Conception / Réalisation", "panorama:2017-02",
    )  # fmt: skip
    assert (
        back.narrative
        == "panorama:2017-02 publishes phase 'Conception / Réalisation' after 'Déploiement'"
    )


def test_a_cost_no_longer_published_is_withheld_not_erased(imported: Portfolio) -> None:
    project = imported.get_project(project_id("panorama", "franceconnectphaseii"))
    assert project.current_cost == Decimal(23_900_000) and project.figures_withheld
    assert project.phase == "Cadrage"


def test_reimporting_records_nothing(imported: Portfolio, editions: list[Edition]) -> None:
    before = event_count(imported)
    summary = import_editions(imported, editions)
    assert (summary.events, summary.position, summary.registered, summary.changed) == (
        0,
        None,
        0,
        0,
    )
    assert summary.skipped == [e.source for e in editions]
    assert summary.editions == []
    assert event_count(imported) == before


def test_the_per_edition_files_record_the_same_history(portfolio: Portfolio) -> None:
    files = sorted(DERIVED.glob("panorama_20*.csv"))
    editions = [e for f in files for e in parse_panorama(f)]
    first = import_editions(portfolio, editions)
    assert first.events == event_count(portfolio) > 700
    assert import_editions(portfolio, parse_panorama(LONG)).events == 0


def test_a_bad_row_refuses_the_whole_import(
    portfolio: Portfolio, write: Callable[..., Path]
) -> None:
    rows = list(csv.reader(io.StringIO(LONG.read_text(encoding="utf-8"))))
    column = rows[0].index("cout_estime_meur")
    rows[400][column] = "12,3,4"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    with pytest.raises(ImportRejected) as e:
        import_editions(portfolio, parse_panorama(write("long.csv", out.getvalue())))
    assert str(e.value) == "long.csv, row 401, column 'cout_estime_meur': '12,3,4' is not a number"
    assert event_count(portfolio) == 0


def test_aliases_follow_a_renamed_project(portfolio: Portfolio) -> None:
    aliases = Aliases({"Paysage : Modernisation iso fonctionnelle de PAY": "PAYSAGE"})
    editions = parse_panorama(LONG, aliases=aliases)
    import_editions(portfolio, editions)
    events = portfolio.project_events(project_id("panorama", "paysage"))
    assert events[0].name == "Paysage : Modernisation iso fonctionnelle de PAY"
    renamed = [e for e in events if type(e).__name__ == "DetailsRevised" and "name" in e.changes]
    assert [(e.changes["name"], e.source) for e in renamed] == [("PAYSAGE", "panorama:2017-11")]
    assert not any(type(e).__name__ == "LeftPortfolio" for e in events)
    old_key = "paysagemodernisationisofonctionnelledepay"
    assert project_id("panorama", old_key) not in series_ids(editions)


def test_entered_and_left_are_the_differences_of_the_keys(
    imported: Portfolio, editions: list[Edition]
) -> None:
    by_id = {project_id("panorama", k): k for e in editions for k in e.projects}
    events = [e for pid in by_id for e in imported.project_events(pid)]
    for before, after in zip(editions, editions[1:], strict=False):
        here = [e for e in events if e.source == after.source]
        entered = {
            by_id[e.originator_id]
            for e in here
            if type(e).__name__ in ("Registered", "RejoinedPortfolio")
        }
        left = {by_id[e.originator_id] for e in here if type(e).__name__ == "LeftPortfolio"}
        assert entered == set(after.projects) - set(before.projects), after.ref
        assert left == set(before.projects) - set(after.projects), after.ref


def test_an_older_edition_that_differs_is_refused(
    imported: Portfolio, write: Callable[..., Path]
) -> None:
    text = (DERIVED / "panorama_2017-02.csv").read_text(encoding="utf-8")
    changed = text.replace(",496.5,", ",500,", 1)
    assert changed != text
    before = event_count(imported)
    with pytest.raises(BackdatedEdition) as e:
        import_editions(imported, parse_panorama(write("old.csv", changed)))
    message = str(e.value)
    assert message.startswith("old.csv: edition 2017-02 (2017-02-01) is older than the newest")
    assert "SIRHEN: reestimate_cost(amount=500000000)" in message
    assert event_count(imported) == before
    same = import_editions(imported, parse_panorama(DERIVED / "panorama_2017-02.csv"))
    assert (same.skipped, same.events) == (["panorama:2017-02"], 0)


def test_two_files_for_one_edition_are_refused(portfolio: Portfolio) -> None:
    raw = parse_panorama(RAW / "DISIC-panorama/raw-data/panorama_projets_si.csv")
    derived = parse_panorama(DERIVED / "panorama_2016-11.csv")
    with pytest.raises(ImportRejected, match="import one file per edition"):
        import_editions(portfolio, raw + derived)


def test_an_edition_in_the_future_is_refused(write: Callable[..., Path]) -> None:
    [edition] = parse_panorama(DERIVED / "panorama_2016-11.csv", edition_date=None)
    future = Portfolio(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, today=lambda: date(2016, 1, 1)
    )
    with pytest.raises(ImportRejected, match="dated 2016-11-03, in the future"):
        import_editions(future, [edition])


def test_a_closed_project_is_left_alone(imported: Portfolio, editions: list[Edition]) -> None:
    pid = project_id("panorama", "pnr")
    prov = Provenance(effective_date=date(2019, 6, 1), actor="dinum", narrative="delivered")
    imported.close_project(pid, "completed", provenance=prov)
    assert import_editions(imported, editions).events == 0


def test_the_documented_aliases_follow_the_2017_renames(portfolio: Portfolio) -> None:
    docs = Path(__file__).resolve().parents[3] / "docs" / "importing.md"
    block = re.search(r"```yaml\n(.*?)```", docs.read_text(encoding="utf-8"), re.S)
    assert block is not None
    aliases = Aliases(yaml.safe_load(block[1]))
    editions = parse_panorama(LONG, aliases=aliases)
    june, november = (e for e in editions if e.ref in ("2017-06", "2017-11"))
    assert len(set(june.projects) - set(november.projects)) == 6  # 27 without the aliases
    summary = import_editions(portfolio, editions)
    assert summary.registered == 108 - 24
    pid = project_id("panorama", "montee de version sirh".replace(" ", ""))
    names = [
        e.changes["name"]
        for e in portfolio.project_events(pid)
        if "name" in getattr(e, "changes", {})
    ]
    assert names == ["REHUCIT", "MONTEE DE VERSION SIRH"]
