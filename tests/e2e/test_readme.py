"""The README's examples run as written against a real `panorama serve` (the embedded default).

Every ```sh block of "API by example" (with "Alerts") and "Audit" runs in one bash, from the
server's home (where `var/admin-token` is), with curl against 127.0.0.1 on a random port.
As the README says, each `NAME=…` line takes the id the command above it printed. The
webhook URL is replaced by a receiver on 127.0.0.1 (ALLOW_LOOPBACK_WEBHOOKS): the test
never sends anything to another address. A curl announced as refused with a 4xx (by the
comment above it, or its own comment) must answer that status; every other one a 2xx.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.served import PANORAMA, Served

README = Path(__file__).resolve().parents[2] / "README.md"
SECTIONS = ("## API by example", "## Audit")
PLACEHOLDER = re.compile(r"^(\w+)=…(.*)$")
PUBLIC_HOOK = "https://example.org/hooks/panorama"

PRELUDE = r"""
set -euo pipefail
_n=0
curl() {
  _n=$((_n + 1))
  command curl --noproxy '*' --max-time 30 -o "$_T/last" -w '%{http_code}' "$@" > "$_T/code"
  echo "$_n $(cat "$_T/code")" >> "$_T/statuses"
  cat "$_T/last"; echo
}
_id() {
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1]));
d = d[0] if isinstance(d, list) else d; print(d.get("id") or d["alert_id"])' "$_T/last"
}
"""


def sh_blocks(text: str) -> list[str]:
    """The ```sh blocks of the README sections whose examples are run."""
    blocks = []
    for section in re.split(r"(?m)^(?=## )", text):
        if section.startswith(SECTIONS):
            blocks += re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return blocks


def expected_statuses(script: str) -> list[int | None]:
    """For each curl in order: the 4xx announced by the comment right above it (one saying
    "refused"), or by its own line's comment when it starts with the status; else None (2xx)."""
    expected: list[int | None] = []
    previous = ""
    for line in script.splitlines():
        stripped = line.strip()
        if stripped.startswith("curl "):
            above = re.search(r"\b(4\d\d)\b", previous) if "refused" in previous else None
            inline = re.match(r"\s*(4\d\d)\b", line.partition("#")[2])
            announced = above or inline
            expected.append(int(announced.group(1)) if announced else None)
        previous = stripped if stripped.startswith("#") else ""
    return expected


def runnable(blocks: list[str], url: str, hook: str) -> str:
    """The blocks as one script: the server's port, the loopback hook, ids from the answers."""
    lines = []
    for line in "\n".join(blocks).replace("http://127.0.0.1:8000", url).splitlines():
        found = PLACEHOLDER.match(line)
        lines.append(f"{found.group(1)}=$(_id)" if found else line.replace(PUBLIC_HOOK, hook))
    return "\n".join(lines) + "\n"


class Hook:
    """A webhook receiver on 127.0.0.1 that accepts everything."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                hook.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


def test_every_readme_example_runs_as_written(tmp_path: Path, hook: Hook) -> None:
    blocks = sh_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 3 and PUBLIC_HOOK in "".join(blocks)
    home = tmp_path / "home"
    served = Served(home, tmp_path, ALLOW_LOOPBACK_WEBHOOKS="true")
    try:
        script = runnable(blocks, served.url, hook.url)
        commands = [ln for ln in script.splitlines() if not ln.lstrip().startswith("#")]
        urls = re.findall(r"https?://[^\s'\"]+", "\n".join(commands))
        assert all(u.startswith(("http://127.0.0.1:", "$API")) for u in urls), urls
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        env = {
            **served.env,
            "_T": str(scratch),
            "PATH": f"{Path(PANORAMA).parent}:{os.environ['PATH']}",
        }
        done = subprocess.run(
            ["bash", "-c", PRELUDE + script],
            cwd=home,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        got = [int(line.split()[1]) for line in (scratch / "statuses").read_text().splitlines()]
        wanted = expected_statuses("\n".join(blocks))
        assert len(got) == len(wanted), (got, wanted)
        for number, (status, expected) in enumerate(zip(got, wanted, strict=True), start=1):
            if expected is None:
                assert 200 <= status < 300, (number, status, done.stdout[-3000:])
            else:
                assert status == expected, (number, status, done.stdout[-3000:])
        assert hook.bodies, "the README's subscription received no alert"
        assert (home / "project.xlsx").read_bytes().startswith(b"PK")
        assert (home / "projects.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    finally:
        served.stop()
