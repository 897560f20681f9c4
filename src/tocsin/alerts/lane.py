"""A direct lane for `POST /webhooks/{key}`, the one route that takes load.

FastAPI's way to a handler (matching the path against every route, solving the route's
dependencies, wrapping it in exception and exit-stack middleware) cost about a quarter of
the CPU time of each alert, more than the alert's own database work. This middleware,
placed inside the body size limit, sends webhook posts straight to the same handler
(`alerts.api.webhook_response`) and answers errors with the app's own exception handlers,
so a client sees exactly what the routed path would give it. The route stays declared in
`alerts.api` for the OpenAPI document, and serves any request this lane lets through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tocsin.alerts.api import webhook_response

if TYPE_CHECKING:
    from tocsin.integrations.intake import Intake

PREFIX = "/webhooks/"


class WebhookLane:
    def __init__(self, app: ASGIApp, *, intake: Intake) -> None:
        self.app = app
        self.intake = intake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _webhook_key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await webhook_response(self.intake, key, request)
        except Exception as exc:
            response = await _handled(scope, request, exc)
        await response(scope, receive, send)


def takes(scope: Scope) -> bool:
    """Whether the lane answers this request (a POST to /webhooks/{one segment})."""
    return _webhook_key(scope) is not None


def _webhook_key(scope: Scope) -> str | None:
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if not path.startswith(PREFIX):
        return None
    key = path[len(PREFIX) :]
    # The route's `{integration_key}` matches one non-empty path segment.
    return key if key and "/" not in key else None


async def _handled(scope: Scope, request: Request, exc: Exception) -> Response:
    """The response the app's own handler for `exc` gives; unhandled errors propagate to
    the server error middleware, as they would from a route."""
    handlers = scope["app"].exception_handlers
    for cls in type(exc).__mro__:
        handler = handlers.get(cls)
        if handler is not None:
            response: Response = await handler(request, exc)
            return response
    raise exc
