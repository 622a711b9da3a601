"""HTTP benchmarks: command throughput over gunicorn (issue 2), projection lag (issue 3).

Both run the production shape on a fresh PostgreSQL schema per measurement: gunicorn
(`panorama serve`, started as `python -m bench.loadgen serve`, see there) on a free
loopback port, and one real Celery worker (`--concurrency=1`) on the same schema and a queue
of its own, so the projection is consumed as in production. No beat: its 5 s safety net
would only hide a lost enqueue, which here shows as a lag failure instead. This process
creates the schema's tables before the servers start (the documented start-up DDL race),
waits for gunicorn to log that it listens on our port and for /readyz, and starts measuring
only once every server process is idle (gunicorn answers /readyz as soon as one worker has
loaded the app, while the others may still be importing). When the service has bearer
tokens, an admin token is created in the schema and sent with every request.

Issue 2, commands per second. C client threads (BENCH_HTTP_CLIENTS, default 8), each with its
own keep-alive `http.client.HTTPConnection`, register one project each, post 10 warm-up cost
estimates, then post cost estimates to their own project (no If-Match, no Idempotency-Key)
for 15 s x BENCH_SCALE (at least 5 s). Every answer must be 201: anything else (or a
transport error) is counted, shown, and fails the row. The baseline is the library alone, in
this process, on a fresh schema: C threads calling `Portfolio.change_project(id,
"reestimate_cost", ...)`. It does *the same work* rather than run for the same duration:
thread i makes exactly as many commands as HTTP client i did, after the same registration
and warm-up. Loading an aggregate replays its whole stream (there are no snapshots), about
25 us per event, so a faster run of the same duration would build longer streams and pay
more per command; equal counts give equal streams, and the ratio HTTP/raw is the cost of the
HTTP path alone. Rates are commands over the wall time from the start barrier to the last
answer; latencies are per request. stderr also shows the cores each component used (and
each gunicorn worker: keep-alive connections stay on the worker that accepted them).

Knobs: BENCH_WEB="2x8" sets the primary run's WEB_CONCURRENCY x WEB_THREADS (default: the
service's defaults). BENCH_HTTP_SWEEP="1x16,2x8,4x4+key,4x4+noworker" adds a row per
variant, each with the primary run's per-client counts and its own raw baseline run right
after it (the host's load drifts within a run); "+key" sends an Idempotency-Key with every
command, "+noworker" enqueues the catch-ups but runs no Celery worker (what the concurrent
projection costs the web tier). BENCH_PYSPY_DIR=dir records py-spy profiles (collapsed
stacks; BENCH_PYSPY_ARGS="--gil" for CPU only) of gunicorn, the worker and the raw baseline.

Issue 3, projection lag. An open-loop pacer schedules command k at t0 + k / 200 s
(BENCH_LAG_RATE) for 20 s x BENCH_SCALE (at least 5 s) after a 1 s warm-up, across 16 sender
threads that take the next due slot from a shared counter and rotate over 2 projects each. A
send that starts late is recorded, and if the server cannot keep up the backlog drains (for
at most 60 s more) and the achieved rate falls short of the offered one, which fails both
rows: the lag was then not measured at the asked load. Every 4th command (>= 500 samples at
scale 1) is followed, by the thread that sent it and on the same connection, by `GET
/api/projects/{id}?min_position={position}`; its lag runs from receiving the 201 (the
command is committed) to that GET answering 200. That is read-your-writes as a client sees
it: the read model reached the command and the API served it. It includes the GET's own
round trip and the server's polling of the tracking position (5, 10, 20, 40, 80, then
100 ms apart, projections.catchup.wait_for), which rounds a true lag up to the next poll: a
client could not see it earlier either. A 503 (not visible within the server's wait) counts
as a failure. An observer polling GET /api/projects/{id} instead would need a request every
few milliseconds per project to be as precise, a load that distorts what it measures.

Baselines, same run. The floor of the method under the same load: another 1 in 4 commands
is followed by the same GET with min_position=0 (always reached), so lag minus floor is what
the projection adds. And the embedded trigger (no REDIS_URL, no worker: each command catches
the projection up before answering, so its lag is one GET round trip) at the same offered
rate, with the rate it reached.

When the service cannot serve the query API, lag is measured in the read model instead:
one observer thread in this process reads the projection's tracking position every 2 ms,
and a command is visible once the position reached it. The rows say which method was used.
"""

