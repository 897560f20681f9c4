"""The loop that claims due rows of any kind, with leases, retries and backoff.

The steps (worker/steps.py) take turns, one batch each, until none reports more work; then it
sleeps until
the earliest of: a wake-up (in-process event, or PostgreSQL NOTIFY from any node), the next
timer's due time, or the poll interval (at most a second), which is the safety net for a lost
notification. A step that raises or runs past its timeout is logged and counted, and the loop
goes on with the next one: one bad row never stops the worker. Each step declares
(worker/context.py: WorkerStep) when its next row is due, which the loop sleeps until, and
how to give back what it leased. On stop (SIGTERM), the step in progress finishes its batch,
then every step releases the rows this worker claimed and did not finish: timers, deliveries
and heartbeat monitors alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from tocsin.clock import Clock
from tocsin.config import Settings
from tocsin.db import asyncpg_dsn
from tocsin.store import queue, wakeup
from tocsin.store.backend import is_shared
from tocsin.store.connection import Database
from tocsin.store.engine import read_only
from tocsin.store.queue import DueRows
from tocsin.worker import metrics
from tocsin.worker.context import (
    Announce,
    NextDue,
    Step,
    WorkerContext,
    WorkerStep,
    as_worker_step,
)
from tocsin.worker.steps import all_steps

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
STEP_TIMEOUT_SECONDS = 30.0
# A round starts no sooner than this after the one before it began. Work that trickles in
# (a storm of new incidents, one ingest commit every few milliseconds) is then taken a few
# rows at a time rather than one by one: each round costs a claim, a commit and round trips
# whatever its size, so one-row rounds spend most of the CPU the alerts' own requests need.
# A round that takes longer than the gap (a full batch) is followed at once, so a backlog is
# drained at full speed, and a timer that comes due after a longer sleep starts its round at
# once: only work arriving within the gap of the last round waits, for less than the gap.
ROUND_GAP_SECONDS = 0.02


def _next_due_of(kinds: tuple[DueRows, ...]) -> NextDue:
    """When the first row of any of these tables is due: one read, one statement."""

    async def next_due(engine: Database, now: datetime) -> datetime | None:
        async with read_only(engine).connect() as conn:
            return await queue.next_due_of(conn, kinds, now=now)

    return next_due


def new_worker_id() -> str:
    """Unique per worker: host, process and a random part (a restarted process differs)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _metric_label(step: Step) -> str:
    return f"{getattr(step, '__module__', '?')}.{getattr(step, '__qualname__', repr(step))}"


class PostgresListener:
    """LISTEN on the work channel over a dedicated asyncpg connection (not from the pool:
    a pooled connection would be handed to others and lose the subscription)."""

    def __init__(self, database_url: str, on_notify: Callable[[], None]) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._on_notify = on_notify
        self._conn: Any = None

    async def ensure(self) -> None:
        """(Re)connect if needed; failures are logged and retried next round (polling
        covers the gap)."""
        if self._conn is not None and not self._conn.is_closed():
            return
        import asyncpg

        try:
            self._conn = await asyncpg.connect(self._dsn, timeout=5)
            await self._conn.add_listener(wakeup.CHANNEL, self._notified)
        except Exception as exc:
            log.warning("cannot LISTEN for work (polling instead): %s", exc)
            self._conn = None

    def _notified(self, *_args: object) -> None:
        self._on_notify()

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
        self._conn = None


