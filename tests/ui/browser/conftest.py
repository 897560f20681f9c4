"""Browser tests: Debian's Chromium driven by Playwright for Python against a real uvicorn
serving the app on a loopback port, on a fresh SQLite database with the cast seeded and
given passwords. Nothing here downloads a browser: no Chromium, no browser tests (and in
CI, where .ci/run installs it, a missing one is a failure)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.conftest import IN_CI, serving
from tests.factories import World
from tests.ui.support import PASSWORD, give_password
from tocsin.clock import SystemClock
from tocsin.config import Settings
from tocsin.db import create_engine

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not os.path.exists(CHROMIUM):
    if IN_CI:
        raise pytest.UsageError(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium")
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


@pytest.fixture
async def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """Browser tests are about the pages, not storage: SQLite only (the in-process page
    tests run on both databases)."""
    path = tmp_path / "tocsin.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@dataclass(frozen=True)
class UiServer:
    base_url: str
    world: World


@pytest.fixture
async def ui_server(database_url: str, world: World) -> AsyncIterator[UiServer]:
    """`tocsin serve` as a user runs it (the system clock, the worker in-process), on a free
    loopback port, with the cast able to sign in with PASSWORD."""
    cast = world.cast
    engine = create_engine(database_url)
    try:
        await give_password(engine, cast.admin.id, cast.alice.id, cast.bob.id, cast.olive.id)
    finally:
        await engine.dispose()
    settings = Settings(database_url=database_url, secret_key="browser-test-secret")
    async with serving(settings, SystemClock(), run_worker=True) as server:
        yield UiServer(server.base_url, world)


def api_client(server: UiServer) -> httpx.AsyncClient:
    """A client for seeding through the API. Its timeout is the page loads' (below): on a
    loaded machine the in-process server can take longer than httpx's default 5 s."""
    return httpx.AsyncClient(base_url=server.base_url, timeout=30)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


async def new_context(
    browser: Browser, server: UiServer, *, width: int = 1280, height: int = 900
) -> BrowserContext:
    context = await browser.new_context(
        base_url=server.base_url, viewport={"width": width, "height": height}
    )
    context.set_default_timeout(10_000)
    # A page load waits for the server, which on a loaded machine (CI, several test runs at
    # once) can take longer than a click or an expectation should.
    context.set_default_navigation_timeout(30_000)
    return context


async def signed_in_page(
    browser: Browser, server: UiServer, email: str, *, width: int = 1280, height: int = 900
) -> Page:
    """A page of a fresh browser context, signed in through the form."""
    context = await new_context(browser, server, width=width, height=height)
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(lambda url: "/login" not in url)
    return page
