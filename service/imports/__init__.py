"""Importers of published portfolio files: the French panorama and the UK GMPP."""

from __future__ import annotations

from service.imports.errors import BackdatedEdition, ImportConflict, ImportRejected
from service.imports.gmpp import parse_gmpp
from service.imports.matching import Aliases, load_aliases, normalise_name, project_id
from service.imports.model import Edition, ProjectRow
from service.imports.panorama import parse_panorama
from service.imports.run import ImportSummary, import_editions

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
