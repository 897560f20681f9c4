"""In a real Chromium: the incident list catching up after it lost its stream, and the
configuration pages (profile, team, service, integrations, heartbeats, admin) on a phone, with
a label on every control, a visible focus ring, and bad input shown beside its field."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from tests.ui.browser.conftest import UiServer, signed_in_page
from tests.ui.browser.test_pages_in_chromium import post_alert, wait_until_live

# Lets the test cut the page's stream and keep it cut: while window.__offline is true, every
# new socket goes to a path that refuses the handshake, as a lost network would.
CUTTABLE_STREAM = """
(() => {
  const Real = window.WebSocket;
  window.__sockets = [];
  window.__offline = false;
  function Cuttable(url, protocols) {
    const target = window.__offline ? url.replace("/api/v1/stream", "/api/v1/no-stream") : url;
    const socket = protocols === undefined ? new Real(target) : new Real(target, protocols);
    window.__sockets.push(socket);
    return socket;
  }
  Cuttable.prototype = Real.prototype;
  window.WebSocket = Cuttable;
})();
"""


async def test_the_incident_list_catches_up_after_a_lost_connection_without_a_reload(
    browser: Browser, ui_server: UiServer
) -> None:
    page = await signed_in_page(browser, ui_server, "bob@example.com")
    await page.add_init_script(CUTTABLE_STREAM)
    await page.goto("/incidents")
    await wait_until_live(page)
    await page.evaluate("window.__notReloaded = true")

    await page.evaluate("window.__offline = true; window.__sockets.forEach(s => s.close())")
    await expect(page.locator("[data-live-status]").first).to_have_text("Reconnecting…")
    incident_id = await post_alert(ui_server, "Created while the list was offline")
    row = page.locator(f"#incident-{incident_id}")
    # No stream, so no row yet: what follows is the catch-up, not a live event.
    await expect(row).to_have_count(0)
    await expect(page.locator("[data-live-status]").first).to_have_text("Reconnecting…")

    await page.evaluate("window.__offline = false")
    await wait_until_live(page)
    await expect(row).to_be_visible(timeout=5_000)
    await expect(row).to_contain_text("Created while the list was offline")
    assert await page.evaluate("window.__notReloaded") is True


async def no_sideways_scroll(page: Page, path: str, width: int) -> None:
    scroll = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{path} is {scroll} px wide on a {width} px screen"


async def every_control_is_labelled(page: Page, path: str) -> None:
    unlabelled = await page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
              .map(el => el.name || el.id)"""
    )
    assert unlabelled == [], f"{path}: controls without a label: {unlabelled}"


async def test_the_configuration_pages_fit_a_phone_and_label_every_control(
    browser: Browser, ui_server: UiServer
) -> None:
    world = ui_server.world
    page = await signed_in_page(browser, ui_server, "admin@example.com", width=390, height=844)
    paths = (
        "/profile",
        "/teams",
        f"/teams/{world.cast.payments}",
        "/services",
        f"/services/{world.service}",
        "/services/new",
        f"/services/{world.service}/edit",
        "/integrations",
        f"/integrations/{world.integration.id}",
        "/heartbeats",
        "/admin/users",
    )
    for path in paths:
        response = await page.goto(path)
        assert response is not None and response.status == 200, path
        await no_sideways_scroll(page, path, 390)
        await every_control_is_labelled(page, path)


async def test_a_keyboard_user_sees_where_the_focus_is(
    browser: Browser, ui_server: UiServer
) -> None:
    page = await signed_in_page(browser, ui_server, "alice@example.com")
    await page.goto(f"/teams/{ui_server.world.cast.payments}")
    await page.get_by_label("Tag key").focus()
    await page.keyboard.press("Tab")  # onto the next field, by keyboard
    await expect(page.get_by_label("Tag value")).to_be_focused()
    outline = await page.evaluate(
        "getComputedStyle(document.activeElement).outlineStyle + ' ' +"
        " getComputedStyle(document.activeElement).outlineWidth"
    )
    assert outline.startswith("solid") and not outline.endswith(" 0px"), outline


async def test_bad_input_on_the_service_form_is_shown_beside_the_field(
    browser: Browser, ui_server: UiServer
) -> None:
    page = await signed_in_page(browser, ui_server, "alice@example.com")
    await page.goto(f"/services/new?team={ui_server.world.cast.payments}")
    await page.get_by_label("Name").fill("Ledger")
    await page.get_by_label("Routing key").fill("has spaces")
    await page.get_by_role("button", name="Create service").click()
    key = page.get_by_label("Routing key")
    await expect(key).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#routing_key-error")).to_contain_text("should match pattern")
    await expect(page.get_by_label("Name")).to_have_value("Ledger")


async def test_an_api_key_is_shown_once_with_a_copy_button(
    browser: Browser, ui_server: UiServer
) -> None:
    page = await signed_in_page(browser, ui_server, "bob@example.com")
    await page.goto("/profile")
    await page.get_by_label("Key name").fill("Laptop")
    await page.get_by_role("button", name="Create API key").click()
    key = page.get_by_label("API key", exact=True)
    value = await key.input_value()
    assert value.startswith("tk_")
    await page.get_by_role("button", name="Copy").click()
    await expect(page.get_by_role("button", name="Copied")).to_be_visible()
    await page.goto("/profile")
    await expect(page.get_by_label("API key", exact=True)).to_have_count(0)
    await expect(page.get_by_text("Laptop")).to_be_visible()
