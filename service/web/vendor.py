"""The vendored front-end files: refreshed from npm (`make vendor`), checked by their hashes.

`python -m service.web.vendor refresh` packs each package with npm into a temporary folder,
copies its dist files and licence under static/vendor/, and rewrites manifest.json;
`python -m service.web.vendor check` (and a test) compares the files with the manifest.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parent / "static"
VENDOR = STATIC / "vendor"
MANIFEST = VENDOR / "manifest.json"
# npm spec, files to copy from the package (dist file → name under vendor/)
PACKAGES: tuple[tuple[str, dict[str, str]], ...] = (
    ("htmx.org@~2.0", {"dist/htmx.min.js": "htmx.min.js", "LICENSE": "htmx.LICENSE.txt"}),
    (
        "echarts@^6",
        {
            "dist/echarts.common.min.js": "echarts.common.min.js",
            "LICENSE": "echarts.LICENSE.txt",
            "NOTICE": "echarts.NOTICE.txt",
        },
    ),
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pack(spec: str, into: Path) -> Path:
    out = subprocess.run(
        ["npm", "pack", spec, "--silent", "--pack-destination", str(into)],
        check=True,
        capture_output=True,
        text=True,
    )
    return into / out.stdout.strip().splitlines()[-1]


def refresh() -> dict[str, Any]:
    """Fetch the packages from npm, copy their files, rewrite and return the manifest."""
    VENDOR.mkdir(parents=True, exist_ok=True)
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec, files in PACKAGES:
            with tarfile.open(_pack(spec, Path(tmp))) as tar:
                meta = json.load(tar.extractfile("package/package.json"))  # type: ignore[arg-type]
                for source, name in files.items():
                    member = tar.extractfile(f"package/{source}")
                    assert member is not None, f"{spec} has no {source}"
                    (VENDOR / name).write_bytes(member.read())
                    entries.append(
                        {
                            "file": name,
                            "package": meta["name"],
                            "version": meta["version"],
                            "license": meta["license"],
                            "from": source,
                            "sha256": sha256(VENDOR / name),
                        }
                    )
    manifest = {"source": "npm registry, `make vendor`", "files": entries}
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def mismatches() -> list[str]:
    """Files whose hash differs from the manifest, or that are missing or unlisted."""
    manifest = json.loads(MANIFEST.read_text())
    listed = {e["file"]: e["sha256"] for e in manifest["files"]}
    found = []
    for name, digest in listed.items():
        path = VENDOR / name
        if not path.exists():
            found.append(f"{name}: missing")
        elif sha256(path) != digest:
            found.append(f"{name}: SHA-256 differs from the manifest")
    present = {p.name for p in VENDOR.iterdir() if p.name != MANIFEST.name}
    found.extend(f"{name}: not in the manifest" for name in sorted(present - set(listed)))
    return found


def main(argv: list[str]) -> int:
    if argv[:1] == ["refresh"]:
        for entry in refresh()["files"]:
            print(f"{entry['package']}@{entry['version']} {entry['file']} {entry['sha256']}")
    problems = mismatches()
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
