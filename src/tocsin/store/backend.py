"""What the database behind a URL or a connection can do, asked by what it means for the
caller (may other processes share it? does it have a single writer?), never by its name."""

from __future__ import annotations

import os

from sqlalchemy import URL, make_url, text
from sqlalchemy import Connection as SyncConnection
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.store.connection import Connection


def _backend(url: str | URL) -> str:
    return make_url(url).get_backend_name()


def is_shared(url: str | URL) -> bool:
    """Whether other processes, on this machine or others, may use the same database
    (PostgreSQL): then events and wake-ups must cross processes, and processes must agree
    on their secrets. An embedded SQLite file belongs to the one `tocsin serve` using it."""
    return _backend(url) == "postgresql"


def has_single_writer(url: str | URL) -> bool:
    """Whether one write transaction at a time is all the database takes (SQLite): then
    running writers side by side only makes them queue for its lock."""
    return _backend(url) == "sqlite"


def upgrades_itself(url: str | URL) -> bool:
    """Whether the process opening the database brings its schema up to date (the embedded
    SQLite file); a shared database is upgraded once, by `tocsin db upgrade`."""
    return _backend(url) == "sqlite"


def backend_name(conn: Connection) -> str:
    """ "sqlite" or "postgresql", for reports that say what they run on."""
    return conn.dialect.name


async def notify_other_processes(conn: Connection, channel: str) -> None:
    """Queue a notification on `channel` for every process listening on the shared database,
    delivered when this transaction commits; nothing to do on an embedded one."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})


async def database_size(conn: AsyncConnection) -> tuple[int, int | None, int | None]:
    """(total bytes, SQLite main file bytes, SQLite WAL bytes)."""
    if conn.dialect.name == "postgresql":
        size = (await conn.execute(text("SELECT pg_database_size(current_database())"))).scalar()
        return int(size or 0), None, None
    path = conn.engine.url.database
    if not path or path == ":memory:":
        return 0, None, None
    file_bytes, wal_bytes = _file_size(path), _file_size(path + "-wal")
    return file_bytes + wal_bytes, file_bytes, wal_bytes


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def alters_tables_by_copy(conn: SyncConnection) -> bool:
    """Whether ALTER TABLE is too limited for migrations, which then rebuild the table by
    copying it (Alembic's batch mode; SQLite)."""
    return conn.dialect.name == "sqlite"


MIGRATION_LOCK = 7_461_829_301  # an arbitrary constant all Tocsin processes agree on


def take_migration_lock(conn: SyncConnection) -> None:
    """Make processes started together that each run the migrations take turns: the first
    applies them, the others wait and then find nothing left to do. Released when the
    transaction ends. (SQLite's single writer makes them take turns already.)"""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
