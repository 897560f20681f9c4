"""A lean HTTP/1.1 client for the requests users aim (webhooks, the HTTP SMS gateway): one
request written in one piece, an answer parsed from status line, headers and a
Content-Length, chunked or until-close body, over keep-alive connections pooled per origin.

Why not httpx: during a storm every page is one POST, and httpx spent more CPU per POST
(its pool's bookkeeping, anyio's streams, two writes per request) than the rest of the
delivery step together. This client does what a webhook needs and nothing else; a URL it
does not handle (user:password@, a non-ASCII name, a path that needs escaping) raises
NotLean, and the channel sends that one through the guarded httpx client instead.

Every rule of the guarded httpx client holds here too: a connection goes only to an
address the outbound guard (notifications/outbound.py) passed, the very address it checked;
no proxy; redirects are answers, never followed; no cookies kept; TLS verified against the
name with the same context; one deadline for connect, write and answer; an answer's body
is kept up to a cap, and a longer one ends the connection.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import string
import time
import weakref
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from tocsin.notifications.outbound import OutboundGuard, resolve_checked

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 256 * 1024  # more is not read: no channel needs a long reply
MAX_IDLE_PER_ORIGIN = 20
MAX_CONNECTIONS_PER_ORIGIN = 200
# Receivers close idle connections after a few seconds (uvicorn: 5); one idle this long
# is closed here first, so a send rarely meets a connection the far end is closing.
IDLE_SECONDS = 4.0

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NO_BODY = frozenset({204, 304})
# Host names as DNS writes them; anything else (IDNA, odd characters) goes to httpx.
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
# A request target that needs no escaping: printable ASCII, no space, no fragment.
_TARGET_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {"#"}
# A header name is a token (RFC 9110, 5.1): no space, separator or control character.
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")


class NotLean(Exception):
    """A request this client does not make (the caller sends it another way)."""


class BadAnswer(Exception):
    """The far end answered something that is not HTTP/1.x, or closed mid-answer."""


@dataclass(frozen=True)
class Answer:
    """A response: status, headers (names lower-cased, repeats joined by ", "), body."""

    status_code: int
    headers: dict[str, str]
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        return self.status_code in _REDIRECTS and "location" in self.headers


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    host_header: str
    path: str  # path and query, as sent on the request line


@functools.lru_cache(maxsize=1024)
def _target(url: str) -> _Target:
    """Where an http(s) URL sends, if it is one this client can send as written."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise NotLean("not a URL this client reads") from exc
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in ("http", "https") or not host or "@" in parts.netloc:
        raise NotLean("not a plain http(s) URL")
    ipv6 = ":" in host
    if not ipv6 and not set(host) <= _HOST_CHARS:
        raise NotLean("the host needs IDNA or escaping")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if not set(path) <= _TARGET_CHARS or "/." in path or not path.startswith("/"):
        raise NotLean("the path needs escaping or normalising")
    default = 443 if scheme == "https" else 80
    shown = f"[{host}]" if ipv6 else host
    host_header = shown if port in (None, default) else f"{shown}:{port}"
    return _Target(scheme, host, port or default, host_header, path)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context of the guarded httpx client (certifi's roots, no environment):
    built once per process, since building one costs ~0.1 s of CPU."""
    return httpx.create_ssl_context(trust_env=False)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, parses the answer as it arrives."""

    def __init__(self, origin: tuple[str, str, int]) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.buffer = bytearray()
        self.answer: asyncio.Future[Answer] | None = None
        self.head: tuple[int, dict[str, str]] | None = None
        self.framing = ""  # "length", "chunked", "close" or "none"
        self.remaining = 0  # of a Content-Length body
        self.body = bytearray()
        self.received = False  # any byte of the answer in flight
        self.reusable = False  # after an answer: may carry another request
        self.head_only = False  # the request was HEAD: no body follows the headers

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.answer is None or self.answer.done():
            # Bytes nobody asked for (or after the answer): this connection is not in step.
            self.closed = True
            self._abort()
            return
        self.received = True
        self.buffer += data
        try:
            self._parse()
        except BadAnswer as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        self.closed = True  # not handed out again, even before connection_lost
        return False  # the transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.answer is None or self.answer.done():
            return
        if self.head is not None and self.framing == "close":
            self._finish(reusable=False)
        elif not self.received:
            self._fail(ConnectionResetError("the connection closed before any answer"))
        else:
            self._fail(BadAnswer("the connection closed mid-answer"))

    # the exchange

    async def exchange(self, request: bytes, *, head_only: bool) -> Answer:
        assert self.transport is not None
        if self.closed or self.transport.is_closing():
            raise ConnectionResetError("the connection is closing")
        self.answer = asyncio.get_running_loop().create_future()
        self.head = None
        self.framing = ""
        self.body = bytearray()
        self.buffer.clear()
        self.received = False
        self.reusable = False
        self.head_only = head_only
        self.transport.write(request)
        try:
            return await self.answer
        finally:
            self.answer = None

    def _parse(self) -> None:
        while self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    raise BadAnswer("the answer's headers are too long")
                return
            head = bytes(self.buffer[:end])
            del self.buffer[: end + 4]
            status, headers = _parse_head(head)
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue): the real one follows
            self.head = (status, headers)
            if self.head_only or status in _NO_BODY:
                self.framing = "none"
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                self.framing = "chunked"
            elif "content-length" in headers:
                try:
                    self.remaining = int(headers["content-length"])
                except ValueError as exc:
                    raise BadAnswer("the answer's Content-Length is not a number") from exc
                if self.remaining < 0:
                    raise BadAnswer("the answer's Content-Length is negative")
                self.framing = "length"
            else:
                self.framing = "close"
        if self.framing == "none":
            self._finish(reusable=not self.buffer)
        elif self.framing == "length":
            self._parse_length()
        elif self.framing == "chunked":
            self._parse_chunked()
        else:
            self.body += self.buffer
            self.buffer.clear()
            if len(self.body) > MAX_BODY_BYTES:
                self._finish(reusable=False)

    def _parse_length(self) -> None:
        take = min(self.remaining, len(self.buffer))
        if len(self.body) < MAX_BODY_BYTES:
            self.body += self.buffer[:take]
        del self.buffer[:take]
        self.remaining -= take
        if self.remaining == 0:
            self._finish(reusable=not self.buffer)
        elif len(self.body) >= MAX_BODY_BYTES:
            self._finish(reusable=False)  # the rest is not read: the connection ends

    def _parse_chunked(self) -> None:
        while True:
            if len(self.body) > MAX_BODY_BYTES:
                self._finish(reusable=False)
                return
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                if len(self.buffer) > 1024:
                    raise BadAnswer("a chunk's size line is too long")
                return
            size_text = bytes(self.buffer[:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                raise BadAnswer("a chunk's size is not a number") from exc
            if size < 0:
                raise BadAnswer("a chunk's size is negative")
            if size == 0:
                # The last chunk, then trailer lines (seldom any) up to an empty line.
                start = line_end + 2
                if self.buffer[start : start + 2] == b"\r\n":
                    rest = start + 2
                else:
                    trailers_end = self.buffer.find(b"\r\n\r\n", start)
                    if trailers_end < 0:
                        if len(self.buffer) > MAX_HEAD_BYTES:
                            raise BadAnswer("the answer's trailers are too long")
                        return
                    rest = trailers_end + 4
                del self.buffer[:rest]
                self._finish(reusable=not self.buffer)
                return
            end = line_end + 2 + size
            if len(self.buffer) < end + 2:
                return
            if self.buffer[end : end + 2] != b"\r\n":
                raise BadAnswer("a chunk does not end where its size says")
            self.body += self.buffer[line_end + 2 : end]
            del self.buffer[: end + 2]

    def _finish(self, *, reusable: bool) -> None:
        assert self.head is not None and self.answer is not None
        status, headers = self.head
        keep = reusable and "close" not in headers.get("connection", "").lower()
        self.reusable = keep and not self.closed
        if not self.answer.done():
            self.answer.set_result(Answer(status, headers, bytes(self.body[:MAX_BODY_BYTES])))
        if not self.reusable:
            self._abort()

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(exc)
        self._abort()

    def _abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    if not version.startswith(b"HTTP/1."):
        raise BadAnswer("the answer is not HTTP/1.x")
    try:
        status = int(rest[:3])
    except ValueError as exc:
        raise BadAnswer("the answer's status is not a number") from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            raise BadAnswer("an answer's header line has no colon")
        key = name.strip().lower().decode("latin-1")
        text = value.strip().decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    if version == b"HTTP/1.0" and "keep-alive" not in headers.get("connection", "").lower():
        headers["connection"] = "close"  # HTTP/1.0 closes unless it said otherwise
    return status, headers


class KeepAliveSender:
    """Pooled keep-alive connections (one pool per origin) to the addresses a guard allows."""

    def __init__(self, guard: OutboundGuard, *, tls: ssl.SSLContext | None = None) -> None:
        self.guard = guard
        self.tls = tls  # None: tls_context()
        self.idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self.slots: dict[tuple[str, str, int], asyncio.Semaphore] = {}
        self.closed = False

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        body: bytes,
        timeout: float,  # noqa: ASYNC109 (one deadline for connect, write and answer)
    ) -> Answer:
        """Send one request and return the answer (redirects included, never followed).
        NotLean for a URL or header this client does not send; OutboundRefused for a
        target the guard refuses; HostUnresolvable, OSError, TimeoutError or BadAnswer
        when no answer came."""
        target = _target(url)
        request = _request_bytes(method, target, headers, body)
        origin = (target.scheme, target.host, target.port)
        slot = self.slots.get(origin)
        if slot is None:
            slot = self.slots[origin] = asyncio.Semaphore(MAX_CONNECTIONS_PER_ORIGIN)
        async with asyncio.timeout(timeout), slot:
            conn = self._idle_connection(origin)
            if conn is not None:
                try:
                    return await self._exchange(conn, request, method)
                except ConnectionError:
                    # Closed by the far end while idle, before a byte of the answer: the
                    # request never got there (or is sent again, as a retry would, with
                    # the same idempotency key). Once more on a new connection.
                    pass
            conn = await self._connect(target)
            return await self._exchange(conn, request, method)

    async def _exchange(self, conn: _Connection, request: bytes, method: str) -> Answer:
        try:
            answer = await conn.exchange(request, head_only=method == "HEAD")
        except BaseException:
            conn._abort()
            raise
        if conn.reusable and not conn.closed and not self.closed:
            pool = self.idle.setdefault(conn.origin, [])
            if len(pool) < MAX_IDLE_PER_ORIGIN:
                conn.idle_since = time.monotonic()
                pool.append(conn)
                return answer
        conn.close()
        return answer

    def _idle_connection(self, origin: tuple[str, str, int]) -> _Connection | None:
        pool = self.idle.get(origin)
        if not pool:
            return None
        now = time.monotonic()
        while pool:
            conn = pool.pop()  # the most recently used: the least likely to be closing
            if not conn.closed and now - conn.idle_since < IDLE_SECONDS:
                return conn
            conn.close()
        return None

    async def _connect(self, target: _Target) -> _Connection:
        addresses = await resolve_checked(self.guard, target.host, target.port)
        loop = asyncio.get_running_loop()
        tls = target.scheme == "https"
        failure: OSError | None = None
        for address in addresses:
            try:
                _, conn = await loop.create_connection(
                    lambda: _Connection((target.scheme, target.host, target.port)),
                    address,
                    target.port,
                    ssl=(self.tls or tls_context()) if tls else None,
                    # The certificate is checked against the name, not the address.
                    server_hostname=target.host if tls else None,
                )
            except OSError as exc:
                failure = exc
                continue
            return conn
        assert failure is not None
        raise failure

    def close(self) -> None:
        """Close every idle connection; later requests open new ones."""
        for pool in self.idle.values():
            for conn in pool:
                conn.close()
        self.idle.clear()


def _request_bytes(method: str, target: _Target, headers: dict[str, str], body: bytes) -> bytes:
    if not method or not _TOKEN_CHARS.issuperset(method):
        raise NotLean("a method this client does not write")
    lines = [f"{method} {target.path} HTTP/1.1", f"Host: {target.host_header}"]
    for name, value in headers.items():
        if not name or not _TOKEN_CHARS.issuperset(name):
            raise NotLean("a header name this client does not write")
        if "\r" in value or "\n" in value or "\x00" in value:
            raise NotLean("a header this client does not write")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    try:
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    except UnicodeEncodeError as exc:
        raise NotLean("a header that is not ASCII") from exc
    return head + body


_senders: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[OutboundGuard, KeepAliveSender]
] = weakref.WeakKeyDictionary()


def keepalive_sender(guard: OutboundGuard) -> KeepAliveSender:
    """The sender (one per event loop and guard) for URLs a user chose."""
    loop = asyncio.get_running_loop()
    senders = _senders.setdefault(loop, {})
    sender = senders.get(guard)
    if sender is None or sender.closed:
        sender = senders[guard] = KeepAliveSender(guard)
    return sender


def close_senders() -> None:
    """Close this event loop's senders and their connections (the runtime's stop)."""
    loop = asyncio.get_running_loop()
    for sender in _senders.pop(loop, {}).values():
        sender.closed = True
        sender.close()
