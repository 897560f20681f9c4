"""The outbound guard for code that opens its own sockets: Apprise's plugins, which use
requests, smtplib, MQTT or plain UDP. Inside `guarding(guard)`, every name Python resolves
and every address a socket connects or sends to is checked by the guard first; redirects
are checked too, since each hop resolves and connects again.

Apprise offers no hook for this, so `socket.getaddrinfo` and `socket.socket`'s `connect`,
`connect_ex` and `sendto` are wrapped, once per process. Outside a `guarding` block (any
other thread, any other task) the wrappers only read a ContextVar and step aside. The guard
travels in that ContextVar, which `asyncio.to_thread` and Apprise's worker threads carry
along; a refused lookup fails like an unknown host (OSError), which every plugin handles.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from tocsin.notifications.outbound import (
    OutboundGuard,
    OutboundRefused,
    real_getaddrinfo,
    resolve_checked_blocking,
)


@dataclass
class GuardScope:
    guard: OutboundGuard
    # What was refused inside the block, for the delivery's error (the plugin only sees
    # a failed connection).
    refusals: list[str] = field(default_factory=list)
    # Addresses a lookup in this block passed (an allowed name's included): connecting to
    # one of them is what the lookup was for.
    passed: set[str] = field(default_factory=set)


class RefusedConnection(OSError):
    """The guard refused this address; raised where a socket call would fail."""


_scope: ContextVar[GuardScope | None] = ContextVar("tocsin_outbound_guard", default=None)
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_sendto = socket.socket.sendto
_install_lock = threading.Lock()
_installed = False


def _refuse(scope: GuardScope, detail: str) -> RefusedConnection:
    scope.refusals.append(detail)
    return RefusedConnection(detail)


def _getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    scope = _scope.get()
    if scope is None or host is None:
        return real_getaddrinfo(host, port, *args, **kwargs)
    name = host.decode() if isinstance(host, bytes) else str(host)
    try:
        infos = resolve_checked_blocking(scope.guard, name, port, *args, **kwargs)
    except OutboundRefused as exc:
        raise _refuse(scope, exc.detail) from None
    scope.passed.update(str(info[4][0]) for info in infos)
    return infos


def _checked(scope: GuardScope, address: Any) -> Any:
    """The address to really use: a checked IP, never a name resolved again later."""
    if not (isinstance(address, tuple) and len(address) >= 2):
        raise _refuse(scope, "only internet addresses are outbound targets")
    host, port, *rest = address
    name = host.decode() if isinstance(host, bytes) else str(host)
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        # A name handed straight to connect(): resolve it here, checked, and use the IP.
        infos = _getaddrinfo(name, port, 0, socket.SOCK_STREAM)
        return (infos[0][4][0], port, *rest)
    if name in scope.passed:
        return address
    try:
        scope.guard.check_addresses(name, [name])
    except OutboundRefused as exc:
        raise _refuse(scope, exc.detail) from None
    return address


def _connect(self: socket.socket, address: Any) -> None:
    scope = _scope.get()
    if scope is not None:
        address = _checked(scope, address)
    _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    scope = _scope.get()
    if scope is not None:
        address = _checked(scope, address)
    return _real_connect_ex(self, address)


def _sendto(self: socket.socket, data: Any, *args: Any) -> int:
    scope = _scope.get()
    if scope is not None and args:
        args = (*args[:-1], _checked(scope, args[-1]))
    return _real_sendto(self, data, *args)


def install() -> None:
    """Wrap the socket functions (once; later calls do nothing)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        socket.getaddrinfo = _getaddrinfo
        socket.socket.connect = _connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign,assignment]
        socket.socket.sendto = _sendto  # type: ignore[method-assign,assignment]
        _installed = True


@contextmanager
def guarding(guard: OutboundGuard) -> Iterator[GuardScope]:
    """Check every lookup and connection made in this context (and the threads it hands
    its context to) against `guard`."""
    install()
    scope = GuardScope(guard)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)
