"""kill -9 of a real server under keyed load: after a restart every key gets one outcome.

The server (`panorama serve`: gunicorn on PostgreSQL, the embedded one on SQLite) listens on
127.0.0.1 on a free port. Clients post keyed cost estimates (one distinct amount per key), the
whole process group is killed mid-load, the server restarts, and every key is retried until
it answers 201: no key stays in progress past its lease, and no estimate is recorded twice.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.bootstrap import Services
from service.config import Settings
from tests.e2e.conftest import make_token
from tests.integration.conftest import ROOT, process_env, wait_until

LEASE_S = 2
CLIENTS = 12
KEYS_PER_CLIENT = 40
pytestmark = pytest.mark.integration


class Server:
    """One `panorama serve` process group on 127.0.0.1."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "panorama"), "serve", "--host", "127.0.0.1"]
            + ["--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self.healthy, 60, "the server to answer /healthz")

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(self.log.read_text(errors="replace")[-3000:])
        try:
            return self.request("GET", "/healthz", None, {})[0] == 200
        except OSError:
            return False

    def kill(self) -> None:
        """kill -9 the master and its workers."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def request(
        self, method: str, path: str, body: Any, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            data = None if body is None else json.dumps(body)
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(params=["postgres", "sqlite"])
def deployment(
    request: pytest.FixtureRequest, tmp_path: Path, make_services: Callable[..., Services]
) -> Iterator[tuple[Server, str]]:
    fixture = "pg_settings" if request.param == "postgres" else "sqlite_settings"
    settings: Settings = request.getfixturevalue(fixture)
    env = process_env(settings, IDEMPOTENCY_LEASE_SECONDS=str(LEASE_S), WEB_THREADS="4")
    if settings.is_postgres:
        env["WEB_CONCURRENCY"] = "2"
    token = make_token(make_services(settings), "admin", name="loader")
    server = Server(env, tmp_path / "server.log")
    server.start()
    yield server, token
    if server.proc is not None and server.proc.poll() is None:
        server.kill()


def test_after_a_kill_9_every_key_gets_one_definitive_outcome(
    deployment: tuple[Server, str],
) -> None:
    server, token = deployment
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    projects = [register(server, auth, n) for n in range(CLIENTS)]
    first: dict[str, tuple[int, bytes] | None] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def load(client: int) -> None:
        for n in range(KEYS_PER_CLIENT):
            key = f"c{client}-k{n}"
            try:
                status, _, body = post_estimate(server, auth, projects[client], key, n)
                answer: tuple[int, bytes] | None = (status, body)
            except (OSError, http.client.HTTPException):
                answer = None  # the server died with this request in flight
            with lock:
                first[key] = answer
            if answer is None or stop.is_set():
                return

    threads = [threading.Thread(target=load, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    wait_until(lambda: len(first) >= CLIENTS * KEYS_PER_CLIENT // 3, 120, "a third of the load")
    server.kill()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    in_flight = [k for k, v in first.items() if v is None]
    assert in_flight, "the kill landed between requests: nothing was in flight"
    refused = {k: v for k, v in first.items() if v is not None and v[0] not in (201, 503)}
    assert not refused, refused  # 503: a busy embedded writer, retried below like the rest

    server.start()
    final: dict[str, bytes] = {}
    for key in first:
        client, n = (int(part[1:]) for part in key.split("-"))
        final[key] = retry_until_done(server, auth, projects[client], key, n)
    for key, answer in first.items():
        if answer is not None and answer[0] == 201:
            assert final[key] == answer[1], key  # the replay is the first answer, byte for byte

    for client, project in enumerate(projects):
        amounts = Counter(
            e["payload"]["amount"]
            for e in events(server, auth, project)
            if e["type"] == "CostReestimated"
        )
        sent = {f"{n + 1}.00" for n in range(KEYS_PER_CLIENT) if f"c{client}-k{n}" in first}
        assert set(amounts) == sent
        assert max(amounts.values()) == 1, amounts


def register(server: Server, auth: dict[str, str], n: int) -> str:
    body = {"name": f"Projet {n}", "ministry_code": "MINARM", "effective_date": "2024-01-15"}
    status, _, raw = server.request("POST", "/api/projects", body, auth)
    assert status == 201, raw
    project_id: str = json.loads(raw)["id"]
    return project_id


def post_estimate(
    server: Server, auth: dict[str, str], project: str, key: str, n: int
) -> tuple[int, dict[str, str], bytes]:
    body = {"amount": f"{n + 1}.00", "effective_date": "2024-03-01"}
    headers = {**auth, "Idempotency-Key": key}
    return server.request("POST", f"/api/projects/{project}/cost-estimates", body, headers)


def retry_until_done(server: Server, auth: dict[str, str], project: str, key: str, n: int) -> bytes:
    """Retry as a client does, honouring Retry-After; a key must settle within its lease."""
    deadline = time.monotonic() + LEASE_S + 30
    while True:
        status, headers, body = post_estimate(server, auth, project, key, n)
        if status == 201:
            return body
        assert status in (409, 503), (key, status, body)
        assert time.monotonic() < deadline, f"{key} is still in progress past its lease"
        time.sleep(float(headers.get("Retry-After", "1")))


def events(server: Server, auth: dict[str, str], project: str) -> list[dict[str, Any]]:
    status, _, raw = server.request("GET", f"/api/projects/{project}/events", None, auth)
    assert status == 200, raw
    found: list[dict[str, Any]] = json.loads(raw)
    return found
