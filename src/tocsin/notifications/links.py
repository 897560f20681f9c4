"""One-click links: signed, expiring tokens that name an incident, a person and an action,
each usable once.

A token is `incident~user~action~expires~link_id.signature`, signed by itsdangerous (HMAC-
SHA256 with a key derived from TOCSIN_SECRET_KEY and this purpose's salt, checked in constant
time). The signature makes it tamper-proof and binds the action to that person and incident;
`expires` ends it; `link_id` is what `used_links` remembers once the link has acted
(actions.py), so a forwarded or replayed link does nothing the second time. Any API node
that shares the secret key can read a link, and none can once the key changes.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from itsdangerous import BadSignature, Signer

from tocsin.errors import TocsinError
from tocsin.incidents.lifecycle import Action

SALT = "tocsin.one-click.v2"
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
    # Names this one link (not the person or the incident): what "used once" is about.
    link_id: str = field(default_factory=lambda: secrets.token_urlsafe(12))


def _signer(secret_key: str) -> Signer:
    return Signer(secret_key, salt=SALT, digest_method=hashlib.sha256)


def sign_link(claim: LinkClaim, *, secret_key: str) -> str:
    """The token for this claim."""
    payload = "~".join(
        [
            claim.incident_id.hex,
            claim.user_id.hex,
            claim.action.value,
            str(int(claim.expires_at.timestamp())),
            claim.link_id,
        ]
    )
    return _signer(secret_key).sign(payload).decode()


def read_link(token: str, *, secret_key: str, now: datetime) -> LinkClaim:
    """The claim of a token this server signed and that has not expired; BadLink otherwise."""
    try:
        payload = _signer(secret_key).unsign(token).decode()
    except (BadSignature, UnicodeError) as exc:
        raise BadLink("this link is not valid; use the one in the message") from exc
    try:
        incident, user, action, expires, link_id = payload.split("~")
        claim = LinkClaim(
            uuid.UUID(hex=incident),
            uuid.UUID(hex=user),
            Action(action),
            datetime.fromtimestamp(int(expires), UTC),
            link_id,
        )
    except ValueError as exc:
        raise BadLink("this link is damaged; use the one in the message") from exc
    if claim.action not in LINK_ACTIONS:
        raise BadLink("this link does not allow that action")
    if claim.expires_at <= now:
        raise BadLink("this link has expired; open the incident in Tocsin instead")
    return claim
