"""Contact methods: adding one, proving it reaches its owner, testing it, removing it.

A new method (or one whose address changed) is unverified: a six-digit code goes to it,
and only once the owner types that code back may notification rules use it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.config import Settings
from tocsin.errors import Conflict, InvalidInput, NotFound
from tocsin.notifications.dispatch import delivery_row, write_deliveries
from tocsin.notifications.models import ContactKind, ContactMethod, Delivery, DeliveryKind

MAX_VERIFICATION_FAILURES = 5


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


async def find_contact_method(
    session: AsyncSession, user_id: uuid.UUID, method_id: uuid.UUID
) -> ContactMethod:
    method = (
        await session.execute(
            select(ContactMethod).where(
                ContactMethod.id == method_id, ContactMethod.user_id == user_id
            )
        )
    ).scalar_one_or_none()
    if method is None:
        raise ContactMethodNotFound(method_id)
    return method


async def list_contact_methods(session: AsyncSession, user_id: uuid.UUID) -> list[ContactMethod]:
    result = await session.execute(
        select(ContactMethod)
        .where(ContactMethod.user_id == user_id)
        .order_by(ContactMethod.created_at, ContactMethod.id)
    )
    return list(result.scalars())


async def send_verification_code(
    session: AsyncSession, method: ContactMethod, *, settings: Settings, now: datetime
) -> None:
    """Make a new code (the old one stops working) and queue it to the method."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    method.verification_code_hash = _code_hash(settings, method.id, code)
    method.verification_expires_at = now + timedelta(minutes=settings.verification_ttl_minutes)
    method.verification_failures = 0
    method.updated_at = now
    await session.flush()
    conn = await session.connection()
    await write_deliveries(
        conn,
        [
            delivery_row(
                kind=DeliveryKind.VERIFICATION,
                idempotency_key=f"verify:{method.id}:{uuid.uuid4()}",
                user_id=method.user_id,
                contact_kind=method.kind,
                address=method.address,
                due_at=now,
                now=now,
                contact_method_id=method.id,
                payload={"code": code},
            )
        ],
        now=now,
    )


async def add_contact_method(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    kind: ContactKind,
    name: str,
    address: str,
    settings: Settings,
    now: datetime,
) -> ContactMethod:
    """Store an unverified contact method and send it a verification code."""
    method = ContactMethod(
        id=uuid.uuid4(),
        user_id=user_id,
        kind=kind,
        name=name,
        address=address,
        signing_secret=secrets.token_urlsafe(32) if kind == ContactKind.WEBHOOK else None,
        verification_failures=0,
        created_at=now,
        updated_at=now,
    )
    session.add(method)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise ContactMethodTaken() from exc
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
    if name is not None:
        method.name = name
    readdressed = address is not None and address != method.address
    if readdressed:
        assert address is not None
        method.address = address
        method.verified_at = None
    method.updated_at = now
    try:
        await session.flush()
    except IntegrityError as exc:
        raise ContactMethodTaken() from exc
    if readdressed:
        await send_verification_code(session, method, settings=settings, now=now)


async def check_verification_code(
    session: AsyncSession, method: ContactMethod, code: str, *, settings: Settings, now: datetime
) -> bool:
    """Mark the method verified if `code` is the one sent and return True; a wrong code
    counts against the limit and returns False; a stale or used-up code is a 422."""
    if method.verified_at is not None:
        return True
    if method.verification_code_hash is None or method.verification_expires_at is None:
        raise InvalidInput("no code is waiting: ask for a new one", field="code")
    if method.verification_expires_at <= now:
        raise InvalidInput("this code has expired: ask for a new one", field="code")
    if method.verification_failures >= MAX_VERIFICATION_FAILURES:
        raise InvalidInput("too many wrong codes: ask for a new one", field="code")
    if not hmac.compare_digest(
        _code_hash(settings, method.id, code), method.verification_code_hash
    ):
        method.verification_failures += 1
        await session.flush()
        return False
    method.verified_at = now
    method.verification_code_hash = None
    method.verification_expires_at = None
    method.updated_at = now
    await session.flush()
    return True


async def send_test_message(
    session: AsyncSession, method: ContactMethod, *, now: datetime
) -> uuid.UUID:
    """Queue a test message to a verified method; returns the delivery's id."""
    if method.verified_at is None:
        raise NotVerified()
    conn = await session.connection()
    row = delivery_row(
        kind=DeliveryKind.TEST,
        idempotency_key=f"test:{method.id}:{uuid.uuid4()}",
        user_id=method.user_id,
        contact_kind=method.kind,
        address=method.address,
        due_at=now,
        now=now,
        contact_method_id=method.id,
    )
    await write_deliveries(conn, [row], now=now)
    delivery_id: uuid.UUID = row["id"]
    return delivery_id


async def find_delivery(session: AsyncSession, delivery_id: uuid.UUID) -> Delivery | None:
    return await session.get(Delivery, delivery_id)
