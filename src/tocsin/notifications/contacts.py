"""Contact methods: adding one, proving it reaches its owner, testing it, removing it.

A new method (or one whose address changed) is unverified: a six-digit code goes to it,
and only once the owner types that code back may notification rules use it. Nothing else is
ever sent to an unverified method, and the code itself goes only to an address the outbound
guard allows (outbound.py), within the hourly limits (limits.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.config import Settings
from tocsin.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from tocsin.notifications.channels.apprise_chat import UnguardableScheme, apprise_targets
from tocsin.notifications.dispatch import delivery_row, write_deliveries
from tocsin.notifications.limits import count_wrong_code, require_send_allowed, wrong_code_wait
from tocsin.notifications.models import ContactKind, ContactMethod, Delivery, DeliveryKind
from tocsin.notifications.outbound import (
    HostUnresolvable,
    OutboundRefused,
    guard_for,
    resolve_checked,
    url_host_port,
)
from tocsin.notifications.schemas import ContactMethodIn
from tocsin.store.rows import flush_or_raise


class ContactMethodNotFound(NotFound):
    def __init__(self, method_id: uuid.UUID) -> None:
        super().__init__(f"contact method {method_id} not found")


class ContactMethodTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("this user already has a contact method of that kind and address")


class NotVerified(Conflict):
    def __init__(self) -> None:
        super().__init__("verify this contact method first (POST .../verify with the code)")


def _code_hash(settings: Settings, method_id: uuid.UUID, code: str) -> str:
    mac = hmac.new(settings.secret_key.encode(), f"{method_id}:{code}".encode(), hashlib.sha256)
    return mac.hexdigest()


async def find_own_contact_method(
    session: AsyncSession, user_id: uuid.UUID, method_id: uuid.UUID
) -> ContactMethod | None:
    """The user's contact method with this id; None when there is none, or it is another's."""
    return (
        await session.execute(
            select(ContactMethod).where(
                ContactMethod.id == method_id, ContactMethod.user_id == user_id
            )
        )
    ).scalar_one_or_none()


async def find_contact_method(
    session: AsyncSession, user_id: uuid.UUID, method_id: uuid.UUID
) -> ContactMethod:
    method = await find_own_contact_method(session, user_id, method_id)
    if method is None:
        raise ContactMethodNotFound(method_id)
    return method


async def _queue_to_method(
    session: AsyncSession,
    method: ContactMethod,
    kind: DeliveryKind,
    *,
    key_prefix: str,
    now: datetime,
    payload: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Queue one message of ours (not a page) to the method, due now; its delivery's id. The
    idempotency key (`<key_prefix>:<method>:<random>`) reaches webhook receivers."""
    row = delivery_row(
        kind=kind,
        idempotency_key=f"{key_prefix}:{method.id}:{uuid.uuid4()}",
        user_id=method.user_id,
        contact_kind=method.kind,
        address=method.address,
        due_at=now,
        now=now,
        contact_method_id=method.id,
        payload=payload,
    )
    await write_deliveries(await session.connection(), [row], now=now)
    delivery_id: uuid.UUID = row["id"]
    return delivery_id


async def list_contact_methods(session: AsyncSession, user_id: uuid.UUID) -> list[ContactMethod]:
    result = await session.execute(
        select(ContactMethod)
        .where(ContactMethod.user_id == user_id)
        .order_by(ContactMethod.created_at, ContactMethod.id)
    )
    return list(result.scalars())


async def remove_contact_method(session: AsyncSession, method: ContactMethod) -> None:
    """Delete the method and the rules using it; pending deliveries to it fail instead of
    sending."""
    await session.delete(method)
    await session.flush()


async def check_reachable(kind: ContactKind, address: str, *, settings: Settings) -> None:
    """422 naming `address` if the outbound guard would refuse to send there: a webhook or
    an Apprise URL aimed at loopback, private, link-local (cloud metadata) ... addresses.
    Checked again at every send, since DNS can change."""
    guard = guard_for(settings)
    try:
        if kind == ContactKind.WEBHOOK:
            host, port = url_host_port(address)
            await resolve_checked(guard, host, port)
        elif kind == ContactKind.CHAT:
            for host, port in apprise_targets(address):
                try:
                    await resolve_checked(guard, host, port)
                except HostUnresolvable:
                    # Some services take a topic or a token where a host would be
                    # (ntfy://topic); the send will tell if it really is a host.
                    continue
    except (OutboundRefused, UnguardableScheme) as exc:
        raise InvalidInput(str(exc), field="address") from exc
    except HostUnresolvable as exc:
        raise InvalidInput(f"{exc}: check the URL", field="address") from exc
    except ValueError as exc:
        raise InvalidInput(f"not a usable URL: {exc}", field="address") from exc


