"""Announces access changes to the stream: after any successful change to users, their keys,
sessions, passwords or team memberships, every open stream socket (in every process) checks
its credential and teams again (realtime/api.py).

One middleware over the paths that can change who may see what, rather than a call in every
route: the API and the web UI (and routes added later under these paths) are covered alike.
A false alarm costs one re-check per open socket; a missed one would leave a revoked key
streaming until the periodic re-check.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Where users, keys, sessions, passwords, roles and memberships are changed (API and UI).
ACCESS_PATHS = (
    "/api/v1/users",
    "/api/v1/teams",
    "/api/v1/auth",
    "/api/v1/logout",
    "/api/v1/api-keys",
    "/api/v1/me",
    "/logout",
    "/profile",
    "/teams",
    "/admin",
    "/users",
)
_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def changes_access(method: str, path: str) -> bool:
    return method in _CHANGES and any(
        path == prefix or path.startswith(prefix + "/") for prefix in ACCESS_PATHS
    )


class AnnounceAccessChanges:
    def __init__(self, app: ASGIApp, *, access_changed: Callable[[], None]) -> None:
        self.app = app
        self.access_changed = access_changed  # the hub's: tells every stream socket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not changes_access(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        succeeded = False

        async def watch(message: Message) -> None:
            nonlocal succeeded
            if message["type"] == "http.response.start":
                succeeded = message["status"] < 400
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if succeeded:
                self.access_changed()
