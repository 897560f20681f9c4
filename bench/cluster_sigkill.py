"""The long version of tests/cluster/test_sigkill.py: a cluster of 2 `serve --no-worker` and
2 `tocsin worker` on a fresh PostgreSQL database, alerts to both API nodes for --seconds, api2
and worker1 SIGKILLed halfway and restarted, then every promise checked (no 202'd alert
missing, every incident heard on the WebSocket, each escalation level paged exactly once).

    TOCSIN_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1/x \
        .venv/bin/python bench/cluster_sigkill.py --seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster import scenario
from tests.cluster.harness import Cluster, drop_database, new_database

from tocsin.migrations import upgrade


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get("TOCSIN_TEST_POSTGRES_URL"))
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if not args.postgres_url:
        parser.error("--postgres-url (or TOCSIN_TEST_POSTGRES_URL) is needed")
    url = await asyncio.to_thread(new_database, args.postgres_url)
    logs = Path(tempfile.mkdtemp(prefix="tocsin-cluster-"))
    try:
        await asyncio.to_thread(upgrade, url)
        seeded = await scenario.seed(url)
        cluster = Cluster(url, log_dir=logs)
        try:
            await asyncio.to_thread(cluster.start)
            started = time.monotonic()
            outcome = await scenario.run(
                cluster, seeded, seconds=args.seconds, concurrency=args.concurrency
            )
            took = time.monotonic() - started
        finally:
            await asyncio.to_thread(cluster.stop)
        found = await scenario.problems(url, seeded, outcome)
    finally:
        await asyncio.to_thread(drop_database, url)
    print(f"load average: {os.getloadavg()}  logs: {logs}")
    print(
        f"{len(outcome.accepted)} alerts accepted (202) in {took:.0f} s "
        f"({dict(outcome.sent_by_node)}; {outcome.after_restart} by api2 after its restart), "
        f"{outcome.failed} refused or unanswered, {len(outcome.heard)} incidents heard"
    )
    print("problems: " + ("none" if not found else "; ".join(found)))
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
