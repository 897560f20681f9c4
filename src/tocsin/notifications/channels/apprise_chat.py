"""Chat and push services through Apprise URLs (slack://, msteams://, discord://, tgram://,
ntfy://, pover://, json:// ...). Apprise is synchronous: it runs in a thread."""

from __future__ import annotations

import asyncio

import apprise

from tocsin.config import Settings
from tocsin.notifications.channels import ChannelError, OutgoingMessage, Recipient


def _notify(url: str, title: str, body: str) -> None:
    sender = apprise.Apprise()
    if not sender.add(url):
        raise ChannelError("Apprise does not understand this URL", permanent=True)
    # Apprise reports only success or failure, not why: treat failure as worth a retry.
    if not sender.notify(title=title, body=body):
        raise ChannelError("Apprise could not deliver the message")


class AppriseChannel:
    name = "apprise"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, recipient: Recipient, message: OutgoingMessage) -> str:
        await asyncio.to_thread(_notify, recipient.address, message.subject, message.text)
        return message.idempotency_key
