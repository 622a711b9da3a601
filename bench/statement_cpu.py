"""`python -m bench.statement_cpu [ROUNDS] [BATCH]`: every statement a command causes, with
the CPU its PostgreSQL backend spent on it.

In process, on a fresh PostgreSQL schema: the web side (Flask's test client, one thread, the
Redis enqueue included, as `bench.command_cpu`) posts BATCH cost estimates round-robin over
8 projects, then the worker side (its own Services, as a Celery worker builds them) makes
one `catch_up_all`; ROUNDS times, after a warm-up. Every round trip psycopg makes
(`Connection.wait`) is timed on its backend from `/proc/PID/schedstat` (nanoseconds of CPU,
read before the message is sent and after the answer came), and grouped by side and
statement (its first words, literals left out). Prints, per command: the round trips and
backend CPU of each statement, and the totals; the backends' CPU outside any round trip
(e.g. after a commit) is shown as the remainder. Not a suite: a way to see where
PostgreSQL's share of a command goes (docs/benchmarks.md, "What a command costs").
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import psycopg
import redis

from bench.harness.client import admin_token, cost_estimate, registration
from bench.harness.config import PG_URL
from bench.harness.db import fresh_schema
from projections.registry import catch_up_all
from service.app import create_app
from service.bootstrap import bootstrap
from service.config import Settings
from workers.celery_app import PENDING_KEY

PROJECTS = 8
WARMUP_ROUNDS = 5
_side = threading.local()
_backends: set[int] = set()
# (side, label) -> [round trips, backend ns]
_calls: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
_last_label: dict[int, str] = {}


def _cpu_ns(pid: int) -> int:
    """CPU nanoseconds so far of a process (the scheduler's own count: not 10 ms ticks)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


_WORDS = re.compile(r"\s+")
_LITERALS = re.compile(r"'[^']*'|\b\d+\b")


def _label(gen: Any, conn_id: int) -> str:
    """A statement's first words (the generator's `query`, `command` or `statement`)."""
    frame = getattr(gen, "gi_frame", None)
    found: Any = None
    if frame is not None:
        for name in ("query", "command", "statement"):
            if name in frame.f_locals:
                found = frame.f_locals[name]
                break
    if found is None:
        code = getattr(gen, "gi_code", None)
        name = code.co_name if code is not None else type(gen).__name__
        return f"{name} after: " + _last_label.get(conn_id, "?")[:60]
    if isinstance(found, bytes | bytearray | memoryview):
        text = bytes(found).decode(errors="replace")
    elif isinstance(found, str):
        text = found
    else:
        try:
            text = found.as_string()
        except Exception:
            text = repr(found)[:200]
    text = _LITERALS.sub("?", _WORDS.sub(" ", str(text)).strip())
    text = re.sub(r'"[a-z0-9_]*bench_stmt[a-z0-9_]*"\.', "", text)
    label = text[:110]
    _last_label[conn_id] = label
    return label


def _install() -> Callable[[], None]:
    original = psycopg.Connection.wait

    def wait(self: psycopg.Connection[Any], gen: Any, *args: Any, **kwargs: Any) -> Any:
        side = getattr(_side, "name", None)
        if side is None or self.pgconn.status != 0:
            return original(self, gen, *args, **kwargs)
        pid = self.pgconn.backend_pid
        label = _label(gen, id(self))
        if self.pgconn.transaction_status == 0 and not self.autocommit:
            label = "(BEGIN) " + label
        _backends.add(pid)
        before = _cpu_ns(pid)
        try:
            return original(self, gen, *args, **kwargs)
        finally:
            entry = _calls[(side, label)]
            entry[0] += 1
            entry[1] += _cpu_ns(pid) - before

    psycopg.Connection.wait = wait  # type: ignore[method-assign]

    def undo() -> None:
        psycopg.Connection.wait = original  # type: ignore[method-assign]

    return undo


def main(argv: list[str]) -> None:
    """Measure and print; see the module."""
    rounds = int(argv[0]) if argv else 100
    batch = int(argv[1]) if len(argv) > 1 else 5
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    queue = f"bench-stmt-{uuid.uuid4().hex[:8]}"
    with fresh_schema("bench_stmt") as schema:
        settings = Settings(
            database_url=PG_URL, database_schema=schema, redis_url=redis_url, celery_queue=queue
        )
        web = bootstrap(settings)
        worker = bootstrap(settings, in_worker=True)
        flags = redis.Redis.from_url(redis_url)
        undo = _install()
        try:
            headers = {"Authorization": f"Bearer {admin_token(web.db)}"}
            client = create_app(web).test_client()
            paths = []
            for i in range(PROJECTS):
                made = client.post("/api/projects", json=registration(f"s{i}"), headers=headers)
                paths.append(f"/api/projects/{made.get_json()['id']}/cost-estimates")
            sent = 0

            def one_round() -> None:
                nonlocal sent
                flags.delete(PENDING_KEY + queue)
                _side.name = "web"
                for _ in range(batch):
                    path = paths[sent % PROJECTS]
                    answer = client.post(path, json=cost_estimate(sent), headers=headers)
                    if answer.status_code != 201:
                        raise RuntimeError(f"{answer.status_code}: {answer.data[:200]!r}")
                    sent += 1
                _side.name = "worker"
                catch_up_all(worker.db, worker.portfolio)
                _side.name = None

            for _ in range(WARMUP_ROUNDS):
                one_round()
            _calls.clear()
            all_before = {pid: _cpu_ns(pid) for pid in _backends}
            known = set(_backends)
            start = time.perf_counter()
            for _ in range(rounds):
                one_round()
            wall = time.perf_counter() - start
            all_after = {pid: _cpu_ns(pid) for pid in _backends}
        finally:
            undo()
            flags.delete(PENDING_KEY + queue, queue)
            worker.close()
            web.close()
    commands = rounds * batch
    print(f"{commands} commands, {rounds} passes of {batch}, {wall:.1f} s")
    print(f"{'side':7} {'trips/cmd':>9} {'µs/trip':>8} {'µs/cmd':>8}  statement")
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for (side, label), (trips, ns) in sorted(_calls.items(), key=lambda kv: (kv[0][0], -kv[1][1])):
        per_cmd = ns / 1000 / commands
        totals[side][0] += trips / commands
        totals[side][1] += per_cmd
        print(f"{side:7} {trips / commands:9.3f} {ns / 1000 / trips:8.1f} {per_cmd:8.1f}  {label}")
    for side, (side_trips, us) in totals.items():
        print(f"{side:7} {side_trips:9.3f} {'':8} {us:8.1f}  TOTAL")
    used = sum(all_after[p] - all_before.get(p, 0) for p in all_after) / 1000
    traced = sum(us for _, us in totals.values()) * commands
    print(
        f"{len(_backends)} backends, {len(_backends - known)} new in the run;"
        f" backends in all: {used / commands:.1f} µs/cmd; outside the round trips:"
        f" {(used - traced) / commands:.1f} µs/cmd"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
