"""Follow projects across editions: normalised name keys, aliases, deterministic ids."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import uuid
from pathlib import Path
from uuid import UUID

import yaml

from importers.errors import ImportRejected
from importers.readers import decode

# Fixed forever: changing it would give every imported project a new id.
NAMESPACE = uuid.UUID("6f0c5c2e-4b5d-5b0e-9a51-70616e6f7261")


def normalise_name(name: str) -> str:
    """The matching key of a name: NFKD, accents dropped, casefolded, letters and digits only.

    `FRANCECONNECT Phase II`, `France Connect - phase II` and `FRANCE-CONNECT PHASE II`
    all give `franceconnectphaseii`; `MCIC²` and `MCIC 2` both give `mcic2`.
    """
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^0-9a-z]+", "", stripped.casefold())


def project_id(series: str, key: str) -> UUID:
    """The deterministic id of the project `key` of a source series (uuid5)."""
    return uuid.uuid5(NAMESPACE, f"{series}:{key}")


class Aliases:
    """Old names mapped to canonical names, compared by their normalised keys."""

    def __init__(self, mapping: dict[str, str] | None = None, *, file: str = "aliases") -> None:
        self.file = file
        self._canonical: dict[str, str] = {}
        for old, new in (mapping or {}).items():
            old_key, new_key = normalise_name(old), normalise_name(new)
            if not old_key or not new_key:
                raise ImportRejected(file, value=old, reason="is not a usable name")
            if self._canonical.get(old_key, new_key) != new_key:
                raise ImportRejected(file, value=old, reason="is given two canonical names")
            if old_key != new_key:
                self._canonical[old_key] = new_key
        for start in self._canonical:
            self.key_of_key(start)  # refuse cycles now, not in the middle of an import

    def key_of_key(self, key: str) -> str:
        """Follow the aliases from a normalised key to its canonical key."""
        seen = [key]
        while key in self._canonical:
            key = self._canonical[key]
            if key in seen:
                raise ImportRejected(self.file, value=seen[0], reason="has circular aliases")
            seen.append(key)
        return key

    def key(self, name: str) -> str:
        """The canonical normalised key of a published name."""
        return self.key_of_key(normalise_name(name))

    def __len__(self) -> int:
        return len(self._canonical)


def load_aliases(path: Path | None) -> Aliases:
    """Read an aliases file: YAML `old: canonical`, or CSV with columns `alias,canonical`."""
    if path is None:
        return Aliases()
    try:
        content, _ = decode(path.read_bytes())
    except OSError as e:
        raise ImportRejected(path.name, reason=f"cannot be read: {e.strerror}") from None
    if path.suffix.lower() in {".yaml", ".yml"}:
        return Aliases(_yaml_mapping(path.name, content), file=path.name)
    return Aliases(_csv_mapping(path.name, content), file=path.name)


def _yaml_mapping(name: str, content: str) -> dict[str, str]:
    try:
        data = yaml.safe_load(content) or {}
    except yaml.YAMLError as e:
        raise ImportRejected(name, reason=f"is not valid YAML: {e}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ImportRejected(name, reason="must be a mapping of old name to canonical name")
    return dict(data)


def _csv_mapping(name: str, content: str) -> dict[str, str]:
    records = [r for r in csv.reader(io.StringIO(content)) if any(c.strip() for c in r)]
    if not records or [c.strip().casefold() for c in records[0]][:2] != ["alias", "canonical"]:
        raise ImportRejected(name, row=1, reason="must start with the header 'alias,canonical'")
    mapping: dict[str, str] = {}
    for number, record in enumerate(records[1:], start=2):
        if len(record) < 2 or not record[0].strip() or not record[1].strip():
            raise ImportRejected(name, number, value=",".join(record), reason="needs two names")
        old = record[0].strip()
        if old in mapping and mapping[old] != record[1].strip():
            raise ImportRejected(name, number, value=old, reason="is given two canonical names")
        mapping[old] = record[1].strip()
    return mapping


# Ministry abbreviations, for layouts that publish only the full name (compared normalised).
MINISTRY_CODES: dict[str, str] = {
    "Premier ministre": "SPM",
    "Services du Premier Ministre": "SPM",
    "Ministère de l'Intérieur": "MI",
    "Ministère de la Justice": "MJ",
    "Ministère de l'Économie et des Finances": "MEF",
    "Ministères de l'Économie et des Finances": "MEF",
    "Ministère de l'Action et des Comptes Publics": "MCAP",
    "Ministère de la Défense": "MINDEF",
    "Ministère des Armées": "MAr",
    "Ministère de l'Éducation nationale, de l'Enseignement supérieur et de la Recherche": "MENESR",
    "Ministère de l'Éducation nationale": "MEN",
    "Ministère de l'Agriculture, de l'Agroalimentaire et de la Forêt": "MAAF",
    "Ministère de l'Agriculture et de l'Alimentation": "MAA",
    "Ministère des Affaires étrangères et du Développement international": "MAEDI",
    "Ministère de l'Europe et des Affaires étrangères": "MEA",
    "Ministère de la Culture et de la Communication": "MCC",
    "Ministère de la Culture": "MC",
    "Ministère de l'Environnement, de l'Énergie et de la Mer": "MEEM",
    "Ministère de la Transition écologique et solidaire": "MTES",
    "Ministères Chargés des Affaires Sociales": "MCAS",
    "Ministère chargé des Affaires Sociales": "MCAS",
}
_CODES_BY_KEY = {normalise_name(k): v for k, v in MINISTRY_CODES.items()}


def ministry_code(full_name: str) -> str:
    """The abbreviation of a ministry's full name; `A / B` gives `MA / MB`; else the name."""
    parts = [p.strip() for p in full_name.split(" / ") if p.strip()]
    codes = [_CODES_BY_KEY.get(normalise_name(p)) for p in parts]
    if parts and all(codes):
        return " / ".join(c for c in codes if c)
    return full_name.strip()
