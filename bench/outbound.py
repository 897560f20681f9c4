"""What a webhook send costs: the same POSTs to a loopback receiver through the plain pooled
httpx client, the guarded one and the guarded keep-alive client the channels use
(channels/keepalive.py), in alternating rounds, plus the guard's own check (an address
literal; a name resolved and checked) on its own.

The receiver runs on a thread of its own, so the sender's event loop does only sending, and
the CPU time shown is that thread's alone (time.thread_time): what one send costs the
server, whatever else the machine is doing.

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
from tocsin.notifications.channels.keepalive import keepalive_sender
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


CLIENTS = ("plain httpx", "guarded httpx", "guarded keep-alive")


async def sends_per_second(
    client: str, url: str, count: int, concurrency: int
) -> tuple[float, float]:
    """Sends per second and this thread's CPU microseconds per send."""
    body = b'{"type": "contact_method.test"}'
    headers = {"Content-Type": "application/json", "User-Agent": "Tocsin"}

    async def one() -> None:
        if client == "guarded keep-alive":
            answer = await keepalive_sender(GUARD).request(
                "POST", url, headers=headers, body=body, timeout=10
            )
            assert answer.status_code == 200
            return
        http = guarded_client(GUARD) if client == "guarded httpx" else shared_client()
        response = await http.post(url, content=body, headers=headers)
        assert response.status_code == 200

    started = time.perf_counter()
    cpu = time.thread_time()
    for _ in range(count // concurrency):
        await asyncio.gather(*(one() for _ in range(concurrency)))
    cpu = time.thread_time() - cpu
    return count / (time.perf_counter() - started), cpu / count * 1e6


async def check_cost(host: str, repeat: int) -> float:
    """Microseconds per resolve-and-check of host."""
    started = time.perf_counter()
    for _ in range(repeat):
        await resolve_checked(GUARD, host, 80)
    return (time.perf_counter() - started) / repeat * 1e6


async def main(count: int, rounds: int, concurrency: int) -> None:
    port = start_receiver()
    url = f"http://127.0.0.1:{port}/hook"
    # Warm the pools up: the first round would otherwise also pay for connecting.
    for client in CLIENTS:
        await sends_per_second(client, url, concurrency * 2, concurrency)
    figures: dict[str, list[tuple[float, float]]] = {client: [] for client in CLIENTS}
    for _ in range(rounds):
        for client in CLIENTS:
            figures[client].append(await sends_per_second(client, url, count, concurrency))
    print(
        f"{rounds} rounds of {count} sends ({concurrency} at a time), median [min-max]:"
        " sends/s, and the sender thread's CPU per send"
    )
    for client, runs in figures.items():
        rates = [rate for rate, _ in runs]
        cpus = [cpu for _, cpu in runs]
        print(
            f"  {client:19} {statistics.median(rates):6.0f}/s [{min(rates):.0f}-{max(rates):.0f}]"
            f"  {statistics.median(cpus):6.0f} µs [{min(cpus):.0f}-{max(cpus):.0f}]"
        )
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
