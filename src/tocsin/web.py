"""What every HTTP route shares: the process's runtime, the session, the current user."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime
from typing import Annotated, Any, Generic, Self, TypeVar
from urllib.parse import urlsplit

from fastapi import Depends, Path, Query, Request, Security, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.audit.recorder import CLOCK_KEY as AUDIT_CLOCK
from tocsin.audit.recorder import REQUEST_KEY as AUDIT_REQUEST
from tocsin.auth.accounts import Principal, find_principal
from tocsin.auth.permissions import Owned, get_team_readable
from tocsin.auth.scopes import require_scope
from tocsin.config import Settings
from tocsin.errors import Unauthorized
from tocsin.runtime import Runtime
from tocsin.store.rows import get_or_raise


def get_state(request: Request) -> Runtime:
    """The runtime the app's lifespan started (app.py)."""
    state: Runtime = request.app.state.tocsin
    return state


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for one request. Handlers that write commit before they answer, so a 2xx
    always means stored; whatever is left uncommitted when the handler fails is rolled back."""
    state = get_state(request)
    factory = state.read_sessions if request.method in ("GET", "HEAD") else state.sessions
    async with factory() as session:
        session.info[AUDIT_REQUEST] = request  # the audit log finds who acts through it
        session.info[AUDIT_CLOCK] = state.clock
        yield session
        if session.in_transaction():
            await session.commit()


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# Declares the scheme in the OpenAPI document, on every operation that needs a key; the
# header itself is read below, so a missing or malformed one gets our own 401.
_API_KEY = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key (`tk_…`): `tocsin api-keys create --email E` or the first start.",
)


async def get_principal(
    request: Request, _declared: Annotated[HTTPAuthorizationCredentials | None, Security(_API_KEY)]
) -> Principal:
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    state = get_state(request)
    async with state.read_sessions() as session:
        principal = await find_principal(session, token, now=state.clock.now())
    if principal is None:
        raise Unauthorized("invalid, expired or revoked API key")
    require_scope(request, principal)
    # Whoever changes something in this request is named in the audit log (tocsin.audit).
    request.state.principal = principal
    return principal


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def is_own_origin(origin: str | None, websocket: WebSocket, settings: Settings) -> bool:
    """Whether a browser's Origin is this server: the host it asked for, or the public URL."""
    if not origin:
        return False
    host = websocket.headers.get("host", "")
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    allowed = {f"{scheme}://{host}".lower()}
    if settings.public_url:
        allowed.add(_origin_of(settings.public_url))
    return origin.lower().rstrip("/") in allowed


def client_address(request: Request) -> str:
    """The client's IP address (behind a proxy, as uvicorn's --forwarded-allow-ips sets it)."""
    return request.client.host if request.client else "unknown"


def get_now(request: Request) -> datetime:
    return get_state(request).clock.now()


State = Annotated[Runtime, Depends(get_state)]
DbSession = Annotated[AsyncSession, Depends(get_session)]
CurrentUser = Annotated[Principal, Depends(get_principal)]
Now = Annotated[datetime, Depends(get_now)]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]


T = TypeVar("T")
R = TypeVar("R")


def _row_in_path(
    param: str, load: Callable[[AsyncSession, Principal, uuid.UUID], Awaitable[T]]
) -> Any:
    # Given as a default, not in the annotation: annotations are read as text and resolved
    # in this module's namespace, where `param` is unknown.
    named_in_path = Path(alias=param)

    async def row(
        row_id: uuid.UUID = named_in_path, *, session: DbSession, principal: CurrentUser
    ) -> T:
        return await load(session, principal, row_id)

    return Depends(row)


def row_in_path(model: type[T], missing: Callable[[uuid.UUID], Exception], param: str) -> Any:
    """A dependency for routes that any signed-in user may call: the `model` row whose id is
    the path parameter `param`, or `missing(id)` (a NotFound: 404). Use:
    `ExistingService = Annotated[Service, row_in_path(Service, ServiceNotFound, "service_id")]`."""

    async def load(session: AsyncSession, _principal: Principal, row_id: uuid.UUID) -> T:
        return await get_or_raise(session, model, row_id, missing)

    return _row_in_path(param, load)


def team_row_in_path(
    model: type[Owned], missing: Callable[[uuid.UUID], Exception], param: str
) -> Any:
    """Like `row_in_path`, for a team's row: Forbidden to a caller who may not read its team
    (`auth.permissions.get_team_readable`)."""

    async def load(session: AsyncSession, principal: Principal, row_id: uuid.UUID) -> Owned:
        return await get_team_readable(session, principal, model, row_id, missing)

    return _row_in_path(param, load)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None

    @classmethod
    def of(cls, rows: Iterable[Any], next_cursor: str | None = None) -> Self:
        """The page of these rows (ORM objects), each read into the item model by attribute:
        `Page[TeamOut].of(teams, next_cursor)`."""
        return cls.model_validate(
            {"items": list(rows), "next_cursor": next_cursor}, from_attributes=True
        )


class ErrorOut(BaseModel):
    """Every error but a validation error: {"detail": "what went wrong"}."""

    detail: str


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


# Declared on every API route (app.py), so the OpenAPI document lists the answers a client
# must handle; a route's own `responses` take precedence for the same code.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("The body could not be decoded"),
    401: _error("Missing, invalid or revoked API key"),
    403: _error("Signed in, but not allowed to do this"),
    404: _error("No such object"),
    409: _error("Conflicts with the current state (a duplicate, an illegal transition)"),
    413: _error("The body is larger than the limit (512 KB by default)"),
    503: _error("Busy: nothing was stored; retry after the Retry-After seconds"),
}

# Routes that speak another product's protocol (PagerDuty, Opsgenie) answer errors in that
# product's shape: the same codes are declared, without imposing our body on them.
FOREIGN_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": response["description"]} for code, response in ERROR_RESPONSES.items()
}
