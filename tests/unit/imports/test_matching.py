"""Matching: normalised keys, aliases files, deterministic ids, ministry abbreviations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from importers.errors import ImportRejected
from importers.matching import (
    Aliases,
    load_aliases,
    ministry_code,
    normalise_name,
    project_id,
)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("FRANCECONNECT PHASE II", "franceconnectphaseii"),
        ("France Connect – phase II", "franceconnectphaseii"),
        ("SÉGUR-FONTENOY", "segurfontenoy"),
        ("MCIC²", "mcic2"),
        ("MCIC 2", "mcic2"),
        ("  PIB/MISTRAL ", "pibmistral"),
        ("Dépl. PESE, Winpaie, RenoiRH + évol.SI connexes", "deplpesewinpaierenoirhevolsiconnexes"),
    ],
)
def test_normalised_names(name: str, key: str) -> None:
    assert normalise_name(name) == key


def test_ids_are_deterministic_per_series() -> None:
    assert project_id("panorama", "sirhen") == project_id("panorama", "sirhen")
    assert project_id("panorama", "sirhen") != project_id("gmpp", "sirhen")


def test_aliases_follow_chains_and_ignore_spelling() -> None:
    aliases = Aliases({"pnij": "PNIJ NG (ANTENJ)", "PNIJ NG (ANTENJ)": "ANTENJ"})
    assert aliases.key("P.N.I.J.") == "antenj"
    assert aliases.key("Other") == "other"


def test_circular_aliases_are_refused() -> None:
    with pytest.raises(ImportRejected, match="circular"):
        Aliases({"a": "b", "b": "a"})


def test_aliases_csv(write: Callable[..., Path]) -> None:
    path = write("aliases.csv", "alias,canonical\nPNIJ,PNIJ NG (ANTENJ)\n")
    assert load_aliases(path).key("pnij") == "pnijngantenj"


def test_aliases_yaml(write: Callable[..., Path]) -> None:
    path = write("aliases.yaml", "PNIJ: PNIJ NG (ANTENJ)\n'PAYSAGE : MODERNISATION': PAYSAGE\n")
    aliases = load_aliases(path)
    assert len(aliases) == 2
    assert aliases.key("Paysage : Modernisation") == "paysage"


def test_aliases_csv_needs_its_header(write: Callable[..., Path]) -> None:
    with pytest.raises(ImportRejected, match="row 1: must start with the header"):
        load_aliases(write("aliases.csv", "PNIJ,PNIJ NG\n"))


def test_aliases_csv_refuses_two_canonical_names(write: Callable[..., Path]) -> None:
    path = write("aliases.csv", "alias,canonical\nPNIJ,A\nPNIJ,B\n")
    with pytest.raises(ImportRejected, match="row 3: 'PNIJ' is given two canonical names"):
        load_aliases(path)


def test_ministry_codes() -> None:
    assert ministry_code("Ministère de l'Economie et des Finances") == "MEF"
    assert ministry_code("Ministères de l'Économie et des Finances") == "MEF"
    both = (
        "Ministère de la Transition écologique et solidaire"
        " / Ministère de l'Agriculture et de l'Alimentation"
    )
    assert ministry_code(both) == "MTES / MAA"
    assert ministry_code("Ministère des Sports") == "Ministère des Sports"
