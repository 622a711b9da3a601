"""The pages' assets: vendored files match their manifest, catalogues are complete."""

from __future__ import annotations

import json
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from service.web import vendor

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "service" / "translations"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "mark": None}


def test_every_vendored_file_has_the_hash_of_the_manifest() -> None:
    manifest = json.loads(vendor.MANIFEST.read_text())
    names = {e["file"] for e in manifest["files"]}
    assert {"htmx.min.js", "echarts.common.min.js"} <= names
    assert all(e["license"] and e["version"] and len(e["sha256"]) == 64 for e in manifest["files"])
    assert vendor.mismatches() == []


def test_a_changed_vendored_file_is_reported(tmp_path: Path, monkeypatch: object) -> None:
    import shutil

    copy = tmp_path / "vendor"
    shutil.copytree(vendor.VENDOR, copy)
    (copy / "htmx.min.js").write_bytes(b"alert(1)")
    (copy / "extra.js").write_text("")
    setattr(vendor, "VENDOR", copy)  # noqa: B010
    setattr(vendor, "MANIFEST", copy / "manifest.json")  # noqa: B010
    try:
        assert vendor.mismatches() == [
            "htmx.min.js: SHA-256 differs from the manifest",
            "extra.js: not in the manifest",
        ]
    finally:
        setattr(vendor, "VENDOR", ROOT / "service" / "web" / "static" / "vendor")  # noqa: B010
        setattr(vendor, "MANIFEST", vendor.VENDOR / "manifest.json")  # noqa: B010


def _source_messages() -> set[str]:
    method_map = [("service/web/**.py", "python"), ("service/web/templates/**.html", "jinja2")]
    found = extract_from_dir(str(ROOT), method_map, keywords=KEYWORDS)
    return {m[2] if isinstance(m[2], str) else m[2][0] for m in found}


def test_every_message_of_the_pages_has_a_french_translation() -> None:
    with (TRANSLATIONS / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        french = {m.id: m.string for m in read_po(f) if m.id}
    missing = sorted(m for m in _source_messages() if not french.get(m))
    assert missing == []


def test_the_compiled_catalogues_are_those_of_the_po_files() -> None:
    for lang in ("fr", "en"):
        folder = TRANSLATIONS / lang / "LC_MESSAGES"
        with (folder / "messages.po").open("rb") as f:
            po = {m.id: m.string for m in read_po(f) if m.id and m.string}
        with (folder / "messages.mo").open("rb") as f:
            mo = {m.id: m.string for m in read_mo(f) if m.id and m.string}
        assert mo == po, f"run `make messages`: {lang} messages.mo is stale"
