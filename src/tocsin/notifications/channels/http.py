"""What HTTP answers mean for a channel: which failures are worth retrying."""

from __future__ import annotations

import asyncio
import weakref

import httpx

from tocsin.notifications.channels import ChannelError

# Timeouts, throttling and conflicts can pass; other 4xx mean the request itself is wrong.
RETRYABLE_CLIENT_ERRORS = frozenset({408, 409, 425, 429})


def raise_for_answer(response: httpx.Response, *, what: str) -> None:
    """ChannelError for a non-2xx answer, permanent for client errors that will not pass."""
    if response.is_success:
        return
    permanent = 400 <= response.status_code < 500 and (
        response.status_code not in RETRYABLE_CLIENT_ERRORS
    )
    detail = response.text[:300]
    raise ChannelError(f"{what} answered {response.status_code}: {detail}", permanent=permanent)


def transport_error(exc: httpx.HTTPError, *, what: str) -> ChannelError:
    """A connection or timeout failure: the far end may be back later."""
    return ChannelError(f"{what} unreachable: {type(exc).__name__}: {exc}", permanent=False)


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def shared_client() -> httpx.AsyncClient:
    """One pooled client per event loop. Building a client costs ~0.1 s of CPU (its TLS
    context), far more than a loopback send, so channels never make their own."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            headers={"User-Agent": "Tocsin"},
        )
        _clients[loop] = client
    return client
