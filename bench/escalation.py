"""Escalation timer lateness and throughput with several worker processes on PostgreSQL.

Seeds `-n` open incidents whose next-level timers fall due evenly over `--spread` seconds
(written straight into a fresh database), starts `--workers` `tocsin worker` processes, waits
until every timer has fired, and prints lateness (executed_at - scheduled_for) p50/p99/max.
Then a burst: `--burst` more timers (seeded with the others, due an hour after the spread, so
still pending) pulled to one instant, every other pending timer cancelled, and pages/s to work
through them.

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
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).parent))

from escalation_seed import (
    DEFAULT_SERVER,
    fresh_database,
    percentile,
    seed,
    start_worker,
    stop_workers,
)

from tocsin.db import create_engine
from tocsin.escalation.models import EscalationJob, JobOutcome, Page


async def pending_at_level(engine: AsyncEngine, level: int, *, before: datetime) -> int:
    async with engine.connect() as conn:
        count = await conn.execute(
            sa.select(sa.func.count())
            .select_from(EscalationJob)
            .where(
                EscalationJob.completed.is_(False),
                EscalationJob.cancelled_at.is_(None),
                EscalationJob.scheduled_level == level,
                EscalationJob.scheduled_for < before,
            )
        )
        return int(count.scalar_one())


async def wait_until_fired(
    engine: AsyncEngine, within: float, level: int, *, before: datetime
) -> None:
    """Until no timer of `level` due before `before` is pending."""
    deadline = time.monotonic() + within
    while await pending_at_level(engine, level, before=before) > 0:
        if time.monotonic() > deadline:
            raise SystemExit("timers still pending at the deadline")
        await asyncio.sleep(0.5)


async def lateness(engine: AsyncEngine, level: int, until: datetime | None = None) -> list[float]:
    async with engine.connect() as conn:
        stmt = sa.select(EscalationJob.scheduled_for, EscalationJob.executed_at).where(
            EscalationJob.executed_at.is_not(None),
            EscalationJob.scheduled_level == level,
            EscalationJob.outcome == JobOutcome.FIRED,
        )
        if until is not None:
            stmt = stmt.where(EscalationJob.scheduled_for <= until)
        rows = await conn.execute(stmt)
        return [(r.executed_at - r.scheduled_for).total_seconds() for r in rows]


async def run(args: argparse.Namespace, url: str) -> None:
    engine = create_engine(url)
    start = datetime.now(UTC) + timedelta(seconds=args.lead)
    # The burst's timers are seeded with the others, due long after the spread, so they are
    # still pending (and claimed by nobody) whenever the burst begins.
    held_due = start + timedelta(seconds=args.spread + 3600)
    await seed(
        engine,
        incidents=args.n,
        levels=3,
        repeat_count=1,
        first_due=start,
        spread=timedelta(seconds=args.spread),
        held=args.burst,
        held_due=held_due,
    )
    workers = [start_worker(url, f"bench-{i}") for i in range(args.workers)]
    try:
        if args.measure:
            # Only the first `measure` seconds of the spread are waited for and measured;
            # the remaining timers stay pending all along (cancelled before the burst).
            await asyncio.sleep(args.lead + args.measure + 2)
            cutoff = start + timedelta(seconds=args.measure)
            late = await lateness(engine, 2, until=cutoff)
            spread_text = f"{len(late)} timers due in {args.measure:.0f} s of {args.n} pending"
        else:
            await wait_until_fired(engine, args.lead + args.spread + 600, 2, before=held_due)
            late = await lateness(engine, 2)
            spread_text = f"{len(late)} timers due over {args.spread:.0f} s"
        if late:
            print(
                f"spread: {spread_text}, {args.workers} workers: "
                f"lateness p50 {percentile(late, 0.5) * 1000:.1f} ms, "
                f"p99 {percentile(late, 0.99) * 1000:.1f} ms, max {max(late) * 1000:.1f} ms",
                flush=True,
            )
        else:
            print(f"spread: no timer fell due in the window ({spread_text})", flush=True)
        if args.burst:
            await burst(engine, args.burst, held_due)
    finally:
        stop_workers(workers)
        await engine.dispose()


async def burst(engine: AsyncEngine, size: int, held_due: datetime) -> None:
    """Pull the `size` held timers to one instant a few seconds ahead (every other pending
    timer is cancelled), wait until all are fired, and print pages/s."""
    due = datetime.now(UTC) + timedelta(seconds=3)
    async with engine.begin() as conn:
        pending = (EscalationJob.completed.is_(False), EscalationJob.cancelled_at.is_(None))
        await conn.execute(
            sa.update(EscalationJob)
            .where(*pending, EscalationJob.scheduled_for < held_due)
            .values(cancelled_at=datetime.now(UTC))
        )
        chosen = list(
            (
                await conn.execute(
                    sa.update(EscalationJob)
                    .where(*pending, EscalationJob.scheduled_for == held_due)
                    .values(scheduled_for=due)
                    .returning(EscalationJob.id)
                )
            ).scalars()
        )
    if len(chosen) != size:
        raise SystemExit(f"burst: {len(chosen)} held timers found, {size} expected")
    due_mono = time.monotonic() + (due - datetime.now(UTC)).total_seconds()
    left = len(chosen)
    deadline = time.monotonic() + 900
    while left:
        if time.monotonic() > deadline:
            raise SystemExit(f"burst: {left} timers still pending after 900 s")
        await asyncio.sleep(0.1)
        async with engine.connect() as conn:
            left = int(
                (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(EscalationJob)
                        .where(EscalationJob.id.in_(chosen), *pending)
                    )
                ).scalar_one()
            )
    # Seen done by this poll: at most 0.1 s after the last commit, so a little pessimistic.
    observed = time.monotonic() - due_mono
    async with engine.connect() as conn:
        paged, last_page = (
            await conn.execute(
                sa.select(sa.func.count(), sa.func.max(Page.created_at)).where(
                    Page.job_id.in_(chosen)
                )
            )
        ).one()
    if not paged:
        raise SystemExit("burst: the timers fired but wrote no page")
    stamped = (last_page - due).total_seconds()
    print(
        f"burst: {len(chosen)} timers due at once, {paged} paged; all committed {observed:.2f} s "
        f"after (seen by polling) = {paged / observed:.0f} pages/s; last page stamped "
        f"{stamped:.2f} s after (its batch's start)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default=DEFAULT_SERVER, help="PostgreSQL server URL")
    parser.add_argument("-n", type=int, default=10_000, help="pending timers")
    parser.add_argument("--spread", type=float, default=30.0, help="seconds they fall due over")
    parser.add_argument("--lead", type=float, default=5.0, help="seconds before the first")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--measure", type=float, default=0, help="measure only this many seconds of the spread"
    )
    parser.add_argument("--burst", type=int, default=5000, help="timers due at one instant")
    args = parser.parse_args()
    url = fresh_database(args.server, "tocsin_bench_escalation")
    asyncio.run(run(args, url))


if __name__ == "__main__":
    main()