from __future__ import annotations

import heapq
import json
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from http.client import HTTPException
from pathlib import Path
from typing import Protocol

from bench.common import PG_URL, REDIS_URL, SCALE, Result, fresh_schema, ms, pct
from bench.loadgen import (
    Client,
    Stack,
    admin_token,
    cost_estimate,
    cpu_by_process,
    cpu_report,
    cpu_snapshot,
    log,
    profiled,
    query_api_problem,
    register,
    server_stack,
    settle,
)
from domain.application import Provenance
from projections.catchup import position
from projections.db import Database
from service.bootstrap import Services, bootstrap
from service.config import Settings

CLIENTS = int(os.environ.get("BENCH_HTTP_CLIENTS", "8"))
WARMUP_COMMANDS = 10
THROUGHPUT_S = max(5.0, 15.0 * SCALE)
TARGET_RATIO = 0.7
LAG_RATE = float(os.environ.get("BENCH_LAG_RATE", "200"))
LAG_S = max(5.0, 20.0 * SCALE)
LAG_WARMUP_S = 1.0
LAG_DRAIN_S = 60.0  # how long past the schedule's end a backlog may drain
LAG_SENDERS = 16
LAG_PROJECTS_EACH = 2
LAG_SAMPLE_EVERY = int(os.environ.get("BENCH_LAG_SAMPLE_EVERY", "4"))
LAG_TARGET_S = 0.250
MAX_CONSECUTIVE_ERRORS = 20
PYSPY_DIR = Path(os.environ["BENCH_PYSPY_DIR"]) if os.environ.get("BENCH_PYSPY_DIR") else None


class CommandFailed(Exception):
    """A command that did not answer 201 (or raised)."""


@dataclass(frozen=True)
class Web:
    """A gunicorn configuration: WEB_CONCURRENCY x WEB_THREADS (None: the service default)."""

    workers: int | None = None
    threads: int | None = None
    keys: bool = False
    worker: bool = True

    @classmethod
    def parse(cls, text: str) -> Web:
        """ "2x4", "x8", "" (defaults), with "+key" and/or "+noworker" appended."""
        shape, *flags = text.split("+")
        w, _, t = shape.partition("x")
        unknown = set(flags) - {"key", "noworker"}
        if unknown:
            raise ValueError(f"unknown variant {unknown} in {text!r}")
        return cls(
            int(w) if w else None, int(t) if t else None, "key" in flags, "noworker" not in flags
        )

    def __str__(self) -> str:
        shape = f"{self.workers or Settings.web_workers}x{self.threads or Settings.web_threads}"
        keys = " + Idempotency-Key" if self.keys else ""
        return shape + keys + ("" if self.worker else " + no Celery worker consuming")


@dataclass
class ThreadStats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)
    end: float = 0.0

    def failed(self, what: str) -> None:
        self.errors += 1
        if len(self.samples) < 3:
            self.samples.append(what[:300])


@dataclass
class Load:
    """What a closed-loop run did."""

    label: str
    per_thread: list[int]
    latencies: list[float]
    errors: int
    samples: list[str]
    elapsed: float
    truncated: bool
    cpu: str

    @property
    def total(self) -> int:
        return sum(self.per_thread)

    @property
    def rate(self) -> float:
        return self.total / self.elapsed if self.elapsed > 0 else 0.0

    def describe(self) -> str:
        return (
            f"{self.label}: {self.total} commands in {self.elapsed:.1f} s = {self.rate:.0f} cmd/s,"
            f" latency p50 / p99 {p50_p99(self.latencies)}, {self.errors} errors"
            + (" (stopped by its deadline)" if self.truncated else "")
            + f"; {self.cpu}"
        )


Command = Callable[[int], None]


@dataclass
class Marks:
    """When the start barrier opened, and the CPU counters then."""

    t0: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)


