"""The embedded default's delivery timer: due alert retries go out without a later command.

Production sends them from Celery beat; the embedded `panorama serve` has no beat, so each of
its worker processes runs one daemon thread that calls `deliver_due` every INTERVAL_S,
bounded (a few deliveries per tick, short timeouts), until `stop()`.
"""

from __future__ import annotations

import logging
import threading

from service.bootstrap import Services
from workers.delivery import deliver_due

log = logging.getLogger(__name__)
INTERVAL_S = 5.0
LIMIT = 10
TIMEOUT_S = 2.0


class DeliveryTimer:
    """A background thread sending the due deliveries every `interval_s` seconds."""

    def __init__(self, services: Services, interval_s: float = INTERVAL_S) -> None:
        self.services = services
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delivery-timer", daemon=True)

    def start(self) -> DeliveryTimer:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the tick in progress, if any (bounded by its delivery timeouts)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        settings = self.services.settings
        while not self._stop.wait(self.interval_s):
            try:
                deliver_due(
                    self.services.db,
                    policy=settings.webhook_policy(),
                    limit=LIMIT,
                    timeout_s=TIMEOUT_S,
                    smtp_url=settings.smtp_url,
                )
            except Exception:  # a busy or failing database: try again at the next tick
                log.exception("the delivery timer's tick failed")
