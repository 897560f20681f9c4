"""Soak: a mixed load against a cluster of 2 `serve --no-worker` and 2 `tocsin worker` on a
fresh PostgreSQL database for --minutes (default 10): alerts to both API nodes (dedup keys
cycling, so incidents open, take alerts and get paged), acknowledgements and resolutions,
schedule on-call look-ups, WebSocket subscribers on both nodes and web UI pages. Prints the
throughput and p99 latency of each kind of request, the errors, and each process's resident
memory at the start (after a warm-up), every tenth of the run and at the end.

    TOCSIN_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1/x \
        .venv/bin/python bench/soak.py --minutes 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster import scenario
from tests.cluster.harness import Cluster, drop_database, new_database
from tests.ui.support import give_password, sign_in

from tocsin.db import create_engine
from tocsin.migrations import upgrade


class Tally:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    async def timed(self, kind: str, call: Any, ok: tuple[int, ...] = (200, 201, 202)) -> Any:
        started = time.perf_counter()
        try:
            response = await call
        except httpx.HTTPError as exc:
            self.errors[kind] += 1
            self.examples.setdefault(kind, repr(exc))
            return None
        self.latencies[kind].append(time.perf_counter() - started)
        if response.status_code not in ok:
            self.errors[kind] += 1
            self.examples.setdefault(kind, f"{response.status_code} {response.text[:200]}")
            return None
        return response


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


async def make_schedule(http: httpx.AsyncClient, seeded: scenario.Seeded, team: str) -> str:
    response = await http.post(
        "/api/v1/schedules",
        headers=seeded.alice.headers,
        json={
            "team_id": team,
            "name": "Primary",
            "time_zone": "Europe/Berlin",
            "layers": [
                {
                    "start": "2026-01-01T00:00:00Z",
                    "rotation": "daily",
                    "handoff": "2026-01-01T09:00",
                    "participants": [
                        {"user_ids": [str(seeded.bob.id)]},
                        {"user_ids": [str(seeded.alice.id)]},
                    ],
                }
            ],
        },
    )
    response.raise_for_status()
    schedule_id: str = response.json()["id"]
    return schedule_id


async def soak(cluster: Cluster, seeded: scenario.Seeded, *, seconds: float, rate: float) -> None:
    tally = Tally()
    heard: Counter[str] = Counter()
    nodes = cluster.api
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=nodes[0].base_url, timeout=30) as http:
        me = (await http.get("/api/v1/users/me", headers=seeded.alice.headers)).json()
        teams = (await http.get("/api/v1/teams", headers=seeded.alice.headers)).json()["items"]
        team = next(t["id"] for t in teams if t["name"] == "Payments")
        schedule = await make_schedule(http, seeded, team)
    del me

    async def ingest(worker: int) -> None:
        n = worker
        per_sender = rate / 4
        async with httpx.AsyncClient(timeout=30) as http:
            while not stop.is_set():
                node = nodes[n % len(nodes)]
                body = {
                    "title": f"Disk full on host {n % 300}",
                    "routing_key": "payments-api",
                    "dedup_key": f"host-{n % 300}",
                }
                started = time.perf_counter()
                await tally.timed(
                    "ingest", http.post(f"{node.base_url}{seeded.integration.url}", json=body)
                )
                n += 4
                await asyncio.sleep(max(0.0, 1 / per_sender - (time.perf_counter() - started)))

    async def respond() -> None:
        n = 0
        async with httpx.AsyncClient(timeout=30) as http:
            while not stop.is_set():
                node = nodes[n % len(nodes)]
                n += 1
                listed = await tally.timed(
                    "list incidents",
                    http.get(
                        f"{node.base_url}/api/v1/incidents",
                        params={"status": "open", "limit": 5},
                        headers=seeded.bob.headers,
                    ),
                )
                for incident in (listed.json()["items"] if listed else [])[:2]:
                    action = "acknowledge" if n % 3 else "resolve"
                    await tally.timed(
                        action,
                        http.post(
                            f"{node.base_url}/api/v1/incidents/{incident['id']}/{action}",
                            headers=seeded.bob.headers,
                            json={},
                        ),
                        ok=(200, 409),  # someone else got there first: normal
                    )
                await asyncio.sleep(0.5)

    async def look_up() -> None:
        n = 0
        async with httpx.AsyncClient(timeout=30) as http:
            while not stop.is_set():
                node = nodes[n % len(nodes)]
                n += 1
                await tally.timed(
                    "schedule on-call",
                    http.get(
                        f"{node.base_url}/api/v1/schedules/{schedule}/oncall",
                        headers=seeded.bob.headers,
                    ),
                )
                await asyncio.sleep(0.2)

    async def browse(node_index: int) -> None:
        node = nodes[node_index % len(nodes)]
        async with httpx.AsyncClient(base_url=node.base_url, timeout=30) as http:
            await sign_in(http, "bob@example.com")
            while not stop.is_set():
                await tally.timed("UI incident list", http.get("/incidents"))
                await asyncio.sleep(1.0)

    async def listen(node_index: int) -> None:
        node = nodes[node_index % len(nodes)]
        while not stop.is_set():
            try:
                async with websockets.connect(
                    f"{node.ws_url}/api/v1/stream", additional_headers=seeded.bob.headers
                ) as ws:
                    while not stop.is_set():
                        try:
                            raw = await asyncio.wait_for(ws.recv(), 1.0)
                        except TimeoutError:
                            continue
                        heard[json.loads(raw).get("type", "?")] += 1
            except (OSError, websockets.WebSocketException) as exc:
                tally.errors["websocket"] += 1
                tally.examples.setdefault("websocket", repr(exc))
                await asyncio.sleep(1.0)

    tasks = [asyncio.create_task(ingest(w)) for w in range(4)]
    tasks += [asyncio.create_task(respond()), asyncio.create_task(look_up())]
    tasks += [asyncio.create_task(browse(n)) for n in range(2)]
    tasks += [asyncio.create_task(listen(n)) for n in range(4)]

    await asyncio.sleep(min(30.0, seconds / 5))  # warm-up: imports, pools, caches
    warm_at = time.monotonic()
    memory_start = cluster.memory()
    counts_at_warm = {kind: len(values) for kind, values in tally.latencies.items()}
    # Resident memory every tenth of the run: a trend shows as a rise in every step, caches
    # filling as a rise that stops.
    samples = [memory_start]
    for _ in range(10):
        await asyncio.sleep(seconds / 10)
        samples.append(cluster.memory())
    memory_end = samples[-1]
    measured = time.monotonic() - warm_at
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)

    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs; measured {measured:.0f} s")
    print(f"{'request':<20}{'count':>8}{'per s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for kind, values in sorted(tally.latencies.items()):
        recent = values[counts_at_warm.get(kind, 0) :]
        median = sorted(recent)[len(recent) // 2] if recent else 0.0
        print(
            f"{kind:<20}{len(recent):>8}{len(recent) / measured:>8.1f}"
            f"{median * 1000:>9.0f}{p99(recent) * 1000:>9.0f}{tally.errors[kind]:>8}"
        )
    print(f"WebSocket messages heard (4 clients): {dict(heard)}")
    print(f"errors: {dict(tally.errors) or 'none'}")
    for kind, example in tally.examples.items():
        print(f"  first {kind} error: {example}")
    print(f"{'process':<10}{'RSS start MiB':>15}{'RSS end MiB':>13}  every tenth of the run, MiB")
    for name in memory_start:
        start, end = memory_start[name], memory_end.get(name)
        series = " ".join(f"{(sample.get(name) or 0) / 1024:.0f}" for sample in samples)
        print(
            f"{name:<10}{(start or 0) / 1024:>15.1f}{(end or 0) / 1024:>13.1f}  {series}"
            + ("" if start and end else "  (not running)")
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get("TOCSIN_TEST_POSTGRES_URL"))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=40.0, help="alerts per second, in all")
    args = parser.parse_args()
    if not args.postgres_url:
        parser.error("--postgres-url (or TOCSIN_TEST_POSTGRES_URL) is needed")
    url = await asyncio.to_thread(new_database, args.postgres_url)
    logs = Path(tempfile.mkdtemp(prefix="tocsin-soak-"))
    try:
        await asyncio.to_thread(upgrade, url)
        seeded = await scenario.seed(url)
        engine = create_engine(url)
        try:
            await give_password(engine, seeded.bob.id)
        finally:
            await engine.dispose()
        cluster = Cluster(url, log_dir=logs)
        try:
            await asyncio.to_thread(cluster.start)
            print(f"soak: {args.minutes} min at {args.rate} alerts/s; process logs in {logs}")
            await soak(cluster, seeded, seconds=args.minutes * 60, rate=args.rate)
        finally:
            await asyncio.to_thread(cluster.stop)
    finally:
        await asyncio.to_thread(drop_database, url)


if __name__ == "__main__":
    asyncio.run(main())
