"""Escalation timer lateness and throughput with several worker processes on PostgreSQL.

Seeds `-n` open incidents whose next-level timers fall due evenly over `--spread` seconds
(written straight into a fresh database), starts `--workers` `tocsin worker` processes, waits
until every timer has fired, and prints lateness (executed_at - scheduled_for) p50/p99/max.
Then a burst: `--burst` timers all due at the same instant, and pages/s to work through them.

    python bench/escalation.py -n 10000 --spread 30 --workers 2 --burst 5000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

from escalation_seed import (
    DEFAULT_SERVER,
    fresh_database,
    pending_timers,
    percentile,
    seed,
    start_worker,
    stop_workers,
)

from tocsin.db import create_engine
from tocsin.escalation.models import EscalationJob, Page


async def wait_until_fired(engine: sa.ext.asyncio.AsyncEngine, within: float) -> None:
    deadline = time.monotonic() + within
    while await pending_timers(engine) > 0:
        if time.monotonic() > deadline:
            raise SystemExit("timers still pending at the deadline")
        await asyncio.sleep(0.5)


async def lateness(engine: sa.ext.asyncio.AsyncEngine, level: int) -> list[float]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(EscalationJob.scheduled_for, EscalationJob.executed_at).where(
                EscalationJob.executed_at.is_not(None), EscalationJob.scheduled_level == level
            )
        )
        return [(r.executed_at - r.scheduled_for).total_seconds() for r in rows]


async def run(args: argparse.Namespace, url: str) -> None:
    engine = create_engine(url)
    start = datetime.now(UTC) + timedelta(seconds=args.lead)
    await seed(
        engine,
        incidents=args.n,
        levels=3,
        repeat_count=1,
        first_due=start,
        spread=timedelta(seconds=args.spread),
    )
    workers = [start_worker(url, f"bench-{i}") for i in range(args.workers)]
    try:
        await wait_until_fired(engine, args.lead + args.spread + 120)
        late = await lateness(engine, 2)
        print(
            f"spread: {len(late)} timers due over {args.spread:.0f} s, {args.workers} workers: "
            f"lateness p50 {percentile(late, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(late, 0.99) * 1000:.1f} ms, max {max(late) * 1000:.1f} ms"
        )
        if args.burst:
            # Every level-3 timer (a minute out) is pulled to one instant a few seconds ahead.
            due = datetime.now(UTC) + timedelta(seconds=3)
            async with engine.begin() as conn:
                await conn.execute(
                    sa.update(EscalationJob)
                    .where(EscalationJob.completed.is_(False), EscalationJob.scheduled_level == 3)
                    .where(
                        EscalationJob.id.in_(
                            sa.select(EscalationJob.id)
                            .where(
                                EscalationJob.completed.is_(False),
                                EscalationJob.scheduled_level == 3,
                            )
                            .limit(args.burst)
                        )
                    )
                    .values(scheduled_for=due)
                )
                await conn.execute(
                    sa.update(EscalationJob)
                    .where(EscalationJob.completed.is_(False), EscalationJob.scheduled_for > due)
                    .values(cancelled_at=datetime.now(UTC))
                )
            await wait_until_fired(engine, 300)
            async with engine.connect() as conn:
                last = (
                    await conn.execute(
                        sa.select(sa.func.max(Page.created_at), sa.func.count()).where(
                            Page.level_number == 3
                        )
                    )
                ).one()
            seconds = (last[0] - due).total_seconds()
            print(
                f"burst: {last[1]} timers due at once: all paged {seconds:.2f} s after, "
                f"{last[1] / seconds:.0f} pages/s"
            )
    finally:
        stop_workers(workers)
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default=DEFAULT_SERVER, help="PostgreSQL server URL")
    parser.add_argument("-n", type=int, default=10_000, help="pending timers")
    parser.add_argument("--spread", type=float, default=30.0, help="seconds they fall due over")
    parser.add_argument("--lead", type=float, default=5.0, help="seconds before the first")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--burst", type=int, default=5000, help="timers due at one instant")
    args = parser.parse_args()
    url = fresh_database(args.server, "tocsin_bench_escalation")
    asyncio.run(run(args, url))


if __name__ == "__main__":
    main()
