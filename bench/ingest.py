"""Load test for alert ingest against a running Tocsin server; starts nothing itself.

Closed loop: `--concurrency` clients each send their next alert as soon as the previous one is
answered. Open loop: alerts are sent on a fixed schedule (`--rate` per second) whatever the
answers, so a slow server shows up as latency rather than as a slower sender.

Prints alerts/s, and p50/p99/max latency from send to 202 (the 202 comes only after the alert
is committed). The client speaks HTTP/1.1 over raw asyncio streams with keep-alive, so the
load generator spends as little of the shared CPU as possible.

    python bench/ingest.py --api-key tk_... --mode closed --concurrency 32 -n 20000
    python bench/ingest.py --integration-key ik_... --mode open --rate 250 -n 7500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        if not status_line:
            self.writer = None
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


def pagerduty_event(n: int, key: str) -> bytes:
    """An Events API v2 trigger, posted to /webhooks/{key} (which needs no routing_key)."""
    event = {
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": f"Bench alert {key}",
            "source": "bench",
            "severity": "error",
            "custom_details": {"n": n},
        },
    }
    return json.dumps(event).encode()


def alertmanager_message(n: int, key: str) -> bytes:
    """A webhook v4 message for a one-alert group; repeated fingerprints resend it unchanged,
    as Alertmanager does every repeat_interval."""
    labels = {"alertname": "BenchAlert", "instance": key, "severity": "critical"}
    message = {
        "version": "4",
        "groupKey": f'{{}}:{{instance="{key}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "tocsin",
        "groupLabels": {"instance": key},
        "commonLabels": labels,
        "commonAnnotations": {"summary": f"Bench alert {key}"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"Bench alert {key}"},
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": key,
            }
        ],
    }
    return json.dumps(message).encode()


def payload(n: int, fingerprints: str, fmt: str) -> bytes:
    key = f"bench-{uuid.uuid4()}" if fingerprints == "unique" else f"bench-repeat-{n % 50}"
    if fmt == "pagerduty":
        return pagerduty_event(n, key)
    if fmt == "alertmanager":
        return alertmanager_message(n, key)
    if fmt != "generic":
        raise SystemExit(f"unknown format {fmt}")
    body: dict[str, Any] = {
        "title": f"Bench alert {key}",
        "severity": "high",
        "source": "bench",
        "dedup_key": key,
        "routing_key": "bench",
        "tags": {"env": "bench"},
        "details": {"n": n},
    }
    return json.dumps(body).encode()


async def closed_loop(args: argparse.Namespace, path: str, results: Results) -> float:
    url = urlsplit(args.url)
    counter = iter(range(args.n))

    async def client() -> None:
        conn = Connection(url.hostname or "127.0.0.1", url.port or 80)
        for n in counter:
            body = payload(n, args.fingerprints, args.format)
            started = time.perf_counter()
            try:
                status, _ = await conn.post(path, body)
            except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
                results.error(type(exc).__name__)
                conn = Connection(url.hostname or "127.0.0.1", url.port or 80)
                continue
            if status == 202:
                results.latencies.append(time.perf_counter() - started)
            else:
                results.error(f"HTTP {status}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(args.concurrency)))
    return time.perf_counter() - started


async def open_loop(args: argparse.Namespace, path: str, results: Results) -> float:
    url = urlsplit(args.url)
    idle: list[Connection] = []
    interval = 1.0 / args.rate

    async def one(n: int, due: float) -> None:
        reused = bool(idle)
        conn = idle.pop() if idle else Connection(url.hostname or "127.0.0.1", url.port or 80)
        body = payload(n, args.fingerprints, args.format)
        try:
            try:
                status, _ = await conn.post(path, body)
            except (ConnectionError, asyncio.IncompleteReadError):
                if not reused:
                    raise
                # The server closed this keep-alive connection while it sat idle (uvicorn
                # does after 5 s), before reading the request: send it again on a new one.
                conn = Connection(url.hostname or "127.0.0.1", url.port or 80)
                status, _ = await conn.post(path, body)
        except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
            results.error(type(exc).__name__)
            return
        # Latency counts from when the alert was due, so sender lag is charged to the server.
        if status == 202:
            results.latencies.append(time.perf_counter() - due)
        else:
            results.error(f"HTTP {status}")
        idle.append(conn)

    tasks = []
    start = time.perf_counter()
    for n in range(args.n):
        due = start + n * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, due)))
    await asyncio.gather(*tasks)
    return time.perf_counter() - start


def api(base: str, key: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def set_up(base: str, api_key: str, type: str = "generic") -> str:
    """A team with a default policy, service `bench` and an integration of `type` (default
    service `bench`); returns the integration key. Reuses the team and service if an earlier
    run made them."""
    teams = api(base, api_key, "GET", "/api/v1/teams?limit=500")["items"]
    team = next((t for t in teams if t["name"] == "bench"), None)
    if team is None:
        team = api(base, api_key, "POST", "/api/v1/teams", {"name": "bench"})
        me = api(base, api_key, "GET", "/api/v1/users/me")
        api(
            base,
            api_key,
            "POST",
            f"/api/v1/teams/{team['id']}/members",
            {"user_id": me["id"], "role": "manager"},
        )
        api(
            base,
            api_key,
            "POST",
            "/api/v1/escalation-policies",
            {
                "team_id": team["id"],
                "name": "bench",
                "is_default": True,
                "levels": [{"level_number": 1, "target_type": "entire_team", "target_id": None}],
            },
        )
        api(
            base,
            api_key,
            "POST",
            "/api/v1/services",
            {"team_id": team["id"], "name": "bench", "routing_key": "bench"},
        )
    # Formats other than generic carry no routing key: the service is the integration's default.
    services = api(base, api_key, "GET", f"/api/v1/services?team_id={team['id']}&limit=500")
    service_id = next(s["id"] for s in services["items"] if s["routing_key"] == "bench")
    integration = api(
        base,
        api_key,
        "POST",
        "/api/v1/integrations",
        {"name": f"bench {uuid.uuid4().hex[:6]}", "type": type, "default_service_id": service_id},
    )
    key: str = integration["key"]
    print(
        f"made integration {integration['name']!r}; reuse it with --integration-key {key}",
        file=sys.stderr,
    )
    return key


def add_noise(base: str, api_key: str, silences: int, inhibitions: int) -> None:
    """Silences and inhibition rules for the bench team that the bench alerts do not match
    (so every alert is still checked against all of them and still opens its incident)."""
    teams = api(base, api_key, "GET", "/api/v1/teams?limit=500")["items"]
    team_id = next(t["id"] for t in teams if t["name"] == "bench")
    for n in range(silences):
        api(
            base,
            api_key,
            "POST",
            "/api/v1/silences",
            {
                "team_id": team_id,
                "matchers": [
                    {"field": "tag", "name": "host", "op": "=~", "value": f"host-{n}-.*"},
                    {"field": "severity", "op": "!=", "value": "info"},
                ],
                "ends_at": "2099-01-01T00:00:00Z",
                "comment": f"bench silence {n}",
            },
        )
    for n in range(inhibitions):
        api(
            base,
            api_key,
            "POST",
            "/api/v1/inhibition-rules",
            {
                "team_id": team_id,
                "name": f"bench rule {n}",
                "source_matchers": [
                    {"field": "tag", "name": "alertname", "op": "=", "value": f"NodeDown{n}"}
                ],
                "target_matchers": [
                    {"field": "tag", "name": "env", "op": "=~", "value": f"staging-{n}|qa-{n}"}
                ],
                "equal": ["instance"],
            },
        )
    print(f"made {silences} silences and {inhibitions} inhibition rules", file=sys.stderr)


def report(label: str, elapsed: float, results: Results) -> None:
    done = len(results.latencies)
    lat = sorted(results.latencies)
    ms = [x * 1000 for x in lat]
    p50 = statistics.median(ms) if ms else float("nan")
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))] if ms else float("nan")
    print(
        f"{label}: {done} accepted in {elapsed:.2f} s = {done / elapsed:.0f} alerts/s; "
        f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(ms, default=float('nan')):.1f} ms;"
        f" errors {results.errors or 0}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    keys = parser.add_mutually_exclusive_group(required=True)
    keys.add_argument("--integration-key", help="send to this existing integration")
    keys.add_argument("--api-key", help="admin key: create a bench team, service, integration")
    parser.add_argument("--mode", choices=["closed", "open"], default="closed")
    parser.add_argument("-n", type=int, default=10_000, help="alerts to send")
    parser.add_argument("--concurrency", type=int, default=32, help="closed loop clients")
    parser.add_argument("--rate", type=float, default=250.0, help="open loop alerts/s")
    parser.add_argument("--fingerprints", choices=["unique", "repeated"], default="unique")
    parser.add_argument(
        "--format", choices=["generic", "pagerduty", "alertmanager"], default="generic"
    )
    parser.add_argument("--warmup", type=int, default=200, help="alerts sent first, not counted")
    parser.add_argument(
        "--silences", type=int, default=0, help="active silences to make first (need --api-key)"
    )
    parser.add_argument(
        "--inhibitions", type=int, default=0, help="inhibition rules to make first (--api-key)"
    )
    args = parser.parse_args()

    key = args.integration_key or set_up(args.url, args.api_key, args.format)
    if args.silences or args.inhibitions:
        add_noise(args.url, args.api_key, args.silences, args.inhibitions)
    path = f"/webhooks/{key}"
    if args.warmup:
        warm = argparse.Namespace(**{**vars(args), "n": args.warmup})
        asyncio.run(closed_loop(warm, path, Results()))
    results = Results()
    if args.mode == "closed":
        elapsed = asyncio.run(closed_loop(args, path, results))
        label = f"closed loop, concurrency {args.concurrency}, {args.fingerprints} fingerprints"
    else:
        elapsed = asyncio.run(open_loop(args, path, results))
        label = f"open loop at {args.rate:.0f}/s, {args.fingerprints} fingerprints"
    report(label, elapsed, results)
    return 0 if not results.errors else 1


if __name__ == "__main__":
    sys.exit(main())
