"""The per-process caches are invisible through a real gunicorn with two workers: a command
through one worker, then a command or a read through the other, sees the write; a revoked
token is refused by every worker from the next request."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator

import pytest

from bench.harness.client import Client, cost_estimate, register
from bench.harness.stack import Stack, Web, server_stack
from service.bootstrap import Services
from service.config import Settings
from service.tokens import TokenStore


def _workers(master: int) -> list[int]:
    """The pids of the gunicorn master's worker processes."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == master:
                found.append(int(entry))
    return sorted(found)


def _serving(client: Client, port: int, workers: list[int]) -> int:
    """The worker that accepted this client's (open, keep-alive) connection."""
    sock = client.conn.sock
    assert sock is not None
    mine = sock.getsockname()[1]
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if int(cols[1].split(":")[1], 16) == port and int(cols[2].split(":")[1], 16) == mine:
                inode = cols[9]
    for pid in workers:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise LookupError("no worker holds this connection")


@pytest.fixture
def stack(
    pg_settings: Settings, redis_url: str, make_services: Callable[..., Services]
) -> Iterator[Stack]:
    services = make_services(pg_settings)  # the tables exist before the servers start
    store = TokenStore(services.db)
    store.create_table()
    _, token = store.create("admin", name="two-workers")
    with server_stack(
        schema=pg_settings.database_schema,
        database_url=pg_settings.database_url,
        redis_url=redis_url,
        web=Web(2, 2),
        token=token,
    ) as running:
        yield running


def _via(stack: Stack, worker: int, token: str | None = None) -> Client:
    """A new connection that the given gunicorn worker accepted."""
    workers = _workers(stack.procs["gunicorn"].pid)
    for _ in range(100):
        client = Client(stack.port, token=token or stack.token)
        status, _ = client.request("GET", "/readyz")
        assert status == 200
        if _serving(client, stack.port, workers) == worker:
            return client
        client.close()
    raise AssertionError(f"worker {worker} accepted none of 100 connections")


def test_commands_and_reads_through_two_workers_see_each_others_writes(stack: Stack) -> None:
    a, b = _workers(stack.procs["gunicorn"].pid)
    project_id, _ = register(_via(stack, a), "two workers")
    path = f"/api/projects/{project_id}/cost-estimates"
    version = 1
    for n in range(8):  # each worker's cached project must catch up with the other's command
        client = _via(stack, b if n % 2 == 0 else a)
        status, body = client.request("POST", path, cost_estimate(n), {"If-Match": f'"{version}"'})
        assert status == 201, body
        answer = json.loads(body)
        assert answer["version"] == version + 1
        version, position = answer["version"], answer["position"]
        client.close()
    reader = _via(stack, a)  # the last command went through b
    status, body = reader.request("GET", f"/api/projects/{project_id}?min_position={position}")
    assert status == 200, body
    assert json.loads(body)["version"] == version == 9
    assert json.loads(body)["cost"] == cost_estimate(7)["amount"]


def test_a_revoked_token_is_refused_by_every_worker_from_the_next_request(
    stack: Stack, pg_settings: Settings, make_services: Callable[..., Services]
) -> None:
    a, b = _workers(stack.procs["gunicorn"].pid)
    store = TokenStore(make_services(pg_settings).db)
    record, token = store.create("admin", name="soon-revoked")
    project_id, _ = register(_via(stack, a), "revocation")
    path = f"/api/projects/{project_id}/cost-estimates"
    clients = {pid: _via(stack, pid, token) for pid in (a, b)}
    for n, client in enumerate(clients.values()):  # both workers have checked the token
        assert client.request("POST", path, cost_estimate(n))[0] == 201
        assert client.request("POST", path, cost_estimate(n + 2))[0] == 201

    store.revoke(record.id)  # what `panorama tokens revoke` does
    for pid, client in clients.items():
        status, body = client.request("POST", path, cost_estimate(9))
        assert status == 401, (pid, body)
        assert _serving(client, stack.port, [a, b]) == pid
