"""What the layers above the timers attach to an incident's escalation, so that the timer
writers can use it without knowing those layers' tables (the timers sit below `incidents`):
escalation says where an incident's acknowledgement timeout comes from, notifications how its
unsent pages stop. Each registers its function once, when its module is imported
(escalation/snapshot.py, notifications/dispatch.py; every process that serves or works
imports both); a writer that needs one never registered raises instead of skipping it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tocsin.store.connection import Connection


@dataclass(frozen=True)
class AckTimeoutSource:
    """An incident's acknowledgement timeout (None: its policy has none) and the step its
    escalation is at, which the timeout's timer carries as every timer does."""

    minutes: int | None
    level: int
    repeat: int
    seq: int


class FindAckTimeout(Protocol):
    async def __call__(self, conn: Connection, incident_id: uuid.UUID) -> AckTimeoutSource | None:
        """None when the incident does not exist."""
        ...


class StopPending(Protocol):
    async def __call__(self, conn: Connection, incident_id: uuid.UUID, *, now: datetime) -> int:
        """Stops what the incident still has pending of one kind; returns how many."""
        ...


class NotAttached(RuntimeError):
    """A layer above the timers was never imported, so what it attaches is missing."""


_ack_timeouts: list[FindAckTimeout] = []
_page_stoppers: list[StopPending] = []


def finds_ack_timeouts(find: FindAckTimeout) -> FindAckTimeout:
    """Register where acknowledgement timeouts come from (one source; registering the same
    function again, as a module reloaded in tests does, changes nothing)."""
    _ack_timeouts[:] = [find]
    return find


def stops_pages(stop: StopPending) -> StopPending:
    """Register how an incident's unsent pages stop when its escalation stops."""
    _page_stoppers[:] = [stop]
    return stop


def ack_timeout_source() -> FindAckTimeout:
    if not _ack_timeouts:
        raise NotAttached("no acknowledgement timeout source: tocsin.escalation not imported")
    return _ack_timeouts[0]


def page_stopper() -> StopPending:
    if not _page_stoppers:
        raise NotAttached("nothing stops unsent pages: tocsin.notifications not imported")
    return _page_stoppers[0]
