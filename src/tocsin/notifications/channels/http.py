"""HTTP for channels: what answers mean (which failures are worth retrying), and the pooled
clients, one of them guarded (notifications/outbound.py) for addresses users choose;
`channel_request` sends through the lean keep-alive client (channels/keepalive.py) and falls
back to an httpx client for what that one does not handle."""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
import typing
import urllib.request
import weakref
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from urllib.parse import urlsplit

import httpcore
import httpx

from tocsin.notifications.channels import ChannelError
from tocsin.notifications.channels.keepalive import (
    Answer,
    BadAnswer,
    NotLean,
    close_senders,
    keepalive_sender,
    tls_context,
)
from tocsin.notifications.outbound import HostUnresolvable, OutboundGuard, resolve_checked

# Timeouts, throttling and conflicts can pass; other 4xx mean the request itself is wrong.
RETRYABLE_CLIENT_ERRORS = frozenset({408, 409, 425, 429})


def raise_for_answer(response: httpx.Response | Answer, *, what: str) -> None:
    """ChannelError for a non-2xx answer, permanent for client errors that will not pass.
    The reply's body is neither kept nor shown: it is the far end's text (an internal
    service's page, a token echoed back), and the status code says what went wrong."""
    if response.is_success:
        return
    if response.is_redirect:
        # Redirects are not followed: the next hop could be anywhere, internal included.
        raise ChannelError(
            f"{what} answered {response.status_code} (redirects are not followed)",
            permanent=True,
        )
    permanent = 400 <= response.status_code < 500 and (
        response.status_code not in RETRYABLE_CLIENT_ERRORS
    )
    raise ChannelError(f"{what} answered {response.status_code}", permanent=permanent)


def transport_error(exc: Exception, *, what: str) -> ChannelError:
    """A connection or timeout failure: the far end may be back later. Only the kind of
    failure is kept: httpx's message may quote the URL, and with it a token."""
    return ChannelError(f"{what} unreachable: {type(exc).__name__}", permanent=False)


# httpcore's pool walks every connection it holds (and, for each idle one, every other
# one) whenever it hands out a request, so a big idle pool costs CPU on every send; the
# worker has at most TOCSIN_NOTIFY_CHANNEL_CONCURRENCY sends in flight per channel anyway.
_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=20)


class _KeepNoCookies(DefaultCookiePolicy):
    """Pooled clients serve every team's webhooks: a cookie one receiver sets must never
    ride along with a later request (to that host, for someone else's page)."""

    def set_ok(self, cookie: Cookie, request: urllib.request.Request) -> bool:
        return False


def _no_cookies() -> CookieJar:
    return CookieJar(policy=_KeepNoCookies())


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)
_guarded: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[OutboundGuard, httpx.AsyncClient]
] = weakref.WeakKeyDictionary()


def shared_client() -> httpx.AsyncClient:
    """One pooled client per event loop. Building a client costs ~0.1 s of CPU (its TLS
    context), far more than a loopback send, so channels never make their own."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            limits=_LIMITS, headers={"User-Agent": "Tocsin"}, cookies=_no_cookies()
        )
        _clients[loop] = client
    return client


class _QuickStream(httpcore.AsyncNetworkStream):
    """A connection whose raw socket is looked up once. httpcore asks every pooled
    connection "has the server closed you?" (`is_readable`) each time it hands out a
    request; through anyio each answer rebuilds a table of socket attributes, which made
    the pool's bookkeeping cost more CPU than the sends themselves during a storm."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(
        self,
        max_bytes: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
    ) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(
        self,
        buffer: bytes,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
    ) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
    ) -> httpcore.AsyncNetworkStream:
        return _QuickStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable" and self._socket is not None:
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


