"""One-click links: signed, expiring tokens that name an incident, a person and an action.

A token is `base64url(payload).base64url(HMAC-SHA256(secret_key, payload))`, where payload is
`v1|incident|user|action|expires`. Nothing is stored, so a link works from any API node that
shares TOCSIN_SECRET_KEY, and stops working when it expires or the key changes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from tocsin.errors import TocsinError
from tocsin.incidents.lifecycle import Action

VERSION = "v1"
LINK_ACTIONS = frozenset({Action.ACKNOWLEDGE, Action.RESOLVE})


class BadLink(TocsinError):
    """Tampered, malformed or expired: the person is told, nothing happens."""

    status_code = 403


@dataclass(frozen=True)
class LinkClaim:
    incident_id: uuid.UUID
    user_id: uuid.UUID
    action: Action
    expires_at: datetime


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret_key: str, payload: bytes) -> bytes:
    return hmac.new(secret_key.encode(), b"one-click|" + payload, hashlib.sha256).digest()


def sign_link(claim: LinkClaim, *, secret_key: str) -> str:
    """The token for this claim."""
    payload = "|".join(
        [
            VERSION,
            str(claim.incident_id),
            str(claim.user_id),
            claim.action.value,
            str(int(claim.expires_at.timestamp())),
        ]
    ).encode()
    return f"{_b64(payload)}.{_b64(_mac(secret_key, payload))}"


def read_link(token: str, *, secret_key: str, now: datetime) -> LinkClaim:
    """The claim of a token this server signed and that has not expired; BadLink otherwise."""
    encoded, _, signature = token.partition(".")
    try:
        payload = _unb64(encoded)
        given = _unb64(signature)
    except (binascii.Error, ValueError) as exc:
        raise BadLink("this link is damaged; use the one in the message") from exc
    if not hmac.compare_digest(_mac(secret_key, payload), given):
        raise BadLink("this link is not valid; use the one in the message")
    try:
        version, incident, user, action, expires = payload.decode().split("|")
        if version != VERSION:
            raise ValueError(version)
        claim = LinkClaim(
            uuid.UUID(incident),
            uuid.UUID(user),
            Action(action),
            datetime.fromtimestamp(int(expires), UTC),
        )
    except ValueError as exc:
        raise BadLink("this link is damaged; use the one in the message") from exc
    if claim.action not in LINK_ACTIONS:
        raise BadLink("this link does not allow that action")
    if claim.expires_at <= now:
        raise BadLink("this link has expired; open the incident in Tocsin instead")
    return claim
