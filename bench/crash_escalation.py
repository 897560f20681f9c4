"""Crash soak: worker processes SIGKILLed at random while hundreds of incidents escalate.

Seeds `-n` open incidents on a policy of 3 levels repeated twice, starts `--workers` `tocsin
worker` processes (short lease), and then, round after round, pulls every pending timer to a
random instant in the next `--spread` seconds, so the incidents run through all their levels
and cycles in real time, while a random worker is killed and restarted every 1-3 s (only
workers up for --min-age seconds, so each had time to start and claim). At the end, each
incident must have exactly one page for each (level, cycle) after the seeded first one,
and one "escalation exhausted" entry: none lost, none doubled.

    python bench/crash_escalation.py -n 500 --workers 3
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

from escalation_seed import (
    DEFAULT_SERVER,
    fresh_database,
    pending_timers,
    seed,
    start_worker,
    stop_workers,
)

from tocsin.db import create_engine
from tocsin.escalation.models import EscalationJob, Page
from tocsin.incidents.models import IncidentEvent

LEVELS, REPEATS = 3, 2


async def run(args: argparse.Namespace, url: str) -> int:
    engine = create_engine(url)
    incidents = await seed(
        engine,
        incidents=args.n,
        levels=LEVELS,
        repeat_count=REPEATS,
        first_due=datetime.now(UTC) + timedelta(seconds=2),
        spread=timedelta(seconds=args.spread),
    )
    workers = [start_worker(url, f"crash-{i}", lease_seconds=2) for i in range(args.workers)]
    started = [time.monotonic()] * len(workers)
    kills = restarts = 0
    deadline = time.monotonic() + args.timeout
    try:
        while await pending_timers(engine) > 0 and time.monotonic() < deadline:
            # Timers are a minute apart in the policy; bring the next ones into the window.
            soon = datetime.now(UTC) + timedelta(seconds=1)
            async with engine.begin() as conn:
                await conn.execute(
                    sa.update(EscalationJob)
                    .where(
                        EscalationJob.completed.is_(False),
                        EscalationJob.cancelled_at.is_(None),
                        EscalationJob.scheduled_for > soon + timedelta(seconds=args.spread),
                    )
                    .values(
                        scheduled_for=soon
                        + sa.func.make_interval(0, 0, 0, 0, 0, 0, sa.func.random() * args.spread)
                    )
                )
            round_end = time.monotonic() + args.spread + 2
            while time.monotonic() < round_end:
                await asyncio.sleep(random.uniform(1.0, 3.0))
                # Only a worker that has had time to start (imports, connect) and claim
                # something is worth killing; killing newborns would just stall the run.
                grown = [i for i, t in enumerate(started) if time.monotonic() - t > args.min_age]
                if not grown:
                    continue
                victim = random.choice(grown)
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                kills += 1
                workers[victim] = start_worker(url, f"crash-r{restarts}", lease_seconds=2)
                started[victim] = time.monotonic()
                restarts += 1
    finally:
        stop_workers(workers)
    async with engine.connect() as conn:
        pages = Counter(
            (r[0], r[1], r[2])
            for r in await conn.execute(sa.select(Page.incident_id, Page.level_number, Page.repeat))
        )
        exhausted = Counter(
            r[0]
            for r in await conn.execute(
                sa.select(IncidentEvent.incident_id).where(
                    IncidentEvent.kind == "escalation_exhausted"
                )
            )
        )
    await engine.dispose()
    expected = [(lv, rp) for rp in range(REPEATS) for lv in range(1, LEVELS + 1)][1:]
    lost = doubled = 0
    for incident in incidents:
        for level, repeat in expected:
            n = pages[(incident, level, repeat)]
            lost += n == 0
            doubled += n > 1
        lost += exhausted[incident] == 0
        doubled += exhausted[incident] > 1
    due = len(incidents) * (len(expected) + 1)
    print(
        f"{len(incidents)} incidents, {args.workers} workers, {kills} SIGKILLs: "
        f"{due} due steps, {lost} lost, {doubled} doubled"
    )
    return 0 if lost == doubled == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default=DEFAULT_SERVER, help="PostgreSQL server URL")
    parser.add_argument("-n", type=int, default=500, help="incidents")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--spread", type=float, default=4.0, help="seconds per round")
    parser.add_argument(
        "--min-age", type=float, default=8.0, help="kill only workers up this many seconds"
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    url = fresh_database(args.server, "tocsin_bench_crash")
    sys.exit(asyncio.run(run(args, url)))


if __name__ == "__main__":
    main()
