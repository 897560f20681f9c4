"""The outbound guard: requests a user can aim (webhooks, Apprise URLs, the HTTP SMS gateway)
reach only ordinary public addresses, unless the operator allowed an internal one on purpose.

A host is resolved once; every address it resolves to must pass, and the connection is then
made to one of those very addresses, so a DNS server cannot answer "public" to the check and
"169.254.169.254" to the connect (rebinding). TOCSIN_OUTBOUND_ALLOW lists the CIDRs and host
names that may be internal: a loopback test receiver, an SMS gateway on the LAN.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tocsin.config import Settings
from tocsin.notifications.channels import ChannelError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv6 forms that carry an IPv4 destination: judged by the IPv4 address inside.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_SHARED_V4 = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598

# Python's socket.getaddrinfo, kept before anything (see channels/sockets.py) wraps it.
real_getaddrinfo = socket.getaddrinfo


class OutboundRefused(ChannelError):
    """The target is an address this server may not contact: never worth a retry."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, permanent=True)
        self.detail = detail


class HostUnresolvable(Exception):
    """The host name has no address (now): DNS may answer later."""

    def __init__(self, host: str) -> None:
        super().__init__(f"the host {host} does not resolve")
        self.host = host


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 destination inside an IPv4-mapped, 6to4 or NAT64 IPv6 address, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def special_kind(address: IPAddress) -> str | None:
    """What makes this address one the guard refuses ("loopback", "private" ...), or None
    for an ordinary public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            kind = special_kind(inner)
            if kind is not None:
                return f"IPv6-wrapped {kind}"
            if any(address in net for net in _NAT64):
                return None  # a public IPv4 address reached through a NAT64 gateway
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"  # 169.254.169.254 and fe80::: cloud metadata lives here
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv6Address) and address in _UNIQUE_LOCAL:
        return "unique-local"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED_V4:
        return "shared (carrier-grade NAT)"
    if not address.is_global:
        return "non-routable"
    return None


@dataclass(frozen=True)
class OutboundGuard:
    """Which internal targets the operator allowed: networks, host names and, with a
    leading dot, every name under a domain (".corp.example")."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, entries: Iterable[str]) -> OutboundGuard:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip().strip("[]").lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def allows_host(self, host: str) -> bool:
        name = host.strip("[]").lower().rstrip(".")
        return name in self.hosts or any(
            h.startswith(".") and (name.endswith(h) or name == h[1:]) for h in self.hosts
        )

    def refused_kind(self, address: IPAddress) -> str | None:
        """What kind of address this is ("loopback" ...) if it may not be contacted; None if
        it may (a public address, or one inside a network the operator allowed)."""
        kind = special_kind(address)
        if kind is None:
            return None
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address):
            inner = _embedded_ipv4(address)
            if inner is not None:
                candidates.append(inner)
        if any(c in net for c in candidates for net in self.networks):
            return None
        return kind

    def check_addresses(self, host: str, addresses: Iterable[str]) -> list[str]:
        """The addresses, in order, if every one may be contacted; OutboundRefused naming
        the first that may not. A host resolving to one public and one private address is
        refused: which of them a connection would use is not ours to predict."""
        ordered = list(dict.fromkeys(addresses))
        if self.allows_host(host):
            return ordered
        for text in ordered:
            kind = self.refused_kind(ipaddress.ip_address(text.split("%", 1)[0]))
            if kind is not None:
                # A name's internal address is not echoed back: it would map the network.
                subject = f"{host} is" if _literal(host) else f"{host} resolves to"
                article = "an" if kind[0].lower() in "aeiou" else "a"
                raise OutboundRefused(
                    f"{subject} {article} {kind} address, which Tocsin does not send to"
                    " (an operator may allow it with TOCSIN_OUTBOUND_ALLOW)"
                )
        return ordered


@functools.cache
def _guard_of(entries: tuple[str, ...]) -> OutboundGuard:
    return OutboundGuard.of(entries)


def guard_for(settings: Settings) -> OutboundGuard:
    """The guard the operator's TOCSIN_OUTBOUND_ALLOW describes."""
    return _guard_of(tuple(settings.outbound_allow))


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def _addresses(infos: Iterable[tuple[Any, ...]]) -> list[str]:
    return [str(info[4][0]) for info in infos]


async def resolve_checked(guard: OutboundGuard, host: str, port: int) -> list[str]:
    """The addresses to connect to for host:port, every one of them allowed.
    OutboundRefused if any is not; HostUnresolvable if there are none."""
    literal = _literal(host)
    if literal is not None:
        return guard.check_addresses(host, [literal])
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HostUnresolvable(host) from exc
    if not infos:
        raise HostUnresolvable(host)
    return guard.check_addresses(host, _addresses(infos))


def resolve_checked_blocking(
    guard: OutboundGuard, host: str, port: int | str | None, *args: object, **kwargs: object
) -> list[tuple[Any, ...]]:
    """socket.getaddrinfo's answer for host, after the guard checked every address in it."""
    infos = real_getaddrinfo(host, port, *args, **kwargs)  # type: ignore[arg-type]
    guard.check_addresses(host, _addresses(infos))
    return list(infos)


def url_host_port(url: str) -> tuple[str, int]:
    """The host and port an http(s) URL connects to; ValueError if it names none."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise ValueError("the URL names no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return host, port
