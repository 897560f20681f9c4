"""Screenshots of /admin/import at 1280 px and 390 px: the form, the dry-run report of the
PagerDuty test export, and the report after Apply (docs/screenshots/import-*.png).

    .venv/bin/python bench/import_screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from playwright.async_api import Page, async_playwright

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))

from screenshots import ARGS, CHROMIUM, WIDTHS
from tests.importers.vendor_server import make_tls, vendor_api
from ui_seed import PASSWORD, fresh_sqlite, make_admin, serving, temp_dir

from tocsin.importers import pagerduty


def pagerduty_export(directory: Path) -> Path:
    tls = make_tls(directory)
    with vendor_api("pagerduty", tls=tls) as api:
        raw = pagerduty.fetch(
            "u+demo",
            base_url=api.base_url,
            ca_file=str(tls.ca_file),
            since=datetime(2026, 3, 23, tzinfo=UTC),
            until=datetime(2026, 4, 6, tzinfo=UTC),
        )
    file = directory / "pagerduty.json"
    file.write_text(json.dumps(raw))
    return file


async def capture(out: Path) -> list[Path]:
    directory = temp_dir()
    export = pagerduty_export(directory)
    saved: list[Path] = []
    for label, (width, height) in WIDTHS.items():
        (directory / label).mkdir(exist_ok=True)
        url = await asyncio.to_thread(fresh_sqlite, directory / label)
        await make_admin(url)
        async with serving(url, worker=False) as base, async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = await browser.new_context(
                base_url=base, viewport={"width": width, "height": height}
            )
            page = await context.new_page()
            await sign_in(page)
            await page.goto("/admin/import")
            saved.append(await shot(page, out / f"import-form-{label}.png"))
            await page.get_by_label("Source", exact=True).select_option("pagerduty")
            await page.get_by_label("Export file").set_input_files(str(export))
            await page.get_by_role("button", name="Show what would change").click()
            await page.get_by_role("button", name="Apply these changes").wait_for()
            saved.append(await shot(page, out / f"import-preview-{label}.png"))
            await page.get_by_role("button", name="Apply these changes").click()
            await page.get_by_text("Written.").wait_for()
            saved.append(await shot(page, out / f"import-applied-{label}.png"))
            width_ok = await page.evaluate(
                "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
            )
            print(f"{label}: no sideways scroll: {width_ok}")
            await browser.close()
    return saved


async def sign_in(page: Page) -> None:
    await page.goto("/login")
    await page.get_by_label("Email").fill("admin@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(lambda url: "/login" not in url)


async def shot(page: Page, file: Path) -> Path:
    await page.screenshot(path=str(file), full_page=True)
    return file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for file in asyncio.run(capture(args.out)):
        print(file)


if __name__ == "__main__":
    main()
