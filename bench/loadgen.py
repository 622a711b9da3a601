"""Load-generation helpers for `bench.http_bench`: the server stack, HTTP clients, CPU use.

`python -m bench.loadgen serve` is `panorama serve` (the same click command, the same
gunicorn options, settings from the environment), with one addition: when the app the
service builds does not serve the query API (`service.queries.reads`, GET
/api/projects/{id}), the query blueprint is registered on it, so that the projection-lag
benchmark can read through the API. If that blueprint cannot even be imported, nothing is
added (the reason goes to the server's stderr) and the benchmark measures visibility in the
read model instead; `query_api_problem()` gives the reason to the parent process. Two
experiment knobs, off unless set, are read there too (see `_experiment_knobs`).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # loopback only
REGISTERED_ON = "2024-01-15"
EFFECTIVE_ON = "2024-03-01"
IDLE_REOPEN_S = 1.0  # gunicorn closes keep-alive connections idle for 2 s (its default)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[http {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# -- HTTP ------------------------------------------------------------------------------------
class Client:
    """One keep-alive HTTP/1.1 connection to the server (one per thread, never shared)."""

    def __init__(
        self, port: int, *, actor: str = "bench", token: str | None = None, timeout: float = 30.0
    ) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self.headers = {"X-Actor": actor}
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"
        self.last_used = 0.0

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Send one request and read the whole answer; transport errors propagate."""
        if time.monotonic() - self.last_used > IDLE_REOPEN_S:
            self.conn.close()  # reopened by the next request, instead of a reset mid-request
        sent = {**self.headers, **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=sent)
            response = self.conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        finally:
            self.last_used = time.monotonic()
        if response.will_close:
            self.conn.close()
        return response.status, payload

    def close(self) -> None:
        self.conn.close()


def registration(name: str) -> dict[str, Any]:
    """The body of POST /api/projects."""
    return {"name": name, "ministry_code": "MINARM", "effective_date": REGISTERED_ON}


def cost_estimate(n: int) -> dict[str, Any]:
    """The body of POST /api/projects/{id}/cost-estimates."""
    return {"amount": f"{1000 + n}.00", "effective_date": EFFECTIVE_ON}


def register(client: Client, name: str) -> tuple[str, int]:
    """Register a project over HTTP; (id, position), or RuntimeError on anything but 201."""
    status, payload = client.request("POST", "/api/projects", registration(name))
    if status != 201:
        raise RuntimeError(f"POST /api/projects -> {status}: {payload[:300]!r}")
    body = json.loads(payload)
    return str(body["id"]), int(body["position"])


def admin_token(database_url: str, schema: str) -> str | None:
    """An admin bearer token in `schema`, when the service has tokens (None before them)."""
    try:
        from service.tokens import TokenStore
    except ImportError:
        return None
    from projections.db import Database

    db = Database(dialect="postgres", conninfo=database_url, schema=schema, pool_size=1)
    try:
        store = TokenStore(db)
        store.create_table()
        _, token = store.create("admin", name=f"bench-{uuid.uuid4().hex[:8]}")
        return token
    finally:
        db.close()


# -- CPU accounting --------------------------------------------------------------------------
def _proc_stats() -> Iterator[tuple[int, str, int, float]]:
    """(pid, comm, process group, CPU seconds) of every live process."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.find("(") + 1 : raw.rfind(")")]
        rest = raw[raw.rfind(")") + 2 :].split()
        yield int(entry.name), comm, int(rest[2]), (int(rest[11]) + int(rest[12])) / CLK_TCK


def cpu_snapshot(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process group, of PostgreSQL, Redis and this process."""
    out = dict.fromkeys([*groups, "postgres", "redis", "bench process"], 0.0)
    by_group = {pgid: name for name, pgid in groups.items()}
    for pid, comm, pgid, seconds in _proc_stats():
        if pgid in by_group:
            out[by_group[pgid]] += seconds
        elif comm == "postgres":
            out["postgres"] += seconds
        elif comm.startswith("redis-server"):
            out["redis"] += seconds
        elif pid == os.getpid():
            out["bench process"] += seconds
    return out


