"""Alembic environment: runs migrations over the async engine, for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

import tocsin.models  # noqa: F401  (fills Base.metadata)
from tocsin.db import Base, create_engine

config = context.config
# An arbitrary constant: the advisory lock id all Tocsin processes agree on for migrations.
MIGRATION_LOCK = 7_461_829_301
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Nodes started together each run `tocsin db upgrade`: the first to take this
            # lock applies the migrations, the others wait, then find nothing left to do.
            # Released when the transaction ends.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `tocsin db upgrade`")
run_migrations_online()
