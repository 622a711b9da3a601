"""Breach to webhook: from the breaching command to the webhook's receipt, through a worker.

The Flask app runs in-process with production settings (PostgreSQL and Redis); a real
`celery worker` subprocess catches the alerts projection up and delivers to a loopback
receiver; ~100 x BENCH_SCALE breaches (at least 20), one at a time. Baseline: the same breach
to receipt in the embedded default (SQLite, delivery in-process, inside the command).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import uuid4

from tqdm import tqdm

from bench.harness.client import HOST, admin_token
from bench.harness.config import PG_URL, REDIS_URL, ROOT, SCALE
from bench.harness.db import fresh_schema
from bench.harness.processes import CeleryWorkers
from bench.harness.results import Figure, Result
from bench.harness.stats import ms, p99_ms, pct
from projections import alerts
from service.app import create_app
from service.bootstrap import Services, bootstrap
from service.config import Settings

TODAY = date(2024, 6, 30)
TARGET_P99_MS = 100


class Receiver:
    """A loopback webhook receiver noting when each alert (by project id) arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.event = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                at = time.perf_counter()
                project = (json.loads(body).get("project") or {}).get("id")
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver.event:
                    receiver.arrived.setdefault(str(project), at)
                    receiver.event.notify_all()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, project: str, timeout: float) -> float:
        """When the webhook for `project` arrived (perf_counter), waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        with self.event:
            while project not in self.arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no webhook for {project} within {timeout} s")
                self.event.wait(left)
            return self.arrived[project]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def _breaches(
    services: Services, receiver: Receiver, count: int, settle: Callable[[], None]
) -> list[float]:
    """Register `count` projects, subscribe, then breach each one: seconds to the receipt."""
    app = create_app(services)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {admin_token(services.db)}"
    body = {"metric": "budget_drift_pct", "comparator": ">", "threshold": "20",
            "scope": "portfolio", "channel": "webhook", "url": receiver.url}  # fmt: skip
    created = client.post("/api/subscriptions", json=body)
    assert created.status_code == 201, created.get_json()
    ids = []
    for i in range(count):
        response = client.post(
            "/api/projects",
            json={
                "name": f"Bench {i}",
                "ministry_code": "MEF",
                "cost": "100.00",
                "effective_date": "2024-01-15",
            },  # fmt: skip
        )
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["id"])
    settle()
    latencies = []
    for pid in tqdm(ids, desc="breach", unit="alert", file=sys.stderr):
        t0 = time.perf_counter()
        response = client.post(
            f"/api/projects/{pid}/cost-estimates",
            json={"amount": "150.00", "effective_date": "2024-03-01"},
        )
        assert response.status_code == 201, response.get_json()
        latencies.append(receiver.wait(pid, 60) - t0)
    return latencies


def _embedded(receiver: Receiver, count: int) -> list[float]:
    """The baseline: the embedded default, delivery in-process."""
    with tempfile.TemporaryDirectory() as tmp:
        embedded = Settings(
            database_url=f"sqlite:///{tmp}/bench.sqlite3", allow_loopback_webhooks=True
        )
        services = bootstrap(embedded, today=lambda: TODAY)
        try:
            return _breaches(services, receiver, count, lambda: None)
        finally:
            services.close()


def _through_worker(receiver: Receiver, count: int) -> list[float]:
    """PostgreSQL + Redis, a real Celery worker catching up and delivering."""
    with fresh_schema("bench_alerts") as schema, tempfile.TemporaryDirectory() as tmp:
        queue = f"bench-{uuid4().hex[:8]}"
        settings = Settings(
            database_url=PG_URL,
            database_schema=schema,
            redis_url=REDIS_URL,
            celery_queue=queue,
            allow_loopback_webhooks=True,
        )
        services = bootstrap(settings, today=lambda: TODAY)
        env = dict(os.environ, DATABASE_URL=PG_URL, DATABASE_SCHEMA=schema,
                   REDIS_URL=REDIS_URL, CELERY_QUEUE=queue, ALLOW_LOOPBACK_WEBHOOKS="true",
                   PYTHONPATH=str(ROOT))  # fmt: skip
        workers = CeleryWorkers(env, Path(tmp))
        worker = workers.start(3, loglevel="WARNING", name=f"bench-{uuid4().hex[:6]}@%h")

        def settle() -> None:
            """Wait until the worker has caught the alerts projection up."""
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                head = services.portfolio.recorder.max_notification_id() or 0
                with services.db.transaction(write=False) as tx:
                    at = tx.scalar(
                        "SELECT position FROM pr_tracking WHERE name = %s", (alerts.NAME,)
                    )
                if int(at or 0) >= head:
                    return
                if worker.poll() is not None:
                    raise RuntimeError(workers.logs(2000))
                services.after_commit(head)  # re-enqueue if the first tasks were missed
                time.sleep(0.5)
            raise TimeoutError("the worker did not catch up")

        try:
            return _breaches(services, receiver, count, settle)
        finally:
            workers.stop_all(graceful=True)
            services.close()


def run() -> list[Result]:
    """The breach-to-webhook row."""
    count = max(20, int(100 * SCALE))
    receiver = Receiver()
    try:
        baseline = _embedded(receiver, count)
        receiver.arrived.clear()
        production = _through_worker(receiver, count)
    finally:
        receiver.close()
    target = f"p99 <= {TARGET_P99_MS} ms"
    met = p99_ms(production) <= TARGET_P99_MS
    return [
        Result(
            "alerts",
            f"breach -> webhook p50 / p99 ({count} breaches, celery worker)",
            f"{ms(pct(production, 0.5))} / {ms(pct(production, 0.99))}",
            f"embedded in-process {ms(pct(baseline, 0.5))} / {ms(pct(baseline, 0.99))}",
            f"{pct(production, 0.5) / pct(baseline, 0.5):.1f}x",
            target,
            met,
            (
                Figure(
                    "alerts.breach_to_webhook_p99_ms",
                    p99_ms(production),
                    "ms",
                    "embedded in-process",
                    p99_ms(baseline),
                    target,
                    met,
                ),
            ),
        )
    ]
