"""Signing in as the cast does in a browser, for the page tests (in-process and Chromium)."""

from __future__ import annotations

import asyncio
import functools
import re
import uuid

from httpx import AsyncClient, Response
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from tocsin.auth.models import User
from tocsin.auth.secrets import hash_password
from tocsin.db import create_session_factory

PASSWORD = "correct horse battery"

_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)


async def give_password(engine: AsyncEngine, *user_ids: uuid.UUID) -> None:
    """Give these users the password PASSWORD (one Argon2 hash shared: tests stay quick)."""
    stored = await asyncio.to_thread(_password_hash)
    async with create_session_factory(engine)() as session, session.begin():
        await session.execute(
            update(User).where(User.id.in_(user_ids)).values(password_hash=stored)
        )


def csrf_of(page: Response | str) -> str:
    """The CSRF token a page carries (its <meta name="csrf-token">)."""
    text = page if isinstance(page, str) else page.text
    found = _META.search(text)
    assert found is not None, "the page has no CSRF token"
    return found.group(1)


async def sign_in(
    client: AsyncClient, email: str, password: str = PASSWORD, *, next_path: str = "/"
) -> Response:
    """Fill the sign-in form as a browser would; the client keeps the session cookie (and
    forgets whoever was signed in before)."""
    client.cookies.clear()
    form = await client.get("/login")
    return await client.post(
        "/login",
        data={
            "email": email,
            "password": password,
            "next": next_path,
            "csrf_token": csrf_of(form),
        },
    )
