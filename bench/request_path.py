"""CPU time of the alert request path, in one process: generic alerts posted straight into the
app's ASGI interface (no sockets, no uvicorn, no load generator of its own to speak of), in
rounds of `-n` alerts with `--concurrency` in flight, each alert stored and committed by the
ingest batcher as under `tocsin serve --no-worker`.

Prints the process's CPU time (all threads: the SQLite commit's thread too) per alert for
each round, and the lowest and the median. CPU time rather than wall time, so that a machine
busy with other work still gives comparable figures; the lowest round is the one least
disturbed by other processes sharing the caches.

    python bench/request_path.py                      # SQLite in a temporary directory
    python bench/request_path.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench

(on PostgreSQL, the database's public schema is dropped and migrated afresh first).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.factories import make_integration, make_policy, make_service, make_team

from tocsin.app import create_app
from tocsin.config import Settings
from tocsin.db import create_engine
from tocsin.migrations import upgrade


async def seed(url: str, services: int) -> str:
    """A team with a default policy, `services` services (routing keys svc0..), and a generic
    integration; its key."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    team = await make_team(engine, now, name="Bench")
    await make_policy(engine, now, team_id=team, name="Default", is_default=True)
    for n in range(services):
        await make_service(engine, now, team_id=team, routing_key=f"svc{n}", name=f"S{n}")
    integration = await make_integration(engine, now)
    await engine.dispose()
    return integration.key


async def post(app: Any, path: bytes, body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path.decode(),
        "raw_path": path,
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays until the answer is read
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def run(args: argparse.Namespace, url: str) -> None:
    key = await seed(url, args.services)
    settings = Settings(database_url=url, secret_key="bench", log_level="WARNING")
    app = create_app(settings, run_worker=False)
    path = f"/webhooks/{key}".encode()
    counter = 0

    async def one() -> None:
        nonlocal counter
        counter += 1
        body = orjson.dumps(
            {
                "title": f"Bench alert {counter}",
                "severity": "critical",
                "routing_key": f"svc{counter % args.services}",
                "dedup_key": f"bench-{counter}",
                "tags": {"env": "prod", "host": f"host-{counter % 50}"},
            }
        )
        status = await post(app, path, body)
        if status != 202:
            raise SystemExit(f"alert answered {status}")

    async def round_of(n: int) -> float:
        pending = iter(range(n))

        async def client() -> None:
            for _ in pending:
                await one()

        started = time.process_time()
        await asyncio.gather(*(client() for _ in range(args.concurrency)))
        return (time.process_time() - started) / n * 1000

    async with app.router.lifespan_context(app):
        await round_of(args.warmup)
        spent = []
        for r in range(args.rounds):
            spent.append(await round_of(args.n))
            print(f"round {r + 1}: {spent[-1]:.3f} ms CPU per alert", flush=True)
    print(
        f"request path ({'SQLite' if url.startswith('sqlite') else 'PostgreSQL'}, "
        f"concurrency {args.concurrency}, {args.rounds} x {args.n} alerts): lowest "
        f"{min(spent):.3f} ms, median {statistics.median(spent):.3f} ms CPU per alert"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database-url", help="default: a SQLite file in a temp dir")
    parser.add_argument("-n", type=int, default=1000, help="alerts per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--services", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        if not url.startswith("sqlite"):
            engine = create_engine(url)

            async def reset() -> None:
                async with engine.begin() as conn:
                    await conn.execute(text("DROP SCHEMA public CASCADE"))
                    await conn.execute(text("CREATE SCHEMA public"))
                await engine.dispose()

            asyncio.run(reset())
        upgrade(url)
        asyncio.run(run(args, url))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
