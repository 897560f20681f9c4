"""Group commit for ingest: concurrent requests share one transaction and one fsync.

Every request is still answered only after the transaction holding its own rows has
committed, so a 202 always means durable. If a shared transaction fails, each of its
submissions is retried alone, so one bad payload cannot fail its neighbours, and a payload
that fails alone leaves nothing stored.

SQLite allows one writer, so it gets one committer; PostgreSQL gets several, which overlap
their round trips. Identical alerts in one batch are handled in order inside it, and across
committers the dedup index decides (incidents/dedup.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from tocsin.alerts.ingest import Submission, SubmissionOutcome, commit_batch
from tocsin.clock import Clock
from tocsin.store.connection import Database
from tocsin.telemetry.tracing import span

log = logging.getLogger(__name__)

# Called after each commit with what was stored; must return quickly (it runs on the
# committer's path), e.g. by handing work to another task.
OnCommitted = Callable[[list[SubmissionOutcome]], None]


@dataclass
class _Pending:
    submission: Submission
    future: asyncio.Future[SubmissionOutcome]


class IngestBatcher:
    def __init__(
        self,
        engine: Database,
        clock: Clock,
        *,
        committers: int,
        max_batch: int,
        on_committed: OnCommitted | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._committers = committers
        self._max_batch = max_batch
        self._on_committed = on_committed
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for n in range(self._committers):
            self._tasks.append(asyncio.create_task(self._run(), name=f"ingest-committer-{n}"))

    async def stop(self) -> None:
        """Stop taking batches; requests already queued are failed so clients retry them."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(RuntimeError("server shutting down"))

    async def submit(self, submission: Submission) -> SubmissionOutcome:
        """Queue what one payload became and wait until it is committed as one unit (or
        failed, with nothing of it stored)."""
        if not self._tasks:
            raise RuntimeError("ingest batcher is not running")
        future: asyncio.Future[SubmissionOutcome] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(submission, future))
        return await future

    def _take_batch(self, first: _Pending) -> list[_Pending]:
        batch = [first]
        while len(batch) < self._max_batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _run(self) -> None:
        while True:
            batch = self._take_batch(await self._queue.get())
            try:
                await self._commit_together(batch)
            except asyncio.CancelledError:
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(RuntimeError("server shutting down"))
                raise
            except Exception as exc:
                if len(batch) == 1:
                    self._fail(batch[0], exc)
                    continue
                log.info(
                    "committing a batch of %d payloads failed; retrying one by one",
                    len(batch),
                    exc_info=True,
                )
                for pending in batch:
                    await self._commit_alone(pending)

    async def _commit_together(self, batch: list[_Pending]) -> None:
        now = self._clock.now()
        with span("ingest.commit", {"tocsin.batch_size": len(batch)}):
            async with self._engine.begin() as conn:
                outcomes = await commit_batch(conn, [p.submission for p in batch], now=now)
        for pending, outcome in zip(batch, outcomes, strict=True):
            if not pending.future.done():
                pending.future.set_result(outcome)
        self._announce(outcomes)

    async def _commit_alone(self, pending: _Pending) -> None:
        try:
            await self._commit_together([pending])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(pending, exc)

    def _fail(self, pending: _Pending, exc: Exception) -> None:
        log.error("storing a payload failed", exc_info=exc)
        if not pending.future.done():
            pending.future.set_exception(exc)

    def _announce(self, outcomes: list[SubmissionOutcome]) -> None:
        if self._on_committed is None:
            return
        try:
            self._on_committed(outcomes)
        except Exception:
            # The alerts are stored; a failed broadcast must not turn into a failed request.
            log.exception("announcing committed alerts failed")
