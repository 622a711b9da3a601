"""Changes between two dates over 4-year windows: the first page as the API serves it (the same
query function), against the full computation it replaced (both states loaded in Python,
every event of the window attached), and the peak RSS of a real gunicorn worker answering
such requests, every page of every kind fetched.
"""

from __future__ import annotations

import json
import os
import random
import time
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from bench.harness.client import admin_token
from bench.harness.config import PG_URL, log
from bench.harness.results import Figure, Result
from bench.harness.stack import Web, server_stack
from bench.harness.stats import ms, p99_ms, pct, timed
from bench.synthetic import START, TODAY
from projections import queries
from projections.db import Tx
from service.bootstrap import Services

WINDOW = timedelta(days=4 * 365 + 1)  # four years
P99_TARGET_MS = 200.0
RSS_TARGET_MB = 300.0
RSS_WINDOWS = 3  # 4-year windows whose every page the server is asked for
PAGE_LIMIT = 1000  # the largest page the API gives: the heaviest answers


def window(rng: random.Random) -> tuple[date, date]:
    """A random 4-year window within the synthetic portfolio's history."""
    span = (TODAY - WINDOW - START).days
    after = START + timedelta(days=rng.randrange(0, span))
    return after, after + WINDOW


def full_changes(tx: Tx, after: date, until: date, known_at: datetime | None) -> dict[str, Any]:
    """The computation this replaced, kept as the baseline: every project's state on both
    dates loaded into Python, every event of the window described and attached."""
    before = {s.project_id: s for s in queries.states_at(tx, after, known_at, light=True)}
    now = {s.project_id: s for s in queries.states_at(tx, until, known_at, light=True)}
    rows = tx.fetch(
        "SELECT project_id, version, position, type, effective_date, recorded_at, actor, "
        "source, narrative, correction FROM pr_events WHERE sort_date > %s AND sort_date <= %s "
        "ORDER BY sort_date, project_id, version",
        [after, until],
    )
    by_project: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_project.setdefault(row["project_id"], []).append(queries._event_columns(row))
    result: dict[str, list[dict[str, Any]]] = {kind: [] for kind in queries.CHANGE_KINDS}
    for pid in sorted(
        set(before) | set(now), key=lambda p: ((now.get(p) or before[p]).name or "").casefold()
    ):
        old, new = before.get(pid), now.get(pid)
        ref = new or old
        assert ref is not None
        base = {"id": pid, "name": ref.name, "ministry_code": ref.ministry}
        events = by_project.get(pid, [])
        was_in, is_in = old is not None and old.in_portfolio, new is not None and new.in_portfolio
        if is_in != was_in:
            result["entered" if is_in else "left"].append({**base, "events": events})
        if old is None or new is None:
            continue
        for key, attr in (
            ("phase_changes", "phase"),
            ("cost_changes", "current_cost"),
            ("schedule_changes", "planned_end"),
        ):
            if attr != "phase" and (old.figures_withheld or new.figures_withheld):
                continue
            if getattr(old, attr) != getattr(new, attr):
                kinds = queries.RESPONSIBLE[key]
                chosen = [e for e in events if e["type"] in kinds]
                result[key].append({**base, "from": getattr(old, attr), "events": chosen})
    return result


def run(services: Services) -> list[Result]:
    """Time the first page over 4-year windows, and the full computation it replaced."""
    rng = random.Random(11)
    mapper = services.portfolio.mapper

    def first_page() -> None:
        after, until = window(rng)
        with services.db.transaction(write=False) as tx:
            queries.changes(tx, mapper, after, until, None)

    def full() -> None:
        after, until = window(rng)
        with services.db.transaction(write=False) as tx:
            full_changes(tx, after, until, None)

    paged = timed(first_page, 40)
    before = timed(full, 3)
    met = p99_ms(paged) <= P99_TARGET_MS
    target = f"p99 <= {P99_TARGET_MS:.0f} ms over 4-year windows"
    return [
        Result(
            "as_of",
            "changes over 4 years, first page p50 / p99",
            f"{ms(pct(paged, 0.5))} / {ms(pct(paged, 0.99))}",
            f"full answer, every event (previous code) {ms(pct(before, 0.5))}",
            f"{pct(before, 0.5) / pct(paged, 0.5):.0f}x faster",
            target,
            met,
            (
                Figure(
                    "changes.p99_ms",
                    p99_ms(paged),
                    "ms",
                    "full answer, every event attached (previous code), median of 3",
                    pct(before, 0.5) * 1000,
                    target,
                    met,
                ),
            ),
        )
    ]