def _readable(sock: socket.socket) -> bool:
    """Whether a read would return at once (data, or the end: the server closed it)."""
    fd = sock.fileno()
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _GuardedNetwork(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the guard passed, and to the very address it
    checked: the name is resolved here, once, and the socket connects to the IP. TLS still
    verifies the certificate against the name (httpcore passes it as server_hostname)."""

    def __init__(self, guard: OutboundGuard) -> None:
        self.guard = guard
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve_checked(self.guard, host, port)
        except HostUnresolvable as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} took too long") from exc
        failure: Exception | None = None
        for address in addresses:
            try:
                return _QuickStream(
                    await self.inner.connect_tcp(
                        address,
                        port,
                        timeout=timeout,
                        local_address=local_address,
                        socket_options=socket_options,
                    )
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not an outbound target")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, guard: OutboundGuard) -> None:
        # No proxy from the environment: a proxy would resolve the name itself, after the
        # guard, so the check would say nothing about where the request goes.
        # One TLS context (~0.1 s of CPU to build) for the parent's pool, ours and the
        # keep-alive client's.
        ssl_context = tls_context()
        super().__init__(verify=ssl_context, limits=_LIMITS, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=_LIMITS.max_connections,
            max_keepalive_connections=_LIMITS.max_keepalive_connections,
            keepalive_expiry=_LIMITS.keepalive_expiry,
            network_backend=_GuardedNetwork(guard),
        )


def guarded_client(guard: OutboundGuard) -> httpx.AsyncClient:
    """A pooled client (one per event loop and guard) for URLs a user chose: every
    connection goes through the guard, and redirects are not followed."""
    loop = asyncio.get_running_loop()
    clients = _guarded.setdefault(loop, {})
    client = clients.get(guard)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            transport=_GuardedTransport(guard),
            headers={"User-Agent": "Tocsin"},
            cookies=_no_cookies(),
            follow_redirects=False,
            trust_env=False,
        )
        clients[guard] = client
    return client


# The operator's own targets (Twilio's API) are not guarded: every address passes.
_UNGUARDED = OutboundGuard.of(["0.0.0.0/0", "::/0"])


def _proxied(url: str) -> bool:
    """Whether HTTP(S)_PROXY / ALL_PROXY (and NO_PROXY) send this URL through a proxy."""
    proxies = urllib.request.getproxies_environment()
    parts = urlsplit(url)
    if not (proxies.get(parts.scheme.lower()) or proxies.get("all")):
        return False
    # The standard library's NO_PROXY check; typeshed does not list it.
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    return not bypass(parts.hostname or "", proxies)


async def channel_request(
    guard: OutboundGuard | None,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    content: bytes,
    timeout: float,  # noqa: ASYNC109 (the channel's per-send limit)
    what: str,
) -> Answer | httpx.Response:
    """One request of a channel, redirects not followed: by the keep-alive client, or by an
    httpx client for a URL or header that one does not send. With a `guard`, to a URL a user
    chose, checked by the guard (the guarded httpx client as fallback); with None, to a URL
    the operator configured (not guarded, the shared httpx client as fallback, and at once
    when the environment names a proxy for the URL, which only httpx speaks). The answer,
    whatever its status; ChannelError if none came (OutboundRefused, a ChannelError too, for
    a refused target)."""
    if guard is not None or not _proxied(url):
        try:
            return await keepalive_sender(guard or _UNGUARDED).request(
                method, url, headers=headers, body=content, timeout=timeout
            )
        except NotLean:
            pass
        except (OSError, BadAnswer, HostUnresolvable) as exc:  # TimeoutError is an OSError
            raise transport_error(exc, what=what) from exc
    try:
        client = shared_client() if guard is None else guarded_client(guard)
        return await client.request(method, url, content=content, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise transport_error(exc, what=what) from exc
    except ValueError as exc:  # a URL httpx cannot use
        raise ChannelError(f"{what} URL is not usable", permanent=True) from exc


async def close_clients() -> None:
    """Close this event loop's pooled clients (the runtime's stop); the next send, if any,
    opens new ones."""
    close_senders()
    loop = asyncio.get_running_loop()
    clients = list(_guarded.pop(loop, {}).values())
    shared = _clients.pop(loop, None)
    if shared is not None:
        clients.append(shared)
    for client in clients:
        await client.aclose()
