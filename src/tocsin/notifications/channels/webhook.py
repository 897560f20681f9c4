"""Outgoing webhooks: a JSON POST signed with HMAC-SHA256 over "timestamp.body".

Receivers check `X-Tocsin-Signature: sha256=<hex>` with the contact method's secret and
refuse a `X-Tocsin-Timestamp` too far from their clock (replay). `Idempotency-Key` is the
same on every retry of one delivery, so a receiver that remembers keys sees it once.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import orjson

from tocsin.config import Settings
from tocsin.notifications.channels import OutgoingMessage, Recipient
from tocsin.notifications.channels.http import channel_request, raise_for_answer
from tocsin.notifications.outbound import guard_for

SIGNATURE_HEADER = "X-Tocsin-Signature"
TIMESTAMP_HEADER = "X-Tocsin-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for this body sent at this timestamp."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, *, timestamp: str, body: bytes, signature: str, now: float, tolerance: float
) -> bool:
    """What a receiver does: right signature, and a timestamp within tolerance of now."""
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookChannel:
    name = "webhook"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, recipient: Recipient, message: OutgoingMessage) -> str:
        body = orjson.dumps(message.data)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Tocsin",
            TIMESTAMP_HEADER: timestamp,
            IDEMPOTENCY_HEADER: message.idempotency_key,
        }
        if recipient.signing_secret:
            headers[SIGNATURE_HEADER] = sign(recipient.signing_secret, timestamp, body)
        response = await channel_request(
            guard_for(self.settings),
            "POST",
            recipient.address,
            headers=headers,
            content=body,
            timeout=self.settings.notify_timeout_seconds,
            what="webhook",
        )
        raise_for_answer(response, what="webhook")
        return response.headers.get("x-request-id") or message.idempotency_key
