"""FTAP rows without an amount: a figure in the free-text notes is never taken as the amount.

The shared file has no row whose amount is given only in its notes (docs/funding.md): the
figures in the notes of rows without an amount are savings, derived or approximate totals.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from importers.ftap import parse_ftap

HEADER_AWARDS = "call,announced_on,project,ministry,ministry_code,amount_meur,savings_meur,"
HEADER_AWARDS += "source_url,confidence,notes\n"
HEADER_FIGURES = "call,announced_on,laureates_count,total_awarded_meur,source_url,kind,"
HEADER_FIGURES += "confidence,notes\n"


def test_an_amount_given_only_in_the_notes_stays_unknown_and_the_note_is_kept(
    tmp_path: Path,
) -> None:
    awards, figures = tmp_path / "awards.csv", tmp_path / "figures.csv"
    notes = ["montant : 1,2 M€", "1 200 000 €", "financé à hauteur de 3 millions d'euros"]
    awards.write_text(
        HEADER_AWARDS
        + "".join(
            f'2018-1,2018-06-20,Projet {n},Min,,,,https://a.example,low,"{note}"\n'
            for n, note in enumerate(notes)
        )  # fmt: skip
        + "2018-1,2018-06-20,Projet chiffré,Min,,2.5,,https://a.example,high,\n",
        encoding="utf-8",
    )
    figures.write_text(
        HEADER_FIGURES
        + "envelope-2018-2022,2017-09-25,,700,https://b.example,envelope,high,\n"
        + '2018-1,2018-06-20,4,,https://b.example,call_total,low,"près de 90 millions"\n',
        encoding="utf-8",
    )
    [programme] = parse_ftap(awards, figures, today=date(2026, 12, 1)).programmes
    by_name = {laureate.name: laureate for laureate in programme.laureates}
    for n, note in enumerate(notes):
        assert by_name[f"Projet {n}"].amount is None
        assert by_name[f"Projet {n}"].notes == note  # recorded as the narrative, as written
    assert by_name["Projet chiffré"].amount == 2_500_000
    [(call, _)] = [(f, s) for f, s in programme.figures if f.label == "2018-1"]
    assert call.total is None and call.count == 4