def closed_loop(
    label: str,
    clients: int,
    setup: Callable[[int], Command],
    *,
    duration_s: float | None = None,
    counts: list[int] | None = None,
    groups: dict[str, int] | None = None,
) -> Load:
    """C threads: setup(i) (registration + warm-up), a barrier, then commands back to back.

    Each thread runs for `duration_s`, or makes exactly `counts[i]` commands (bounded by a
    deadline well past the expected time).
    """
    stats = [ThreadStats() for _ in range(clients)]
    done = [0] * clients
    marks = Marks()

    def started() -> None:
        if groups:
            waited = settle(groups)
            if waited > 2:
                log(f"{label}: waited {waited:.1f} s for the servers to go idle")
        marks.cpu = cpu_snapshot(groups or {})
        marks.t0 = time.perf_counter()

    barrier = threading.Barrier(clients, action=started)
    budget = duration_s if duration_s is not None else max(60.0, 6 * THROUGHPUT_S)

    def body(i: int) -> None:
        st = stats[i]
        try:
            command = setup(i)
        except Exception as error:
            st.failed(f"setup: {error}")
            barrier.abort()
            return
        try:
            barrier.wait(timeout=180)
        except threading.BrokenBarrierError:
            return
        deadline = marks.t0 + budget
        n, consecutive = 0, 0
        while time.perf_counter() < deadline and (counts is None or n < counts[i]):
            t0 = time.perf_counter()
            try:
                command(n)
            except Exception as error:
                st.failed(f"{type(error).__name__}: {error}")
                consecutive += 1
                if consecutive >= MAX_CONSECUTIVE_ERRORS:
                    break
                continue
            st.latencies.append(time.perf_counter() - t0)
            n += 1
            consecutive = 0
        done[i] = n
        st.end = time.perf_counter()

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=budget + 300)
    after = cpu_snapshot(groups or {})
    hung = sum(t.is_alive() for t in threads)
    end = max((s.end for s in stats), default=0.0)
    elapsed = end - marks.t0 if marks.t0 and end else 0.0
    cpu = cpu_report(marks.cpu, after, elapsed) if marks.cpu and elapsed else ""
    errors = sum(s.errors for s in stats) + hung
    samples = [x for s in stats for x in s.samples][:5] + ([f"{hung} hung threads"] * bool(hung))
    truncated = counts is not None and sum(done) < sum(counts)
    return Load(
        label,
        done,
        [x for s in stats for x in s.latencies],
        errors,
        samples,
        elapsed,
        truncated,
        cpu,
    )


# -- issue 2 ---------------------------------------------------------------------------------
def http_setup(stack: Stack, label: str, keys: bool) -> Callable[[int], Command]:
    """Per client: its connection, its project, its warm-up; then a cost-estimate poster."""

    def setup(i: int) -> Command:
        client = stack.client(f"bench-{i}")
        project_id, _ = register(client, f"{label} {i}")
        path = f"/api/projects/{project_id}/cost-estimates"

        def post(n: int) -> None:
            headers = {"Idempotency-Key": uuid.uuid4().hex} if keys else None
            try:
                status, payload = client.request("POST", path, cost_estimate(n), headers)
            except (OSError, HTTPException) as error:
                raise CommandFailed(f"transport: {error!r}") from error
            if status != 201:
                raise CommandFailed(f"{status}: {payload[:200]!r}")

        for n in range(WARMUP_COMMANDS):
            post(-1 - n)
        return post

    return setup


def raw_setup(services: Services) -> Callable[[int], Command]:
    """Per thread: its project through the library, its warm-up; then change_project."""
    portfolio = services.portfolio

    def setup(i: int) -> Command:
        actor = f"bench-{i}"
        project = portfolio.register_project(
            Provenance(effective_date=date(2024, 1, 15), actor=actor),
            name=f"raw {i}",
            ministry_code="MINARM",
        )
        prov = Provenance(effective_date=date(2024, 3, 1), actor=actor)

        def change(n: int) -> None:
            portfolio.change_project(
                project.id, "reestimate_cost", prov, amount=Decimal(f"{1000 + n}.00")
            )

        for n in range(WARMUP_COMMANDS):
            change(-1 - n)
        return change

    return setup


def schema_services(schema: str) -> Services:
    """The services on `schema`, built here first so that the servers find the tables."""
    return bootstrap(Settings(database_url=PG_URL, database_schema=schema), in_worker=True)


