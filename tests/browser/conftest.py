"""Browser fixtures: Debian's chromium driven by Playwright, the app on 127.0.0.1.

The real panorama history (eight derived editions) is imported once per module into a fresh
SQLite store, served by werkzeug on a random loopback port in a thread. No browser is ever
downloaded: a missing chromium is a skip here, a failure under CI=true.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from importers import parse_panorama
from service.app import create_app
from service.bootstrap import Services, bootstrap
from service.cli_import import run_import
from service.config import Settings
from tests.conftest import IN_CI, SHARED_DATA

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
TODAY = date(2025, 6, 30)


@dataclass
class Site:
    """The running app: its base URL and its services."""

    base: str
    services: Services


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        message = "chromium is not installed (make test installs it with apt-get)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def site_options() -> dict[str, Any]:
    """Extra settings of the module's site (a test module overrides it, e.g. loopback hooks)."""
    return {}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, site_options: dict[str, Any]) -> Iterator[Site]:
    """The eight panorama editions imported, the app served on 127.0.0.1:<random>."""
    folder = tmp_path_factory.mktemp("site")
    settings = Settings(database_url=f"sqlite:///{folder / 'panorama.sqlite3'}", **site_options)
    services = bootstrap(settings, today=lambda: TODAY)
    files = sorted((SHARED_DATA / "panorama" / "derived").glob("panorama_20??-??.csv"))
    run_import(services, [e for path in files for e in parse_panorama(path)])
    server = make_server("127.0.0.1", 0, create_app(services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_port}", services)
    finally:
        server.shutdown()
        thread.join()
        services.close()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=ARGS)
        yield launched
        launched.close()


@dataclass
class Tab:
    """A browser page that records every request and every console error it sees."""

    page: Any
    requests: list[str]
    errors: list[str]

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    """A fresh context (French, like a reader in France) and page."""
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    tab = Tab(page, [], [])
    page.on("request", lambda request: tab.requests.append(request.url))
    page.on(
        "console",
        lambda message: tab.errors.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    yield tab
    context.close()


def serious_violations(page: Any) -> list[tuple[str, str, list[Any]]]:
    """axe-core's serious and critical violations on the page: (rule, impact, first nodes)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in {"serious", "critical"}
    ]
