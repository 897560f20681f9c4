"""Each `tocsin serve` and `tocsin worker` says it is alive: it writes its row in the process
registry at start, moves its last_seen every few seconds, and marks it stopped when it shuts
down cleanly. A process that dies without a word simply stops being seen; `tocsin status`
shows it as gone, and any live process prunes rows nobody has seen for a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin import __version__
from tocsin.clock import Clock
from tocsin.operations.models import ProcessKind, ProcessRow
from tocsin.store.connection import Connection, Database
from tocsin.worker.loop import new_worker_id

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
# Six missed heartbeats: long enough that a busy event loop is not taken for a dead process.
GONE_AFTER = timedelta(seconds=30)
PRUNE_AFTER = timedelta(days=1)


class ProcessState(enum.StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"  # shut down cleanly
    GONE = "gone"  # not heard of for GONE_AFTER: killed, crashed, or its machine is down


@dataclass(frozen=True)
class ProcessSeen:
    id: str
    kind: ProcessKind
    host: str
    pid: int
    version: str
    started_at: datetime
    last_seen: datetime
    stopped_at: datetime | None
    state: ProcessState


def judge_process(last_seen: datetime, stopped_at: datetime | None, now: datetime) -> ProcessState:
    if stopped_at is not None:
        return ProcessState.STOPPED
    if now - last_seen > GONE_AFTER:
        return ProcessState.GONE
    return ProcessState.RUNNING


async def list_processes(conn: AsyncConnection, *, now: datetime) -> list[ProcessSeen]:
    """Every process in the registry, most recently seen first, with its state as of now."""
    rows = await conn.execute(
        select(ProcessRow).order_by(ProcessRow.last_seen.desc(), ProcessRow.id)
    )
    return [
        ProcessSeen(
            id=row.id,
            kind=row.kind,
            host=row.host,
            pid=row.pid,
            version=row.version,
            started_at=row.started_at,
            last_seen=row.last_seen,
            stopped_at=row.stopped_at,
            state=judge_process(row.last_seen, row.stopped_at, now),
        )
        for row in rows
    ]


async def record_alive(
    conn: Connection,
    *,
    process_id: str,
    kind: ProcessKind,
    started_at: datetime,
    now: datetime,
) -> None:
    """Move this process's last_seen to now (writing its row if it has none: first beat,
    or pruned while the process was paused), and prune rows unseen for PRUNE_AFTER."""
    seen = await conn.execute(
        update(ProcessRow).where(ProcessRow.id == process_id).values(last_seen=now, stopped_at=None)
    )
    if not seen.rowcount:
        await conn.execute(
            insert(ProcessRow).values(
                id=process_id,
                kind=kind,
                host=socket.gethostname()[:255],
                pid=os.getpid(),
                version=__version__,
                started_at=started_at,
                last_seen=now,
            )
        )
    await conn.execute(delete(ProcessRow).where(ProcessRow.last_seen < now - PRUNE_AFTER))


async def record_stopped(conn: Connection, *, process_id: str, now: datetime) -> None:
    await conn.execute(
        update(ProcessRow).where(ProcessRow.id == process_id).values(last_seen=now, stopped_at=now)
    )


class ProcessHeartbeat:
    """Keeps this process's registry row fresh from a task of its own, until `stop()`."""

    def __init__(
        self,
        engine: Database,
        clock: Clock,
        *,
        kind: ProcessKind,
        process_id: str | None = None,
        interval: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.kind = kind
        # A process that runs a worker registers under its worker id (host:pid:random).
        self.process_id = process_id or new_worker_id()
        self.interval = interval
        self.started_at = clock.now()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def beat(self) -> None:
        async with self.engine.begin() as conn:
            await record_alive(
                conn,
                process_id=self.process_id,
                kind=self.kind,
                started_at=self.started_at,
                now=self.clock.now(),
            )

    async def start(self) -> None:
        """Write the row now (so the process is listed from its first moment), then keep
        beating in the background. A failed beat is logged and tried again next time: the
        registry is for people looking on, never a reason to stop serving."""
        try:
            await self.beat()
        except Exception as exc:
            log.warning("cannot write this process into the registry: %s", exc)
        self._task = asyncio.create_task(self._run(), name="tocsin-process-heartbeat")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)
            if self._stopping.is_set():
                return
            try:
                await self.beat()
            except Exception as exc:
                log.warning("process heartbeat failed (retrying): %s", exc)

    async def stop(self) -> None:
        """Stop beating and mark the row stopped."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        try:
            async with self.engine.begin() as conn:
                await record_stopped(conn, process_id=self.process_id, now=self.clock.now())
        except Exception as exc:
            log.warning("cannot mark this process stopped in the registry: %s", exc)
