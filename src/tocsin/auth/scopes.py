"""Which API key scope each operation needs, and the check that refuses a narrower key.

The rule, so a new route is covered without anyone remembering it: reading (GET, HEAD)
needs `read`; acting on one incident (POST under /api/v1/incidents/{incident_id}/) needs
`respond`; anything else that changes state needs `full`. A route whose method misleads
(a POST that only computes) says so with `openapi_extra=needs_scope(KeyScope.READ)`.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from tocsin.auth.accounts import Principal
from tocsin.auth.models import KeyScope
from tocsin.errors import Forbidden

SCOPE_EXTENSION = "x-required-scope"
INCIDENT_ACTIONS = "/api/v1/incidents/{incident_id}/"
READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def needs_scope(scope: KeyScope) -> dict[str, Any]:
    """`openapi_extra` for a route whose scope the rule would get wrong."""
    return {SCOPE_EXTENSION: scope.value}


def required_scope(method: str, path: str, declared: str | None = None) -> KeyScope:
    """The narrowest key scope that may call `method path` (a route's path template)."""
    if declared is not None:
        return KeyScope(declared)
    if method.upper() in READING_METHODS:
        return KeyScope.READ
    if path.startswith(INCIDENT_ACTIONS) and method.upper() == "POST":
        return KeyScope.RESPOND
    return KeyScope.FULL


class ScopeTooNarrow(Forbidden):
    def __init__(self, needed: KeyScope, granted: KeyScope) -> None:
        super().__init__(
            f"this API key has scope {granted.value!r}; this needs scope {needed.value!r}"
        )


def require_scope(request: Request, principal: Principal) -> None:
    """Refuse a key whose scope does not cover the route being called (403 naming it)."""
    route = request.scope.get("route")
    if route is None:
        return
    extra = getattr(route, "openapi_extra", None) or {}
    path = getattr(route, "path_format", None) or request.url.path
    needed = required_scope(request.method, path, extra.get(SCOPE_EXTENSION))
    if not principal.scope.covers(needed):
        raise ScopeTooNarrow(needed, principal.scope)


def describe_scopes(openapi: dict[str, Any]) -> None:
    """Write each operation's scope into the OpenAPI document: the `x-required-scope`
    extension, the apiKey security requirement's scope list, and a line of description."""
    for path, item in openapi.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "security" not in operation:
                continue  # needs no key (webhooks, sign-in)
            scope = required_scope(method, path, operation.get(SCOPE_EXTENSION)).value
            operation[SCOPE_EXTENSION] = scope
            operation["security"] = [
                {name: [scope] for name in requirement} for requirement in operation["security"]
            ]
            line = f"API key scope: `{scope}`."
            description = operation.get("description", "")
            operation["description"] = f"{description}\n\n{line}" if description else line
