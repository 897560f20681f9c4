"""Chat and push services through Apprise URLs (slack://, msteams://, discord://, tgram://,
ntfy://, pover://, json:// ...). Apprise is synchronous: it runs in a thread, inside the
outbound guard (channels/sockets.py), since many schemes (json://, ntfy://host, gotify://)
send to whatever host the URL names."""

from __future__ import annotations

import asyncio

import apprise

from tocsin.config import Settings
from tocsin.notifications.channels import ChannelError, OutgoingMessage, Recipient
from tocsin.notifications.channels.sockets import guarding
from tocsin.notifications.outbound import OutboundGuard, OutboundRefused, guard_for

# Plugins that open connections on threads of their own, out of the guard's sight.
_UNGUARDABLE_MODULES = ("xmpp",)


class UnguardableScheme(ValueError):
    pass


def apprise_targets(url: str) -> list[tuple[str, int]]:
    """The hosts (and ports) an Apprise URL names for the plugin to connect to: json://host,
    ntfy://host/topic, mailto://...?smtp=host. Empty for services whose host is fixed
    (slack://, tgram://: their URL holds tokens). UnguardableScheme for a plugin the guard
    cannot follow."""
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return []
    if any(part in type(plugin).__module__ for part in _UNGUARDABLE_MODULES):
        raise UnguardableScheme("this Apprise service is not supported here")
    secure = bool(getattr(plugin, "secure", False))
    default_port = 443 if secure else 80
    targets = []
    host = str(getattr(plugin, "host", "") or "").strip("[]")
    if host and "host" in getattr(plugin, "template_tokens", {}):
        targets.append((host, int(getattr(plugin, "port", None) or default_port)))
    smtp_host = str(getattr(plugin, "smtp_host", "") or "")
    if smtp_host:
        targets.append((smtp_host, 25))
    return targets


def _notify(url: str, title: str, body: str, guard: OutboundGuard) -> None:
    sender = apprise.Apprise()
    if not sender.add(url):
        raise ChannelError("Apprise does not understand this URL", permanent=True)
    with guarding(guard) as scope:
        delivered = sender.notify(title=title, body=body)
    if scope.refusals:
        raise OutboundRefused(scope.refusals[0])
    # Apprise reports only success or failure, not why: treat failure as worth a retry.
    if not delivered:
        raise ChannelError("Apprise could not deliver the message")


class AppriseChannel:
    name = "apprise"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, recipient: Recipient, message: OutgoingMessage) -> str:
        await asyncio.to_thread(
            _notify, recipient.address, message.subject, message.text, guard_for(self.settings)
        )
        return message.idempotency_key
