"""The worker's wake-ups live in the store (tocsin.store.wakeup), beside the due-row queue,
so that every layer that writes a row due now can announce it without importing the worker."""

from __future__ import annotations

from tocsin.store.wakeup import CHANNEL, announce_work, subscribe, unsubscribe, wake_local

__all__ = ["CHANNEL", "announce_work", "subscribe", "unsubscribe", "wake_local"]
