"""What every worker step receives, and the shape of a step."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from tocsin.clock import Clock
from tocsin.config import Settings
from tocsin.store.connection import Database

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
