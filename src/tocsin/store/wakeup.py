"""Waking workers the moment due work is written, instead of at their next poll.

`announce_work(conn)` is called inside the transaction that wrote a row due now. On
PostgreSQL it queues a NOTIFY, which the server delivers to every listening worker (on any
machine) only when that transaction commits, so nobody wakes to find the row not yet there.
In every process it also sets the in-process events of the workers running here, which is how
the single-node (SQLite) case wakes; a worker woken a moment early finds nothing, and waits for
the next wake-up or its poll (at most a second).
"""

from __future__ import annotations

import asyncio
import threading

from tocsin.store.backend import notify_other_processes
from tocsin.store.connection import Connection

CHANNEL = "tocsin_work"

_lock = threading.Lock()
_listeners: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()


def subscribe() -> asyncio.Event:
    """An event set whenever work is announced in this process; `unsubscribe` it when done."""
    event = asyncio.Event()
    with _lock:
        _listeners.add((asyncio.get_running_loop(), event))
    return event


def unsubscribe(event: asyncio.Event) -> None:
    with _lock:
        for entry in [entry for entry in _listeners if entry[1] is event]:
            _listeners.discard(entry)


def wake_local() -> None:
    """Set every in-process worker's event (from any thread)."""
    with _lock:
        listeners = list(_listeners)
    for loop, event in listeners:
        if loop.is_closed():
            continue
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop closed between our check and the call
            continue


async def announce_work(conn: Connection) -> None:
    """Tell workers, here and on other machines, that a row due now is being written."""
    await notify_other_processes(conn, CHANNEL)
    wake_local()
