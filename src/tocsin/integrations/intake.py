"""What receiving payloads needs, whichever door they come in by (the webhooks, the PagerDuty
and Opsgenie APIs, the SMTP listener): built once by the runtime and handed to each door."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from tocsin.alerts.batcher import IngestBatcher
from tocsin.clock import Clock
from tocsin.config import Settings
from tocsin.integrations.payload_log import PayloadLog
from tocsin.integrations.ratelimit import RateLimiter
from tocsin.store.quickreads import QuickReads


@dataclass(frozen=True)
class Intake:
    settings: Settings
    clock: Clock
    read_engine: AsyncEngine  # lookups that only read (repeats, delivery ids)
    quick_reads: QuickReads  # the ingest path's point lookups (integration by key)
    batcher: IngestBatcher  # stores each payload as one unit, committed with others
    rate_limiter: RateLimiter = field(default_factory=RateLimiter)
    payload_log: PayloadLog | None = None  # the integration's debug view of recent payloads
