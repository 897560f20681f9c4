"""What the outbound guard costs a send: the same webhook POSTs to a loopback receiver through
the plain pooled client and through the guarded one, in alternating rounds, plus the guard's
own check (an address literal; a name resolved and checked) on its own.

The receiver runs on a thread of its own, so the sender's event loop does only sending.

    python bench/outbound.py                 # 5 rounds of 1000 requests, 20 at a time
    python bench/outbound.py --rounds 9 -n 2000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tocsin.notifications.channels.http import guarded_client, shared_client
from tocsin.notifications.outbound import OutboundGuard, resolve_checked

GUARD = OutboundGuard.of(["127.0.0.0/8", "::1"])  # the receiver is on loopback


async def _answer(request: Request) -> Response:
    await request.body()
    return Response("{}", media_type="application/json")


def start_receiver() -> int:
    """A receiver on a thread of its own; returns its port."""
    app = Starlette(routes=[Route("/{path:path}", _answer, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return port


async def sends_per_second(guarded: bool, url: str, count: int, concurrency: int) -> float:
    client = guarded_client(GUARD) if guarded else shared_client()
    body = b'{"type": "contact_method.test"}'

    async def one() -> None:
        response = await client.post(url, content=body)
        assert response.status_code == 200

    started = time.perf_counter()
    for _ in range(count // concurrency):
        await asyncio.gather(*(one() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def check_cost(host: str, repeat: int) -> float:
    """Microseconds per resolve-and-check of host."""
    started = time.perf_counter()
    for _ in range(repeat):
        await resolve_checked(GUARD, host, 80)
    return (time.perf_counter() - started) / repeat * 1e6


async def main(count: int, rounds: int, concurrency: int) -> None:
    port = start_receiver()
    url = f"http://127.0.0.1:{port}/hook"
    # Warm both pools up: the first round would otherwise also pay for connecting.
    for guarded in (False, True):
        await sends_per_second(guarded, url, concurrency * 2, concurrency)
    plain, checked = [], []
    for _ in range(rounds):
        plain.append(await sends_per_second(False, url, count, concurrency))
        checked.append(await sends_per_second(True, url, count, concurrency))
    print(f"sends/s, {rounds} rounds of {count} ({concurrency} at a time), median [min-max]")
    for name, figures in (("plain client", plain), ("guarded client", checked)):
        low, high = min(figures), max(figures)
        print(f"  {name:15} {statistics.median(figures):7.0f}  [{low:.0f}-{high:.0f}]")
    print("guard check, per new connection (pooled connections are not checked again)")
    print(f"  address literal 127.0.0.1      {await check_cost('127.0.0.1', 2000):8.1f} µs")
    print(f"  name 'localhost', resolved     {await check_cost('localhost', 200):8.1f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--count", type=int, default=1000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.count, args.rounds, args.concurrency))
