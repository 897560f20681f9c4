"""The incident page of a grouped incident in Chromium: its alert list with each alert's
status, no sideways scrolling on a phone, and splitting an alert out with the button.
TOCSIN_SCREENSHOTS=<dir> also saves the page at 1280 and 390 px."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.async_api import Browser, expect

from tests.ui.browser.conftest import UiServer, api_client, signed_in_page


def _alert(instance: str, status: str = "firing") -> dict[str, object]:
    return {
        "title": f"CPU hot on {instance}",
        "routing_key": "payments-api",
        "dedup_key": f"cpu-{instance}",
        "status": status,
        "tags": {"alertname": "HighCPU", "cluster": "eu-1", "instance": instance},
    }


async def _seed(server: UiServer) -> str:
    world = server.world
    async with api_client(server) as http:
        grouped = await http.patch(
            f"/api/v1/services/{world.service}",
            json={"group_by": ["alertname", "cluster"], "group_window_seconds": 600},
            headers=world.cast.alice.headers,
        )
        assert grouped.status_code == 200, grouped.text
        sent = await http.post(world.integration.url, json=_alert("web-1"))
        incident_id: str = sent.json()["incident_id"]
        for instance in ("web-2", "web-3"):
            await http.post(world.integration.url, json=_alert(instance))
        await http.post(world.integration.url, json=_alert("web-3", "resolved"))
    return incident_id


async def test_the_incident_page_lists_grouped_alerts_and_splits_one_out(
    browser: Browser, ui_server: UiServer
) -> None:
    incident_id = await _seed(ui_server)
    shots = os.environ.get("TOCSIN_SCREENSHOTS")
    for width, height, label in ((1280, 900, "desktop"), (390, 844, "phone")):
        page = await signed_in_page(
            browser, ui_server, "bob@example.com", width=width, height=height
        )
        await page.goto(f"/incidents/{incident_id}")
        rows = page.locator("table.alert-list tbody tr")
        await expect(rows).to_have_count(3)
        await expect(page.locator('tr[data-alert-status="resolved"]')).to_have_count(1)
        await expect(
            page.get_by_text("grouped by alertname='HighCPU', cluster='eu-1'").first
        ).to_be_visible()
        scroll = await page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"the incident page is {scroll} px wide on a {width} px screen"
        if shots:
            await page.screenshot(
                path=str(Path(shots) / f"incident-grouped-{label}.png"), full_page=True
            )
        await page.context.close()
    page = await signed_in_page(browser, ui_server, "bob@example.com")
    await page.goto(f"/incidents/{incident_id}")
    await page.get_by_role(
        "button", name="Split CPU hot on web-2 out into its own incident"
    ).click()
    await expect(page.get_by_text("Done: split out.")).to_be_visible()
    await expect(page.locator("table.alert-list tbody tr")).to_have_count(1)
    await expect(page.get_by_text("CPU hot on web-2").first).to_be_visible()
