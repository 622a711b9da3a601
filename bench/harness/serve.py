"""`python -m bench.harness.serve`: `panorama serve`, with two experiment knobs off unless set.

The same click command, the same gunicorn options, settings from the environment.
BENCH_GUNICORN_OPTIONS='{"keepalive": 5}' adds gunicorn settings to the service's own;
BENCH_SWITCH_INTERVAL=0.0005 sets sys.setswitchinterval in the server processes.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def _experiment_knobs() -> None:
    """Apply BENCH_SWITCH_INTERVAL and BENCH_GUNICORN_OPTIONS when they are set."""
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
    """`panorama serve`, after the experiment knobs."""
    _experiment_knobs()
    from service.cli import main

    main(["serve"], prog_name="panorama")


if __name__ == "__main__":
    serve()
