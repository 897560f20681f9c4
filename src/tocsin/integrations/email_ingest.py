"""The inbound SMTP listener: mail to <integration key>@<domain> becomes an alert of that
(email-type) integration, through the same ingest pipeline and group commit as webhooks.

Unknown recipients are refused at RCPT (550) and oversized messages at DATA (552, by
aiosmtpd's size limit), so the sending server bounces them at once. A message is answered
250 only after its alert is committed, and 451 when storing failed, so the sender's queue
retries it: accepted mail is never lost, the SMTP counterpart of a webhook's 202.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.alerts.ingest import Submission, prepare
from tocsin.config import Settings
from tocsin.integrations.email_message import (
    EmailRules,
    ParsedEmail,
    alert_from_email,
    parse_email,
    subject_dedup_key,
)
from tocsin.integrations.email_models import EmailThread
from tocsin.integrations.lookup import IntegrationInfo, find_active_integration
from tocsin.integrations.models import IntegrationType
from tocsin.store.inserts import insert_ignoring
from tocsin.web import AppState

log = logging.getLogger(__name__)

# One message may page several integrations, but not an unbounded number of them.
MAX_RECIPIENTS = 20


def email_address(key: str, settings: Settings) -> str:
    """The address that turns mail into alerts of the integration with this key."""
    domain = settings.smtp_inbound_domain or settings.smtp_listen_host
    return f"{key}@{domain}"


def _split_address(address: str) -> tuple[str, str]:
    local, _, domain = address.strip().strip("<>").rpartition("@")
    return local, domain


async def find_email_integration(
    conn: AsyncConnection, address: str, settings: Settings
) -> IntegrationInfo | None:
    """The active email integration this recipient address names, or None."""
    local, domain = _split_address(address)
    if not local:
        return None
    if settings.smtp_inbound_domain and domain.lower() != settings.smtp_inbound_domain.lower():
        return None
    integration = await find_active_integration(conn, local)
    if integration is None or integration.type != IntegrationType.EMAIL:
        return None
    return integration


async def thread_dedup_key(
    conn: AsyncConnection, integration_id: uuid.UUID, parsed: ParsedEmail
) -> str | None:
    """The dedup key of the earliest-known message this one answers, if any."""
    if not parsed.refers_to:
        return None
    rows = await conn.execute(
        select(EmailThread.message_id, EmailThread.dedup_key).where(
            EmailThread.integration_id == integration_id,
            EmailThread.message_id.in_(parsed.refers_to),
        )
    )
    known: dict[str, str] = {row.message_id: row.dedup_key for row in rows}
    for message_id in parsed.refers_to:  # nearest first: In-Reply-To, then References
        if message_id in known:
            return known[message_id]
    return None


async def remember_thread(
    conn: AsyncConnection,
    integration_id: uuid.UUID,
    parsed: ParsedEmail,
    dedup_key: str,
    now: datetime,
) -> None:
    """Record which dedup key this Message-ID got, so replies to it join the same incident.
    A re-delivered message (same id) keeps its first record."""
    if parsed.message_id is None:
        return
    await insert_ignoring(
        conn,
        EmailThread,
        {
            "integration_id": integration_id,
            "message_id": parsed.message_id,
            "dedup_key": dedup_key,
            "received_at": now,
        },
        unique=["integration_id", "message_id"],
    )


class AlertMailHandler:
    """aiosmtpd hooks: check recipients at RCPT, turn the message into alerts at DATA."""

    def __init__(self, state: AppState, rules: EmailRules) -> None:
        self._state = state
        self._rules = rules

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        async with self._state.read_engine.connect() as conn:
            integration = await find_email_integration(conn, address, self._state.settings)
        if integration is None:
            return f"550 5.1.1 <{address}>: no email integration has this address"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = parse_email(raw)
        try:
            for address in dict.fromkeys(envelope.rcpt_tos):
                await self._ingest(parsed, address)
        except Exception:
            log.exception("storing an alert from email failed; the sender will retry")
            return "451 4.3.0 Could not store the alert; try again later"
        return "250 2.0.0 Alert accepted"

    async def _ingest(self, parsed: ParsedEmail, address: str) -> None:
        state = self._state
        async with state.engine.begin() as conn:
            integration = await find_email_integration(conn, address, state.settings)
            if integration is None:  # deleted or deactivated since RCPT
                log.info("dropping mail to %s: its integration is gone", address)
                return
            dedup_key = await thread_dedup_key(conn, integration.id, parsed)
            if dedup_key is None:
                dedup_key = subject_dedup_key(parsed.subject)
            await remember_thread(conn, integration.id, parsed, dedup_key, state.clock.now())
        alert = alert_from_email(parsed, dedup_key=dedup_key, rules=self._rules, recipient=address)
        async with state.read_engine.connect() as conn:
            prepared = await prepare(conn, integration, alert)
        outcome = (await state.batcher.submit(Submission(integration, alerts=(prepared,)))).alerts[
            0
        ]
        log.info(
            "mail to integration %s stored as alert %s (incident %s)",
            integration.id,
            outcome.alert_id,
            outcome.incident_id,
        )


@dataclass
class SmtpListener:
    server: asyncio.Server

    @property
    def port(self) -> int:
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        self.server.close()
        # Idle SMTP clients may hold their connection for minutes; shutdown does not wait.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), timeout=2)


async def start_smtp_listener(state: AppState) -> SmtpListener:
    """Listen on settings.smtp_listen_host:smtp_listen_port in this event loop, so the
    handler shares the app's engine and ingest batcher."""
    settings = state.settings
    rules = EmailRules.from_settings(settings.smtp_severity_rules, settings.smtp_resolve_pattern)
    handler = AlertMailHandler(state, rules)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            data_size_limit=settings.smtp_max_message_bytes,
            # Given, so aiosmtpd does not look up this machine's FQDN (a DNS query) per client.
            hostname=settings.smtp_inbound_domain or "tocsin",
            ident="Tocsin",
            loop=loop,
        ),
        host=settings.smtp_listen_host,
        port=settings.smtp_listen_port,
    )
    listener = SmtpListener(server)
    log.info("SMTP listener on %s:%d", settings.smtp_listen_host, listener.port)
    return listener
