"""/alerts in a real browser on the real panorama history (issue 11, page 7).

A subscriber signs in, previews a rule (the list equals the API's projects over the
threshold today), saves it with a loopback webhook, edits it, sees the alert a manager's
command raises and its delivery log, redelivers, and deletes it after confirming.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.browser.conftest import Site, Tab, serious_violations
from tests.e2e.conftest import make_token

THRESHOLD = Decimal(50)


@pytest.fixture(scope="module")
def site_options() -> dict[str, Any]:
    return {"allow_loopback_webhooks": True}  # the receiver below lives on 127.0.0.1


class Receiver:
    """A webhook receiver on 127.0.0.1 that accepts everything and keeps the alert ids."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        received = self.ids

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(self.headers["webhook-id"])
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


def _api(site: Site, path: str, body: Any = None, token: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(site.base + path, data=data)  # loopback only
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _sign_in(site: Site, tab: Tab, role: str = "subscriber", name: str = "sue") -> None:
    tab.page.goto(site.base + "/sign-in")
    tab.page.fill("#token", make_token(site.services, role, name=name))
    tab.page.click("main button[type=submit]")
    tab.page.wait_for_selector(f"text={name} ({role})")


def _axe(tab: Tab) -> None:
    bad = serious_violations(tab.page)
    assert bad == []


def _fill(tab: Tab, **values: str) -> None:
    page = tab.page
    page.select_option("#metric", values.get("metric", "budget_drift_pct"))
    page.select_option("#comparator", values.get("comparator", ">"))
    page.fill("#threshold", values["threshold"])
    page.fill("#clear_threshold", values.get("clear_threshold", ""))
    page.check(f"#scope-{values.get('scope', 'portfolio')}")
    page.fill("#scope_value", values.get("scope_value", ""))
    page.check("#channel-webhook")
    page.fill("#url", values["url"])


def _over(site: Site, threshold: Decimal) -> set[str]:
    """The projects whose budget drift is over `threshold` today, per /api/projects."""
    items = _api(site, "/api/projects?include_departed=true&per_page=1000")["items"]
    return {
        p["id"]
        for p in items
        if p["budget_drift_pct"] is not None and Decimal(p["budget_drift_pct"]) > threshold
    }


def _rows(tab: Tab, selector: str, attribute: str) -> list[str]:
    found = tab.page.locator(selector)
    return [found.nth(i).get_attribute(attribute) for i in range(found.count())]


def test_a_subscriber_previews_saves_edits_is_alerted_redelivers_and_deletes(
    site: Site, tab: Tab, receiver: Receiver
) -> None:
    page = tab.page
    _sign_in(site, tab)
    page.goto(site.base + "/alerts")
    page.click("text=Nouvelle règle")
    _fill(tab, threshold=str(THRESHOLD), clear_threshold="40", url=receiver.url)
    page.click("button[value=preview]")
    page.wait_for_selector("#preview")
    shown = set(_rows(tab, "#preview-projects tr[data-project]", "data-project"))
    assert shown and shown == _over(site, THRESHOLD)
    _axe(tab)
    tab.screenshot("alerts-preview-fr")

    page.fill("#url", "http://10.20.30.40/hook")  # refused by the policy, never contacted
    page.click("button[value=save]")
    page.wait_for_selector("#error-summary")
    assert (
        "privée" in page.locator("#error-summary").inner_text()
        or "private" in page.locator("#url-error").inner_text()
    )
    _axe(tab)
    tab.screenshot("alerts-refused-fr")

    items = _api(site, "/api/projects?per_page=1000")["items"]
    quiet = next(
        p
        for p in items
        if p["budget_drift_pct"] is not None
        and p["cost"] is not None
        and Decimal(p["budget_drift_pct"]) < 10
        and Decimal(p["baseline_cost"]) > 0
    )
    _fill(tab, threshold="30", scope="project", scope_value=quiet["id"], url=receiver.url)
    page.click("button[value=save]")
    secret = page.locator("#webhook-secret").inner_text()
    assert secret.startswith("whsec_")
    _axe(tab)
    page.click("#open-subscription")
    page.wait_for_selector("#deliveries")
    assert secret not in page.content()
    assert "seuil" in page.locator("h1").inner_text() or "30" in page.locator("h1").inner_text()

    page.click("text=Modifier la règle")
    page.fill("#threshold", "25")
    page.click("button[value=save]")
    page.wait_for_selector("text=La règle a été enregistrée.")
    assert "25" in page.locator("h1").inner_text()
    _axe(tab)

    admin = make_token(site.services, "admin", name="root")
    baseline = Decimal(quiet["baseline_cost"])
    _api(
        site,
        f"/api/projects/{quiet['id']}/cost-estimates",
        {"effective_date": "2025-06-15", "amount": f"{baseline * Decimal('1.6'):.2f}"},
        admin,
    )
    page.reload()
    page.wait_for_selector("article.delivery[data-kind=raised] tr[data-status=ok]")
    alert_id = page.locator("article.delivery[data-kind=raised]").get_attribute("data-alert")
    assert (
        page.locator("article.delivery[data-kind=raised]").get_attribute("data-subject")
        == quiet["id"]
    )
    assert alert_id in receiver.ids
    _axe(tab)
    tab.screenshot("alerts-subscription-fr")

    page.click("article.delivery[data-kind=raised] button:has-text('Renvoyer')")
    page.wait_for_selector(
        "article.delivery[data-kind=raised] tr[data-attempt='2'][data-status=ok]"
    )
    assert receiver.ids.count(alert_id) == 2

    page.goto(site.base + "/alerts")
    assert alert_id in _rows(tab, "#alerts tr[data-alert]", "data-alert")
    _axe(tab)
    tab.screenshot("alerts-list-fr")
    page.goto(site.base + "/alerts?lang=en")
    page.wait_for_selector("h1:has-text('Alerts')")
    _axe(tab)
    tab.screenshot("alerts-list-en")

    page.click("#subscriptions a")
    page.click("text=Delete the subscription")
    page.wait_for_selector("h1:has-text('Delete the subscription?')")
    _axe(tab)
    page.click("button:has-text('Yes, delete it')")
    page.wait_for_selector("text=The subscription was deleted.")
    assert page.locator("#subscriptions").count() == 0
    assert [e for e in tab.errors if "422" not in e] == []  # the refused form is a 422 page
    assert all(url.startswith(site.base + "/") for url in tab.requests)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_rule_form_has_no_serious_axe_violation(site: Site, tab: Tab, lang: str) -> None:
    _sign_in(site, tab, name=f"sam-{lang}")
    tab.page.goto(site.base + f"/alerts/new?lang={lang}")
    tab.page.wait_for_selector("#metric")
    _axe(tab)
    tab.screenshot(f"alerts-form-{lang}")