async def send_verification_code(
    session: AsyncSession, method: ContactMethod, *, settings: Settings, now: datetime
) -> None:
    """Make a new code (the old one stops working) and queue it to the method; 429 past the
    hourly limits. The count of wrong codes stays as it is."""
    await require_send_allowed(session, method, settings=settings, now=now)
    code = f"{secrets.randbelow(1_000_000):06d}"
    method.verification_code_hash = _code_hash(settings, method.id, code)
    method.verification_expires_at = now + timedelta(minutes=settings.verification_ttl_minutes)
    method.updated_at = now
    await session.flush()
    await _queue_to_method(
        session,
        method,
        DeliveryKind.VERIFICATION,
        key_prefix="verify",
        now=now,
        payload={"code": code},
    )


async def add_contact_method(
    session: AsyncSession,
    body: ContactMethodIn,
    *,
    user_id: uuid.UUID,
    settings: Settings,
    now: datetime,
) -> ContactMethod:
    """Store the user's unverified contact method a body asks for (the API's, or the page's
    form) and send it a verification code."""
    await check_reachable(body.kind, body.address, settings=settings)
    method = ContactMethod(
        id=uuid.uuid4(),
        user_id=user_id,
        kind=body.kind,
        name=body.name,
        address=body.address,
        signing_secret=secrets.token_urlsafe(32) if body.kind == ContactKind.WEBHOOK else None,
        verification_failures=0,
        created_at=now,
        updated_at=now,
    )
    session.add(method)
    await flush_or_raise(session, ContactMethodTaken())
    await send_verification_code(session, method, settings=settings, now=now)
    return method


async def change_contact_method(
    session: AsyncSession,
    method: ContactMethod,
    *,
    name: str | None,
    address: str | None,
    settings: Settings,
    now: datetime,
) -> None:
    """Rename, or move to a new address (which must then be verified again)."""
    if address is not None and address != method.address:
        await check_reachable(method.kind, address, settings=settings)
    if name is not None:
        method.name = name
    readdressed = address is not None and address != method.address
    if readdressed:
        assert address is not None
        method.address = address
        method.verified_at = None
    method.updated_at = now
    await flush_or_raise(session, ContactMethodTaken())
    if readdressed:
        await send_verification_code(session, method, settings=settings, now=now)


async def check_verification_code(
    session: AsyncSession, method: ContactMethod, code: str, *, settings: Settings, now: datetime
) -> bool:
    """Mark the method verified if `code` is the one sent and return True; a wrong code
    counts against the hourly limit and returns False; a stale code is a 422, and guessing
    past the limit a 429, whatever code is waiting."""
    if method.verified_at is not None:
        return True
    wait = wrong_code_wait(method, settings=settings, now=now)
    if wait is not None:
        raise TooManyRequests(
            f"too many wrong codes for this contact method; try again in {wait} s",
            retry_after=wait,
        )
    if method.verification_code_hash is None or method.verification_expires_at is None:
        raise InvalidInput("no code is waiting: ask for a new one", field="code")
    if method.verification_expires_at <= now:
        raise InvalidInput("this code has expired: ask for a new one", field="code")
    if not hmac.compare_digest(
        _code_hash(settings, method.id, code), method.verification_code_hash
    ):
        count_wrong_code(method, now=now)
        await session.flush()
        return False
    method.verified_at = now
    method.verification_code_hash = None
    method.verification_expires_at = None
    method.verification_failures = 0
    method.verification_failures_since = None
    method.updated_at = now
    await session.flush()
    return True


async def send_test_message(
    session: AsyncSession, method: ContactMethod, *, settings: Settings, now: datetime
) -> uuid.UUID:
    """Queue a test message to a verified method; returns the delivery's id. 429 past the
    hourly limits."""
    if method.verified_at is None:
        raise NotVerified()
    await require_send_allowed(session, method, settings=settings, now=now)
    return await _queue_to_method(session, method, DeliveryKind.TEST, key_prefix="test", now=now)


async def find_delivery(session: AsyncSession, delivery_id: uuid.UUID) -> Delivery | None:
    return await session.get(Delivery, delivery_id)
