"""Browser tests: Debian's Chromium driven by Playwright for Python against a real uvicorn
serving the app on a loopback port, on a fresh SQLite database with the cast seeded and
given passwords. Nothing here downloads a browser: no Chromium, no browser tests (and in
CI, where .ci/run installs it, a missing one is a failure)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.conftest import IN_CI
from tests.factories import World
from tests.ui.support import PASSWORD, give_password
from tocsin.app import create_app
from tocsin.clock import SystemClock
from tocsin.config import Settings

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
    from tocsin.db import create_engine

    engine = create_engine(database_url)
    try:
        await give_password(engine, cast.admin.id, cast.alice.id, cast.bob.id, cast.olive.id)
    finally:
        await engine.dispose()
    settings = Settings(database_url=database_url, secret_key="browser-test-secret")
    app = create_app(settings, clock=SystemClock(), run_worker=True)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield UiServer(f"http://127.0.0.1:{port}", world)
    finally:
        server.should_exit = True
        await task


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
