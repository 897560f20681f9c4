"""GET /api/v1/stream: a WebSocket of incident events for the teams the user may see."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from tocsin.auth.permissions import visible_team_ids
from tocsin.web import AppState, get_ws_principal

router = APIRouter(tags=["stream"])


@router.websocket("/api/v1/stream")
async def stream(websocket: WebSocket) -> None:
    """Send `{"type", "incident"}` messages until the client goes away. Authenticate with
    `Authorization: Bearer <key>` or, where a browser cannot set headers, `?token=<key>`."""
    principal = await get_ws_principal(websocket)
    if principal is None:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="invalid API key")
        return
    state: AppState = websocket.app.state.tocsin
    async with state.read_sessions() as session:
        visible = await visible_team_ids(session, principal)
    # Subscribed before the handshake completes: a client that acts as soon as it is
    # connected still hears of what it did.
    subscription = await state.hub.subscribe(visible)
    try:
        await websocket.accept()
    except Exception:
        state.hub.unsubscribe(subscription)
        raise
    # A reader notices the client closing while we wait for the next event.
    closed = asyncio.create_task(_wait_for_close(websocket))
    try:
        while not subscription.overflowed:
            next_message = asyncio.create_task(subscription.queue.get())
            done, _ = await asyncio.wait(
                {next_message, closed}, return_when=asyncio.FIRST_COMPLETED
            )
            if closed in done:
                next_message.cancel()
                return
            message = next_message.result()
            if message is None:
                break
            await websocket.send_json(message)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER, reason="fell behind")
    except WebSocketDisconnect:
        return
    finally:
        state.hub.unsubscribe(subscription)
        closed.cancel()


async def _wait_for_close(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()
