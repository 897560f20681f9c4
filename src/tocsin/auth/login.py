"""Signing in with an email and password, and changing one's own password.

Every attempt costs one Argon2 verification whether the email exists, has no password or is
wrong, so response time tells nothing about which emails exist. Failed attempts are counted
in the database per email and per client address, so the limit holds across every API
process sharing it; past the limit an attempt is refused before any password is checked.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.accounts import Principal, find_user_by_email
from tocsin.auth.models import LoginFailure, LoginSession, User
from tocsin.auth.secrets import PasswordCheck, check_password, hash_password
from tocsin.auth.sessions import open_session, revoke_sessions_of
from tocsin.config import Settings
from tocsin.errors import InvalidInput, TooManyRequests, Unauthorized


class BadCredentials(Unauthorized):
    def __init__(self) -> None:
        super().__init__("wrong email or password")


class TooManyAttempts(TooManyRequests):
    """Answered 429 with Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed sign-in attempts; try again in {retry_after} s",
            retry_after=retry_after,
        )


@dataclass(frozen=True)
class LoginLimits:
    per_email: int
    per_address: int
    window: timedelta
    session_ttl: timedelta


def login_limits(settings: Settings) -> LoginLimits:
    return LoginLimits(
        per_email=settings.login_failures_per_email,
        per_address=settings.login_failures_per_address,
        window=timedelta(seconds=settings.login_failure_window_seconds),
        session_ttl=timedelta(hours=settings.session_ttl_hours),
    )


@dataclass(frozen=True)
class LoggedIn:
    user: User
    session: LoginSession
    key: str  # the session key; shown this once, never stored


EMAIL, ADDRESS = "email", "address"


def _email_subject(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


@functools.cache
def _decoy_hash() -> str:
    return hash_password("not anyone's password")


def _verify(password: str, user: User | None) -> PasswordCheck:
    """Always one Argon2 verification: against the decoy for an unknown or passwordless
    user, and in addition to the old scrypt check for a hash from before Argon2."""
    stored = user.password_hash if user is not None else None
    if stored and stored.startswith("$argon2"):
        return check_password(password, stored)
    check_password(password, _decoy_hash())
    if not stored:
        return PasswordCheck(False)
    return check_password(password, stored)


async def _retry_after(
    session: AsyncSession, scope: str, subject: str, *, limit: int, now: datetime, window: timedelta
) -> int | None:
    """Seconds until the oldest counted failure leaves the window, if the limit is reached."""
    since = now - window
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(LoginFailure.at)).where(
                LoginFailure.scope == scope,
                LoginFailure.subject == subject,
                LoginFailure.at > since,
            )
        )
    ).one()
    if count < limit or oldest is None:
        return None
    return max(1, math.ceil((oldest + window - now).total_seconds()))


async def refuse_if_limited(
    session: AsyncSession, *, email: str, address: str, now: datetime, limits: LoginLimits
) -> None:
    """TooManyAttempts when this email or this address has used up its failures."""
    waits = [
        await _retry_after(
            session,
            EMAIL,
            _email_subject(email),
            limit=limits.per_email,
            now=now,
            window=limits.window,
        ),
        await _retry_after(
            session, ADDRESS, address, limit=limits.per_address, now=now, window=limits.window
        ),
    ]
    longest = max((wait for wait in waits if wait is not None), default=None)
    if longest is not None:
        raise TooManyAttempts(longest)


async def record_failure(
    session: AsyncSession, *, email: str, address: str, now: datetime, window: timedelta
) -> None:
    """Count a failed attempt against the email and the address; forget ones past the window."""
    await session.execute(delete(LoginFailure).where(LoginFailure.at <= now - window))
    await session.execute(
        insert(LoginFailure),
        [
            {"scope": EMAIL, "subject": _email_subject(email), "at": now},
            {"scope": ADDRESS, "subject": address[:64], "at": now},
        ],
    )


async def log_in(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    address: str,
    now: datetime,
    limits: LoginLimits,
) -> LoggedIn:
    """A new session for the user with these credentials. Raises TooManyAttempts before
    checking anything when the limit is reached, or BadCredentials (after recording the
    failure: the caller commits either way)."""
    await refuse_if_limited(session, email=email, address=address, now=now, limits=limits)
    user = await find_user_by_email(session, email)
    check = await asyncio.to_thread(_verify, password, user)
    if not check.matches or user is None or not user.is_active:
        await record_failure(session, email=email, address=address, now=now, window=limits.window)
        raise BadCredentials()
    if check.needs_rehash:
        user.password_hash = await asyncio.to_thread(hash_password, password)
    await session.execute(
        delete(LoginFailure).where(
            LoginFailure.scope == EMAIL, LoginFailure.subject == _email_subject(email)
        )
    )
    row, key = await open_session(session, user_id=user.id, now=now, ttl=limits.session_ttl)
    return LoggedIn(user=user, session=row, key=key)


class WrongPassword(InvalidInput):
    def __init__(self) -> None:
        super().__init__("is not your current password", field="old_password")


async def change_own_password(
    session: AsyncSession,
    principal: Principal,
    *,
    old_password: str,
    new_password: str,
    now: datetime,
) -> int:
    """Set a new password after checking the current one; ends every other session of the
    user (the one making the change stays signed in). Returns how many sessions ended."""
    user = await session.get(User, principal.user_id)
    if user is None:
        raise Unauthorized("this user no longer exists")
    check = await asyncio.to_thread(_verify, old_password, user)
    if not check.matches:
        raise WrongPassword()
    user.password_hash = await asyncio.to_thread(hash_password, new_password)
    user.updated_at = now
    await session.flush()
    return await revoke_sessions_of(session, user.id, now=now, keep=principal.session_id)
