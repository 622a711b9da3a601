"""The pages: `/` and `/projects` rendered on the server, and what a first load weighs.

On a synthetic portfolio (10,000 x BENCH_SCALE projects, with yearly imported editions), each
page's server time (the app's WSGI call, in this process) is timed next to the API call for
the same data in the same run, interleaved: `/` beside `GET /api/portfolio/summary`,
`/projects` beside `GET /api/projects`. Cold: the first request after a write (a new event
position: nothing cached); warm: the same URL again. The first load is what a browser
receives for `/` with `Accept-Encoding: gzip`: the HTML and every stylesheet, script and
region it loads, at their transferred (compressed) sizes.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from bench.harness.config import SCALE, log
from bench.harness.results import Figure, Result
from bench.harness.stats import ms, p50_p99, p99_ms, timed
from bench.synthetic import MINISTRIES, TODAY, record
from domain.project import Project
from domain.values import Provenance
from projections import hashchain
from projections.rebuild import rebuild
from projections.registry import catch_up
from projections.schema import PROJECTION
from service.bootstrap import Services, store_opener

RENDER_TARGET_MS = 150
FIRST_LOAD_TARGET_KB = 500
EDITIONS = [date(year, 1, 1) for year in range(2013, TODAY.year + 1)]
EVENTS_PER_PROJECT = 100  # as the projections suite
ASSET = re.compile(r'<(?:link[^>]+href|script[^>]+src)="(/[^"]+)"')
REGION = re.compile(
    r'hx-get="([^"]+)"[^>]*hx-trigger="load"|hx-trigger="load"[^>]*hx-get="([^"]+)"'
)


def portfolio(services: Services) -> int:
    """Record the synthetic portfolio and one import per edition, then build the read model."""
    projects = max(40, int(10_000 * SCALE))
    record(services.portfolio, projects=projects, events_per_project=EVENTS_PER_PROJECT)
    editions = [
        Project.register(
            name=f"Édition {day.year}",
            ministry_code=MINISTRIES[day.year % len(MINISTRIES)],
            start_date=day,
            cost=Decimal(1_000_000),
            planned_end=day + timedelta(days=900),
            provenance=Provenance(day, "import", f"synthetic:{day.isoformat()}", None, False),
            today=TODAY,
        )
        for day in EDITIONS
    ]
    services.portfolio.save(*editions)
    log("rebuilding the read model")
    return rebuild(
        services.db,
        services.portfolio,
        batch_size=5000,
        processes=2,
        open_store=store_opener(services.settings),
    )


def _get(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url}: {response.status_code}")


def _write(services: Services) -> None:
    """One more event (a new position: whatever a page cached is for an older one)."""
    services.portfolio.register_project(
        name="Bench write",
        ministry_code="MEF",
        provenance=Provenance(TODAY, "bench", "bench", None, False),
    )
    for name in (PROJECTION, hashchain.NAME):  # what the pages read (not the alerts)
        catch_up(services.db, services.portfolio, name)


def first_load(client: FlaskClient, url: str) -> tuple[int, int, list[str]]:
    """Bytes received (gzip accepted) and uncompressed for `url` and all it loads."""
    page = client.get(url, headers={"Accept-Encoding": "gzip"})
    html = page.get_data()
    wire, raw, loaded = len(html), len(_plain(page)), [url]
    text = _plain(page).decode()
    for match in [*ASSET.findall(text), *(a or b for a, b in REGION.findall(text))]:
        target = match.replace("&amp;", "&")
        got = client.get(target, headers={"Accept-Encoding": "gzip"})
        if got.status_code != 200:
            raise RuntimeError(f"GET {target}: {got.status_code}")
        wire += len(got.get_data())
        raw += len(_plain(got))
        loaded.append(target)
    return wire, raw, loaded


def _plain(response: Any) -> bytes:
    import gzip

    body: bytes = response.get_data()
    return gzip.decompress(body) if response.headers.get("Content-Encoding") == "gzip" else body


def run(services: Services, app: Flask) -> list[Result]:
    """Time the pages and their API calls; weigh the first load of `/`."""
    client = app.test_client()
    pairs = (
        ("home", "/", "summary", "/api/portfolio/summary"),
        ("projects", "/projects", "list projects", "/api/projects"),
    )
    rows: list[Result] = []
    cold: dict[str, list[float]] = {url: [] for _, url, _, api in pairs for url in (url, api)}
    for _ in range(5):  # each a first request after a write: nothing cached yet
        _write(services)
        for _, url, _, api in pairs:
            cold[url] += timed(lambda u=url: _get(client, u), 1)  # type: ignore[misc]
            cold[api] += timed(lambda a=api: _get(client, a), 1)  # type: ignore[misc]
    warm: dict[str, list[float]] = {key: [] for key in cold}
    for _ in range(100):  # interleaved: the same load drifts over both
        for key in warm:
            warm[key] += timed(lambda k=key: _get(client, k), 1)  # type: ignore[misc]
    for name, url, api_name, api in pairs:
        page, base = warm[url], warm[api]
        met = p99_ms(page) <= RENDER_TARGET_MS
        target = f"p99 <= {RENDER_TARGET_MS} ms"
        rows.append(
            Result(
                "pages",
                f"{url} server render p50 / p99 (cold after a write: {p50_p99(cold[url])})",
                p50_p99(page),
                f"{api_name} {p50_p99(base)} (cold {p50_p99(cold[api])})",
                f"{p99_ms(page) / p99_ms(base):.3f}",
                target,
                met,
                (
                    Figure(
                        f"pages.{name}_p99_ms",
                        p99_ms(page),
                        "ms",
                        f"{api_name} p99",
                        p99_ms(base),
                        target,
                        met,
                    ),
                ),
            )
        )
    wire, raw, loaded = first_load(client, "/")
    kb = wire / 1024
    met = kb <= FIRST_LOAD_TARGET_KB
    target = f"<= {FIRST_LOAD_TARGET_KB} KB"
    rows.append(
        Result(
            "pages",
            f"first load of / ({len(loaded)} requests), gzip",
            f"{kb:,.0f} KB",
            f"uncompressed {raw / 1024:,.0f} KB",
            f"{wire / raw:.2f}",
            target,
            met,
            (Figure("pages.first_load_kb", kb, "KB", "uncompressed", raw / 1024, target, met),),
        )
    )
    log(f"pages: first load {', '.join(loaded)}; {ms(sum(warm['/']) / 100)} mean /")
    return rows
