"""/audit in a real browser on the real panorama history (issue 11, page 6)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.browser.conftest import Site, Tab, serious_violations
from tests.e2e.conftest import make_token


def _sign_in(site: Site, tab: Tab, role: str, name: str) -> None:
    tab.page.goto(site.base + "/sign-in")
    tab.page.fill("#token", make_token(site.services, role, name=name))
    tab.page.click("main button[type=submit]")
    tab.page.wait_for_selector(f"text={name} ({role})")


def _axe(tab: Tab) -> None:
    bad = serious_violations(tab.page)
    assert bad == []


def test_an_auditor_verifies_the_chain_and_downloads_a_valid_checkpoint(
    site: Site, tab: Tab, tmp_path: Path
) -> None:
    page = tab.page
    _sign_in(site, tab, "auditor", "ana")
    page.goto(site.base + "/audit")
    assert page.locator("#verdict").get_attribute("data-ok") == ""  # never verified yet
    page.click("text=Vérifier la chaîne maintenant")
    page.wait_for_selector("#verdict[data-ok=true]")
    assert page.locator("#verdict").inner_text().startswith("Vérifiée")
    head = page.locator("[data-chain-head]").get_attribute("data-chain-head")
    position = int(page.locator("[data-chain-position]").get_attribute("data-chain-position"))
    assert int(page.locator("[data-checked]").get_attribute("data-checked")) == position > 0
    _axe(tab)
    tab.screenshot("audit-fr")

    with page.expect_download() as download:
        page.click("#checkpoint-download")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == f"panorama-checkpoint-{position}.json"
    checkpoint = json.loads(saved.read_text())
    assert checkpoint["position"] == position and checkpoint["chain_head"] == head

    token = make_token(site.services, "auditor", name="ana-api")
    request = urllib.request.Request(  # the page's documented check, on loopback
        site.base + "/api/audit/checkpoints/verify",
        data=saved.read_bytes(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.load(response)["valid"] is True
    assert f"panorama verify --checkpoint panorama-checkpoint-{position}.json" in page.content()

    page.goto(site.base + "/audit?lang=en")
    page.wait_for_selector("text=Verified: no event was altered, inserted or removed.")
    _axe(tab)
    tab.screenshot("audit-en")
    assert tab.errors == []


@pytest.mark.parametrize("role", ["subscriber", None])
def test_the_audit_page_is_for_auditors_as_the_api(site: Site, tab: Tab, role: str | None) -> None:
    if role:
        _sign_in(site, tab, role, f"not-an-auditor-{role}")
    response = tab.page.goto(site.base + "/audit?lang=en")
    assert response is not None
    if role:
        assert response.status == 403
    else:
        assert "/sign-in" in tab.page.url
