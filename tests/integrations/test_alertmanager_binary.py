"""A real Prometheus Alertmanager, configured with a webhook receiver pointing at Tocsin:
alerts posted to Alertmanager open an incident in Tocsin, and resolving them there resolves
it here. Needs the `prometheus-alertmanager` binary (installed by .ci/run); skipped outside
CI when it is missing."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import IN_CI, LiveServer
from tests.factories import IntegrationRef, World
from tests.integrations.adapter_support import integration_of
from tocsin.clock import FrozenClock
from tocsin.integrations.models import IntegrationType

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

pytestmark = pytest.mark.skipif(
    BINARY is None and not IN_CI,
    reason="prometheus-alertmanager is not installed (.ci/run installs it)",
)

CONFIG = """\
route:
  receiver: tocsin
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: tocsin
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def alertmanager(
    tmp_path: Path, live_server: LiveServer, engine: AsyncEngine, clock: FrozenClock, world: World
) -> AsyncIterator[tuple[str, IntegrationRef]]:
    """Alertmanager's API base URL, and the Tocsin integration its receiver posts to."""
    assert BINARY is not None, "prometheus-alertmanager must be installed in CI"
    integration = await integration_of(engine, clock, world, IntegrationType.ALERTMANAGER)
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG.format(url=live_server.base_url + integration.url))
    port = free_port()
    log_path = tmp_path / "alertmanager.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    if (await http.get(f"{base}/-/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.returncode is None, log_path.read_text()
                await asyncio.sleep(0.05)
            else:
                pytest.fail("Alertmanager did not become ready")
        yield base, integration
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)


async def eventually(check: Callable[[], Awaitable[Any]], *, seconds: float = 30) -> Any:
    """Poll until `check` returns something truthy."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("timed out waiting")
        await asyncio.sleep(0.2)


def am_alert(instance: str, *, ends: datetime | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "labels": {"alertname": "InstanceDown", "instance": instance, "severity": "critical"},
        "annotations": {"summary": "Instances are down"},
        "generatorURL": "http://prometheus.example.com/graph",
    }
    if ends is not None:
        body["endsAt"] = ends.isoformat()
    return body


async def test_alerts_sent_through_alertmanager_open_and_resolve_one_incident(
    alertmanager: tuple[str, IntegrationRef], live_server: LiveServer, world: World
) -> None:
    base, _integration = alertmanager
    async with httpx.AsyncClient(timeout=10) as http:

        async def incidents() -> list[Any]:
            response = await http.get(
                f"{live_server.base_url}/api/v1/incidents",
                headers=world.cast.admin.headers,
            )
            items: list[Any] = response.json()["items"]
            return items

        posted = await http.post(
            f"{base}/api/v2/alerts", json=[am_alert("a:9100"), am_alert("b:9100")]
        )
        assert posted.status_code == 200, posted.text
        [opened] = await eventually(incidents)
        assert opened["title"] == "Instances are down"
        assert opened["status"] == "open"
        assert opened["priority"] == "critical"

        # Resolve one: the incident stays open; then the other: it resolves.
        past = datetime.now(UTC) - timedelta(seconds=1)
        await http.post(f"{base}/api/v2/alerts", json=[am_alert("a:9100", ends=past)])

        async def partly_resolved() -> bool:
            detail = (
                await http.get(
                    f"{live_server.base_url}/api/v1/incidents/{opened['id']}",
                    headers=world.cast.admin.headers,
                )
            ).json()
            return any(a["details"].get("resolved") == 1 for a in detail["alerts"])

        await eventually(partly_resolved)
        [still] = await incidents()
        assert still["status"] == "open"

        await http.post(f"{base}/api/v2/alerts", json=[am_alert("b:9100", ends=past)])

        async def resolved() -> bool:
            return [i["status"] for i in await incidents()] == ["resolved"]

        await eventually(resolved)
