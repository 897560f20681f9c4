"""How long `tocsin db backup` and `restore` take on a SQLite database of a given size, and
what a backup does to a running server's ingest latency.

Against a running `tocsin serve` on the database: alerts are sent on a fixed schedule
(open loop, `--rate` per second) for a few seconds before the backup, during it and after it,
and p50/p99 latency from send to 202 is printed for each phase. `--pad-mb` first grows the
database with payload-log rows (filler bodies) so that the copy has something to copy.

    python bench/backup.py --database /tmp/benchB/tocsin.db --pad-mb 200 \\
        --url http://127.0.0.1:18090 --integration-key ik_... --rate 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).parent))
from ingest import Connection, payload

from tocsin.clock import SystemClock
from tocsin.operations.backup import backup_sqlite, restore_sqlite


def pad(database: Path, megabytes: int) -> None:
    """Add payload-log rows of 4 KB until the file is about `megabytes` larger."""
    with sqlite3.connect(database, timeout=30) as conn:
        row = conn.execute("SELECT id FROM integrations LIMIT 1").fetchone()
        if row is None:
            raise SystemExit("the database has no integration to hang filler rows on")
        now = datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        filler = "x" * 4000
        for _ in range(megabytes * 256 // 1000 + 1):
            conn.executemany(
                "INSERT INTO integration_payloads (id, integration_id, received_at, status_code,"
                " content_type, body, body_truncated, mapping) VALUES (?, ?, ?, 202,"
                " 'application/json', ?, 0, '{}')",
                [(uuid.uuid4().hex, row[0], now, filler) for _ in range(1000)],
            )
            conn.commit()


def size_mb(path: Path) -> float:
    total = path.stat().st_size
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        total += wal.stat().st_size
    return total / 1024 / 1024


async def send(url: str, key: str, rate: float, phases: dict[str, list[float]]) -> None:
    """Open loop until phases['stop'] appears: each latency goes to the current phase."""
    parts = urlsplit(url)
    connections = [Connection(parts.hostname or "127.0.0.1", parts.port or 80) for _ in range(16)]
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for connection in connections:
        idle.put_nowait(connection)
    state = phases["_state"]

    async def one(n: int, phase: str) -> None:
        connection = await idle.get()
        started = time.perf_counter()
        try:
            status, _ = await connection.post(f"/webhooks/{key}", payload(n, "unique", "generic"))
            if status == 202:
                phases[phase].append(time.perf_counter() - started)
            else:
                phases.setdefault("errors", []).append(float(status))
        finally:
            idle.put_nowait(connection)

    tasks = []
    start = time.perf_counter()
    n = 0
    while not state:
        n += 1
        phase = phases["_phase"][0]
        tasks.append(asyncio.create_task(one(n, phase)))
        await asyncio.sleep(max(start + n / rate - time.perf_counter(), 0))
    await asyncio.gather(*tasks)


def percentiles(latencies: list[float]) -> str:
    if len(latencies) < 2:
        return "n/a"
    cuts = statistics.quantiles(latencies, n=100)
    return f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms ({len(latencies)} alerts)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", type=Path, required=True)
    parser.add_argument("--pad-mb", type=int, default=0)
    parser.add_argument("--url", help="a tocsin serve on this database, to measure ingest")
    parser.add_argument("--integration-key")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before and after")
    args = parser.parse_args()
    if args.pad_mb:
        pad(args.database, args.pad_mb)
    print(f"database: {size_mb(args.database):.0f} MB (file + WAL)")

    phases: dict[str, list] = {"before": [], "during": [], "after": [], "_state": [], "_phase": []}
    phases["_phase"].append("before")
    sender = None
    if args.url:
        sender = threading.Thread(
            target=asyncio.run,
            args=(send(args.url, args.integration_key, args.rate, phases),),
            daemon=True,
        )
        sender.start()
        time.sleep(args.settle)

    scratch = Path(tempfile.mkdtemp(prefix="tocsin-backup-bench-"))
    phases["_phase"][0] = "during"
    started = time.perf_counter()
    result = backup_sqlite(args.database, scratch / "backup.db")
    backup_seconds = time.perf_counter() - started
    phases["_phase"][0] = "after"
    if sender is not None:
        time.sleep(args.settle)
        phases["_state"].append(True)
        sender.join()

    started = time.perf_counter()
    restore_sqlite(result.path, scratch / "restored.db", clock=SystemClock())
    restore_seconds = time.perf_counter() - started
    megabytes = result.size_bytes / 1024 / 1024
    print(
        f"backup: {megabytes:.0f} MB in {backup_seconds:.2f} s"
        f" ({megabytes / backup_seconds:.0f} MB/s)"
    )
    print(f"restore into a new file (with migrations check): {restore_seconds:.2f} s")
    if sender is not None:
        for phase in ("before", "during", "after"):
            print(f"ingest {phase} the backup: {percentiles(phases[phase])}")
        print(f"errors: {len(phases.get('errors', []))}")
    for leftover in scratch.iterdir():
        leftover.unlink()
    os.rmdir(scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
