"""Engines and session factories for SQLite and PostgreSQL: WAL, durability and the write
lock on SQLite, pools on both."""

from __future__ import annotations

from typing import Any, overload

from sqlalchemy import Connection, Engine, event, make_url
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from tocsin.store.connection import Database

READ_ONLY_OPTION = "tocsin_read_only"


def is_sqlite_url(url: str) -> bool:
    return url.startswith("sqlite")


def asyncpg_dsn(url: str) -> str:
    """The DSN asyncpg takes for a `postgresql+asyncpg://` URL, for the few connections that
    talk to the driver directly (LISTEN, the stream's NOTIFY, point reads)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


SQLITE_MIN_POOL = 32


def _tune_sqlite(engine: Engine, *, busy_timeout_ms: int = 30_000) -> None:
    """WAL, full durability, foreign keys, a busy timeout, and BEGIN IMMEDIATE for writers."""

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit that returned is on disk even after power loss; group commit
        # (alerts/batcher.py) spreads the fsync over many requests.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()
        # Take over BEGIN from the driver (see _sqlite_begin).
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes fails at once (no busy wait)
        # if another writer committed in between; BEGIN IMMEDIATE takes the write lock
        # up front and waits its turn instead. Read-only work opts out (READ_ONLY) so
        # readers never queue behind the writer.
        if conn.get_execution_options().get(READ_ONLY_OPTION):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine tuned for the backend: WAL and a busy timeout on SQLite."""
    if is_sqlite_url(url):
        if make_url(url).database in (None, "", ":memory:"):
            # In memory: one connection (SQLAlchemy's StaticPool), nothing to size.
            engine = create_async_engine(url)
            _tune_sqlite(engine.sync_engine)
            return engine
        # Every connection is a thread of aiosqlite's: keep enough of them open that a burst
        # of requests reuses connections rather than opening (and closing) new ones.
        engine = create_async_engine(
            url,
            connect_args={"timeout": 30},
            pool_size=max(pool_size, SQLITE_MIN_POOL),
            max_overflow=max(pool_size, SQLITE_MIN_POOL),
        )
        _tune_sqlite(engine.sync_engine)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
    )


def create_sqlite_sync_engine(url: str, *, busy_timeout_ms: int = 30_000) -> Engine | None:
    """A blocking engine on the same SQLite file as the async `url` (tuned the same way);
    None for an in-memory database, which another engine could not share."""
    sync_url = make_url(url).set(drivername="sqlite+pysqlite")
    if sync_url.database in (None, "", ":memory:"):
        return None
    engine = sa_create_engine(sync_url, connect_args={"timeout": busy_timeout_ms / 1000})
    _tune_sqlite(engine, busy_timeout_ms=busy_timeout_ms)
    return engine


@overload
def read_only(engine: AsyncEngine) -> AsyncEngine: ...


@overload
def read_only(engine: Database) -> Database: ...


def read_only(engine: Database) -> Database:
    """The same engine and pool, for transactions that only read (matters on SQLite)."""
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