def settle(
    groups: dict[str, int], *, quiet: float = 0.1, window_s: float = 0.5, timeout_s: float = 60.0
) -> float:
    """Wait until the process groups use less than `quiet` cores (workers done booting).

    gunicorn answers /readyz as soon as one worker has loaded the app, while the others may
    still be importing; a measurement must not start before they are all idle (two quiet
    windows in a row). Returns the seconds waited.
    """
    start = time.monotonic()
    before = cpu_snapshot(groups)
    quiet_windows = 0
    while time.monotonic() - start < timeout_s and quiet_windows < 2:
        time.sleep(window_s)
        after = cpu_snapshot(groups)
        used = sum(after[name] - before[name] for name in groups) / window_s
        quiet_windows = quiet_windows + 1 if used < quiet else 0
        before = after
    return time.monotonic() - start


def cpu_by_process(pgid: int) -> dict[int, float]:
    """CPU seconds so far of each live process of a process group."""
    return {pid: seconds for pid, _, group, seconds in _proc_stats() if group == pgid}


def cpu_report(before: dict[str, float], after: dict[str, float], wall: float) -> str:
    """Cores used by each component between two snapshots (machine-wide for PG and Redis)."""
    parts = [f"{name} {(after[name] - before[name]) / wall:.2f}" for name in after]
    return "cores used: " + ", ".join(parts)


# -- the server stack ------------------------------------------------------------------------
@dataclass
class Stack:
    """gunicorn (and a Celery worker) serving one schema on a loopback port."""

    port: int
    schema: str
    queue: str | None
    web: str
    log_dir: Path
    token: str | None = None  # an admin bearer token, once the service has tokens
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def client(self, actor: str, timeout: float = 30.0) -> Client:
        """A new keep-alive connection to this server, with the token when there is one."""
        return Client(self.port, actor=actor, token=self.token, timeout=timeout)

    def groups(self) -> dict[str, int]:
        """Process-group id of each subprocess (each runs in its own session)."""
        return {name: proc.pid for name, proc in self.procs.items()}

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}"
            for p in sorted(self.log_dir.glob("*.log"))
        )


def _spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as out:
        return subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed as a whole
        )


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 8.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left of it."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; make sure no forked child outlives it
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return


def _wait_ready(stack: Stack, timeout_s: float = 90.0) -> None:
    """gunicorn says it listens on our port (so no other server owns it) and /readyz is 200."""
    deadline = time.monotonic() + timeout_s
    listening = f"Listening at: http://{HOST}:{stack.port} ({stack.procs['gunicorn'].pid})"
    web_log = stack.log_dir / "web.log"
    while time.monotonic() < deadline:
        stack.check_alive()
        if listening not in web_log.read_text(errors="replace"):
            time.sleep(0.1)
            continue
        client = Client(stack.port, timeout=5.0)
        try:
            status, _ = client.request("GET", "/readyz")
            if status == 200:
                return
        except OSError:
            pass
        finally:
            client.close()
        time.sleep(0.1)
    raise TimeoutError(f"/readyz did not answer 200 within {timeout_s:.0f} s:\n{stack.tail()}")


@contextmanager
def server_stack(
    *,
    schema: str,
    database_url: str,
    redis_url: str | None,
    web_workers: int | None = None,
    web_threads: int | None = None,
    celery: bool = True,
    token: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """gunicorn on a free loopback port, plus one Celery worker when `redis_url` is given.

    `celery=False` with a `redis_url` is a diagnostic: commands are enqueued, nothing
    consumes them (the queue is deleted afterwards).

    Without `redis_url` the service runs its embedded trigger: each command catches the
    projection up in-process before answering. Every subprocess is killed on exit.
    """
    port = free_port()
    queue = f"bench-{uuid.uuid4().hex[:10]}" if redis_url else None
    env = {k: v for k, v in os.environ.items() if k not in _OWN_VARIABLES}
    env.update(
        DATABASE_URL=database_url,
        DATABASE_SCHEMA=schema,
        PANORAMA_HOST=HOST,
        PANORAMA_PORT=str(port),
        PYTHONPATH=str(ROOT),
        LOG_LEVEL="INFO",  # the default; gunicorn then logs the address it listens at
        **(extra_env or {}),
    )
    if web_workers:
        env["WEB_CONCURRENCY"] = str(web_workers)
    if web_threads:
        env["WEB_THREADS"] = str(web_threads)
    if redis_url and queue:
        env.update(REDIS_URL=redis_url, CELERY_QUEUE=queue)
    web = f"{web_workers or 'default'}x{web_threads or 'default'}"
    with tempfile.TemporaryDirectory(prefix="panorama-bench-") as tmp:
        stack = Stack(port, schema, queue, web, Path(tmp), token)
        try:
            stack.procs["gunicorn"] = _spawn(
                [sys.executable, "-m", "bench.loadgen", "serve"], env, stack.log_dir / "web.log"
            )
            if redis_url and celery:
                stack.procs["celery"] = _spawn(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "workers.main:app",
                        "worker",
                        "--loglevel=INFO",
                        "--concurrency=1",
                        "--pool=prefork",
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                        "-n",
                        f"{queue}@%h",
                    ],
                    env,
                    stack.log_dir / "celery.log",
                )
            _wait_ready(stack)
            yield stack
        except BaseException:
            log(f"server logs:\n{stack.tail()}")
            raise
        finally:
            for proc in stack.procs.values():
                _stop(proc)
            if redis_url and queue:
                _forget_queue(redis_url, queue)


