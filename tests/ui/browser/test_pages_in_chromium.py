"""What a person sees in a real Chromium: signing in and out, the live incident list and
incident page, form errors beside fields, CSRF refusals, and a phone-sized screen."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from tests.ui.browser.conftest import UiServer, api_client, new_context, signed_in_page
from tests.ui.support import PASSWORD


async def post_alert(server: UiServer, title: str) -> str:
    """An alert to the generic webhook, routed to Payments API; returns its incident id."""
    async with api_client(server) as http:
        sent = await http.post(
            server.world.integration.url,
            json={"title": title, "severity": "critical", "routing_key": "payments-api"},
        )
    assert sent.status_code == 202, sent.text
    incident_id: str = sent.json()["incident_id"]
    return incident_id


async def wait_until_live(page: Page) -> None:
    await expect(page.locator("[data-live-status]").first).to_have_text("Live")


async def test_signing_in_returns_to_the_page_asked_for_and_signing_out_ends_it(
    browser: Browser, ui_server: UiServer
) -> None:
    context = await new_context(browser, ui_server)
    page = await context.new_page()
    await page.goto("/incidents?status=open")
    assert page.url.endswith("/login?next=/incidents%3Fstatus%3Dopen")
    await page.get_by_label("Email").fill("bob@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/incidents?status=open")
    await expect(page.get_by_role("heading", name="Incidents")).to_be_visible()
    await expect(page.get_by_role("combobox", name="Status")).to_have_value("open")

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/login")
    await page.goto("/incidents")
    assert "/login?next=/incidents" in page.url


async def test_a_wrong_password_shows_why_and_signs_nobody_in(
    browser: Browser, ui_server: UiServer
) -> None:
    context = await new_context(browser, ui_server)
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("Email").fill("bob@example.com")
    await page.get_by_label("Password").fill("not it")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("wrong email or password")
    await page.goto("/incidents")
    assert "/login" in page.url


async def test_an_alert_sent_to_a_webhook_appears_on_an_open_list_without_a_reload(
    browser: Browser, ui_server: UiServer
) -> None:
    page = await signed_in_page(browser, ui_server, "bob@example.com")
    await page.goto("/incidents")
    await wait_until_live(page)
    await page.evaluate("window.__notReloaded = true")

    incident_id = await post_alert(ui_server, "Checkout latency over 2 s")

    row = page.locator(f"#incident-{incident_id}")
    await expect(row).to_be_visible(timeout=2_000)
    await expect(row.get_by_role("link", name="Checkout latency over 2 s")).to_be_visible()
    await expect(row).to_contain_text("Payments API")
    assert await page.evaluate("window.__notReloaded") is True


async def test_acknowledging_in_one_browser_changes_the_status_another_one_sees(
    browser: Browser, ui_server: UiServer
) -> None:
    incident_id = await post_alert(ui_server, "Card payments failing")
    watcher = await signed_in_page(browser, ui_server, "alice@example.com")
    await watcher.goto(f"/incidents/{incident_id}")
    await wait_until_live(watcher)
    status = watcher.locator(".incident-head [data-field=status]")
    await expect(status).to_have_text("Open")

    actor = await signed_in_page(browser, ui_server, "bob@example.com")
    await actor.goto(f"/incidents/{incident_id}")
    await actor.get_by_role("button", name="Acknowledge").click()
    await expect(actor.get_by_role("status").filter(has_text="Done")).to_be_visible()

    await expect(status).to_have_text("Acknowledged", timeout=3_000)
    await expect(watcher.get_by_role("button", name="Acknowledge")).to_have_count(0)


async def test_an_empty_note_shows_the_message_beside_the_field(
    browser: Browser, ui_server: UiServer
) -> None:
    incident_id = await post_alert(ui_server, "Disk full on db-1")
    page = await signed_in_page(browser, ui_server, "bob@example.com")
    await page.goto(f"/incidents/{incident_id}")
    await page.get_by_label("Note", exact=True).fill("   ")
    await page.get_by_role("button", name="Add note").click()
    note = page.get_by_label("Note", exact=True)
    await expect(note).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#note-error")).to_have_text("a note needs some text")
    await expect(page.locator(".timeline .kind-note")).to_have_count(0)


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    browser: Browser, ui_server: UiServer
) -> None:
    incident_id = await post_alert(ui_server, "Queue backlog growing")
    page = await signed_in_page(browser, ui_server, "bob@example.com")
    refused = await page.request.post(f"/incidents/{incident_id}/acknowledge", form={})
    assert refused.status == 403
    await page.goto(f"/incidents/{incident_id}")
    await expect(page.locator(".incident-head [data-field=status]")).to_have_text("Open")


async def test_a_phone_screen_needs_no_sideways_scrolling(
    browser: Browser, ui_server: UiServer
) -> None:
    incident_id = await post_alert(
        ui_server, "A rather long incident title that a phone must wrap: " + "x" * 60
    )
    page = await signed_in_page(browser, ui_server, "bob@example.com", width=390, height=844)
    for path in ("/incidents", f"/incidents/{incident_id}"):
        await page.goto(path)
        await wait_until_live(page)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide on a 390 px screen"
    menu = page.get_by_role("button", name="Menu")
    await expect(page.get_by_role("link", name="Incidents", exact=True)).to_be_hidden()
    await menu.click()
    await expect(page.get_by_role("link", name="Incidents", exact=True)).to_be_visible()