def http_run(web: Web, *, duration_s: float | None, counts: list[int] | None, tag: str) -> Load:
    with fresh_schema("bench_http") as schema:
        schema_services(schema).close()
        with server_stack(
            schema=schema,
            database_url=PG_URL,
            redis_url=REDIS_URL,
            web_workers=web.workers,
            web_threads=web.threads,
            celery=web.worker,
            token=admin_token(PG_URL, schema),
        ) as stack:
            log(f"{tag}: gunicorn {web} on :{stack.port}, celery queue {stack.queue}")
            settle(stack.groups())
            spy = PYSPY_DIR / f"http-{tag}-gunicorn.txt" if PYSPY_DIR else None
            spy_celery = PYSPY_DIR / f"http-{tag}-celery.txt" if PYSPY_DIR else None
            master = stack.procs["gunicorn"].pid
            celery_pid = stack.procs["celery"].pid if "celery" in stack.procs else 0
            workers_before = cpu_by_process(master)
            clock = time.perf_counter()
            with (
                profiled(master, spy, THROUGHPUT_S + 3, True),
                profiled(celery_pid, spy_celery if celery_pid else None, THROUGHPUT_S + 3, True),
            ):
                load = closed_loop(
                    f"HTTP {web}",
                    CLIENTS,
                    http_setup(stack, f"bench {tag}", web.keys),
                    duration_s=duration_s,
                    counts=counts,
                    groups=stack.groups(),
                )
            wall = time.perf_counter() - clock
            shares = [
                (seconds - workers_before.get(pid, seconds)) / wall
                for pid, seconds in cpu_by_process(master).items()
                if pid != master
            ]
            log(
                f"{tag}: cores used by each gunicorn worker (connections stick to the worker"
                f" that accepted them): {', '.join(f'{x:.2f}' for x in sorted(shares))}"
            )
            stack.check_alive()
            if load.errors:
                log(f"server logs:\n{stack.tail()}")
    log(load.describe())
    for sample in load.samples:
        log(f"  error: {sample}")
    return load


def raw_run(counts: list[int]) -> Load:
    with fresh_schema("bench_raw") as schema:
        services = schema_services(schema)
        try:
            spy = PYSPY_DIR / "raw.txt" if PYSPY_DIR else None
            with profiled(os.getpid(), spy, THROUGHPUT_S, False):
                load = closed_loop(
                    "raw change_project", CLIENTS, raw_setup(services), counts=counts
                )
        finally:
            services.close()
    log(load.describe())
    for sample in load.samples:
        log(f"  error: {sample}")
    return load


def throughput() -> list[Result]:
    primary = Web.parse(os.environ.get("BENCH_WEB", ""))
    log(f"issue 2: {CLIENTS} clients, {THROUGHPUT_S:.0f} s over HTTP, then the same work raw")
    http = http_run(primary, duration_s=THROUGHPUT_S, counts=None, tag="primary")
    counts = http.per_thread
    raw = raw_run(counts)
    ratio = http.rate / raw.rate if raw.rate else 0.0
    clean = http.errors == 0 and raw.errors == 0 and not raw.truncated and http.total > 0

    def lat(load: Load) -> str:
        return p50_p99(load.latencies)

    results = [
        Result(
            "http",
            f"commands/s, C={CLIENTS}, gunicorn {primary} + celery",
            f"{http.rate:,.0f} cmd/s ({http.total:,} cmds, {http.errors} errors)",
            f"raw change_project {raw.rate:,.0f} cmd/s ({raw.errors} errors)",
            f"{ratio:.2f}",
            f">= {TARGET_RATIO} x raw",
            clean and ratio >= TARGET_RATIO,
        ),
        Result(
            "http",
            "command latency p50 / p99",
            lat(http),
            f"raw {lat(raw)}",
            f"{pct(http.latencies, 0.5) / pct(raw.latencies, 0.5):.2f} (p50)" if clean else "",
            "",
            None,
        ),
    ]
    for text in filter(None, os.environ.get("BENCH_HTTP_SWEEP", "").split(",")):
        web = Web.parse(text.strip())

        def variant(web: Web = web, tag: str = text.strip().replace("+", "_")) -> list[Result]:
            # Its own raw baseline right after it: the host's load drifts within a run.
            other = http_run(web, duration_s=None, counts=counts, tag=tag)
            near = raw_run(counts)
            return [
                Result(
                    "http",
                    f"commands/s, gunicorn {web} (same counts)",
                    f"{other.rate:,.0f} cmd/s, p50 / p99 {lat(other)} ({other.errors} errors)",
                    f"raw {near.rate:,.0f} cmd/s, run just after",
                    f"{other.rate / near.rate:.2f}" if near.rate else "",
                    f">= {TARGET_RATIO} x raw",
                    None if other.errors == 0 and near.errors == 0 else False,
                )
            ]

        results += guarded(f"http {web}", variant)
    return results


