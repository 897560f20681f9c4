"""The silences and maintenance pages in Chromium: a silence made through the form, and no
sideways scrolling on a phone. TOCSIN_SCREENSHOTS=<dir> also saves each page at 1280 and 390
px (docs/screenshots holds the ones in the docs)."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.async_api import Browser, expect

from tests.ui.browser.conftest import UiServer, api_client, signed_in_page


async def _seed(server: UiServer) -> str:
    world = server.world
    async with api_client(server) as http:
        made = await http.post(
            "/api/v1/silences",
            json={
                "team_id": str(world.cast.payments),
                "matchers": [{"field": "tag", "name": "instance", "op": "=~", "value": "db-.*"}],
                "ends_at": "2099-01-01T00:00:00Z",
                "comment": "swapping the disks of the database hosts",
            },
            headers=world.cast.bob.headers,
        )
        assert made.status_code == 201, made.text
        await http.post(
            world.integration.url,
            json={
                "title": "Disk full",
                "routing_key": "payments-api",
                "tags": {"instance": "db-1"},
            },
        )
        sent = await http.post(
            world.integration.url, json={"title": "Checkout slow", "routing_key": "payments-api"}
        )
        incident_id: str = sent.json()["incident_id"]
        await http.post(
            f"/api/v1/incidents/{incident_id}/acknowledge", headers=world.cast.bob.headers
        )
    return incident_id


async def test_the_noise_pages_fit_a_phone_and_the_editor_saves(
    browser: Browser, ui_server: UiServer
) -> None:
    incident_id = await _seed(ui_server)
    shots = os.environ.get("TOCSIN_SCREENSHOTS")
    paths = {
        "silences": "/silences",
        "maintenance": f"/services/{ui_server.world.service}/maintenance",
        "incident-snooze": f"/incidents/{incident_id}",
    }
    for width, height, label in ((1280, 900, "desktop"), (390, 844, "phone")):
        page = await signed_in_page(
            browser, ui_server, "alice@example.com", width=width, height=height
        )
        for name, path in paths.items():
            await page.goto(path)
            scroll = await page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"{path} is {scroll} px wide on a {width} px screen"
            if shots:
                await page.screenshot(path=str(Path(shots) / f"{name}-{label}.png"), full_page=True)
        await page.context.close()
    page = await signed_in_page(browser, ui_server, "bob@example.com")
    await page.goto("/silences")
    await page.get_by_label("Matcher 1: what it looks at").select_option("title")
    await page.get_by_label("Matcher 1: operator").select_option("=")
    await page.get_by_label("Matcher 1: value").fill("Checkout slow")
    await page.get_by_label("Comment").fill("known, being fixed")
    await page.get_by_role("button", name="Create silence").click()
    await expect(page.get_by_text("Done: silence created.")).to_be_visible()
    await expect(page.get_by_text("known, being fixed")).to_be_visible()
