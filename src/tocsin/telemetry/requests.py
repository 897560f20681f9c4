"""Every HTTP request and WebSocket gets an id: the caller's `X-Request-ID` when it is a
sensible token, a fresh UUID otherwise. It is set for the log lines written while the
request is handled, sent back in the `X-Request-ID` response header, and put on the
request's trace span."""

from __future__ import annotations

import os
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tocsin.telemetry import tracing
from tocsin.telemetry.logs import INCIDENT_ID, INTEGRATION_ID, REQUEST_ID

HEADER = b"x-request-id"
# Letters, digits and a few separators (UUIDs, ULIDs, base64, "Root=1-5e...:..."): nothing
# that could break a log line or a header, and not long enough to bloat either.
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}")

# Paths whose last segment is a secret (an integration or ping key): traces name the route
# for these, never the path.
_SECRET_PREFIXES = ("/webhooks/",)


def request_id_from(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == HEADER:
            if _WELL_FORMED.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return new_request_id()


def new_request_id() -> str:
    """A random (version 4) UUID as text, as `str(uuid.uuid4())` gives it, at a third of
    its cost: every request without an id of its own gets one."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def route_of(scope: Scope) -> str:
    """The route template that handled the request (`/api/v1/incidents/{incident_id}`),
    never a raw path, which may carry a key."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    if scope.get("path", "").startswith(_SECRET_PREFIXES):
        return "/webhooks/{integration_key}"  # answered by the lane, before routing
    return "(unmatched)"


class RequestIdMiddleware:
    """Outermost middleware: the id is set before anything else runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        header = (HEADER, request_id.encode("ascii"))
        status: list[int] = []

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message["headers"] = [*message.get("headers", []), header]
                if "status" in message:
                    status.append(message["status"])
            await send(message)

        tokens = (
            REQUEST_ID.set(request_id),
            INCIDENT_ID.set(None),
            INTEGRATION_ID.set(None),
        )
        with tracing.server_span(scope, request_id=request_id) as finish:
            await self.app(scope, receive, send_with_id)
            finish(route_of(scope), status[0] if status else None)
        # Reset only on success: when the app raised, the server's own report of the error
        # (written further out, in this same task) still carries the request's id.
        for var, token in zip((REQUEST_ID, INCIDENT_ID, INTEGRATION_ID), tokens, strict=True):
            var.reset(token)
