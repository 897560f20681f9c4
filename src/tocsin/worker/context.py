"""What every worker step receives, and the shape of a step."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tocsin.clock import Clock
from tocsin.config import Settings
from tocsin.store.connection import Database
from tocsin.store.queue import DueRows

# (stream event type, incident id) pairs, announced after their change is committed.
Announce = Callable[[Iterable[tuple[str, uuid.UUID]]], None]


@dataclass(frozen=True)
class WorkerContext:
    engine: Database
    clock: Clock
    settings: Settings
    # Unique per worker process; written into the lease columns of the rows it claims.
    worker_id: str
    # How long a claimed row stays ours; after that another worker may take it again.
    lease: timedelta = timedelta(seconds=60)
    # Tells stream subscribers of committed changes (realtime/hub.py); by default, nobody.
    announce: Announce = field(default=lambda events: None, compare=False)


# A step claims and does one unit (or one small batch) of due work and returns True if it
# found any; the loop calls it again until it returns False. Steps must be safe to run twice.
Step = Callable[[WorkerContext], Awaitable[bool]]

# When a step's next row becomes due, or None when it has none; the loop sleeps until the
# earliest of its steps' (or until woken).
NextDue = Callable[[Database, datetime], Awaitable[datetime | None]]
# Give back the rows this worker leased and did not finish (at shutdown); how many.
Release = Callable[[Database, str], Awaitable[int]]


@dataclass(frozen=True)
class WorkerStep:
    """A step as the loop runs it: what it runs, when it is next due, and what it releases
    on shutdown (none for a step with no due rows of its own).

    A step whose work is a table of the due-row queue names it as `due`: the loop asks all
    such tables for their next due time in one statement. `next_due` is for a step with some
    other way of knowing."""

    name: str
    run: Step
    next_due: NextDue | None = None
    release: Release | None = None
    due: DueRows | None = None


def as_worker_step(step: Step | WorkerStep) -> WorkerStep:
    """A bare step function, declared as one with no due rows of its own."""
    if isinstance(step, WorkerStep):
        return step
    module = getattr(step, "__module__", "?")
    return WorkerStep(f"{module}.{getattr(step, '__qualname__', repr(step))}", step)
