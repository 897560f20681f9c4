"""Screenshots of the web UI's main pages at 1280 px and 390 px wide, made with Debian's
Chromium (the browser the tests drive), saved as PNG under docs/screenshots/.

    .venv/bin/python bench/screenshots.py [--out docs/screenshots]

It seeds a demo organisation (bench/ui_seed.py), acts on a few incidents through the API so
the pages show every state, signs in as Alice and captures each page in SHOTS. A page of
another area adds a line to SHOTS (and what it needs to bench/ui_seed.py's demo_org).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright

sys.path.insert(0, str(Path(__file__).parent))

from ui_seed import (
    PASSWORD,
    DemoOrg,
    demo_org,
    demo_schedules,
    fresh_sqlite,
    make_admin,
    post_demo_alerts,
    serving,
    temp_dir,
)

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTHS = {"desktop": (1280, 860), "phone": (390, 844)}

# (file name, path on the server given the org). Pages of other areas add theirs here.
SHOTS: list[tuple[str, Callable[[DemoOrg], str]]] = [
    ("incidents", lambda org: "/incidents"),
    ("incident", lambda org: f"/incidents/{org.incidents[0]}"),
    ("password", lambda org: "/profile/password"),
    ("oncall", lambda org: "/oncall"),
    ("schedule", lambda org: f"/schedules/{org.schedules['Payments primary']}"),
    ("policy", lambda org: f"/policies/{org.policies['Payments default']}"),
    ("profile", lambda org: "/profile"),
    ("service", lambda org: f"/services/{org.services['payments-api']}"),
    ("team", lambda org: f"/teams/{org.teams['Payments']}"),
]


async def run_simulation(page: Page) -> None:
    await page.get_by_role("button", name="Simulate").click()
    await page.get_by_role("region", name="Simulation result").wait_for()


# What to do on a page before its screenshot (by file name).
BEFORE_SHOT: dict[str, Callable[[Page], Awaitable[None]]] = {"policy": run_simulation}


async def respond_to_some(org: DemoOrg) -> None:
    """Alice acknowledges one incident with a note, resolves another: every state shows."""
    async with httpx.AsyncClient(base_url=org.base_url, timeout=60) as http:
        login = await http.post(
            "/api/v1/login", json={"email": "alice@example.com", "password": PASSWORD}
        )
        login.raise_for_status()
        http.headers["Authorization"] = f"Bearer {login.json()['api_key']}"
        first, _, third, fourth, *_ = org.incidents
        await asyncio.sleep(1.5)  # let the worker page level 1 first
        ack = await http.post(
            f"/api/v1/incidents/{first}/acknowledge",
            json={"note": "Looking at it: the card processor's status page shows an outage."},
        )
        ack.raise_for_status()
        note = await http.post(
            f"/api/v1/incidents/{first}/notes",
            json={"note": "Failing over to the secondary processor; ETA 10 minutes."},
        )
        note.raise_for_status()
        (await http.post(f"/api/v1/incidents/{third}/acknowledge")).raise_for_status()
        (await http.post(f"/api/v1/incidents/{fourth}/resolve")).raise_for_status()


async def dress_configuration(org: DemoOrg) -> None:
    """What the team, service and profile pages show: tags, a heartbeat, an integration
    sending to a service, Alice's contact methods, rule-less warnings and an API key."""
    async with httpx.AsyncClient(
        base_url=org.base_url, timeout=60, headers={"Authorization": f"Bearer {org.admin_key}"}
    ) as admin:
        payments = org.teams["Payments"]
        for key, value in (("env", "prod"), ("domain", "payments")):
            tag = await admin.post(
                f"/api/v1/teams/{payments}/tags", json={"key": key, "value": value}
            )
            tag.raise_for_status()
        (
            await admin.post(
                "/api/v1/integrations",
                json={
                    "name": "Grafana payments",
                    "type": "grafana",
                    "default_service_id": org.services["payments-api"],
                },
            )
        ).raise_for_status()
        (
            await admin.post(
                "/api/v1/heartbeats",
                json={
                    "name": "Settlement batch",
                    "service_id": org.services["payments-api"],
                    "interval_seconds": 3600,
                },
            )
        ).raise_for_status()
    async with httpx.AsyncClient(base_url=org.base_url, timeout=60) as http:
        login = await http.post(
            "/api/v1/login", json={"email": "alice@example.com", "password": PASSWORD}
        )
        login.raise_for_status()
        http.headers["Authorization"] = f"Bearer {login.json()['api_key']}"
        alice = org.users["alice@example.com"]
        for kind, name, address in (
            ("email", "Work email", "alice@pager.example.com"),
            ("sms", "Mobile", "+14155550100"),
        ):
            (
                await http.post(
                    f"/api/v1/users/{alice}/contact-methods",
                    json={"kind": kind, "name": name, "address": address},
                )
            ).raise_for_status()
        (
            await http.post(f"/api/v1/users/{alice}/api-keys", json={"name": "Deploy bot"})
        ).raise_for_status()


async def capture(out: Path) -> list[Path]:
    directory = temp_dir()
    url = await asyncio.to_thread(fresh_sqlite, directory)
    admin_key = await make_admin(url)
    saved: list[Path] = []
    async with serving(url) as base:
        org = await demo_org(base, url, admin_key)
        await demo_schedules(org)
        await post_demo_alerts(org)
        await respond_to_some(org)
        await dress_configuration(org)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            shots: list[tuple[str, str]] = [("login", "/login")]
            shots += [(name, path(org)) for name, path in SHOTS]
            for label, (width, height) in WIDTHS.items():
                context = await browser.new_context(
                    base_url=base, viewport={"width": width, "height": height}
                )
                page = await context.new_page()
                saved.append(await shoot(page, "/login", out / f"login-{label}.png"))
                await sign_in(page)
                for name, path in shots[1:]:
                    file = out / f"{name}-{label}.png"
                    saved.append(await shoot(page, path, file, BEFORE_SHOT.get(name)))
                await context.close()
            await browser.close()
    return saved


async def sign_in(page: Page) -> None:
    await page.goto("/login")
    await page.get_by_label("Email").fill("alice@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(lambda url: "/login" not in url)


async def shoot(
    page: Page, path: str, file: Path, before: Callable[[Page], Awaitable[None]] | None = None
) -> Path:
    await page.goto(path)
    if before is not None:
        await before(page)
    live = page.locator("[data-live-status]")
    if await live.count():
        await live.first.filter(has_text="Live").wait_for(timeout=5_000)
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