_OWN_VARIABLES = {
    "REDIS_URL",
    "CELERY_QUEUE",
    "WEB_CONCURRENCY",
    "WEB_THREADS",
    "DATABASE_URL",
    "DATABASE_SCHEMA",
    "PANORAMA_HOST",
    "PANORAMA_PORT",
    "LOG_LEVEL",
}


def _forget_queue(redis_url: str, queue: str) -> None:
    """Delete the Redis keys of this run's Celery queue (unique to it)."""
    try:
        import redis

        from workers.celery_app import PENDING_KEY

        client = redis.Redis.from_url(redis_url)
        bindings = (f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        client.delete(queue, PENDING_KEY + queue, *bindings)
        client.close()
    except Exception as error:  # cleanup must not hide the benchmark's own outcome
        log(f"could not delete the Redis keys of queue {queue}: {error}")


# -- py-spy (optional, BENCH_PYSPY_DIR) --------------------------------------------------------
@contextmanager
def profiled(pid: int, out: Path | None, duration_s: float, subprocesses: bool) -> Iterator[None]:
    """Sample `pid` with py-spy (collapsed stacks) while the block runs, when `out` is set."""
    if out is None:
        yield
        return
    spy = Path(sys.executable).with_name("py-spy")
    args = [str(spy), "record", "--nonblocking", "--format", "raw", "-r", "200"]
    args += os.environ.get("BENCH_PYSPY_ARGS", "").split()  # e.g. --gil, --idle
    args += ["-d", str(max(1, int(duration_s))), "-p", str(pid), "-o", str(out)]
    if subprocesses:
        args.append("--subprocesses")
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        yield
    finally:
        try:
            proc.wait(timeout=duration_s + 30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log(f"py-spy profile written to {out}")


# -- the server entry point ------------------------------------------------------------------
def query_api_problem() -> str | None:
    """Why the query blueprint cannot be served (None when it imports)."""
    try:
        from service.queries import reads  # noqa: F401
    except Exception as error:
        return f"service.queries does not import: {type(error).__name__}: {error}"
    return None


def _with_query_api(factory: Callable[..., Any]) -> Callable[..., Any]:
    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = factory(*args, **kwargs)
        if "reads" in app.blueprints:
            return app
        problem = query_api_problem()
        if problem is not None:
            print(f"bench: query API not served ({problem})", file=sys.stderr, flush=True)
            return app
        from service.queries import reads

        app.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(reads)
        print("bench: registered the query blueprint (create_app does not)", file=sys.stderr)
        return app

    return create_app


def _experiment_knobs() -> None:
    """Bench-only experiments, off unless set: extra gunicorn options, the GIL switch interval.

    BENCH_GUNICORN_OPTIONS='{"keepalive": 5}' adds gunicorn settings to the service's own;
    BENCH_SWITCH_INTERVAL=0.0005 sets sys.setswitchinterval in the server processes.
    """
    if interval := os.environ.get("BENCH_SWITCH_INTERVAL"):
        sys.setswitchinterval(float(interval))
    extra: dict[str, Any] = json.loads(os.environ.get("BENCH_GUNICORN_OPTIONS") or "{}")
    if not extra:
        return
    from service import gunicorn_app

    original = gunicorn_app.PanoramaServer.load_config

    def load_config(self: Any) -> None:
        original(self)
        for key, value in extra.items():
            self.cfg.set(key, value)

    gunicorn_app.PanoramaServer.load_config = load_config  # type: ignore[method-assign]


def serve() -> None:
    """`panorama serve`, with the query blueprint added when the app lacks it."""
    import service.app

    service.app.create_app = _with_query_api(service.app.create_app)
    _experiment_knobs()
    from service.cli import main

    main(["serve"], prog_name="panorama")


if __name__ == "__main__":
    if sys.argv[1:] != ["serve"]:
        raise SystemExit("usage: python -m bench.loadgen serve")
    serve()
