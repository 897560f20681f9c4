"""What every page shares: the templates, the signed-in viewer, rendering, the navigation,
and the route class that turns errors into pages (a sign-in redirect, an error page).

A page module makes its router with `page_router()` (CSRF checked on every state-changing
request) and takes the viewer as `viewer: SignedIn`. See docs/ui.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin import __version__
from tocsin.auth.accounts import Principal
from tocsin.auth.permissions import Owned, get_team_readable
from tocsin.auth.sessions import SESSION_COOKIE, find_live_session
from tocsin.errors import Forbidden, TocsinError, TooManyRequests, Unauthorized
from tocsin.ui.clockface import Clockface, zone_named
from tocsin.ui.csrf import csrf_token, require_csrf
from tocsin.web import get_state

HERE = Path(__file__).parent
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    # Templates ship with the package: no stat() of every template on every render.
    auto_reload=False,
)


@dataclass(frozen=True)
class Viewer:
    """The signed-in person looking at a page."""

    principal: Principal
    session_id: uuid.UUID
    name: str
    email: str
    time_zone: str

    @property
    def user_id(self) -> uuid.UUID:
        return self.principal.user_id

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin


async def readable_on_page(
    session: AsyncSession,
    viewer: Viewer,
    model: type[Owned],
    row_id: uuid.UUID,
    missing: Callable[[uuid.UUID], TocsinError],
) -> Owned:
    """The team-owned row if the viewer may read its team. Another team's row is `missing`
    too (404): a page does not tell an outsider that it exists."""
    try:
        return await get_team_readable(session, viewer.principal, model, row_id, missing)
    except Forbidden as exc:
        raise missing(row_id) from exc


class LoginRequired(Exception):
    """No live session: the route class answers 303 to /login?next=<this page>."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def safe_next(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site, else `default`: no open redirect. A path must
    start with one slash, not two (`//evil.example` is another site) nor a backslash."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(c in target for c in "\r\n\t"):
        return default
    return target


def _this_page(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def get_viewer(request: Request) -> Viewer:
    """The viewer of a page, from the session cookie; LoginRequired without a live one."""
    key = request.cookies.get(SESSION_COOKIE)
    if not key:
        raise LoginRequired(_this_page(request))
    state = get_state(request)
    async with state.read_sessions() as session:
        found = await find_live_session(session, key, now=state.clock.now())
    if found is None:
        raise LoginRequired(_this_page(request))
    login, user = found
    viewer = Viewer(
        principal=Principal(user_id=user.id, is_admin=user.is_admin, session_id=login.id),
        session_id=login.id,
        name=user.name,
        email=user.email,
        time_zone=user.time_zone,
    )
    request.state.viewer = viewer
    request.state.principal = viewer.principal  # named in the audit log of what it changes
    return viewer


SignedIn = Annotated[Viewer, Depends(get_viewer)]


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str
    admin_only: bool = False


# The top bar. An item shows once a page is registered at its path, so a helper adding a
# page only adds its route (and, for a new area, a line here).
NAVIGATION = (
    NavItem("Incidents", "/incidents"),
    NavItem("On call", "/oncall"),
    NavItem("Schedules", "/schedules"),
    NavItem("Policies", "/policies"),
    NavItem("Services", "/services"),
    NavItem("Teams", "/teams"),
    NavItem("Integrations", "/integrations"),
    NavItem("Heartbeats", "/heartbeats"),
    NavItem("Silences", "/silences"),
    NavItem("Users", "/admin/users", admin_only=True),
    NavItem("Import", "/admin/import", admin_only=True),
    NavItem("Audit log", "/admin/audit", admin_only=True),
)


def _page_paths(request: Request) -> frozenset[str]:
    paths: frozenset[str] = getattr(request.app.state, "ui_page_paths", frozenset())
    return paths


def navigation(request: Request, viewer: Viewer | None) -> list[dict[str, Any]]:
    if viewer is None:
        return []
    paths = _page_paths(request)
    current = request.url.path
    items = []
    for item in NAVIGATION:
        if item.path not in paths or (item.admin_only and not viewer.is_admin):
            continue
        active = current == item.path or current.startswith(item.path + "/")
        if item.path == "/incidents" and current == "/":
            active = True
        items.append({"label": item.label, "path": item.path, "active": active})
    return items


def list_links(url: str, cursor: str | None, next_cursor: str | None) -> dict[str, Any]:
    """A list page's paging: the next page's URL (`url` followed by its cursor; None on the
    last page) and whether this is the first page."""
    return {
        "next_url": f"{url}cursor={next_cursor}" if next_cursor else None,
        "first_page": cursor is None,
    }


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    login_nonce: str | None = None,
) -> HTMLResponse:
    """A page from `template` with what every page needs: the viewer, their clock face, the
    CSRF token, the navigation."""
    state = get_state(request)
    viewer: Viewer | None = getattr(request.state, "viewer", None)
    zone = zone_named(viewer.time_zone if viewer else "UTC")
    values: dict[str, Any] = {
        "request": request,
        "viewer": viewer,
        "clock": Clockface(zone=zone, now=state.clock.now()),
        "csrf_token": csrf_token(request, login_nonce=login_nonce),
        "nav": navigation(request, viewer),
        "profile_path": "/profile" if "/profile" in _page_paths(request) else "/profile/password",
        "version": __version__,
    }
    values.update(context or {})
    html = TEMPLATES.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
    return response


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    titles = {
        401: "Signed out",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        422: "Invalid input",
        429: "Too many attempts",
    }
    return render(
        request,
        "error.html",
        {"title": titles.get(status_code, "Something went wrong"), "message": message},
        status_code=status_code,
    )


def login_redirect(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(next_path, safe='/')}", status_code=303)


class PageRoute(APIRoute):
    """A route answering HTML: no session -> 303 to the sign-in page, a domain error -> an
    error page with its status, bad path or query values -> 404 or 422 page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                return login_redirect(exc.next_path)
            except Unauthorized:
                return login_redirect(_this_page(request))
            except TocsinError as exc:
                response = error_page(request, exc.status_code, exc.detail)
                if isinstance(exc, TooManyRequests):
                    response.headers["Retry-After"] = str(exc.retry_after)
                return response
            except RequestValidationError as exc:
                in_path = any(err.get("loc", ("",))[0] == "path" for err in exc.errors())
                if in_path:
                    return error_page(request, 404, "There is no such page.")
                return error_page(request, 422, "; ".join(describe_errors(exc.errors()).values()))

        return page_handler


def describe_errors(errors: Any) -> dict[str, str]:
    """Pydantic or FastAPI validation errors as {field: message}, the field being the last
    part of each error's location: what a form shows beside each field."""
    out: dict[str, str] = {}
    for err in errors:
        # A list item's index is not a field: its message goes beside the list's field.
        loc = [
            str(part)
            for part in err.get("loc", ())
            if part not in ("body", "query") and not isinstance(part, int)
        ]
        field = loc[-1] if loc else "form"
        message = str(err.get("msg", "is not valid"))
        message = message.removeprefix("Value error, ")
        out.setdefault(field, message)
    return out


def page_router(**kwargs: Any) -> APIRouter:
    """A router for pages: HTML errors, CSRF checked on every state-changing request, and
    kept out of the API's OpenAPI document."""
    dependencies = [Depends(require_csrf), *kwargs.pop("dependencies", [])]
    return APIRouter(
        route_class=PageRoute,
        include_in_schema=False,
        dependencies=dependencies,
        default_response_class=HTMLResponse,
        **kwargs,
    )
