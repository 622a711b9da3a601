"""A token in a URL never reaches a log: werkzeug's server, gunicorn's access log, our loggers."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from service.bootstrap import Services
from tests.e2e.conftest import make_token

ROOT = Path(__file__).resolve().parents[2]
QUERY = "q=visible&api_key=hunter2-{n}&access_token={token}"


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # loopback only
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _assert_clean(text: str, token: str, n: int) -> None:
    assert f"hunter2-{n}" not in text and token not in text, text[-2000:]
    assert token.split("_", 2)[2] not in text
    assert "q=visible" in text and "api_key=[REDACTED]" in text, text[-2000:]


def test_the_werkzeug_server_logs_no_token_from_a_url(
    app: Flask, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = make_token(services, "manager", "MJ")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/api/projects?" + QUERY.format(
            n=1, token=token
        )
        assert _get(url) == 400  # api_key and access_token are unknown parameters: refused
        _wait_for(lambda: "GET /api/projects" in caplog.text, "the request's log line")
    finally:
        server.shutdown()
        thread.join(timeout=10)
    _assert_clean(caplog.text, token, 1)


def test_our_own_loggers_redact_urls_and_tracebacks(
    app: Flask, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = make_token(services, "subscriber")
    delivery = logging.getLogger("workers.delivery")
    delivery.warning("POST https://h.example/x?q=visible&api_key=%s&t=%s", "hunter2-1", token)
    url = "https://h.example/x?" + QUERY.format(n=1, token=token)
    logging.getLogger("service.x").warning("POST %s", url)
    try:
        raise ConnectionError(f"refused: https://h.example/x?signature=hunter2-1&t={token}")
    except ConnectionError:
        logging.getLogger("projections.runner").exception("q=visible&api_key=hunter2-1")
    _assert_clean(caplog.text, token, 1)
    assert "ConnectionError: refused: https://h.example/x?signature=[REDACTED]" in caplog.text


@pytest.fixture
def gunicorn_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'panorama.sqlite3'}",
        PANORAMA_HOST="127.0.0.1",
        PANORAMA_PORT=str(_free_port()),
        WEB_THREADS="2",
        LOG_LEVEL="INFO",
    )
    for name in ("DATABASE_SCHEMA", "REDIS_URL", "WEBHOOK_ALLOWLIST", "SMTP_URL"):
        env.pop(name, None)
    return env


SERVERS = {
    "panorama serve": [str(Path(sys.executable).parent / "panorama"), "serve", "--workers", "1"],
    "gunicorn service.wsgi:app": [
        sys.executable,
        "-m",
        "gunicorn",
        "service.wsgi:app",
        "--workers",
        "1",
        "--access-logfile",
        "-",
        "--error-logfile",
        "-",
    ],
}


@pytest.fixture(params=sorted(SERVERS))
def gunicorn(
    request: pytest.FixtureRequest, gunicorn_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """A real gunicorn process on a loopback port, its whole output in a file."""
    command = list(SERVERS[request.param])
    if "gunicorn" in command:
        command += ["--bind", f"127.0.0.1:{gunicorn_env['PANORAMA_PORT']}"]
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=gunicorn_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{gunicorn_env['PANORAMA_PORT']}"

    def up() -> bool:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            return _get(base + "/healthz") == 200
        except OSError:
            return False

    try:
        _wait_for(up, "gunicorn to answer /healthz", timeout=60)
        yield base, log, gunicorn_env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_a_real_gunicorn_logs_no_token_from_a_url(
    gunicorn: tuple[str, Path, dict[str, str]],
) -> None:
    base, log, _ = gunicorn
    token = "pnr_0123456789abcdef_" + "S3cr3tV4lu3" * 3  # shaped like a real token
    assert _get(f"{base}/api/projects?" + QUERY.format(n=2, token=token)) == 400  # unknown
    assert _get(f"{base}/api/nowhere?" + QUERY.format(n=2, token=token)) == 404
    _wait_for(lambda: "/api/nowhere" in log.read_text(errors="replace"), "the access log line")
    _assert_clean(log.read_text(errors="replace"), token, 2)
