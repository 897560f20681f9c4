"""Group commit for ingest: concurrent requests share one transaction and one fsync.

Every request is still answered only after the transaction holding its own rows has
committed, so a 202 always means durable. If a shared transaction fails, each of its requests
is retried alone, so one bad alert cannot fail its neighbours.

The committers run on an event loop of their own, in a thread of their own, with their own
engine. A batch takes a few round trips to the database; on the request loop each of them
would wait its turn behind every request in progress, so a batch would take tens of
milliseconds under load and hold SQLite's one write lock all that time. On SQLite the
committer goes further and runs its statements inline, on a blocking connection (nothing
else runs on its loop to be blocked): aiosqlite would hand each statement to a thread of its
own and back, four times per statement, and under load each of those hops waits for the
GIL, which made a batch of 16 alerts take about 100 ms.

SQLite allows one writer, so it gets one committer; PostgreSQL gets several, which overlap
their round trips. Identical alerts in one batch are handled in order inside it, and across
committers the dedup index decides (incidents/dedup.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tocsin.alerts.ingest import (
    BatchRaceLost,
    IngestOutcome,
    PreparedAlert,
    commit_alert,
    commit_batch,
)
from tocsin.clock import Clock
from tocsin.db import InlineConnection, create_engine, create_sqlite_sync_engine, is_sqlite_url

log = logging.getLogger(__name__)

# Called on the loop that started the batcher after each commit, with what was stored.
OnCommitted = Callable[[list[IngestOutcome]], None]


@dataclass
class _Pending:
    prepared: PreparedAlert
    # Thread-safe: resolved on the committers' loop, awaited on the requester's.
    future: concurrent.futures.Future[IngestOutcome]


def _settle(
    future: concurrent.futures.Future[IngestOutcome],
    outcome: IngestOutcome | None = None,
    error: BaseException | None = None,
) -> None:
    """Answer a waiting request, unless it has gone (its client hung up)."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if error is not None:
            future.set_exception(error)
        else:
            assert outcome is not None
            future.set_result(outcome)


class IngestBatcher:
    def __init__(
        self,
        database_url: str,
        clock: Clock,
        *,
        committers: int,
        max_batch: int,
        on_committed: OnCommitted | None = None,
    ) -> None:
        self._database_url = database_url
        self._clock = clock
        self._committers = committers
        self._max_batch = max_batch
        self._on_committed = on_committed
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._caller_loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Pending] | None = None
        self._stopping: asyncio.Event | None = None
        self._engine: AsyncEngine | None = None
        self._sync_engine: Engine | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    def start(self) -> None:
        """Start the committers' thread (from the app's loop, which hears of commits)."""
        self._caller_loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._thread_main, name="tocsin-ingest", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise RuntimeError("the ingest committers did not start") from self._start_error

    async def stop(self) -> None:
        """Stop taking batches; requests already queued are failed so clients retry them."""
        if self._thread is None:
            return
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # its loop has ended already
                loop.call_soon_threadsafe(stopping.set)
        await asyncio.to_thread(self._thread.join)
        self._thread = None
        self._loop = None

    async def submit(self, prepared: PreparedAlert) -> IngestOutcome:
        """Queue the alert and wait until it is committed (or failed)."""
        loop, queue = self._loop, self._queue
        if loop is None or queue is None:
            raise RuntimeError("ingest batcher is not running")
        future: concurrent.futures.Future[IngestOutcome] = concurrent.futures.Future()
        try:
            loop.call_soon_threadsafe(queue.put_nowait, _Pending(prepared, future))
        except RuntimeError:
            raise RuntimeError("ingest batcher is not running") from None
        return await asyncio.wrap_future(future)

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(), or logged
            if not self._started.is_set():
                self._start_error = exc
                self._started.set()
            else:
                log.exception("the ingest committers stopped with an error")

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; on SQLite run inline on this thread (see the module doc)."""
        if self._sync_engine is not None:
            with self._sync_engine.begin() as sync:
                yield cast(AsyncConnection, InlineConnection(sync))
            return
        assert self._engine is not None
        async with self._engine.begin() as conn:
            yield conn

    async def _serve(self) -> None:
        engine = create_engine(self._database_url, pool_size=self._committers)
        self._engine = engine
        if is_sqlite_url(self._database_url):
            self._sync_engine = create_sqlite_sync_engine(self._database_url)
        self._queue = queue = asyncio.Queue[_Pending]()
        self._stopping = stopping = asyncio.Event()
        tasks = [
            asyncio.create_task(self._run(), name=f"ingest-committer-{n}")
            for n in range(self._committers)
        ]
        self._loop = asyncio.get_running_loop()
        self._started.set()
        try:
            await stopping.wait()
        finally:
            self._loop = None  # submit() refuses from now on
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            while not queue.empty():
                _settle(queue.get_nowait().future, error=RuntimeError("server shutting down"))
            await engine.dispose()
            if self._sync_engine is not None:
                self._sync_engine.dispose()

    def _take_batch(self, first: _Pending) -> list[_Pending]:
        assert self._queue is not None
        batch = [first]
        while len(batch) < self._max_batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = self._take_batch(await self._queue.get())
            try:
                await self._commit_together(batch)
            except asyncio.CancelledError:
                for pending in batch:
                    _settle(pending.future, error=RuntimeError("server shutting down"))
                raise
            except BatchRaceLost as exc:
                log.info("%s; storing a batch of %d alerts one by one", exc, len(batch))
                for pending in batch:
                    await self._commit_alone(pending)
            except Exception:
                log.exception(
                    "committing a batch of %d alerts failed; retrying one by one", len(batch)
                )
                for pending in batch:
                    await self._commit_alone(pending)

    async def _commit_together(self, batch: list[_Pending]) -> None:
        now = self._clock.now()
        async with self._transaction() as conn:
            outcomes = await commit_batch(conn, [p.prepared for p in batch], now=now)
        for pending, outcome in zip(batch, outcomes, strict=True):
            _settle(pending.future, outcome)
        self._announce(outcomes)

    async def _commit_alone(self, pending: _Pending) -> None:
        try:
            async with self._transaction() as conn:
                outcome = await commit_alert(conn, pending.prepared, now=self._clock.now())
        except Exception as exc:
            log.exception("storing an alert failed")
            _settle(pending.future, error=exc)
            return
        _settle(pending.future, outcome)
        self._announce([outcome])

    def _announce(self, outcomes: list[IngestOutcome]) -> None:
        if self._on_committed is None or self._caller_loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the app's loop has closed
            self._caller_loop.call_soon_threadsafe(self._call_on_committed, outcomes)

    def _call_on_committed(self, outcomes: list[IngestOutcome]) -> None:
        assert self._on_committed is not None
        try:
            self._on_committed(outcomes)
        except Exception:
            # The alerts are stored; a failed broadcast must not turn into a failed request.
            log.exception("announcing committed alerts failed")
