"""The production shape on a loopback port: gunicorn (`panorama serve`) and a Celery worker."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness.client import HOST, Client, free_port
from bench.harness.config import ROOT, log
from bench.harness.processes import CeleryWorkers, spawn, stop
from service.config import Settings

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
class Stack:
    """gunicorn (and a Celery worker) serving one schema on a loopback port."""

    port: int
    schema: str
    queue: str | None
    web: str
    log_dir: Path
    token: str | None = None  # an admin bearer token sent with every request
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def client(self, actor: str, timeout: float = 30.0) -> Client:
        """A new keep-alive connection to this server, with the token when there is one."""
        return Client(self.port, actor=actor, token=self.token, timeout=timeout)

    def groups(self) -> dict[str, int]:
        """Process-group id of each subprocess (each runs in its own session)."""
        return {name: proc.pid for name, proc in self.procs.items()}

    def check_alive(self) -> None:
        """RuntimeError, with the logs, when a server process has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        """The end of each server log."""
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}"
            for p in sorted(self.log_dir.glob("*.log"))
        )


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
    web: Web | None = None,
    token: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """gunicorn on a free loopback port, plus one Celery worker when `redis_url` is given.

    `web.worker=False` with a `redis_url` is a diagnostic: commands are enqueued, nothing
    consumes them (the queue is deleted afterwards). Without `redis_url` the service runs its
    embedded trigger: each command catches the projection up in-process before answering.
    Every subprocess is stopped on exit.
    """
    web = web or Web()
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
    if web.workers:
        env["WEB_CONCURRENCY"] = str(web.workers)
    if web.threads:
        env["WEB_THREADS"] = str(web.threads)
    if redis_url and queue:
        env.update(REDIS_URL=redis_url, CELERY_QUEUE=queue)
    shape = f"{web.workers or 'default'}x{web.threads or 'default'}"
    with tempfile.TemporaryDirectory(prefix="panorama-bench-") as tmp:
        stack = Stack(port, schema, queue, shape, Path(tmp), token)
        try:
            stack.procs["gunicorn"] = spawn(
                [sys.executable, "-m", "bench.harness.serve"], env, stack.log_dir / "web.log"
            )
            if redis_url and web.worker:
                workers = CeleryWorkers(env, stack.log_dir)
                stack.procs["celery"] = workers.start(1, name=f"{queue}@%h")
            _wait_ready(stack)
            yield stack
        except BaseException:
            log(f"server logs:\n{stack.tail()}")
            raise
        finally:
            for proc in stack.procs.values():
                stop(proc)
            if redis_url and queue:
                _forget_queue(redis_url, queue)


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
