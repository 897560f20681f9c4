"""Engine and session factory for SQLite and PostgreSQL, the declarative Base, common types."""

from __future__ import annotations

import asyncio
import enum
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, URL, Connection, DateTime, Dialect, Engine, MetaData, event, make_url
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC going in and coming out.

    SQLite keeps no zone, so naive values read back are UTC by construction; a naive value
    going in is a bug in the caller and is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} refused: store timezone-aware UTC")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONType}


def new_id() -> uuid.UUID:
    return uuid.uuid4()


_last_ordered = (0, 0)  # (milliseconds, 74-bit sequence) of the last id handed out


def new_ordered_id() -> uuid.UUID:
    """A UUIDv7 (millisecond time first) that grows within this process, so rows written in
    one instant (the timeline entries of one transaction) keep their order."""
    global _last_ordered
    millis = time.time_ns() // 1_000_000
    last_millis, last_seq = _last_ordered
    if millis <= last_millis:
        millis, seq = last_millis, last_seq + 1
    else:
        seq = secrets.randbits(72)  # room left to count up within the millisecond
    _last_ordered = (millis, seq)
    value = (
        (millis << 80)
        | (0x7 << 76)  # version 7
        | (((seq >> 62) & 0xFFF) << 64)
        | (0x2 << 62)  # RFC 4122 variant
        | (seq & ((1 << 62) - 1))
    )
    return uuid.UUID(int=value)


def enum_values(enum_cls: type[enum.Enum]) -> list[str]:
    """Store an enum by its value (`open`), not its Python name (`OPEN`)."""
    return [str(member.value) for member in enum_cls]


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


class WriteLockTimeout(RuntimeError):
    """SQLite's write lock stayed taken for longer than we wait."""


class InlineEngine:
    """The AsyncEngine surface that ingest and the worker use (`begin`, `connect`,
    `execution_options`, `dialect`, `url`, `dispose`), for SQLite, with every statement run
    inline on the caller's thread.

    Why: aiosqlite hands each DB-API call to a thread of its own and back (four hand-offs per
    statement), and on a busy process each hand-off waits for the event loop and the GIL. A
    transaction of twenty statements then holds SQLite's single write lock for a hundred
    milliseconds or more, and every other writer queues behind it. Run inline, the same
    transaction takes a few milliseconds.

    How it stays safe to block the event loop: a transaction here never awaits anything but
    its own statements, which complete at once, so it runs start to end without yielding;
    reads never wait in WAL mode; and the write lock is taken without waiting (busy timeout
    0): when another writer has it, `begin` gives the loop back, sleeps a moment and tries
    again, so a writer that needs this loop to finish is never blocked by us."""

    LOCK_WAIT_SECONDS = 30.0

    def __init__(self, url: str, *, read_only: bool = False, sync: Engine | None = None) -> None:
        made = sync or create_sqlite_sync_engine(url, busy_timeout_ms=0)
        if made is None:
            raise ValueError(f"{url!r} is not a SQLite file")
        self._sync = made
        self._read_only = read_only

    @property
    def dialect(self) -> Dialect:
        return self._sync.dialect

    @property
    def url(self) -> URL:
        return self._sync.url

    def execution_options(self, **options: Any) -> InlineEngine:
        return InlineEngine(
            "", read_only=bool(options.get(READ_ONLY_OPTION, self._read_only)), sync=self._sync
        )

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (writes need `begin`)."""
        with self._sync.execution_options(**{READ_ONLY_OPTION: True}).connect() as sync:
            yield cast(AsyncConnection, InlineConnection(sync))

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed at the end of the block, rolled back on error."""
        if self._read_only:
            async with self.connect() as conn:
                yield conn
            return
        sync = await self._take_write_lock()
        try:
            yield cast(AsyncConnection, InlineConnection(sync))
            # The commit waits for the disk (fsync): let the event loop run meanwhile.
            await asyncio.to_thread(sync.commit)
        except BaseException:
            sync.rollback()
            raise
        finally:
            sync.close()

    async def _take_write_lock(self) -> Connection:
        waited, pause = 0.0, 0.0005
        while True:
            sync = self._sync.connect()
            try:
                sync.begin()  # BEGIN IMMEDIATE (see _tune_sqlite), failing at once if taken
                return sync
            except OperationalError as exc:
                sync.close()
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
            if waited >= self.LOCK_WAIT_SECONDS:
                raise WriteLockTimeout(f"SQLite's write lock was taken for {waited:.0f} s")
            await asyncio.sleep(pause)
            waited += pause
            pause = min(pause * 2, 0.02)

    async def dispose(self) -> None:
        self._sync.dispose()


def inline_where_possible(engine: AsyncEngine) -> AsyncEngine:
    """The engine for the ingest committer and the worker: on a SQLite file an InlineEngine on
    the same file (typed as the AsyncEngine whose part it offers), else `engine` itself."""
    url = engine.url.render_as_string(hide_password=False)
    if not is_sqlite_url(url) or create_sqlite_sync_engine(url) is None:
        return engine
    return cast(AsyncEngine, InlineEngine(url))


class InlineConnection:
    """An AsyncConnection look-alike over a blocking Connection: `await conn.execute(...)`
    runs the statement at once, in the caller's thread, without a hand-off to a driver
    thread. For a thread whose event loop does nothing else (the SQLite ingest committer),
    so that blocking it costs nobody anything. Offers what the ingest write path uses."""

    def __init__(self, sync: Connection) -> None:
        self._sync = sync

    @property
    def dialect(self) -> Dialect:
        return self._sync.dialect

    @property
    def sync_engine(self) -> Engine:
        return self._sync.engine

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self._sync.execute(statement, parameters)


READ_ONLY_OPTION = "tocsin_read_only"


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool, for transactions that only read (matters on SQLite)."""
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside one transaction, committed on success, rolled back on error."""
    async with engine.begin() as conn:
        yield conn