# -- issue 3 ---------------------------------------------------------------------------------
@dataclass
class Lags:
    lags: list[float]
    failures: int
    samples: list[str]
    floor: list[float] = field(default_factory=list)


class Probe(Protocol):
    method: str

    def observe(self, client: Client, committed_at: float, project_id: str, at: int) -> None: ...

    def floor(self, client: Client, project_id: str) -> None: ...

    def finish(self, timeout_s: float) -> Lags: ...


class ApiProbe:
    """The sender itself, on its connection: GET ?min_position=N right after the 201.

    No hand-off to another thread, whose wake-up on a loaded host would add to the lag.
    """

    method = "GET ?min_position"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.result = Lags([], 0, [])

    def floor(self, client: Client, project_id: str) -> None:
        """The same GET for a position already reached: the method's floor under this load."""
        start = time.perf_counter()
        try:
            status, _ = client.request("GET", f"/api/projects/{project_id}?min_position=0")
        except (OSError, HTTPException):
            status = -1
        with self.lock:
            if status == 200:
                self.result.floor.append(time.perf_counter() - start)
            else:
                self.result.failures += 1

    def observe(self, client: Client, committed_at: float, project_id: str, at: int) -> None:
        try:
            status, payload = client.request("GET", f"/api/projects/{project_id}?min_position={at}")
        except (OSError, HTTPException) as error:
            status, payload = -1, repr(error).encode()
        seen = time.perf_counter()
        with self.lock:
            if status == 200:
                self.result.lags.append(seen - committed_at)
            else:
                self.result.failures += 1
                if len(self.result.samples) < 3:
                    self.result.samples.append(f"{status}: {payload[:200]!r}")

    def finish(self, timeout_s: float) -> Lags:
        with self.lock:
            return self.result


class ReadModelProbe:
    """One observer thread: the projection's tracking position, read every `poll_s`."""

    method = "tracking position (query API unavailable)"

    def __init__(self, schema: str, poll_s: float = 0.002) -> None:
        self.db = Database(dialect="postgres", conninfo=PG_URL, schema=schema, pool_size=1)
        self.poll_s = poll_s
        self.pending: list[tuple[int, float, float]] = []  # (position, committed, submitted)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.result = Lags([], 0, [])
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def floor(self, client: Client, project_id: str) -> None:
        return  # the observer's floor is its polling period

    def observe(self, client: Client, committed_at: float, project_id: str, at: int) -> None:
        with self.lock:
            heapq.heappush(self.pending, (at, committed_at, time.perf_counter()))

    def _run(self) -> None:
        while not self.stop.is_set():
            asked = time.perf_counter()
            with self.db.transaction(write=False) as tx:
                reached = position(tx)
            seen = time.perf_counter()
            with self.lock:
                later = []
                while self.pending and self.pending[0][0] <= reached:
                    at, committed, submitted = heapq.heappop(self.pending)
                    if submitted > asked:  # submitted after the read began: next read
                        later.append((at, committed, submitted))
                        continue
                    self.result.lags.append(seen - committed)
                for item in later:
                    heapq.heappush(self.pending, item)
            time.sleep(self.poll_s)

    def finish(self, timeout_s: float) -> Lags:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if not self.pending:
                    break
            time.sleep(0.05)
        self.stop.set()
        self.thread.join(timeout=5)
        self.db.close()
        with self.lock:
            self.result.failures += len(self.pending)
            if self.pending:
                self.result.samples.append(f"{len(self.pending)} commands never became visible")
            return self.result


@dataclass
class Tally:
    sent: int = 0
    ok: int = 0
    errors: int = 0
    dropped: int = 0
    last: float = 0.0


@dataclass
class Paced:
    sent: int
    ok: int
    errors: int
    samples: list[str]
    elapsed: float
    late: list[float]
    latencies: list[float]
    lags: Lags
    method: str
    cpu: str

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0


