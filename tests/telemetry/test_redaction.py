"""No log line ever holds a key: a real `tocsin serve` with its access log on is sent
webhooks, pings, one-click links, Bearer requests, a session and WebSocket handshakes (a key
in the URL too), and then its whole output, text or JSON, is searched for every secret."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys

import httpx
import pytest
import websockets
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.exceptions import InvalidStatus

from tests.factories import World
from tests.test_cli import Server
from tests.ui.support import PASSWORD, give_password
from tocsin.telemetry.logs import JsonFormatter, RedactSecrets, TextFormatter, redact


async def exercise(base_url: str, world: World) -> list[str]:
    """Use every path a secret travels on; returns the secrets used."""
    integration_key = world.integration.url.rsplit("/", 1)[1]
    ws_url = base_url.replace("http://", "ws://") + "/api/v1/stream"
    async with httpx.AsyncClient(base_url=base_url) as http:
        sent = await http.post(
            world.integration.url, json={"title": "Disk full", "routing_key": "payments-api"}
        )
        assert sent.status_code == 202, sent.text
        await http.post("/webhooks/ik_notarealkeybutsecretlooking0123", json={"title": "x"})
        await http.get("/heartbeats/hb_notarealpingkey0123456789")
        await http.get("/a/onceonlylinktoken0123456789.signature")
        await http.get("/api/v1/incidents", headers=world.cast.bob.headers)
        await http.get("/api/v1/incidents", headers={"Authorization": "Bearer tk_wrongwrong42"})
        login = await http.post(
            "/api/v1/login", json={"email": "bob@example.com", "password": PASSWORD}
        )
        session_key = login.json()["api_key"]
        await http.get("/api/v1/incidents", headers={"Authorization": f"Bearer {session_key}"})
        await http.get(f"/api/v1/incidents?api_key={world.cast.alice.key}")
    with pytest.raises(InvalidStatus):
        async with websockets.connect(f"{ws_url}?token={world.cast.bob.key}", open_timeout=5):
            pass
    async with websockets.connect(
        ws_url,
        subprotocols=["tocsin", f"bearer.{world.cast.olive.key}"],  # type: ignore[list-item]
        open_timeout=5,
    ):
        pass
    async with websockets.connect(ws_url, additional_headers=world.cast.admin.headers):
        pass
    return [
        integration_key,
        "ik_notarealkeybutsecretlooking0123",
        "hb_notarealpingkey0123456789",
        "onceonlylinktoken0123456789",
        world.cast.bob.key,
        world.cast.alice.key,
        world.cast.olive.key,
        world.cast.admin.key,
        "tk_wrongwrong42",
        session_key,
    ]


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_no_log_line_holds_a_key_access_log_included(
    database_url: str, engine: AsyncEngine, world: World, log_format: str
) -> None:
    await give_password(engine, world.cast.bob.id)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOCSIN_", "OTEL_"))}
    env |= {
        "TOCSIN_DATABASE_URL": database_url,
        "TOCSIN_SECRET_KEY": "test-secret-key",
        "TOCSIN_LOG_FORMAT": log_format,
        "TOCSIN_LOG_LEVEL": "debug",
        "TOCSIN_ACCESS_LOG": "true",
    }
    server = Server(env)
    try:
        await asyncio.to_thread(server.wait_ready)
        secrets = await exercise(server.base_url, world)
    finally:
        server.stop()
    output = "".join(iter_lines(server))
    # The access log was on and saw those requests, with the keys cut out.
    assert "/webhooks/[redacted]" in output
    assert "/api/v1/stream?token=[redacted]" in output
    assert "/api/v1/incidents?api_key=[redacted]" in output
    if log_format == "json":  # redacting kept every log line one JSON object
        logged = [line for line in output.splitlines() if line.startswith("{")]
        assert len(logged) > 10
        for line in logged:
            json.loads(line)
    for secret in secrets:
        assert secret not in output, f"{secret[:6]}… was logged"


def iter_lines(server: Server) -> list[str]:
    lines = []
    while not server.lines.empty():
        lines.append(server.lines.get_nowait())
    return lines


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('1.2.3.4 - "POST /webhooks/ik_AbC-123_xyz HTTP/1.1" 202', "/webhooks/[redacted]"),
        ('"POST /webhooks/custom-key-without-prefix HTTP/1.1" 404', "/webhooks/[redacted]"),
        ('"WebSocket /api/v1/stream?token=tk_secret123456" 400', "?token=[redacted]"),
        ("Authorization: Bearer ts_sessionkey12345", "Bearer [redacted]"),
        ("subprotocols ['tocsin', 'bearer.tk_x1y2z3w4v5']", "bearer.[redacted]"),
        ('"GET /heartbeats/hb_pingkey12345678 HTTP/1.1" 200', "/heartbeats/[redacted]"),
        ('"GET /a/sometoken.sig HTTP/1.1" 200', "/a/[redacted]"),
        ('"GET /feed.ics?Token=tcal_abcdefghijk HTTP/1.1"', "?Token=[redacted]"),
    ],
)
def test_secrets_are_cut_out_of_a_line(line: str, expected: str) -> None:
    assert expected in redact(line)


def test_a_key_in_an_exception_is_redacted_too() -> None:
    try:
        raise ValueError("posting to /webhooks/ik_exceptionkey12345 failed")
    except ValueError:
        record = logging.LogRecord(
            "tocsin", logging.ERROR, __file__, 1, "failed: %s", ("tk_argkey123456",), sys.exc_info()
        )
    RedactSecrets().filter(record)
    for formatter in (TextFormatter(), JsonFormatter()):
        written = formatter.format(record)
        assert "exceptionkey12345" not in written and "tk_argkey123456" not in written
