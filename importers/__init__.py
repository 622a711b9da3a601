"""Importers of published portfolio files: the French panorama and the UK GMPP."""

from __future__ import annotations

from importers.errors import BackdatedEdition, ImportConflict, ImportRejected
from importers.gmpp import parse_gmpp
from importers.matching import Aliases, load_aliases, normalise_name, project_id
from importers.model import Edition, ProjectRow
from importers.panorama import parse_panorama
from importers.run import ImportSummary, import_editions

__all__ = [
    "Aliases",
    "BackdatedEdition",
    "Edition",
    "ImportConflict",
    "ImportRejected",
    "ImportSummary",
    "ProjectRow",
    "import_editions",
    "load_aliases",
    "normalise_name",
    "parse_gmpp",
    "parse_panorama",
    "project_id",
]
