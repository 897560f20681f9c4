"""Fixtures every test shares: a fresh database per test on SQLite and on PostgreSQL, a frozen
clock, the app and an HTTP client, and a small cast of users.

PostgreSQL runs when TOCSIN_TEST_POSTGRES_URL is set (CI sets it and fails without it);
otherwise those cases are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

import tocsin.models  # noqa: F401
from tests.factories import Cast, World, make_cast, make_world
from tocsin.app import create_app
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.db import Base, create_engine
from tocsin.escalation.step import fire_due_escalations
from tocsin.migrations import upgrade
from tocsin.worker.context import WorkerContext

CURRENT_TIME = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
LOOPBACK_ALLOWED = ["127.0.0.0/8", "::1"]
POSTGRES_URL = os.environ.get("TOCSIN_TEST_POSTGRES_URL", "")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

if IN_CI and not POSTGRES_URL:
    raise pytest.UsageError("CI must set TOCSIN_TEST_POSTGRES_URL: storage tests run on both")

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=pytest.mark.skipif(not POSTGRES_URL, reason="TOCSIN_TEST_POSTGRES_URL not set"),
    ),
]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating per test would be slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of our own on the test server, migrated once, dropped at the end."""
    if not POSTGRES_URL:
        pytest.skip("TOCSIN_TEST_POSTGRES_URL not set")
    server = make_url(POSTGRES_URL)
    name = f"tocsin_test_{_worker_suffix()}_{os.getpid()}"
    admin_url = server
    _run_admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    _in_thread(upgrade, url)
    yield url
    _run_admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_admin_sql(url: sa.URL, *statements: str) -> None:
    import asyncio

    async def run() -> None:
        engine = create_engine(url.render_as_string(hide_password=False))
        try:
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                for statement in statements:
                    await conn.execute(sa.text(statement))
        finally:
            await engine.dispose()

    _in_thread(asyncio.run, run())


def _in_thread(fn: Callable[..., object], *args: object) -> None:
    """Run blocking set-up that starts its own event loop, even from inside a running one
    (this fixture may first be asked for from an async test)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(fn, *args).result()


async def _truncate_postgres(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            await conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            await conn.execute(sa.text("ALTER SEQUENCE incident_number_seq RESTART WITH 1"))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> str:
    """A fresh, migrated, empty database for this test."""
    if request.param == "sqlite":
        path = tmp_path / "tocsin.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    await _truncate_postgres(url)
    return url


@pytest.fixture
def backend(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgres"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(CURRENT_TIME)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret",
        public_url="http://test",
        # The loopback receivers tests send to; tests of the outbound guard take this away.
        outbound_allow=LOOPBACK_ALLOWED,
    )


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[object]:
    # No background worker: tests drive worker steps themselves, with the frozen clock.
    application = create_app(settings, clock=clock, run_worker=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: object) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        transport=ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://test",
    ) as http:
        yield http


Escalate = Callable[[], Awaitable[None]]


@pytest.fixture
def escalate(engine: AsyncEngine, clock: FrozenClock, settings: Settings) -> Escalate:
    """Run the worker's escalation step until nothing is due at the clock's now: ingest
    leaves paging level 1 of a new incident to the worker, as `tocsin serve` runs it."""
    ctx = WorkerContext(engine, clock, settings, worker_id="test-escalation-worker")

    async def run() -> None:
        while await fire_due_escalations(ctx):
            pass

    return run


@pytest.fixture
async def cast(engine: AsyncEngine, clock: FrozenClock) -> Cast:
    """Admin; team Payments with Alice (manager), Bob (responder), Olive (observer);
    Mallory, who belongs to no team. Each has an API key."""
    return await make_cast(engine, clock.now())


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_uuid() -> str:
    return str(uuid.uuid4())


@pytest.fixture
async def world(engine: AsyncEngine, clock: FrozenClock, cast: Cast) -> World:
    return await make_world(engine, clock.now(), cast)


async def count_rows(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one())


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    ws_url: str
    app: FastAPI


@contextlib.asynccontextmanager
async def serving(settings: Settings, clock: FrozenClock) -> AsyncIterator[LiveServer]:
    """The app served by a real uvicorn on a free loopback port (for WebSockets and real
    clients)."""
    # No background worker: tests drive worker steps themselves, with the frozen clock.
    application = create_app(settings, clock=clock, run_worker=False)
    config = uvicorn.Config(
        application, host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", application)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def live_server(settings: Settings, clock: FrozenClock) -> AsyncIterator[LiveServer]:
    async with serving(settings, clock) as server:
        yield server
