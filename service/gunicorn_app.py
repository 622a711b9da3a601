"""Run the Flask app under gunicorn, configured from Settings."""

from __future__ import annotations

import email.utils
import time
from typing import Any

from gunicorn import util
from gunicorn.app.base import BaseApplication

from service.config import Settings
from service.delivery_timer import DeliveryTimer
from service.heap import freeze_boot_heap

_date: tuple[int, str] = (-1, "")  # the last second formatted, and its text
GUNICORN_HTTP_DATE = util.http_date  # gunicorn's own, before `run` replaces it


def http_date(timestamp: float | None = None) -> str:
    """gunicorn's `util.http_date` (every response's Date header), formatted once per second:
    the header has a second's resolution, and `email.utils.formatdate` on every response was
    ≈3 % of a gunicorn worker's CPU. The same text as gunicorn's for the same second."""
    global _date
    if timestamp is not None:
        return GUNICORN_HTTP_DATE(timestamp)
    second = int(time.time())
    cached = _date
    if cached[0] != second:
        cached = _date = (second, email.utils.formatdate(second, localtime=False, usegmt=True))
    return cached[1]


class PanoramaServer(BaseApplication):
    """A gunicorn application that builds the Flask app in each worker (after fork).

    In the embedded deployment (no REDIS_URL, so no Celery beat) each worker also runs the
    delivery timer, which sends due alert retries; it stops when the worker exits.

    Once the app is built, its heap is frozen (`freeze_boot_heap`).
    """

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = {**options, "worker_exit": self._worker_exit}
        self.timer: DeliveryTimer | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from service.app import create_app

        app = create_app()
        services = app.extensions["panorama"]
        if not services.settings.redis_url:
            self.timer = DeliveryTimer(services).start()
        freeze_boot_heap()
        return app

    def _worker_exit(self, _server: Any, _worker: Any) -> None:
        if self.timer is not None:
            self.timer.stop()


def run(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
) -> None:
    """Serve until stopped. SQLite (embedded) runs one process with threads."""
    count = workers or (settings.web_workers if settings.is_postgres else 1)
    options = {
        "bind": f"{host or settings.host}:{port or settings.port}",
        "workers": count,
        "threads": settings.web_threads,
        "worker_class": "gthread",
        "timeout": 60,
        "graceful_timeout": 20,
        "accesslog": "-",
        "logger_class": "service.log_redaction.RedactingGunicornLogger",
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
    }
    util.http_date = http_date  # read as util.http_date by gunicorn.http.wsgi, per response
    PanoramaServer(options).run()
