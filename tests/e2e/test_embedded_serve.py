"""The embedded default as `make run` starts it: retries on a timer, a home found from anywhere."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.served import PANORAMA, Served, embedded_env


class FlakyReceiver:
    """A loopback webhook receiver: 503 to the first request, 204 to the next ones."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = 503 if not receiver.statuses else 204
                receiver.statuses.append(status)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[FlakyReceiver]:
    r = FlakyReceiver()
    yield r
    r.close()


def test_a_failed_delivery_is_retried_without_any_further_command(
    tmp_path: Path, receiver: FlakyReceiver
) -> None:
    served = Served(tmp_path / "home", tmp_path, ALLOW_LOOPBACK_WEBHOOKS="true")
    try:
        admin = served.admin_token
        status, project = served.request(
            "POST",
            "/api/projects",
            {"name": "SI RH", "ministry_code": "MJ", "effective_date": "2024-01-15", "cost": "100"},
            admin,
        )
        assert status == 201, project
        rule = {"metric": "current_cost", "comparator": ">=", "threshold": "120",
                "scope": "project", "scope_value": project["id"],
                "channel": "webhook", "url": receiver.url}  # fmt: skip
        status, subscription = served.request("POST", "/api/subscriptions", rule, admin)
        assert status == 201, subscription
        body = {"amount": "125", "effective_date": "2024-02-01"}
        status, _ = served.request(
            "POST", f"/api/projects/{project['id']}/cost-estimates", body, admin
        )
        assert status == 201
        assert receiver.statuses == [503]  # the first attempt, right after the command
        deadline = time.monotonic() + 60  # backoff: at most 30 s, then the next tick (5 s)
        while receiver.statuses == [503] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert receiver.statuses == [503, 204]
        path = f"/api/subscriptions/{subscription['id']}/deliveries"
        _, log = served.request("GET", path, None, admin)
        assert [(d["attempt"], d["status"]) for d in log] == [(1, "failed"), (2, "ok")]
    finally:
        assert served.stop() == 0, served.output()[-2000:]
    assert "Traceback" not in served.output()


def _panorama(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PANORAMA, *args],
        cwd=cwd,
        env=embedded_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "command", [["export", "projects"], ["verify"], ["projections", "status"], ["tokens", "list"]]
)
def test_a_read_command_refuses_to_create_an_empty_database(
    tmp_path: Path, command: list[str]
) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _panorama(home, elsewhere, *command)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no Panorama database at" in done.stderr and "PANORAMA_HOME" in done.stderr
    assert not (home / "var" / "panorama.sqlite3").exists()
    assert not (elsewhere / "var").exists()


def test_the_cli_finds_the_embedded_database_from_any_directory(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    (elsewhere / "deep").mkdir(parents=True)
    served = Served(home, tmp_path)
    try:
        body = {"name": "Portalis", "ministry_code": "MJ", "effective_date": "2024-01-15"}
        assert served.request("POST", "/api/projects", body, served.admin_token)[0] == 201
    finally:
        served.stop()
    assert (home / "var" / "panorama.sqlite3").exists() and not (tmp_path / "var").exists()
    exported = _panorama(home, elsewhere / "deep", "export", "projects")
    assert exported.returncode == 0, exported.stderr
    assert "Portalis" in exported.stdout
    assert not (elsewhere / "deep" / "var").exists()
