"""Notification throughput and latency, on loopback, with everything started here.

1. Deliveries/s: N test deliveries to a loopback webhook receiver, sent by W in-process
   workers calling the delivery step (`send_due_deliveries`) until none is left.
2. Incident -> first delivery: `tocsin serve` (API + in-process worker) in a subprocess,
   alerts posted at --rate per second for --seconds; each opens an incident whose policy
   pages one of --users people, each with a "0 minutes, webhook" rule. The receiver notes
   when the first message for each incident arrives. Per-person throttling is switched off
   here (TOCSIN_NOTIFY_BURST very large) so every incident gets its own message.

    python bench/notify.py                      # SQLite file in a temp dir
    python bench/notify.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench
    python bench/notify.py --only latency --database-url postgresql+asyncpg://... \
        --separate-workers 1      # API and worker in two processes, as in production
    python bench/notify.py --find-capacity \
        --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench
        # the highest rate with first-delivery p99 < 2 s: SQLite one serve, PostgreSQL one
        # serve, PostgreSQL serve --no-worker + 2 workers (PostgreSQL ones only with the URL;
        # --setups postgres-workers for one of them). The database must exist; its public
        # schema is dropped and made anew before every step.

BENCH_TIMES_FILE=path writes each incident's times (alert sent, 202, first message; monotonic
seconds, comparable with the server's on Linux) as JSON, for a closer look at one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import func, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import Connection
from tests.factories import (
    make_integration,
    make_person,
    make_policy,
    make_service,
    make_team,
)

from tocsin.clock import SystemClock
from tocsin.config import Settings
from tocsin.db import create_engine
from tocsin.escalation.models import TargetType
from tocsin.migrations import upgrade
from tocsin.notifications.delivery import send_due_deliveries
from tocsin.notifications.dispatch import delivery_row
from tocsin.notifications.models import (
    ContactKind,
    ContactMethod,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    NotificationRule,
    Urgency,
)
from tocsin.teams.models import TeamRole
from tocsin.worker.context import WorkerContext

RECEIVED = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class _ReceiverProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, just enough to take webhook POSTs: the receiver shares the
    machine with the server it measures, so it spends as little CPU as it can."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in bytes(self.buffer[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            self.receiver.note(body)
            assert self.transport is not None
            self.transport.write(RECEIVED)


class Receiver:
    """A loopback webhook receiver noting when each incident's first message arrives."""

    def __init__(self) -> None:
        self.count = 0
        self.first_seen: dict[str, float] = {}
        self.base_url = ""
        self.server: asyncio.Server | None = None

    def note(self, body: bytes) -> None:
        self.count += 1
        incident = orjson.loads(body).get("incident")
        if incident is not None:
            self.first_seen.setdefault(incident["id"], time.monotonic())

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: _ReceiverProtocol(self), "127.0.0.1", 0, backlog=1024
        )
        self.base_url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def reset_postgres(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


async def seed_webhook(engine: Any, user_id: uuid.UUID, url: str) -> uuid.UUID:
    now = datetime.now(UTC)
    method_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            insert(ContactMethod).values(
                id=method_id,
                user_id=user_id,
                kind=ContactKind.WEBHOOK,
                name="bench",
                address=url,
                signing_secret="bench-secret",
                verified_at=now,
                verification_failures=0,
                created_at=now,
                updated_at=now,
            )
        )
        for urgency in Urgency:
            await conn.execute(
                insert(NotificationRule).values(
                    id=uuid.uuid4(),
                    user_id=user_id,
                    urgency=urgency,
                    delay_minutes=0,
                    contact_method_id=method_id,
                    created_at=now,
                )
            )
    return method_id


async def throughput(url: str, receiver: Receiver, *, count: int, workers: int) -> None:
    engine = create_engine(url)
    now = datetime.now(UTC)
    person = await make_person(engine, now, email="tp@example.com", name="Throughput")
    method_id = await seed_webhook(engine, person.id, receiver.base_url + "/tp")
    async with engine.begin() as conn:
        rows = [
            delivery_row(
                kind=DeliveryKind.TEST,
                idempotency_key=f"bench:{n}",
                user_id=person.id,
                contact_kind=ContactKind.WEBHOOK,
                address=receiver.base_url + "/tp",
                due_at=now,
                now=now,
                contact_method_id=method_id,
            )
            for n in range(count)
        ]
        for start in range(0, count, 500):
            await conn.execute(insert(Delivery), rows[start : start + 500])
    settings = Settings(
        database_url=url,
        notify_batch_size=20,
        secret_key="bench",
        outbound_allow=["127.0.0.0/8"],  # the receiver is on loopback
    )

    async def work(n: int) -> None:
        ctx = WorkerContext(engine, SystemClock(), settings, worker_id=f"bench-{n}")
        while await send_due_deliveries(ctx):
            pass

    started = time.monotonic()
    cpu = time.process_time()
    await asyncio.gather(*(work(n) for n in range(workers)))
    elapsed = time.monotonic() - started
    cpu = time.process_time() - cpu
    async with engine.connect() as conn:
        sent = (
            await conn.execute(select(func.count()).where(Delivery.status == DeliveryStatus.SENT))
        ).scalar_one()
    await engine.dispose()
    print(
        f"throughput: {sent}/{count} deliveries sent by {workers} worker(s) in {elapsed:.2f} s"
        f" = {sent / elapsed:.0f} deliveries/s; {cpu / max(sent, 1) * 1000:.2f} ms CPU per"
        " delivery (this process: workers, database driver threads and the receiver)"
    )


