"""Setting up on-call in a real Chromium: a schedule with two layers and an override, its
final timeline, the policy editor's Simulate panel, and the phone-sized pages."""

from __future__ import annotations

from datetime import UTC, datetime

from playwright.async_api import Browser, Page, expect

from tests.ui.browser.conftest import UiServer, signed_in_page


async def add_layer(page: Page, name: str, people: list[str], **values: str) -> None:
    form = page.locator("form[action$='/layers']")
    if not await form.is_visible():
        await page.get_by_text("Add a layer", exact=True).click()
    await form.get_by_label("Layer name").fill(name)
    await form.get_by_label("Rotation").select_option(values.get("rotation", "weekly"))
    await form.get_by_label("Hand-off").fill(values["handoff"])
    for turn, person in enumerate(people, start=1):
        await form.get_by_label(f"Turn {turn}", exact=True).select_option(label=person)
    if "from" in values:
        for day in ("Mon", "Tue", "Wed", "Thu", "Fri"):
            await form.get_by_role("group", name="Window 1 days").get_by_label(day).check()
        await form.get_by_label("From", exact=True).fill(values["from"])
        await form.get_by_label("to", exact=True).fill(values["to"])
    await form.get_by_role("button", name="Add layer").click()
    await expect(page.get_by_role("status")).to_have_text("Layer added.")


async def test_a_schedule_with_two_layers_and_an_override_shows_its_final_timeline(
    browser: Browser, ui_server: UiServer
) -> None:
    page = await signed_in_page(browser, ui_server, "alice@example.com")
    await page.goto("/schedules")
    await page.get_by_label("Name").fill("Payments primary")
    await page.get_by_label("Time zone").fill("Europe/Paris")
    await page.get_by_role("button", name="Create schedule").click()
    await expect(page.get_by_role("heading", name="Payments primary")).to_be_visible()
    await expect(page.get_by_text("Schedule zone: Europe/Paris")).to_be_visible()

    today = datetime.now(UTC).strftime("%Y-%m-%dT09:00")
    await add_layer(page, "Weekly", ["Alice", "Bob"], handoff=today)
    await add_layer(
        page,
        "Office hours",
        ["Bob"],
        rotation="daily",
        handoff=today,
        **{"from": "09:00", "to": "17:00"},
    )
    layers = page.locator("#layers")
    await expect(layers.get_by_role("heading", name="Office hours")).to_contain_text("highest")
    await expect(layers.get_by_role("heading", name="Weekly")).to_contain_text("lowest")

    overrides = page.locator("#overrides")
    await overrides.get_by_label("Shift").select_option(index=1)
    await overrides.get_by_label("Person on call instead").select_option(label="Olive")
    await overrides.get_by_role("button", name="Add override").click()
    await expect(page.get_by_role("status")).to_have_text("Override added.")

    final_row = page.locator(".tl-final").first
    await expect(final_row.locator(".bar-override")).to_contain_text("Olive")
    await expect(page.locator(".final-list")).to_contain_text("⇄ Override")
    await expect(page.locator(".tl-layer .bar-shift").first).to_be_visible()
    # Both layers and the overrides have their own rows, every day.
    labels = await page.locator(".tl-day").first.locator(".tl-label").all_inner_texts()
    assert labels == ["Weekly", "Office hours", "Overrides", "Final"]


async def test_the_pages_fit_a_phone_and_bad_input_shows_beside_the_field(
    browser: Browser, ui_server: UiServer
) -> None:
    page = await signed_in_page(browser, ui_server, "alice@example.com", width=390, height=844)
    await page.goto("/schedules")
    await page.get_by_label("Name").fill("Nights")
    await page.get_by_label("Time zone").fill("Nowhere/Special")
    await page.get_by_role("button", name="Create schedule").click()
    field = page.get_by_label("Time zone")
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#new-time_zone-error")).to_contain_text("unknown time zone")
    await field.fill("UTC")
    await page.get_by_role("button", name="Create schedule").click()
    await expect(page.get_by_role("heading", name="Nights")).to_be_visible()
    schedule_path = page.url.split("?")[0].removeprefix(ui_server.base_url)
    policy_path = f"/policies/{ui_server.world.policy}"
    for path in ("/oncall", "/schedules", schedule_path, "/policies", policy_path):
        await page.goto(path)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide on a 390 px screen"


async def test_levels_are_reordered_with_the_keyboard_and_saved(
    browser: Browser, ui_server: UiServer
) -> None:
    page = await signed_in_page(browser, ui_server, "alice@example.com")
    await page.goto(f"/policies/{ui_server.world.policy}")
    await page.get_by_label("New level pages").select_option(label="Bob")
    await page.get_by_role("button", name="Save policy").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")
    levels = page.locator(".levels-now li")
    await expect(levels.nth(1)).to_contain_text("Bob")

    move = page.get_by_role("button", name="Move up (Bob)")
    await move.focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Level 2 pages")).to_have_value("entire_team")
    await page.get_by_role("button", name="Save policy").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")
    await expect(levels.nth(0)).to_contain_text("Bob")
    await expect(levels.nth(1)).to_contain_text("Entire team")
