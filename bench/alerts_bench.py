"""Issue 6 benchmarks: alert evaluation throughput, breach-to-webhook latency.

(a) 1,000,000 x BENCH_SCALE events (bench.synthetic) replayed by a catch-up of the
    "alerts" projection against 1,000 subscriptions recorded before them; baseline: the
    raw notification read-and-decode rate of the same log.
(b) From the breaching command (Flask app in-process, production settings: PostgreSQL and
    Redis) to the webhook's receipt by a loopback receiver, through a real `celery worker`
    subprocess; ~100 x BENCH_SCALE breaches (at least 20), one at a time. Baseline: the same
    breach to receipt in the embedded default (SQLite, delivery in-process).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.common import PG_URL, REDIS_URL, SCALE, Result, fresh_schema, ms, pct, raw_decode_rate
from bench.synthetic import MINISTRIES, generate
from domain.subscription import PROJECT_METRICS, make_channel, make_rule
from projections import alerts
from projections.registry import catch_up
from service.app import create_app
from service.bootstrap import Services, bootstrap
from service.config import Settings
from service.tokens import TokenStore

ROOT = Path(__file__).resolve().parents[1]
SUBSCRIPTIONS = 1_000
TODAY = date(2024, 6, 30)
THRESHOLDS = {
    "budget_drift_pct": ("20", "10"),
    "schedule_drift_pct": ("25", "15"),
    "current_cost": ("200000000", "150000000"),
    "rating_at_or_worse": ("Amber/Red", "Amber"),
}


def _subscribe(services: Services, count: int) -> None:
    """`count` subscriptions: 90 % on a ministry, 9 % on every project, 1 % portfolio metrics."""
    channel = make_channel("webhook", url="http://127.0.0.1:9/hook", email=None, secret=None)
    for i in range(count):
        metric = PROJECT_METRICS[i % len(PROJECT_METRICS)]
        threshold, clear = THRESHOLDS[metric]
        comparator = ">=" if metric == "rating_at_or_worse" else ">"
        if i % 100 == 99:
            metric, comparator = "portfolio_mean_budget_drift_pct", ">"
            rule = make_rule(
                metric=metric, comparator=comparator, threshold="15", scope="portfolio"
            )
        elif i % 100 >= 90:
            rule = make_rule(
                metric=metric,
                comparator=comparator,
                threshold=threshold,
                clear_threshold=clear,
                scope="portfolio",
            )
        else:
            rule = make_rule(
                metric=metric,
                comparator=comparator,
                threshold=threshold,
                clear_threshold=clear,
                scope="ministry",
                scope_value=MINISTRIES[i % len(MINISTRIES)],
            )
        services.portfolio.create_subscription(
            owner=f"bench-{i % 50}", rule=rule, channel=channel, actor="bench"
        )


def _throughput() -> list[Result]:
    projects = max(10, int(10_000 * SCALE))
    with fresh_schema("bench_alerts") as schema:
        services = bootstrap(Settings(database_url=PG_URL, database_schema=schema), in_worker=True)
        try:
            portfolio = services.portfolio
            _subscribe(services, SUBSCRIPTIONS)
            with tqdm(total=projects, desc="generate", unit="proj", file=sys.stderr) as bar:
                generate(portfolio, projects=projects, events_per_project=100, progress=bar.update)
            total = portfolio.recorder.max_notification_id() or 0

            raw_rate = raw_decode_rate(portfolio)

            with tqdm(total=total, desc="evaluate", unit="ev", file=sys.stderr) as bar:
                t0 = time.perf_counter()
                applied = catch_up(services.db, portfolio, alerts.NAME, progress=bar.update)
                seconds = time.perf_counter() - t0
            with services.db.transaction(write=False) as tx:
                raised = tx.scalar("SELECT count(*) FROM pr_alerts")
        finally:
            services.close()
    rate = applied / seconds
    return [
        Result(
            "alerts",
            f"evaluation throughput ({applied:,} events, {SUBSCRIPTIONS:,} subscriptions,"
            f" {raised:,} alerts)",
            f"{rate:,.0f} ev/s",
            f"{raw_rate:,.0f} ev/s read+decode",
            f"{rate / raw_rate:.2f}",
            "",
            None,
        )
    ]


class Receiver:
    """A loopback webhook receiver noting when each alert (by project id) arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.event = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                import json

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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, project: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        with self.event:
            while project not in self.arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no webhook for {project} within {timeout} s")
                self.event.wait(left)
            return self.arrived[project]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _breaches(
    services: Services, receiver: Receiver, count: int, settle: Callable[[], None]
) -> list[float]:
    """Register `count` projects, subscribe, then breach each one: seconds to the receipt."""
    app = create_app(services)
    store = TokenStore(services.db)
    store.create_table()
    token = store.create("admin", name=f"bench-{uuid.uuid4().hex[:6]}")[1]
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
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


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.main:app", "worker",
         "--loglevel=WARNING", "--concurrency=3", "--pool=prefork", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "-n", f"bench-{uuid.uuid4().hex[:6]}@%h"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _latency() -> list[Result]:
    count = max(20, int(100 * SCALE))
    receiver = Receiver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            embedded = Settings(
                database_url=f"sqlite:///{tmp}/bench.sqlite3", allow_loopback_webhooks=True
            )
            services = bootstrap(embedded, today=lambda: TODAY)
            try:
                baseline = _breaches(services, receiver, count, lambda: None)
            finally:
                services.close()
        receiver.arrived.clear()
        with fresh_schema("bench_alerts") as schema, tempfile.TemporaryDirectory() as tmp:
            queue = f"bench-{uuid.uuid4().hex[:8]}"
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
            worker = _worker(env, Path(tmp) / "worker.log")

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
                        raise RuntimeError((Path(tmp) / "worker.log").read_text()[-2000:])
                    services.after_commit(head)  # re-enqueue if the first tasks were missed
                    time.sleep(0.5)
                raise TimeoutError("the worker did not catch up")

            try:
                production = _breaches(services, receiver, count, settle)
            finally:
                os.killpg(worker.pid, 15)
                worker.wait(30)
                services.close()
    finally:
        receiver.close()
    return [
        Result(
            "alerts",
            f"breach -> webhook p50 / p99 ({count} breaches, celery worker)",
            f"{ms(pct(production, 0.5))} / {ms(pct(production, 0.99))}",
            f"embedded in-process {ms(pct(baseline, 0.5))} / {ms(pct(baseline, 0.99))}",
            f"{pct(production, 0.5) / pct(baseline, 0.5):.1f}x",
            "",
            None,
        )
    ]


def run() -> list[Result]:
    return _throughput() + _latency()
