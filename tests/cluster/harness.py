"""A Tocsin cluster of real processes on loopback: API nodes (`tocsin serve --no-worker`) and
workers (`tocsin worker`) sharing one PostgreSQL database, each of which can be SIGKILLed and
started again. Used by tests/cluster and by bench/cluster_sigkill.py and bench/soak.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Node:
    """One process of the cluster: its command line, and the process while it runs."""

    name: str
    argv: list[str]
    port: int | None = None  # API nodes only
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def rss_kib(self) -> int | None:
        """Resident memory of the process now (Linux /proc), or None if it is not running."""
        if self.process is None or self.process.poll() is not None:
            return None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None


@dataclass
class Cluster:
    database_url: str
    api_nodes: int = 2
    workers: int = 2
    # Short leases so a killed worker's claimed rows are taken again within seconds.
    lease_seconds: int = 5
    log_dir: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        tocsin = [sys.executable, "-m", "tocsin.cli"]
        for n in range(1, self.api_nodes + 1):
            port = free_port()
            argv = [*tocsin, "serve", "--no-worker", "--port", str(port)]
            self.nodes[f"api{n}"] = Node(f"api{n}", argv, port=port)
        for n in range(1, self.workers + 1):
            argv = [*tocsin, "worker", "--lease-seconds", str(self.lease_seconds)]
            self.nodes[f"worker{n}"] = Node(f"worker{n}", argv)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TOCSIN_DATABASE_URL": self.database_url,
            "TOCSIN_SECRET_KEY": "cluster-secret",
            "TOCSIN_LOG_LEVEL": "warning",
            "TOCSIN_OUTBOUND_ALLOW": "127.0.0.0/8",
            **self.extra_env,
        }

    @property
    def api(self) -> list[Node]:
        return [node for node in self.nodes.values() if node.port is not None]

    def start(self, name: str | None = None) -> None:
        """Start one node (or all), waiting until API nodes answer /readyz."""
        for node in [self.nodes[name]] if name else list(self.nodes.values()):
            log: IO[bytes] | int = subprocess.DEVNULL
            if self.log_dir is not None:
                handle = (self.log_dir / f"{node.name}.{node.starts}.log").open("wb")
                self._logs.append(handle)
                log = handle
            node.process = subprocess.Popen(
                node.argv, env=self.env, stdout=subprocess.DEVNULL, stderr=log
            )
            node.starts += 1
        for node in [self.nodes[name]] if name else list(self.nodes.values()):
            if node.port is not None:
                self._wait_ready(node)

    def _wait_ready(self, node: Node, timeout: float = 300.0) -> None:
        # Generous: on a machine busy with other work a Python process takes long to import.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert node.process is not None
            if node.process.poll() is not None:
                raise RuntimeError(f"{node.name} exited with {node.process.returncode}")
            try:
                if httpx.get(f"{node.base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{node.name} not ready after {timeout} s")

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown code runs, leases and connections are simply abandoned."""
        node = self.nodes[name]
        assert node.process is not None
        node.process.send_signal(signal.SIGKILL)
        node.process.wait()

    def stop(self) -> None:
        for node in self.nodes.values():
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes.values():
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
        for handle in self._logs:
            handle.close()

    def memory(self) -> dict[str, int | None]:
        return {name: node.rss_kib() for name, node in self.nodes.items()}


def new_database(server_url: str) -> str:
    """Create an empty database beside the one `server_url` names; returns its URL."""
    import asyncio

    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from tocsin.db import create_engine

    server = make_url(server_url)
    name = f"tocsin_cluster_{uuid.uuid4().hex[:10]}"

    async def run() -> None:
        engine = create_engine(server.render_as_string(hide_password=False))
        try:
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            await engine.dispose()

    asyncio.run(run())
    return server.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    import asyncio

    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from tocsin.db import create_engine

    target = make_url(url)
    server = target.set(database="postgres")

    async def run() -> None:
        engine = create_engine(server.render_as_string(hide_password=False))
        try:
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(
                    sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
                )
        finally:
            await engine.dispose()

    asyncio.run(run())
