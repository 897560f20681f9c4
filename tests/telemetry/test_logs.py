"""Structured logs: with TOCSIN_LOG_FORMAT=json every line is one JSON object, and the lines
written while handling a request, an alert or a timer carry their ids."""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from pathlib import Path

import httpx
from httpx import AsyncClient

from tests.conftest import Escalate
from tests.factories import World
from tests.telemetry.capture import json_log_lines
from tests.test_cli import start_serving
from tocsin.telemetry.logs import QUIET_LOGGERS, JsonFormatter, configure_logging, current_ids


async def test_lines_about_an_alert_carry_the_request_integration_and_incident_ids(
    client: AsyncClient, world: World
) -> None:
    with json_log_lines() as log:
        response = await client.post(
            world.integration.url,
            json={"title": "Disk full", "routing_key": "payments-api"},
            headers={"X-Request-ID": "req-4711"},
        )
    assert response.status_code == 202, response.text
    [opened] = log.containing("opened incident")
    assert opened["request_id"] == "req-4711"
    assert opened["integration_id"] == str(world.integration.id)
    assert opened["incident_id"] == response.json()["incident_id"]
    assert opened["level"] == "info"
    assert opened["logger"] == "tocsin.integrations.inbound"
    assert set(opened) >= {"time", "level", "logger", "message"}
    assert opened["time"].endswith("+00:00")


async def test_ids_do_not_outlive_their_request(client: AsyncClient, world: World) -> None:
    # The test client runs the app in this very task, so whatever a request left set in the
    # context would be seen here.
    response = await client.post(
        world.integration.url, json={"title": "Disk full", "routing_key": "payments-api"}
    )
    assert response.status_code == 202
    assert current_ids() == {}
    with json_log_lines() as log:
        logging.getLogger("tocsin.test").info("between requests")
    [line] = log.entries
    assert set(line) == {"time", "level", "logger", "message"}


async def test_a_worker_line_carries_the_incident_it_is_about(
    client: AsyncClient, escalate: Escalate, world: World
) -> None:
    opened = await client.post(
        world.integration.url, json={"title": "Fan failed", "routing_key": "payments-api"}
    )
    with json_log_lines() as log:
        await escalate()  # the worker pages level 1
    [fired] = log.containing("escalation timer")
    assert fired["message"].endswith(": fired")
    assert fired["incident_id"] == opened.json()["incident_id"]
    assert "request_id" not in fired, "the worker does not run inside a request"


def test_tocsin_serve_writes_only_json_lines_with_the_json_format(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOCSIN_", "OTEL_"))}
    env |= {
        "TOCSIN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'json.db'}",
        "TOCSIN_LOG_FORMAT": "json",
        "TOCSIN_LOG_LEVEL": "info",
    }
    server, base_url = start_serving([sys.executable, "-m", "tocsin.cli"], env)
    try:
        ready = httpx.get(f"{base_url}/readyz")
        assert ready.status_code == 200
        assert uuid.UUID(ready.headers["x-request-id"])
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=60)
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert lines, "it logs its start and stop"
    loggers = {line["logger"] for line in lines}
    assert "uvicorn.error" in loggers, "the server's own lines are JSON too"
    assert "alembic.runtime.migration" in loggers
    assert all(line["level"] in {"debug", "info", "warning", "error", "critical"} for line in lines)


def test_libraries_that_would_log_webhook_urls_are_kept_quiet() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging(level="debug", log_format="json")
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        for name in ("httpx", "httpcore", "aiosqlite"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
        assert logging.getLogger("tocsin.notifications.delivery").isEnabledFor(logging.DEBUG)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
