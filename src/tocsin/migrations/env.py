"""Alembic environment: runs migrations over the async engine, for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import tocsin.models  # noqa: F401  (fills Base.metadata)
from tocsin.db import Base, create_engine
from tocsin.store.backend import alters_tables_by_copy, take_migration_lock

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=alters_tables_by_copy(connection),
        compare_type=True,
    )
    with context.begin_transaction():
        # Nodes started together each run `tocsin db upgrade`: they take turns.
        take_migration_lock(connection)
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
