"""Every quirk of the panorama layouts, on small files written for the test."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from importers.errors import ImportRejected
from importers.matching import Aliases
from importers.panorama import parse_panorama

HEADER = [
    "Ministère porteur ", "Ministère nom complet", "Nom du projet", "Projet interministériel",
    "Description et objectifs du projet", "En savoir plus sur le projet", "Début",
    "Durée prévisionnelle en année", "Phase du projet en cours", "Coût estimé",
    "Coût estimé par tranche", "Zone fonctionnelle", "Financement [programme(s)]",
    "Lien vers les Projets Annuels de Performances", "Date de publication",
]  # fmt: skip
PORTALIS = [
    "MJ", "Ministère de la Justice", "PORTALIS", "Non", "Programme de la justice civile",
    "http://www.justice.fr/", "01/03/2014", "11,84", "Conception / Réalisation", "52,4",
    "entre 20 et 100 M€", "Justice Civile", "Justice judiciaire (P166)\nAccès au droit (P101)",
    "http://pap.example/166.pdf", "03/11/2016",
]  # fmt: skip
PNIJ = [
    "MJ", "Ministère de la Justice", "PNIJ", "Oui", "", "", "2010-04-01", "En cadrage",
    "Cadrage", "En cadrage", "En cadrage", "", "", "", "03/11/2016",
]  # fmt: skip
WITHHELD = (
    "Les éléments chiffrés des projets en cours d’appel d’offres ou dont la trajectoire est en "
    "cours de révision ne sont volontairement pas publiés par la DINSIC"
)


def csv_text(header: list[str], *rows: list[str], delimiter: str = ",") -> str:
    def line(cells: list[str]) -> str:
        return delimiter.join('"' + c.replace('"', '""') + '"' for c in cells)

    return "\n".join(line(r) for r in (header, *rows)) + "\n"


def with_cell(row: list[str], column: str, value: str) -> list[str]:
    copy = list(row)
    copy[[h.strip() for h in HEADER].index(column)] = value
    return copy


def test_windows_1252_semicolons_decimal_commas_and_french_dates(
    write: Callable[..., Path],
) -> None:
    content = csv_text(HEADER, PORTALIS, PNIJ, delimiter=";")
    [edition] = parse_panorama(write("p.csv", content, encoding="cp1252"))
    assert (edition.ref, edition.date, edition.source) == (
        "2016-11",
        date(2016, 11, 3),
        "panorama:2016-11",
    )
    portalis = edition.projects["portalis"]
    assert portalis.cost == Decimal(52_400_000)
    assert portalis.details["start_date"] == date(2014, 3, 1)
    assert portalis.planned_end == date(2014, 3, 1) + timedelta(days=round(11.84 * 365))
    assert portalis.phase == "Conception / Réalisation"
    assert portalis.details["ministry_code"] == "MJ"
    assert portalis.details["programmes"] == ["Justice judiciaire (P166)", "Accès au droit (P101)"]
    assert portalis.details["links"] == ["http://www.justice.fr/", "http://pap.example/166.pdf"]
    assert portalis.details["interministerial"] is False


def test_en_cadrage_and_na_mean_not_costed(write: Callable[..., Path]) -> None:
    na = with_cell(with_cell(PNIJ, "Nom du projet", "NEW"), "Coût estimé", "NA")
    [edition] = parse_panorama(write("p.csv", csv_text(HEADER, PNIJ, na)))
    for key in ("pnij", "new"):
        assert edition.projects[key].cost is None
        assert edition.projects[key].planned_end is None
    assert edition.projects["pnij"].details["description"] is None


def test_excel_serial_dates_in_a_csv(write: Callable[..., Path]) -> None:
    row = with_cell(with_cell(PORTALIS, "Début", "41699"), "Date de publication", "42677")
    [edition] = parse_panorama(write("p.csv", csv_text(HEADER, row)))
    assert edition.date == date(2016, 11, 3)
    assert edition.projects["portalis"].details["start_date"] == date(2014, 3, 1)


def test_headers_with_other_case_accents_and_spaces(write: Callable[..., Path]) -> None:
    header = [h.upper().replace("É", "E").replace("È", "E") + "  " for h in HEADER]
    [edition] = parse_panorama(write("p.csv", csv_text(header, PORTALIS)))
    assert edition.projects["portalis"].cost == Decimal(52_400_000)


def test_an_xlsx_with_typed_cells(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER)
    row: list[object] = list(PORTALIS)
    row[6], row[7], row[9], row[14] = datetime(2014, 3, 1), 11.84, 52.4, 42677
    sheet.append(row)
    sheet.append([None] * len(HEADER))
    workbook.save(tmp_path / "p.xlsx")
    [edition] = parse_panorama(tmp_path / "p.xlsx")
    assert edition.date == date(2016, 11, 3)
    assert edition.projects["portalis"].cost == Decimal(52_400_000)
    assert len(edition.projects) == 1


@pytest.mark.parametrize(
    ("header", "cell", "euros"),
    [
        ("Coût estimé (M€)", "52,4", 52_400_000),
        ("Coût estimé en M€", "52.4", 52_400_000),
        ("Coût complet estimé", "52,4", 52_400_000),
        ("Coût estimé (€)", "52 400 000", 52_400_000),
        ("Coût estimé [k€]", "52400", 52_400_000),
        ("Coût estimé (Md€)", "0,0524", 52_400_000),
        ("Coût estimé en millions d’euros", "52,4", 52_400_000),
    ],
)
def test_cost_header_synonyms_and_units(
    write: Callable[..., Path], header: str, cell: str, euros: int
) -> None:
    headers = [header if h == "Coût estimé" else h for h in HEADER]
    [edition] = parse_panorama(
        write("p.csv", csv_text(headers, with_cell(PORTALIS, "Coût estimé", cell)))
    )
    assert edition.projects["portalis"].cost == Decimal(euros)


@pytest.mark.parametrize(
    ("header", "cell"),
    [("Durée prévisionnelle (mois)", "12"), ("DUREE PREVISIONNELLE (en années)", "1")],
)
def test_duration_units(write: Callable[..., Path], header: str, cell: str) -> None:
    headers = [header if "Durée" in h else h for h in HEADER]
    row = with_cell(PORTALIS, "Durée prévisionnelle en année", cell)
    [edition] = parse_panorama(write("p.csv", csv_text(headers, row)))
    assert edition.projects["portalis"].planned_end == date(2015, 3, 1)


def test_a_unit_in_another_currency_is_refused(write: Callable[..., Path]) -> None:
    headers = ["Coût estimé (k$)" if h == "Coût estimé" else h for h in HEADER]
    with pytest.raises(ImportRejected) as e:
        parse_panorama(write("p.csv", csv_text(headers, PORTALIS)))
    assert str(e.value) == (
        "p.csv, column 'Coût estimé (k$)': 'k$' is in USD, but this layout's amounts are in EUR"
    )
    with pytest.raises(ImportRejected) as e:
        parse_panorama(write("p.csv", csv_text(headers, PORTALIS)), strict=True)
    assert str(e.value).startswith("p.csv, column 'Coût estimé (k$)': 'k$' is a unit that is not")


def test_a_duration_without_unit_is_refused(write: Callable[..., Path]) -> None:
    headers = ["Durée prévisionnelle" if "Durée" in h else h for h in HEADER]
    with pytest.raises(ImportRejected, match="'Durée prévisionnelle': gives no unit"):
        parse_panorama(write("p.csv", csv_text(headers, PORTALIS)))


def test_a_missing_required_column_is_named(write: Callable[..., Path]) -> None:
    index = HEADER.index("Coût estimé")
    header = HEADER[:index] + HEADER[index + 1 :]
    row = PORTALIS[:index] + PORTALIS[index + 1 :]
    with pytest.raises(ImportRejected, match="official panorama layout lacks 'Coût estimé'"):
        parse_panorama(write("p.csv", csv_text(header, row)))


def test_an_unknown_layout_is_refused(write: Callable[..., Path]) -> None:
    with pytest.raises(ImportRejected, match="p.csv: has an unknown layout"):
        parse_panorama(write("p.csv", "a,b\n1,2\n"))


def test_a_bad_row_names_file_row_column_value_and_reason(write: Callable[..., Path]) -> None:
    bad = with_cell(PORTALIS, "Coût estimé", "12,3,4")
    with pytest.raises(ImportRejected) as e:
        parse_panorama(write("bad.csv", csv_text(HEADER, PNIJ, bad)))
    assert str(e.value) == "bad.csv, row 3, column 'Coût estimé': '12,3,4' is not a number"
    assert (e.value.file, e.value.row, e.value.column, e.value.value) == (
        "bad.csv", 3, "Coût estimé", "12,3,4",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("Phase du projet en cours", "En pause", "is not a phase"),
        ("Projet interministériel", "Peut-être", "is not a yes/no value"),
        ("Début", "bientôt", "is not a date"),
        ("Coût estimé", "-3", "is negative"),
        ("Nom du projet", "=[1]Data!D10", "is an unevaluated formula"),
        ("Date de publication", "01/06/2017", "differs from 2016-11-03"),
    ],
)
def test_bad_cells(write: Callable[..., Path], column: str, value: str, reason: str) -> None:
    with pytest.raises(ImportRejected, match=f"row 3, column '{column}': .* {reason}"):
        parse_panorama(write("p.csv", csv_text(HEADER, PNIJ, with_cell(PORTALIS, column, value))))


def test_phase_spellings(write: Callable[..., Path]) -> None:
    row = with_cell(PORTALIS, "Phase du projet en cours", "conception/realisation")
    [edition] = parse_panorama(write("p.csv", csv_text(HEADER, row)))
    assert edition.projects["portalis"].phase == "Conception / Réalisation"


def test_the_2019_sentence_withholds_the_figures(write: Callable[..., Path]) -> None:
    row = with_cell(PORTALIS, "Phase du projet en cours", WITHHELD)
    [edition] = parse_panorama(write("p.csv", csv_text(HEADER, row)))
    project = edition.projects["portalis"]
    assert project.withheld and project.withheld_reason == WITHHELD
    assert (project.phase, project.cost, project.planned_end) == (None, None, None)


def test_two_rows_for_one_project_are_refused(write: Callable[..., Path]) -> None:
    twin = with_cell(PORTALIS, "Nom du projet", "Portalis ")
    with pytest.raises(ImportRejected, match="row 3, .* is the same project as row 2"):
        parse_panorama(write("p.csv", csv_text(HEADER, PORTALIS, twin)))


def test_aliases_give_the_canonical_key(write: Callable[..., Path]) -> None:
    aliases = Aliases({"PNIJ": "PNIJ NG (ANTENJ)"})
    [edition] = parse_panorama(write("p.csv", csv_text(HEADER, PNIJ)), aliases=aliases)
    assert list(edition.projects) == ["pnijngantenj"]
    assert edition.projects["pnijngantenj"].name == "PNIJ"


def test_edition_date_option(write: Callable[..., Path]) -> None:
    header, rows = HEADER[:-1], [r[:-1] for r in (PORTALIS, PNIJ)]
    path = write("p.csv", csv_text(header, *rows))
    with pytest.raises(ImportRejected, match="no 'Date de publication': give --edition-date"):
        parse_panorama(path)
    [edition] = parse_panorama(path, edition_date=date(2017, 2, 15))
    assert (edition.ref, edition.date) == ("2017-02", date(2017, 2, 15))


def test_edition_date_option_must_agree_with_the_file(write: Callable[..., Path]) -> None:
    with pytest.raises(ImportRejected, match="contradicts --edition-date 2017-02-15"):
        parse_panorama(write("p.csv", csv_text(HEADER, PORTALIS)), edition_date=date(2017, 2, 15))


def test_unknown_columns_are_reported_and_data_without_header_refused(
    write: Callable[..., Path],
) -> None:
    [edition] = parse_panorama(write("p.csv", csv_text([*HEADER, "Météo"], [*PORTALIS, "beau"])))
    assert edition.warnings == ["p.csv: column 'Météo' is not imported"]
    with pytest.raises(ImportRejected, match="row 2, column '#16': 'x' is under a column with no"):
        parse_panorama(write("q.csv", csv_text([*HEADER, ""], [*PORTALIS, "x"])))


LONG_HEADER = [
    "edition", "projet", "ministere_porteur", "projet_interministeriel", "debut_yyyy_mm",
    "duree_annees", "phase", "cout_estime_meur",
]  # fmt: skip


def test_the_consolidated_layout_dates_and_ministry_codes(write: Callable[..., Path]) -> None:
    spm = "Services du Premier Ministre"
    rows = [
        ["2018-03", "PNR", spm, "Oui", "2011-07", "6.8", "Expérimentation", "53.02"],
        ["2018-07", "PNR", spm, "Oui", "2011-07", "6.8", "Déploiement", "53.02"],
    ]
    editions = parse_panorama(write("long.csv", csv_text(LONG_HEADER, *rows)))
    assert [(e.ref, e.date) for e in editions] == [
        ("2018-03", date(2018, 2, 28)),  # its known publication date
        ("2018-07", date(2018, 7, 1)),  # otherwise the first day of the month
    ]
    pnr = editions[0].projects["pnr"]
    assert pnr.details["ministry_code"] == "SPM"
    assert pnr.details["ministry_name"] == "Services du Premier Ministre"
    assert pnr.cost == Decimal(53_020_000)
    with pytest.raises(ImportRejected, match="several editions: --edition-date cannot apply"):
        parse_panorama(
            write("long2.csv", csv_text(LONG_HEADER, *rows)), edition_date=date(2018, 1, 1)
        )


def test_the_consolidated_layout_refuses_a_bad_edition(write: Callable[..., Path]) -> None:
    row = ["Mars 2018", "PNR", "Premier ministre", "Oui", "2011-07", "6.8", "Cadrage", ""]
    with pytest.raises(
        ImportRejected, match="row 2, column 'edition': 'Mars 2018' is not an edition"
    ):
        parse_panorama(write("long.csv", csv_text(LONG_HEADER, row)))


def test_a_file_without_rows_is_refused(write: Callable[..., Path]) -> None:
    with pytest.raises(ImportRejected, match="p.csv: lists no project"):
        parse_panorama(write("p.csv", csv_text(HEADER, [""] * len(HEADER))))