@dataclass(frozen=True)
class LatencyResult:
    incidents: int
    errors: int
    missing: int
    p50: float | None
    p99: float | None

    def within(self, limit: float) -> bool:
        return (
            self.incidents > 0
            and self.errors == 0
            and self.missing == 0
            and self.p99 is not None
            and self.p99 < limit
        )


async def latency(
    url: str,
    receiver: Receiver,
    *,
    rate: float,
    seconds: float,
    users: int,
    separate_workers: int = 0,
    wait_seconds: float = 60.0,
) -> LatencyResult:
    engine = create_engine(url)
    now = datetime.now(UTC)
    people = [
        await make_person(engine, now, email=f"u{n}@example.com", name=f"U{n}")
        for n in range(users)
    ]
    team = await make_team(
        engine, now, name="Bench", members={p.id: TeamRole.RESPONDER for p in people}
    )
    for n, person in enumerate(people):
        await seed_webhook(engine, person.id, receiver.base_url + f"/u{n}")
        policy = await make_policy(
            engine,
            now,
            team_id=team,
            name=f"P{n}",
            is_default=n == 0,
            targets=[(TargetType.USER, person.id)],
        )
        await make_service(engine, now, team_id=team, routing_key=f"svc{n}", policy_id=policy)
    integration = await make_integration(engine, now)
    await engine.dispose()

    port = free_port()
    env = {
        **os.environ,
        "TOCSIN_DATABASE_URL": url,
        "TOCSIN_PORT": str(port),
        "TOCSIN_SECRET_KEY": "bench",
        "TOCSIN_OUTBOUND_ALLOW": "127.0.0.0/8",  # the receiver is on loopback
        "TOCSIN_NOTIFY_BURST": "1000000000",
        "TOCSIN_LOG_LEVEL": os.environ.get("BENCH_SERVER_LOG_LEVEL", "warning"),
    }
    log = open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "w")  # noqa: SIM115, ASYNC230
    serve = [sys.executable, "-m", "tocsin.cli", "serve"]
    if separate_workers:
        serve.append("--no-worker")
    processes = [
        subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL, stderr=log)  # noqa: ASYNC220
    ]
    for _ in range(separate_workers):
        processes.append(
            subprocess.Popen(  # noqa: ASYNC220
                [sys.executable, "-m", "tocsin.cli", "worker"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        )
    base = f"http://127.0.0.1:{port}"
    sent_at: dict[str, float] = {}
    answered_at: dict[str, float] = {}
    errors = 0
    lag = 0.0
    cpu_before: dict[int, float] = {}
    cpu_after: dict[int, float] = {}
    bench_cpu = 0.0
    path = urlsplit(integration.url).path if "://" in integration.url else integration.url
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for _ in range(1200):  # a loaded machine can take a minute to start it
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        # Requests go out over raw keep-alive connections (bench/ingest.py's client): httpx
        # would cost the load generator, on the same machine, as much CPU as the server.
        idle: list[Connection] = []

        async def post(body: bytes) -> tuple[int, bytes]:
            reused = bool(idle)
            conn = idle.pop() if idle else Connection("127.0.0.1", port)
            try:
                answer = await conn.post(path, body)
            except (ConnectionError, asyncio.IncompleteReadError):
                if not reused:
                    raise
                # Closed by the server while idle, before it read this request: once more.
                conn = Connection("127.0.0.1", port)
                answer = await conn.post(path, body)
            idle.append(conn)
            return answer

        def alert(title: str, n: int, dedup_key: str) -> bytes:
            return orjson.dumps(
                {
                    "title": title,
                    "severity": "critical",
                    "routing_key": f"svc{n % users}",
                    "dedup_key": dedup_key,
                }
            )

        # Warm up (first imports, connection pools) so they are not counted.
        warm = []
        for n in range(users):
            status, body = await post(alert("Warm-up", n, f"warm-{n}"))
            if status != 202:
                raise SystemExit(f"warm-up alert answered {status}: {body[:200]!r}")
            warm.append(orjson.loads(body)["incident_id"])
        while not set(warm) <= set(receiver.first_seen):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        total = int(rate * seconds)
        cpu_before = server_cpu(processes)
        bench_cpu = time.process_time()
        start = time.monotonic()
        marker = os.environ.get("BENCH_MEASURING_FILE")
        if marker:  # for a profiler: the servers' pids, written as the measured part starts
            Path(marker).write_text(" ".join(str(p.pid) for p in processes))  # noqa: ASYNC240

        async def one(n: int) -> None:
            nonlocal errors, lag
            t0 = time.monotonic()
            lag = max(lag, t0 - (start + n / rate))
            try:
                status, body = await post(alert(f"Bench incident {n}", n, f"bench-{n}"))
            except (OSError, asyncio.IncompleteReadError) as exc:
                errors += 1
                if errors <= 3:
                    print(f"ingest error: {type(exc).__name__}: {exc}")
                return
            if status != 202:
                errors += 1
                if errors <= 3:
                    print(f"ingest answered {status}: {body[:200]!r}")
                return
            incident_id = orjson.loads(body)["incident_id"]
            sent_at[incident_id] = t0
            answered_at[incident_id] = time.monotonic()

        # Open loop: each request starts at its time, whatever the answers.
        tasks = []
        for n in range(total):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline and not set(sent_at) <= set(  # noqa: ASYNC110
            receiver.first_seen
        ):
            await asyncio.sleep(0.1)
        cpu_after = server_cpu(processes)
        bench_cpu = time.process_time() - bench_cpu
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a loaded machine: the next step needs the port
                print(f"  (pid {process.pid} took over 30 s to stop; killed)")
                process.kill()
                process.wait()
        log.close()
    times_file = os.environ.get("BENCH_TIMES_FILE")
    if times_file:  # each incident's own times (time.monotonic), for a closer look
        Path(times_file).write_bytes(  # noqa: ASYNC240
            orjson.dumps(
                {
                    i: {"sent": t, "answered": answered_at[i], "seen": receiver.first_seen.get(i)}
                    for i, t in sent_at.items()
                }
            )
        )
    latencies = [receiver.first_seen[i] - t for i, t in sent_at.items() if i in receiver.first_seen]
    missing = len(sent_at) - len(latencies)
    where = f"serve --no-worker + {separate_workers} worker(s)" if separate_workers else "serve"
    print(
        f"latency ({where}): {len(sent_at)} incidents at {rate:g}/s for {seconds:g} s "
        f"({users} people), {errors} ingest errors, {missing} without a delivery after "
        f"{wait_seconds:g} s; sender at most {lag * 1000:.0f} ms behind its schedule"
    )
    if cpu_after and sent_at:
        used = {pid: cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after}
        spent = sum(used.values())
        print(
            f"server CPU while measured: {spent:.2f} s "
            f"({' + '.join(f'{v:.2f}' for v in used.values())}) = "
            f"{spent / len(sent_at) * 1000:.2f} ms per incident; this bench's own: "
            f"{bench_cpu:.2f} s; {cpu_model()}, {machine_load()}"
        )
    if latencies:
        print(
            f"incident created -> first delivery: p50 {statistics.median(latencies) * 1000:.0f} ms"
            f", p99 {pct(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
        )
        # Where the time went: waiting for the 202 (ingest), then for the first message.
        answer = [answered_at[i] - t for i, t in sent_at.items()]
        after = [
            receiver.first_seen[i] - answered_at[i] for i in sent_at if i in receiver.first_seen
        ]
        print(
            f"  of which alert sent -> 202: p50 {statistics.median(answer) * 1000:.0f} ms, "
            f"p99 {pct(answer, 0.99) * 1000:.0f} ms; 202 -> first delivery: "
            f"p50 {statistics.median(after) * 1000:.0f} ms, p99 {pct(after, 0.99) * 1000:.0f} ms"
        )
    return LatencyResult(
        len(sent_at),
        errors,
        missing,
        statistics.median(latencies) if latencies else None,
        pct(latencies, 0.99) if latencies else None,
    )


def server_cpu(processes: list[subprocess.Popen[Any]]) -> dict[int, float]:
    """CPU seconds (user + system) each process has used so far (Linux; {} elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    used = {}
    for process in processes:
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return {}
        used[process.pid] = (int(fields[11]) + int(fields[12])) / ticks
    return used


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def machine_load() -> str:
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "load unknown"


async def one_latency_run(
    url: str, *, rate: float, seconds: float, users: int, separate_workers: int
) -> LatencyResult:
    """A fresh database, a fresh receiver, one latency run."""
    if url.startswith("postgresql"):
        await reset_postgres(url)
    await asyncio.to_thread(upgrade, url)
    receiver = Receiver()
    await receiver.start()
    try:
        return await latency(
            url,
            receiver,
            rate=rate,
            seconds=seconds,
            users=users,
            separate_workers=separate_workers,
            wait_seconds=15,
        )
    finally:
        await receiver.stop()


async def find_capacity(
    args: argparse.Namespace, tmp: str, rates: list[float], limit: float = 2.0
) -> None:
    """For each setup, raise the rate step by step until first-delivery p99 reaches `limit`
    (or an incident is not delivered, or ingest fails); print the highest rate that held."""
    known: dict[str, tuple[str, str | None, int]] = {
        "sqlite": ("SQLite, one serve", None, 0),
        "postgres": ("PostgreSQL, one serve", args.postgres_url, 0),
        "postgres-workers": ("PostgreSQL, serve --no-worker + 2 workers", args.postgres_url, 2),
    }
    wanted = args.setups.split(",") if args.setups else list(known)
    if not args.postgres_url:
        wanted = [name for name in wanted if not name.startswith("postgres")]
    unknown = [name for name in wanted if name not in known]
    if unknown or not wanted:
        raise SystemExit(f"--setups: choose from {', '.join(known)} (PostgreSQL needs its URL)")
    setups = [known[name] for name in wanted]
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {machine_load()} at start")
    summary = []
    for name, pg_url, workers in setups:
        best: float | None = None
        for step, rate in enumerate(rates):
            url = pg_url or f"sqlite+aiosqlite:///{tmp}/capacity-{step}.db"
            print(f"--- {name}: {rate:g}/s ({machine_load()})", flush=True)
            result = await one_latency_run(
                url, rate=rate, seconds=args.seconds, users=args.users, separate_workers=workers
            )
            if not result.within(limit):
                break
            best = rate
        summary.append((name, best))
    print(f"\ncapacity (first delivery p99 < {limit:g} s, {args.seconds:g} s per step):")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {machine_load()} at the end")
    for name, best in summary:
        shown = f"{best:g} incidents/s" if best is not None else f"below {rates[0]:g}/s"
        print(f"  {name}: {shown}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="default: a SQLite file in a temp dir")
    parser.add_argument("-n", "--count", type=int, default=2000, help="deliveries (part 1)")
    parser.add_argument("--workers", type=int, default=2, help="workers (part 1)")
    parser.add_argument("--rate", type=float, default=100.0, help="incidents/s (part 2)")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration (part 2)")
    parser.add_argument("--users", type=int, default=10, help="people paged (part 2)")
    parser.add_argument("--only", choices=["throughput", "latency"], help="run one part")
    parser.add_argument(
        "--separate-workers",
        type=int,
        default=0,
        help="part 2: run `serve --no-worker` and this many `tocsin worker` processes",
    )
    parser.add_argument(
        "--find-capacity",
        action="store_true",
        help="step the rate up (see --rates) and print the highest with first-delivery p99 < 2 s",
    )
    parser.add_argument(
        "--rates",
        default="50,100,150,200,250,300,350,400,500,600",
        help="--find-capacity: the rates tried, in order (incidents/s)",
    )
    parser.add_argument(
        "--postgres-url", help="--find-capacity: also measure PostgreSQL on this database"
    )
    parser.add_argument(
        "--setups",
        help="--find-capacity: which of sqlite,postgres,postgres-workers (default: all of "
        "them, the PostgreSQL ones when --postgres-url is given)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.find_capacity:
            rates = [float(r) for r in args.rates.split(",") if r.strip()]
            await find_capacity(args, tmp, rates)
            return
        for part in [args.only] if args.only else ["throughput", "latency"]:
            url = args.database_url or f"sqlite+aiosqlite:///{tmp}/{part}.db"
            if url.startswith("postgresql"):
                await reset_postgres(url)
            await asyncio.to_thread(upgrade, url)
            receiver = Receiver()
            await receiver.start()
            try:
                if part == "throughput":
                    await throughput(url, receiver, count=args.count, workers=args.workers)
                else:
                    await latency(
                        url,
                        receiver,
                        rate=args.rate,
                        seconds=args.seconds,
                        users=args.users,
                        separate_workers=args.separate_workers,
                    )
            finally:
                await receiver.stop()


if __name__ == "__main__":
    try:
        import uvloop  # the server's own loop; cheaper for the load generator too
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
