"""HTTP clients of the service under test: keep-alive connections, request bodies, a token."""

from __future__ import annotations

import http.client
import json
import socket
import time
import uuid
from typing import Any

from projections.db import Database
from service.tokens import TokenStore

HOST = "127.0.0.1"  # loopback only
REGISTERED_ON = "2024-01-15"
EFFECTIVE_ON = "2024-03-01"
IDLE_REOPEN_S = 1.0  # gunicorn closes keep-alive connections idle for 2 s (its default)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


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
        """Close the connection."""
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


def admin_token(db: Database) -> str:
    """A new admin bearer token in the database of `db`."""
    store = TokenStore(db)
    store.create_table()
    _, token = store.create("admin", name=f"bench-{uuid.uuid4().hex[:8]}")
    return token