class WorkerLoop:
    def __init__(
        self,
        ctx: WorkerContext,
        *,
        steps: Sequence[Step | WorkerStep] | None = None,
        poll_seconds: float = POLL_SECONDS,
        step_timeout: float = STEP_TIMEOUT_SECONDS,
        next_due: Sequence[NextDue] | None = None,
        round_gap: float = ROUND_GAP_SECONDS,
    ) -> None:
        self.ctx = ctx
        self.round_gap = round_gap
        self.steps = [as_worker_step(s) for s in (all_steps() if steps is None else steps)]
        self.poll_seconds = poll_seconds
        self.step_timeout = step_timeout
        # By default the steps' own: the tables of due rows, asked together in one
        # statement, and any other way a step declares; a caller may name others (or none).
        if next_due is None:
            kinds = tuple(s.due for s in self.steps if s.due is not None)
            others = [s.next_due for s in self.steps if s.due is None and s.next_due is not None]
            self.next_due = ([_next_due_of(kinds)] if kinds else []) + others
        else:
            self.next_due = list(next_due)
        self.stop_requested = asyncio.Event()
        self._woken: asyncio.Event | None = None
        self._round_started: float | None = None  # the event loop's time

    def stop(self) -> None:
        self.stop_requested.set()
        if self._woken is not None:
            self._woken.set()

    async def run_step(self, step: Step | WorkerStep) -> bool:
        """Run one batch of `step`; True if it found work (False too if it failed)."""
        declared = as_worker_step(step)
        name = _metric_label(declared.run)
        try:
            found = await asyncio.wait_for(declared.run(self.ctx), timeout=self.step_timeout)
        except TimeoutError:
            metrics.STEP_TIMEOUTS.labels(step=name).inc()
            log.error("worker step %s ran past %.0f s; cut off", name, self.step_timeout)
            return False
        except Exception:
            metrics.CLAIM_ERRORS.labels(step=name).inc()
            log.exception("worker step %s failed; going on with the next", name)
            return False
        await asyncio.sleep(0)  # a turn for everything else on this loop (requests)
        return bool(found)

    async def run_once(self) -> None:
        """Rounds of one batch of every step, until none finds work. Taking turns keeps
        each kind of work moving: during a storm of new incidents, the pages of the first
        ones go out while later ones are still being escalated.

        A wake-up that came before a round is answered by that round: its claims come after
        the announcing transaction committed (on SQLite they wait for its write lock; on
        PostgreSQL the NOTIFY comes at commit and wakes us again). So each round forgets
        the earlier ones, among them the worker's own (a page written by the escalation
        step, sent by the delivery step of the same round), which would otherwise cost one
        more empty round after every incident.

        Rounds are paced (`round_gap`, see ROUND_GAP_SECONDS): one starts no sooner than the
        gap after the one before it began, whether it follows a busy round or a wake-up."""
        loop = asyncio.get_running_loop()
        while not self.stop_requested.is_set():
            if self._round_started is not None:
                rest = self._round_started + self.round_gap - loop.time()
                if rest > 0:
                    await asyncio.sleep(rest)
                if self.stop_requested.is_set():
                    return
            self._round_started = loop.time()
            if self._woken is not None:
                self._woken.clear()
            busy = False
            for step in self.steps:
                if self.stop_requested.is_set():
                    return
                busy = await self.run_step(step) or busy
            if not busy:
                return

    async def _sleep_seconds(self) -> float:
        now = self.ctx.clock.now()
        delay = self.poll_seconds
        for probe in self.next_due:
            try:
                due = await probe(self.ctx.engine, now)
            except Exception:
                log.exception("looking up the next due time failed")
                continue
            if due is not None:
                delay = min(delay, (due - now).total_seconds())
        return max(delay, 0.0)

    async def run(self) -> None:
        """Until stop(): run rounds, sleeping between them until woken or due."""
        self._woken = wakeup.subscribe()
        woken = self._woken
        listener: PostgresListener | None = None
        if is_shared(self.ctx.engine.url):
            listener = PostgresListener(
                self.ctx.engine.url.render_as_string(hide_password=False), woken.set
            )
        log.info("worker %s started with %d steps", self.ctx.worker_id, len(self.steps))
        try:
            while not self.stop_requested.is_set():
                if listener is not None:
                    await listener.ensure()
                woken.clear()
                await self.run_once()
                if self.stop_requested.is_set():
                    break
                delay = await self._sleep_seconds()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(woken.wait(), timeout=delay)
        finally:
            wakeup.unsubscribe(woken)
            if listener is not None:
                await listener.close()
            await self.release()
            log.info("worker %s stopped", self.ctx.worker_id)

    async def release(self) -> int:
        """Give back what every step leased and did not finish; how many rows."""
        total = 0
        for step in self.steps:
            if step.release is None:
                continue
            try:
                released = await step.release(self.ctx.engine, self.ctx.worker_id)
            except Exception:
                log.exception("releasing the %s step's claims failed (their lease ends)", step.name)
                continue
            if released:
                log.info("released %d claimed rows of the %s step at shutdown", released, step.name)
            total += released
        return total


def make_context(
    engine: Database,
    clock: Clock,
    settings: Settings,
    *,
    worker_id: str | None = None,
    lease: timedelta | None = None,
    announce: Announce | None = None,
) -> WorkerContext:
    ctx = WorkerContext(engine, clock, settings, worker_id or new_worker_id())
    if lease is not None:
        ctx = replace(ctx, lease=lease)
    if announce is not None:
        ctx = replace(ctx, announce=announce)
    return ctx
