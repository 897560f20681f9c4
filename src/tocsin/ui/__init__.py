"""The web UI: server-rendered pages (Jinja2) with a small script of our own, served by the
same app at `/`. Pages call the same domain functions as the API. See docs/ui.md."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from tocsin.ui import (
    admin_pages,
    audit_pages,
    auth_pages,
    heartbeat_pages,
    import_pages,
    incident_pages,
    integration_pages,
    noise_pages,
    oncall_pages,
    policy_pages,
    profile_pages,
    schedule_pages,
    service_pages,
    team_pages,
)
from tocsin.ui.pages import HERE

# Each area's page module; a new area adds its module here.
PAGE_MODULES = (
    auth_pages,
    incident_pages,
    oncall_pages,
    schedule_pages,
    policy_pages,
    service_pages,
    team_pages,
    integration_pages,
    heartbeat_pages,
    profile_pages,
    admin_pages,
    import_pages,
    noise_pages,
    audit_pages,
)


def install(app: FastAPI) -> None:
    """Mount the pages and /static on the app."""
    paths: set[str] = set()
    for module in PAGE_MODULES:
        app.include_router(module.router)
        paths |= {
            route.path
            for route in module.router.routes
            if isinstance(route, APIRoute) and "GET" in (route.methods or ())
        }
    # The navigation shows the areas that have a page (tocsin.ui.pages.NAVIGATION).
    app.state.ui_page_paths = frozenset(paths)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