def _peak_rss_mb(pgid: int) -> dict[int, float]:
    """VmHWM (peak resident set) of each live process of a process group, in MB."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                raw = f.read()
            if int(raw[raw.rfind(")") + 2 :].split()[2]) != pgid:
                continue
            with open(f"/proc/{entry.name}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        found[int(entry.name)] = int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            continue
    return found


def api_memory(services: Services, schema: str) -> list[Result]:
    """Peak RSS of one gunicorn worker answering 4-year-window changes, every page fetched."""
    rng = random.Random(13)
    token = admin_token(services.db)
    web = Web(workers=1, threads=4)
    with server_stack(
        schema=schema, database_url=PG_URL, redis_url=None, web=web, token=token
    ) as s:
        pgid = s.groups()["gunicorn"]
        idle = max(_peak_rss_mb(pgid).values())
        client = s.client("bench-changes", timeout=120.0)
        requests, largest, total_bytes, changes = 0, 0, 0, 0
        t0 = time.perf_counter()
        try:
            for _ in range(RSS_WINDOWS):
                after, until = window(rng)
                dates = {"from": after.isoformat(), "to": until.isoformat()}
                status, body = client.request("GET", "/api/portfolio/changes?" + urlencode(dates))
                if status != 200:
                    raise RuntimeError(f"changes answered {status}: {body[:300]!r}")
                requests, largest = requests + 1, max(largest, len(body))
                counts = json.loads(body)["counts"]
                for kind in queries.CHANGE_KINDS:
                    query: dict[str, Any] = {**dates, "kind": kind, "limit": PAGE_LIMIT}
                    while True:
                        path = "/api/portfolio/changes?" + urlencode(query)
                        status, body = client.request("GET", path)
                        if status != 200:
                            raise RuntimeError(f"changes answered {status}: {body[:300]!r}")
                        page = json.loads(body)
                        requests, largest = requests + 1, max(largest, len(body))
                        total_bytes += len(body)
                        changes += len(page[kind])
                        if page["next"][kind] is None:
                            break
                        query = {**dates, "limit": PAGE_LIMIT, "cursor": page["next"][kind]}
                if changes < sum(counts.values()):
                    raise RuntimeError(f"pages gave {changes} changes, counts say {counts}")
                changes = 0
        finally:
            client.close()
        wall = time.perf_counter() - t0
        peaks = _peak_rss_mb(pgid)
    worker = max(peaks.values())
    met = worker <= RSS_TARGET_MB
    log(
        f"changes over HTTP: {requests} requests in {wall:.1f} s, largest body "
        f"{largest / 1e6:.2f} MB, {total_bytes / 1e6:.1f} MB in all; peak RSS {peaks}"
    )
    target = f"<= {RSS_TARGET_MB:.0f} MB"
    return [
        Result(
            "as_of",
            "changes API: peak RSS of the gunicorn worker (4-year windows, every page)",
            f"{worker:.0f} MB ({requests} requests, largest body {largest / 1e6:.2f} MB)",
            f"the same worker idle after boot {idle:.0f} MB",
            f"+{worker - idle:.0f} MB",
            target,
            met,
            (
                Figure(
                    "changes.api_peak_rss_mb",
                    worker,
                    "MB",
                    "the same gunicorn worker, idle after boot",
                    idle,
                    target,
                    met,
                ),
            ),
        )
    ]
