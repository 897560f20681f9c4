"""GET /api/v1/stream: a WebSocket of incident events for the teams the user may see.

The credential never travels in the URL, which access logs print: it comes in the
`Authorization` header, as a `Sec-WebSocket-Protocol` value (`bearer.<key>`, offered beside
`tocsin`, for clients that cannot set headers), or, for the web UI, as the session cookie of a
page of ours. The socket keeps checking it: whenever an access change is announced (a key
revoked, a sign-out, a password change, a user deactivated, a membership changed; in any
process) and at least every `stream_recheck_seconds`. A credential no longer valid closes the
socket with 4401; teams no longer visible stop sending at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from fastapi.responses import JSONResponse

from tocsin.auth.accounts import Principal, find_principal
from tocsin.auth.permissions import visible_team_ids
from tocsin.auth.sessions import SESSION_COOKIE, find_live_session
from tocsin.realtime.hub import Subscription
from tocsin.runtime import Runtime
from tocsin.web import bearer_token, is_own_origin

router = APIRouter(tags=["stream"])

# The subprotocol the server answers with; `bearer.<key>` rides beside it in the offer.
SUBPROTOCOL = "tocsin"
BEARER_SUBPROTOCOL = "bearer."
# Close codes after the handshake (4000-4999 are the application's own).
CREDENTIAL_NO_LONGER_VALID = 4401


@dataclass(frozen=True)
class StreamCredential:
    token: str
    from_cookie: bool


def stream_credential(websocket: WebSocket, state: Runtime) -> StreamCredential | None:
    """The credential the client offered, by the header, the subprotocol or the cookie."""
    token = bearer_token(websocket.headers.get("authorization"))
    if token:
        return StreamCredential(token, from_cookie=False)
    for offered in websocket.scope.get("subprotocols", []):
        if offered.startswith(BEARER_SUBPROTOCOL) and len(offered) > len(BEARER_SUBPROTOCOL):
            return StreamCredential(offered[len(BEARER_SUBPROTOCOL) :], from_cookie=False)
    # A cookie goes along with any site's WebSocket request: only a page of ours may use it
    # (cross-site WebSocket hijacking).
    key = websocket.cookies.get(SESSION_COOKIE)
    if key and is_own_origin(websocket.headers.get("origin"), websocket, state.settings):
        return StreamCredential(key, from_cookie=True)
    return None


async def principal_of(state: Runtime, credential: StreamCredential) -> Principal | None:
    """Who the credential belongs to right now; None once revoked, expired or deactivated."""
    now = state.clock.now()
    async with state.read_sessions() as session:
        if not credential.from_cookie:
            return await find_principal(session, credential.token, now=now)
        found = await find_live_session(session, credential.token, now=now)
    if found is None:
        return None
    login, user = found
    return Principal(user_id=user.id, is_admin=user.is_admin, session_id=login.id)


async def _visible(state: Runtime, principal: Principal) -> set[uuid.UUID] | None:
    async with state.read_sessions() as session:
        return await visible_team_ids(session, principal)


async def _refuse_token_in_url(websocket: WebSocket) -> None:
    detail = (
        "?token= is not accepted: a key in the URL ends up in logs. Send it in the "
        "Authorization header or as the subprotocol 'bearer.<key>' beside 'tocsin'."
    )
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse({"detail": detail}, status_code=400))
    else:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=detail[:120])


@router.websocket("/api/v1/stream")
async def stream(websocket: WebSocket) -> None:
    """Send `{"type", "incident"}` messages until the client goes away. Authenticate with
    `Authorization: Bearer <key>`, or offer the subprotocols `tocsin` and `bearer.<key>`
    (the server answers `tocsin`); never `?token=`, which is refused with 400."""
    state: Runtime = websocket.app.state.tocsin
    if "token" in websocket.query_params:
        await _refuse_token_in_url(websocket)
        return
    credential = stream_credential(websocket, state)
    principal = await principal_of(state, credential) if credential is not None else None
    if credential is None or principal is None:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="invalid API key")
        return
    # Subscribed before the handshake completes: a client that acts as soon as it is
    # connected still hears of what it did.
    subscription = await state.hub.subscribe(
        await _visible(state, principal), user_id=principal.user_id, since=state.clock.now()
    )
    offered = websocket.scope.get("subprotocols", [])
    try:
        await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    except Exception:
        state.hub.unsubscribe(subscription)
        raise
    watch = _Watch(websocket, state, credential, principal, subscription)
    try:
        await watch.run()
    finally:
        state.hub.unsubscribe(subscription)


class _Watch:
    """One open socket: sends its subscription's messages and re-checks its access."""

    def __init__(
        self,
        websocket: WebSocket,
        state: Runtime,
        credential: StreamCredential,
        principal: Principal,
        subscription: Subscription,
    ) -> None:
        self.websocket = websocket
        self.state = state
        self.credential = credential
        self.principal = principal
        self.subscription = subscription

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.state.settings.stream_recheck_seconds
        next_check = loop.time() + interval
        # A reader notices the client closing while we wait for the next event.
        closed = asyncio.create_task(_wait_for_close(self.websocket))
        subscription = self.subscription
        try:
            while not subscription.overflowed:
                next_message = asyncio.create_task(subscription.queue.get())
                recheck = asyncio.create_task(subscription.recheck.wait())
                done, _ = await asyncio.wait(
                    {next_message, closed, recheck},
                    timeout=max(next_check - loop.time(), 0.0),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                recheck.cancel()
                if not next_message.done():
                    next_message.cancel()
                if closed in done:
                    return
                if recheck in done or loop.time() >= next_check:
                    subscription.recheck.clear()
                    next_check = loop.time() + interval
                    if not await self._still_allowed():
                        await self._close(CREDENTIAL_NO_LONGER_VALID, "credential no longer valid")
                        return
                if next_message.done() and not next_message.cancelled():
                    message = next_message.result()
                    if message is None:
                        break
                    if self._may_still_see(message):
                        await self.websocket.send_json(message)
            await self._close(status.WS_1013_TRY_AGAIN_LATER, "fell behind")
        except WebSocketDisconnect:
            return
        finally:
            closed.cancel()

    async def _still_allowed(self) -> bool:
        """Check the credential again; narrow (or widen) the teams to what it may see now."""
        now_principal = await principal_of(self.state, self.credential)
        if now_principal is None or now_principal.user_id != self.principal.user_id:
            return False
        self.subscription.visible_teams = await _visible(self.state, now_principal)
        return True

    def _may_still_see(self, message: dict[str, Any]) -> bool:
        # Queued before a membership ended: not sent after it.
        try:
            team_id = uuid.UUID(str(message["incident"]["team_id"]))
        except (KeyError, TypeError, ValueError):
            return True
        return self.subscription.may_see(team_id)

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.websocket.close(code=code, reason=reason)


async def _wait_for_close(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()
