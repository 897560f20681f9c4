"""Inbound email: a real SMTP client (aiosmtplib) talks to the listener on a loopback port;
each message becomes an alert of the integration its address names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.factories import World
from tocsin.app import create_app
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.integrations.email.message import (
    EmailRules,
    parse_email,
    strip_markers,
    subject_dedup_key,
)

DOMAIN = "alerts.example.com"
MAX_MESSAGE = 20_000


@dataclass(frozen=True)
class Mailroom:
    client: AsyncClient
    port: int
    world: World

    async def send(self, message: EmailMessage, *, to: str | list[str]) -> None:
        recipients = [to] if isinstance(to, str) else to
        await aiosmtplib.send(
            message,
            hostname="127.0.0.1",
            port=self.port,
            sender="nagios@monitoring.example.com",
            recipients=recipients,
            start_tls=False,
            timeout=10,
        )

    async def new_integration(self, type: str = "email", **fields: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/integrations",
            json={"name": f"{type} in", "type": type, **fields},
            headers=self.world.cast.admin.headers,
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def incidents(self) -> list[dict[str, Any]]:
        response = await self.client.get("/api/v1/incidents", headers=self.world.cast.admin.headers)
        assert response.status_code == 200
        items: list[dict[str, Any]] = response.json()["items"]
        details = []
        for item in items:
            detail = await self.client.get(
                f"/api/v1/incidents/{item['id']}", headers=self.world.cast.admin.headers
            )
            details.append(detail.json())
        return details


@pytest.fixture
async def mailroom(settings: Settings, clock: FrozenClock, world: World) -> AsyncIterator[Mailroom]:
    configured = settings.model_copy(
        update={
            "smtp_listen_port": 0,
            "smtp_inbound_domain": DOMAIN,
            "smtp_max_message_bytes": MAX_MESSAGE,
            "smtp_severity_rules": [(r"\bbatch\b", "low")],
        }
    )
    app: FastAPI = create_app(configured, clock=clock, run_worker=False)
    async with app.router.lifespan_context(app):
        listener = app.state.tocsin.smtp_listener
        assert listener is not None
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
            yield Mailroom(http, listener.port, world)


def message(
    subject: str,
    body: str = "",
    *,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Nagios <nagios@monitoring.example.com>"
    msg["To"] = "tocsin"
    msg["Subject"] = subject
    if message_id:
        msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


async def email_integration(mailroom: Mailroom) -> str:
    created = await mailroom.new_integration(default_service_id=str(mailroom.world.service))
    address: str = created["email_address"]
    assert address == f"{created['key']}@{DOMAIN}"
    return address


async def test_a_message_opens_an_incident_titled_by_its_subject(
    mailroom: Mailroom, world: World
) -> None:
    address = await email_integration(mailroom)
    await mailroom.send(
        message("CRITICAL: disk full on db1", "Only 1% left on /var.\nPlease look."),
        to=address,
    )
    [incident] = await mailroom.incidents()
    assert incident["title"] == "CRITICAL: disk full on db1"
    assert incident["description"] == "Only 1% left on /var.\nPlease look."
    assert incident["priority"] == "critical"
    assert incident["status"] == "open"
    assert incident["service"]["id"] == str(world.service)
    [alert] = incident["alerts"]
    assert alert["details"]["email"]["from"] == "Nagios <nagios@monitoring.example.com>"


async def test_the_same_subject_joins_one_incident_and_a_resolved_one_resolves_it(
    mailroom: Mailroom,
) -> None:
    address = await email_integration(mailroom)
    await mailroom.send(message("[FIRING:1] HighLatency checkout"), to=address)
    await mailroom.send(message("[FIRING:1] HighLatency checkout"), to=address)
    [incident] = await mailroom.incidents()
    assert incident["alert_count"] == 2
    await mailroom.send(message("[RESOLVED] HighLatency checkout"), to=address)
    [incident] = await mailroom.incidents()
    assert incident["status"] == "resolved"


async def test_a_reply_threads_onto_the_incident_of_the_message_it_answers(
    mailroom: Mailroom,
) -> None:
    address = await email_integration(mailroom)
    await mailroom.send(message("Payments queue backing up", message_id="<a1@mon>"), to=address)
    await mailroom.send(
        message("Now 40k messages", message_id="<a2@mon>", in_reply_to="<a1@mon>"), to=address
    )
    # A reply to the reply still finds the thread.
    await mailroom.send(
        message("RESOLVED: drained", message_id="<a3@mon>", in_reply_to="<a2@mon>"), to=address
    )
    [incident] = await mailroom.incidents()
    assert incident["alert_count"] == 3
    assert incident["status"] == "resolved"


async def test_a_redelivered_message_opens_no_second_incident(mailroom: Mailroom) -> None:
    address = await email_integration(mailroom)
    for _ in range(2):
        await mailroom.send(message("Backup failed", message_id="<same@mon>"), to=address)
    assert len(await mailroom.incidents()) == 1


async def test_severity_comes_from_rules_then_priority_headers_then_keywords(
    mailroom: Mailroom,
) -> None:
    address = await email_integration(mailroom)
    await mailroom.send(message("nightly batch is down"), to=address)  # configured rule
    await mailroom.send(message("something odd", headers={"X-Priority": "1 (Highest)"}), to=address)
    await mailroom.send(message("Warning: cert expires soon"), to=address)
    await mailroom.send(message("hello"), to=address)
    priorities = {i["title"]: i["priority"] for i in await mailroom.incidents()}
    assert priorities == {
        "nightly batch is down": "low",
        "something odd": "critical",
        "Warning: cert expires soon": "medium",
        "hello": "high",
    }


async def test_an_html_only_message_is_described_in_plain_text(mailroom: Mailroom) -> None:
    address = await email_integration(mailroom)
    msg = EmailMessage()
    msg["Subject"] = "Job failed"
    msg["From"] = "cron@example.com"
    msg.set_content(
        "<html><style>p{}</style><p>Exit code <b>3</b></p><p>see log</p></html>", subtype="html"
    )
    await mailroom.send(msg, to=address)
    [incident] = await mailroom.incidents()
    assert incident["description"] == "Exit code 3\nsee log"


async def test_one_message_to_two_integrations_alerts_both(mailroom: Mailroom) -> None:
    first = await email_integration(mailroom)
    second = await email_integration(mailroom)
    await mailroom.send(message("Disk full"), to=[first, second])
    incidents = await mailroom.incidents()
    assert len(incidents) == 2
    assert len({i["alerts"][0]["integration_id"] for i in incidents}) == 2


async def test_an_unknown_recipient_is_refused_at_rcpt_with_550(
    mailroom: Mailroom, engine: AsyncEngine
) -> None:
    for recipient in ("ik_not-a-key@" + DOMAIN, "nobody@" + DOMAIN, "postmaster@" + DOMAIN):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await mailroom.send(message("Disk full"), to=recipient)
        assert [r.code for r in refused.value.recipients] == [550]
    assert await count_rows(engine, "alerts") == 0


async def test_a_key_of_another_domain_or_a_non_email_integration_is_refused(
    mailroom: Mailroom, engine: AsyncEngine
) -> None:
    address = await email_integration(mailroom)
    webhook = await mailroom.new_integration(type="generic")
    assert webhook["email_address"] is None
    for recipient in (
        address.replace(DOMAIN, "elsewhere.example.com"),
        f"{webhook['key']}@{DOMAIN}",
    ):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await mailroom.send(message("Disk full"), to=recipient)
        assert [r.code for r in refused.value.recipients] == [550]
    assert await count_rows(engine, "alerts") == 0


async def test_an_email_integration_refuses_webhook_posts(
    mailroom: Mailroom, engine: AsyncEngine
) -> None:
    address = await email_integration(mailroom)
    key = address.split("@")[0]
    response = await mailroom.client.post(f"/webhooks/{key}", json={"title": "x"})
    assert response.status_code == 422
    assert "email" in str(response.json()["detail"])
    assert await count_rows(engine, "alerts") == 0


async def test_a_deactivated_integration_stops_taking_mail(
    mailroom: Mailroom, world: World, engine: AsyncEngine
) -> None:
    created = await mailroom.new_integration()
    await mailroom.client.patch(
        f"/api/v1/integrations/{created['id']}",
        json={"active": False},
        headers=world.cast.admin.headers,
    )
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await mailroom.send(message("Disk full"), to=f"{created['key']}@{DOMAIN}")
    assert await count_rows(engine, "alerts") == 0


async def test_an_oversized_message_is_refused_with_552(
    mailroom: Mailroom, engine: AsyncEngine
) -> None:
    address = await email_integration(mailroom)
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await mailroom.send(message("Huge", "x" * (MAX_MESSAGE * 2)), to=address)
    assert refused.value.code == 552
    assert await count_rows(engine, "alerts") == 0
    # The listener is still there for the next, normal message.
    await mailroom.send(message("Small"), to=address)
    assert await count_rows(engine, "alerts") == 1


def test_the_listener_is_off_unless_a_port_is_set() -> None:
    assert Settings().smtp_listen_port is None


@pytest.mark.parametrize(
    ("subject", "core", "resolved"),
    [
        ("[FIRING:2] HighLatency (api)", "HighLatency (api)", False),
        ("[RESOLVED] HighLatency (api)", "HighLatency (api)", True),
        ("Re: RESOLVED: Disk full", "Disk full", True),
        ("Fwd: Re: [OK] db down", "db down", True),
        ("** RECOVERY Service Alert: web01/HTTP", "Service Alert: web01/HTTP", True),
        ("PROBLEM - db01 load", "db01 load", False),
        ("OK to deploy?", "OK to deploy?", False),
        ("Problem with db", "Problem with db", False),
        ("", "", False),
    ],
)
def test_status_markers_are_read_and_stripped(subject: str, core: str, resolved: bool) -> None:
    assert strip_markers(subject) == (core, resolved)


def test_firing_and_resolved_subjects_share_a_dedup_key_and_long_ones_are_hashed() -> None:
    assert subject_dedup_key("[FIRING:1]  Disk  FULL") == subject_dedup_key("RESOLVED: disk full")
    long_key = subject_dedup_key("x" * 2000)
    assert long_key.startswith("subject-sha256:")
    assert len(long_key) < 128


def test_a_broken_message_still_parses() -> None:
    parsed = parse_email(b"\xff\xfe garbage without headers")
    assert parsed.subject == ""
    assert parsed.message_id is None


@pytest.mark.parametrize(
    ("rules", "pattern", "named"),
    [
        ([("(unclosed", "high")], "", "SEVERITY_RULES"),
        ([("disk", "dire")], "", "SEVERITY_RULES"),
        ([], "[", "RESOLVE_PATTERN"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_setting(
    rules: list[tuple[str, str]], pattern: str, named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        EmailRules.from_settings(rules, pattern)