def await_pipeline(stack: Stack, timeout_s: float = 90.0) -> bool:
    """Wait until a fresh command is visible; True when through the API, False via the DB."""
    client = stack.client("bench-probe")
    project_id, at = register(client, "pipeline probe")
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            stack.check_alive()
            status, payload = client.request("GET", f"/api/projects/{project_id}?min_position={at}")
            if status == 200:
                return True
            if status in (404, 405):
                log(f"GET /api/projects/{{id}} -> {status}: the query API is not served")
                break
            if status != 503:
                raise RuntimeError(f"GET /api/projects/{{id}} -> {status}: {payload[:300]!r}")
    finally:
        client.close()
    db = Database(dialect="postgres", conninfo=PG_URL, schema=stack.schema, pool_size=1)
    try:
        while time.monotonic() < deadline:
            stack.check_alive()
            with db.transaction(write=False) as tx:
                if position(tx) >= at:
                    return False
            time.sleep(0.05)
    finally:
        db.close()
    raise TimeoutError(f"the projection did not reach position {at} in {timeout_s:.0f} s")


def paced_run(stack: Stack, probe: Probe) -> Paced:
    """Open loop: command k is due at t0 + k / rate; senders take the next due slot."""
    registrar = stack.client("bench-pacer")
    projects = [
        [register(registrar, f"paced {s}.{k}")[0] for k in range(LAG_PROJECTS_EACH)]
        for s in range(LAG_SENDERS)
    ]
    registrar.close()
    lock = threading.Lock()
    slots = iter(range(10**9))
    t0 = time.perf_counter() + 0.2
    measured_from = t0 + LAG_WARMUP_S
    stop_at = measured_from + LAG_S
    late: list[float] = []
    latencies: list[float] = []
    counted = Tally(last=measured_from)
    samples: list[str] = []
    cpu_before = cpu_snapshot(stack.groups())

    def sender(s: int) -> None:
        client = stack.client(f"bench-{s}")
        mine = projects[s]
        k = 0
        while True:
            with lock:
                slot = next(slots)
            due = t0 + slot / LAG_RATE
            if due >= stop_at:
                break
            if time.perf_counter() > stop_at + LAG_DRAIN_S:  # hopelessly behind: give up
                with lock:
                    counted.dropped += due >= measured_from
                continue
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            start = time.perf_counter()
            project_id = mine[k % len(mine)]
            k += 1
            path = f"/api/projects/{project_id}/cost-estimates"
            try:
                status, payload = client.request("POST", path, cost_estimate(slot))
            except (OSError, HTTPException) as error:
                status, payload = -1, repr(error).encode()
            answered = time.perf_counter()
            measured = due >= measured_from
            if status == 201 and measured and slot % LAG_SAMPLE_EVERY == 0:
                probe.observe(client, answered, project_id, int(json.loads(payload)["position"]))
            elif status == 201 and measured and slot % LAG_SAMPLE_EVERY == LAG_SAMPLE_EVERY // 2:
                probe.floor(client, project_id)
            if not measured:
                continue
            with lock:
                counted.sent += 1
                late.append(start - due)
                latencies.append(answered - due)  # from the due time: no coordinated omission
                if status == 201:
                    counted.ok += 1
                    counted.last = max(counted.last, answered)
                else:
                    counted.errors += 1
                    if len(samples) < 3:
                        samples.append(f"{status}: {payload[:200]!r}")
        client.close()

    threads = [threading.Thread(target=sender, args=(s,), daemon=True) for s in range(LAG_SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=LAG_WARMUP_S + LAG_S + LAG_DRAIN_S + 60)
    hung = sum(t.is_alive() for t in threads)
    if counted.dropped:
        samples.append(f"{counted.dropped} commands not sent: over {LAG_DRAIN_S:.0f} s behind")
    lags = probe.finish(timeout_s=30)
    elapsed = counted.last - measured_from
    cpu = cpu_report(cpu_before, cpu_snapshot(stack.groups()), time.perf_counter() - t0)
    return Paced(
        counted.sent,
        counted.ok,
        counted.errors + counted.dropped + hung,
        samples,
        elapsed,
        late,
        latencies,
        lags,
        probe.method,
        cpu,
    )


def lag_run(*, celery: bool) -> Paced:
    label = "celery worker" if celery else "embedded catch-up"
    with fresh_schema("bench_lag") as schema:
        schema_services(schema).close()
        with server_stack(
            schema=schema,
            database_url=PG_URL,
            redis_url=REDIS_URL if celery else None,
            token=admin_token(PG_URL, schema),
        ) as stack:
            log(f"lag, {label}: gunicorn {Web()} on :{stack.port}")
            # Every worker booted first: a worker's start-up DDL (projections.registry.setup_all)
            # can deadlock with a catch-up that commands run meanwhile, and gunicorn then
            # stops altogether ("Worker failed to boot").
            settle(stack.groups())
            through_api = await_pipeline(stack)
            probe: Probe = ApiProbe() if through_api else ReadModelProbe(schema)
            paced = paced_run(stack, probe)
            stack.check_alive()
    lags = paced.lags.lags
    log(
        f"lag, {label}: {paced.ok}/{paced.sent} commands in {paced.elapsed:.1f} s"
        f" = {paced.rate:.0f} cmd/s (offered {LAG_RATE:.0f}), {paced.errors} errors;"
        f" command latency from due time p50 / p99 {p50_p99(paced.latencies)};"
        f" sends late > 20 ms: {sum(x > 0.020 for x in paced.late)};"
        f" lag ({paced.method}) n={len(lags)} p50 / p99 {p50_p99(lags)}"
        f" max {ms(max(lags, default=0.0))}, {paced.lags.failures} failures;"
        f" floor GET n={len(paced.lags.floor)} p50 / p99 {p50_p99(paced.lags.floor)};"
        f" {paced.cpu}"
    )
    for sample in paced.samples + paced.lags.samples:
        log(f"  error: {sample}")
    return paced


def projection_lag() -> list[Result]:
    log(f"issue 3: {LAG_RATE:.0f} cmd/s open loop, {LAG_S:.0f} s, lag of 1 in {LAG_SAMPLE_EVERY}")
    problem = query_api_problem()
    if problem:
        log(f"the query API cannot be served ({problem}): lag measured in the read model")
    prod = lag_run(celery=True)
    base = lag_run(celery=False)
    p, b, f = prod.lags.lags, base.lags.lags, prod.lags.floor
    if not p:
        return [Result("lag", "projection lag", "no samples", "", "", "p99 <= 250 ms", False)]
    clean = prod.errors == 0 and prod.lags.failures == 0
    offered_ok = prod.rate >= 0.95 * LAG_RATE
    via = "" if prod.method.startswith("GET") else f", via {prod.method}"
    floor = f"API floor {p50_p99(f)}; " if f else ""
    return [
        Result(
            "lag",
            f"projection lag p50 / p99 @ {LAG_RATE:.0f} cmd/s, celery (n={len(p)}{via})",
            f"{p50_p99(p)} ({prod.lags.failures} failures)",
            f"{floor}embedded catch-up {p50_p99(b)} at {base.rate:,.0f} cmd/s",
            f"{pct(p, 0.99) / pct(f or b, 0.99):.1f}x (p99 / floor p99)" if f or b else "",
            "p99 <= 250 ms",
            clean and offered_ok and pct(p, 0.99) <= LAG_TARGET_S,
        ),
        Result(
            "lag",
            f"achieved command rate (offered {LAG_RATE:.0f} cmd/s, open loop)",
            f"{prod.rate:,.0f} cmd/s ({prod.errors} errors),"
            f" latency from due p50 / p99 {p50_p99(prod.latencies)}",
            f"embedded catch-up {base.rate:,.0f} cmd/s, {p50_p99(base.latencies)}",
            f"{prod.rate / LAG_RATE:.2f} of offered",
            ">= 0.95 of offered",
            clean and offered_ok,
        ),
    ]


def p50_p99(samples: list[float]) -> str:
    """ "p50 / p99" of the samples, or "n/a"."""
    if not samples:
        return "n/a"
    return f"{ms(pct(samples, 0.5))} / {ms(pct(samples, 0.99))}"


def guarded(bench: str, measure: Callable[[], list[Result]]) -> list[Result]:
    """The measurement's rows, or one failed row saying why (the traceback goes to stderr)."""
    try:
        return measure()
    except Exception as error:
        log(f"{bench} failed:\n{traceback.format_exc()}")
        return [
            Result(
                bench,
                "benchmark failed",
                f"{type(error).__name__}: {error}"[:160].replace("|", "/").replace("\n", " "),
                "",
                "",
                "",
                False,
            )
        ]


def run() -> list[Result]:
    if PYSPY_DIR is not None:
        PYSPY_DIR.mkdir(parents=True, exist_ok=True)
    return guarded("http", throughput) + guarded("lag", projection_lag)
