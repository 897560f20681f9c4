"""The audit log page in a real Chromium: changes made through the API are listed, and a
phone-sized screen needs no sideways scrolling however long the ids and URLs."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.async_api import Browser

from tests.ui.browser.conftest import UiServer, api_client, signed_in_page


async def make_changes(server: UiServer) -> None:
    cast = server.world.cast
    async with api_client(server) as http:
        team = await http.post(
            "/api/v1/teams",
            headers=cast.admin.headers,
            json={"name": "Storage", "description": "Disks, buckets and backups"},
        )
        assert team.status_code == 201, team.text
        service = await http.patch(
            f"/api/v1/services/{server.world.service}",
            headers=cast.alice.headers,
            json={"name": "Payments gateway", "description": "Card payments " + "x" * 80},
        )
        assert service.status_code == 200, service.text
        grafana = await http.post(
            "/api/v1/integrations", headers=cast.admin.headers, json={"name": "Grafana"}
        )
        assert grafana.status_code == 201, grafana.text


async def test_the_audit_page_lists_changes_and_fits_a_phone(
    browser: Browser, ui_server: UiServer
) -> None:
    await make_changes(ui_server)
    # TOCSIN_SCREENSHOTS=docs/screenshots keeps the pictures for the docs.
    keep = os.environ.get("TOCSIN_SCREENSHOTS")
    for width, height, name in ((1280, 900, "desktop"), (390, 844, "phone")):
        page = await signed_in_page(
            browser, ui_server, "admin@example.com", width=width, height=height
        )
        await page.goto("/admin/audit")
        rows = page.locator("#audit-list tbody tr")
        assert await rows.count() >= 3
        assert "Payments gateway" in await page.locator("#audit-list").inner_text()
        scroll = await page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"/admin/audit is {scroll} px wide on a {width} px screen"
        if keep:
            await page.screenshot(path=str(Path(keep) / f"audit-{name}.png"), full_page=True)
        await page.context.close()
