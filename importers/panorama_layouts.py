"""The panorama's layouts: header synonyms, units, and the vocabulary of its cells."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.values import PHASES
from importers.columns import ColumnSpec, Layout
from importers.matching import normalise_name

SERIES = "panorama"
CURRENCY = "EUR"

COST_UNITS = {
    "M€": Decimal(1_000_000),
    "MEUR": Decimal(1_000_000),
    "millions d'euros": Decimal(1_000_000),
    "millions €": Decimal(1_000_000),
    "Md€": Decimal(1_000_000_000),
    "milliards d'euros": Decimal(1_000_000_000),
    "k€": Decimal(1_000),
    "€": Decimal(1),
    "EUR": Decimal(1),
    "euros": Decimal(1),
}
# Days per unit of a planned duration (a year is 365 days, as in the published files).
DURATION_UNITS = {
    "année": Decimal(365),
    "années": Decimal(365),
    "an": Decimal(365),
    "ans": Decimal(365),
    "years": Decimal(365),
    "mois": Decimal(365) / 12,
    "months": Decimal(365) / 12,
}

OFFICIAL = Layout(
    "official panorama layout",
    (
        ColumnSpec("ministry_code", ("Ministère porteur",), required=True),
        ColumnSpec("ministry_name", ("Ministère nom complet",)),
        ColumnSpec("name", ("Nom du projet",), required=True),
        ColumnSpec("interministerial", ("Projet interministériel",), required=True),
        ColumnSpec("description", ("Description et objectifs du projet", "Description")),
        ColumnSpec("more_info", ("En savoir plus sur le projet", "En savoir plus")),
        ColumnSpec("start", ("Début", "Date de début", "Début du projet"), required=True),
        ColumnSpec(
            "duration", ("Durée prévisionnelle", "Durée"), required=True, units=DURATION_UNITS
        ),
        ColumnSpec("phase", ("Phase du projet en cours", "Phase"), required=True),
        ColumnSpec(
            "cost",
            ("Coût estimé", "Coût complet estimé", "Coût complet"),
            required=True,
            units=COST_UNITS,
            default_unit="M€",
            currency=CURRENCY,
        ),
        ColumnSpec("cost_bracket", ("Coût estimé par tranche", "Coût complet estimé par tranche")),
        ColumnSpec("functional_zone", ("Zone fonctionnelle",)),
        ColumnSpec("programmes", ("Financement [programme(s)]", "Financement", "Programmes")),
        ColumnSpec("pap", ("Lien vers les Projets Annuels de Performances", "Lien PAP")),
        ColumnSpec("published", ("Date de publication",)),
    ),
)

CONSOLIDATED = Layout(
    "consolidated (long) panorama layout",
    (
        ColumnSpec("edition", ("edition",), required=True),
        ColumnSpec("edition_label", ("edition_label",)),
        ColumnSpec("source_commit", ("source_commit",)),
        ColumnSpec("row", ("row",)),
        ColumnSpec("name", ("projet",), required=True),
        ColumnSpec("ministry_name", ("ministere_porteur",), required=True),
        ColumnSpec("interministerial", ("projet_interministeriel",), required=True),
        ColumnSpec("description", ("description",)),
        ColumnSpec("more_info", ("en_savoir_plus_url",)),
        ColumnSpec("start_display", ("debut_affiche",)),
        ColumnSpec("start", ("debut_yyyy_mm", "debut"), required=True),
        ColumnSpec(
            "duration",
            ("duree_annees", "duree_mois"),
            required=True,
            units={"années": Decimal(365), "mois": Decimal(365) / 12},
            default_unit="années",
        ),
        ColumnSpec("phase", ("phase",), required=True),
        ColumnSpec(
            "cost",
            ("cout_estime_meur", "cout_estime_eur"),
            required=True,
            units=COST_UNITS,
            default_unit="M€",
            currency=CURRENCY,
        ),
        ColumnSpec("cost_label", ("cout_column_label",)),
        ColumnSpec("functional_zone", ("zone_fonctionnelle",)),
        ColumnSpec("programmes", ("programme_financement",)),
        ColumnSpec("pap", ("pap_url",)),
        ColumnSpec("published", ("date_publication",)),
    ),
)

# Editions whose publication date is known although the consolidated file only names the month.
KNOWN_PUBLICATION_DATES: dict[str, date] = {
    "2016-11": date(2016, 11, 3),
    "2017-06": date(2017, 6, 1),
    "2018-03": date(2018, 2, 28),
}
NOT_COSTED = frozenset({"en cadrage", "cadrage", "na", "n/a", "nc", "n.c.", "-", "nd"})
WITHHELD_MARKERS = ("ne sont volontairement pas publies", "les elements chiffres des projets")
PHASE_KEYS: dict[str, str] = {normalise_name(p): p for p in PHASES} | {
    "encadrage": "Cadrage",
    "conceptionrealisation": "Conception / Réalisation",
    "termines": "Terminé",
}
