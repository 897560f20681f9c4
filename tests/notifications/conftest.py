"""Real receivers on loopback for every channel: an SMTP server (aiosmtpd), HTTP receivers
that answer as a test tells them (webhook, Twilio, Apprise json://, SMS gateway), and one that
never answers; plus a worker context wired to them."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import Escalate
from tests.factories import World, make_policy, make_service
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.escalation.models import TargetType
from tocsin.worker.context import WorkerContext


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MailBox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        self.messages.append(mail)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


@dataclass
class SmtpServer:
    host: str
    port: int
    box: MailBox


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    box = MailBox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, box)
    finally:
        controller.stop()


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Records every request; answers with the next status of `script` (then 200)."""

    base_url: str = ""
    requests: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    # Idempotency keys of requests answered 2xx, as a receiver that honours them keeps.
    accepted: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    reply_text: str | None = None  # the body of every answer, instead of {"ok": ...}
    redirect_to: str | None = None  # answer every request with 302 to this URL
    set_cookie: str | None = None  # a Set-Cookie header on every answer

    @property
    def successes(self) -> list[Received]:
        return [r for r in self.requests if r.headers.get("x-answered") == "2xx"]

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        status = self.script.pop(0) if self.script else 200
        headers = {k.lower(): v for k, v in request.headers.items()}
        if 200 <= status < 300:
            headers["x-answered"] = "2xx"
            key = headers.get("idempotency-key")
            if key:
                self.accepted[key] = self.accepted.get(key, 0) + 1
        self.requests.append(Received(request.method, request.url.path, headers, body))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.redirect_to is not None:
            return Response(status_code=302, headers={"Location": self.redirect_to})
        if self.reply_text is not None:
            return Response(self.reply_text, status_code=status, media_type="text/html")
        if request.url.path.endswith("/Messages.json") or request.url.path.endswith("/Calls.json"):
            sid = f"SM{uuid.uuid4().hex}"
            return JSONResponse({"sid": sid, "status": "queued"}, status_code=status)
        answer = JSONResponse({"ok": 200 <= status < 300}, status_code=status)
        if self.set_cookie is not None:
            answer.headers["set-cookie"] = self.set_cookie
        return answer


async def _serve(receiver: HttpReceiver) -> AsyncIterator[HttpReceiver]:
    app = Starlette(
        routes=[
            Route("/{path:path}", receiver.handle, methods=["GET", "POST", "PUT"]),
        ]
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    receiver.base_url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    async for served in _serve(HttpReceiver()):
        yield served


@pytest.fixture
async def other_receiver() -> AsyncIterator[HttpReceiver]:
    async for served in _serve(HttpReceiver()):
        yield served


@dataclass
class SilentReceiver:
    """Accepts connections, reads, and never answers."""

    base_url: str
    connections: int = 0


@pytest.fixture
async def silent() -> AsyncIterator[SilentReceiver]:
    holder: list[SilentReceiver] = []
    writers: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        holder[0].connections += 1
        writers.append(writer)
        # Read until the client gives up and closes; never write a byte back.
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    holder.append(SilentReceiver(f"http://127.0.0.1:{port}"))
    try:
        yield holder[0]
    finally:
        for writer in writers:
            writer.close()
        server.close()


TWILIO_SID = "AC0123456789abcdef0123456789abcdef"
TWILIO_TOKEN = "twilio-test-token"


@pytest.fixture
def notify_settings(settings: Settings, smtp: SmtpServer, receiver: HttpReceiver) -> Settings:
    """Channels pointed at the loopback receivers, short timeouts and backoff."""
    return settings.model_copy(
        update={
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "smtp_from": "tocsin@example.com",
            "twilio_account_sid": TWILIO_SID,
            "twilio_auth_token": TWILIO_TOKEN,
            "twilio_from": "+15005550006",
            "twilio_base_url": receiver.base_url,
            # Generous: a loaded CI machine must not turn a slow answer into a retry.
            "notify_timeout_seconds": 10.0,
            "notify_max_attempts": 3,
            "notify_backoff_seconds": 30.0,
        }
    )


@pytest.fixture
def ctx(engine: AsyncEngine, clock: FrozenClock, notify_settings: Settings) -> WorkerContext:
    return WorkerContext(engine, clock, notify_settings, worker_id="test-worker")


@dataclass(frozen=True)
class Paging:
    """World plus service `checkout`, whose policy pages Bob alone."""

    world: World
    service: uuid.UUID
    policy: uuid.UUID
    # Runs the worker's escalation step: it pages level 1 of an incident just opened.
    escalate: Escalate


@pytest.fixture
async def paging(
    engine: AsyncEngine, clock: FrozenClock, world: World, escalate: Escalate
) -> Paging:
    now = clock.now()
    policy = await make_policy(
        engine,
        now,
        team_id=world.cast.payments,
        name="Bob first",
        is_default=False,
        targets=[(TargetType.USER, world.cast.bob.id)],
    )
    service = await make_service(
        engine,
        now,
        team_id=world.cast.payments,
        routing_key="checkout",
        name="Checkout",
        policy_id=policy,
    )
    return Paging(world, service, policy, escalate)


async def open_incident(
    client: AsyncClient,
    paging: Paging,
    *,
    title: str = "Checkout down",
    severity: str = "critical",
    dedup_key: str | None = None,
) -> str:
    """Send an alert for `checkout`; returns the new incident's id (Bob is paged)."""
    response = await client.post(
        paging.world.integration.url,
        json={
            "title": title,
            "severity": severity,
            "routing_key": "checkout",
            "dedup_key": dedup_key or uuid.uuid4().hex,
        },
    )
    assert response.status_code == 202, response.text
    incident_id: str = response.json()["incident_id"]
    await paging.escalate()
    return incident_id
