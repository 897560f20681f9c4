"""Retention's metric: rows deleted, by kind, totals of all workers read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.retention.models import RetentionCount
from tocsin.worker.metrics import REGISTRY


class PurgedRows(Collector):
    """`tocsin_retention_purged_rows_total{kind}`: the totals as of the last scrape."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "tocsin_retention_purged_rows",
            "Rows deleted because they were older than the retention settings (all workers), "
            "by kind: incidents, alerts, timeline, pages, deliveries, payload_log",
            labels=["kind"],
        )
        for kind, total in sorted(self.totals.items()):
            family.add_metric([kind], total)
        yield family

    async def refresh(self, conn: AsyncConnection) -> None:
        rows = await conn.execute(select(RetentionCount.kind, RetentionCount.purged))
        self.totals = {kind: int(purged) for kind, purged in rows}


PURGED = PurgedRows()
REGISTRY.register(PURGED)
