"""`python -m bench.command_cpu [N] [PROFILE]`: CPU per command in the web process, in process.

Flask's test client, one thread, N cost estimates (default 600) on a fresh PostgreSQL schema,
the Redis enqueue included (REDIS_URL; a queue of its own that no worker consumes, its
pending flag cleared every 20 commands so the enqueue runs as in a burst). Prints the CPU
(`time.process_time`) and wall ms per command; with PROFILE, a cProfile of the loop in CPU
time is written there (`python -m pstats PROFILE`). Not a suite: a way to compare two
commits back to back (docs/benchmarks.md, "What a command costs").
"""

from __future__ import annotations

import cProfile
import os
import sys
import time
import uuid

import redis

from bench.harness.client import admin_token, cost_estimate, registration
from bench.harness.config import PG_URL
from bench.harness.db import fresh_schema
from service.app import create_app
from service.bootstrap import bootstrap
from service.config import Settings
from workers.celery_app import PENDING_KEY

WARMUP = 50
BURST = 20


def main(argv: list[str]) -> None:
    """Measure and print; see the module."""
    count = int(argv[0]) if argv else 600
    profile_path = argv[1] if len(argv) > 1 else None
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    queue = f"bench-cpu-{uuid.uuid4().hex[:8]}"
    with fresh_schema("bench_cpu") as schema:
        settings = Settings(
            database_url=PG_URL, database_schema=schema, redis_url=redis_url, celery_queue=queue
        )
        services = bootstrap(settings)
        flags = redis.Redis.from_url(redis_url)
        try:
            headers = {"Authorization": f"Bearer {admin_token(services.db)}"}
            client = create_app(services).test_client()
            created = client.post("/api/projects", json=registration("cpu"), headers=headers)
            path = f"/api/projects/{created.get_json()['id']}/cost-estimates"
            for n in range(WARMUP):
                client.post(path, json=cost_estimate(-1 - n), headers=headers)
            pending = PENDING_KEY + queue
            profile = cProfile.Profile(time.process_time) if profile_path else None
            cpu, wall = time.process_time(), time.perf_counter()
            if profile is not None:
                profile.enable()
            for n in range(count):
                if n % BURST == 0:
                    flags.delete(pending)
                answer = client.post(path, json=cost_estimate(n), headers=headers)
                if answer.status_code != 201:
                    raise RuntimeError(f"{answer.status_code}: {answer.data[:200]!r}")
            if profile is not None:
                profile.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            per_cpu, per_wall = 1000 * cpu / count, 1000 * wall / count
            print(f"CPU ms/command {per_cpu:.3f}  wall ms/command {per_wall:.3f}")
            if profile is not None and profile_path:
                profile.dump_stats(profile_path)
        finally:
            flags.delete(PENDING_KEY + queue, queue)  # the flag, and the tasks nobody took
            services.close()


if __name__ == "__main__":
    main(sys.argv[1:])
