"""A real `panorama serve` (the embedded default) on 127.0.0.1, its home a fresh directory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PANORAMA = str(Path(sys.executable).parent / "panorama")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def embedded_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of the embedded default: no DATABASE_URL, no Redis, this home."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "SMTP_", "WEBHOOK_", "PANORAMA_"))
    }
    env.update(PANORAMA_HOME=str(home), WEB_THREADS="2", **extra)
    return env


class Served:
    """`panorama serve` as `make run` starts it, run from `cwd` (not its home)."""

    def __init__(self, home: Path, cwd: Path, **env: str) -> None:
        self.home = home
        self.port = free_port()
        self.log = home / "serve.log"
        self.env = embedded_env(home, **env)
        home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [PANORAMA, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while not self._healthy():
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"serve did not start: {self.output()[-3000:]}")
            time.sleep(0.1)

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited: {self.output()[-3000:]}")
        try:
            with OPENER.open(f"{self.url}/healthz", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def admin_token(self) -> str:
        """The token the first start printed (and kept in var/admin-token)."""
        return (self.home / "var" / "admin-token").read_text().strip()

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with OPENER.open(req, timeout=30) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def stop(self) -> int:
        """SIGTERM the process group (gunicorn stops its workers); wait for the exit."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return int(self.proc.returncode)
