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
from dataclasses import dataclass

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.ext.asyncio import AsyncEngine

from tocsin.alerts.ingest import Submission, prepare
from tocsin.integrations.email.addresses import find_email_integration
from tocsin.integrations.email.message import (
    EmailRules,
    ParsedEmail,
    alert_from_email,
    parse_email,
    subject_dedup_key,
)
from tocsin.integrations.email.threads import remember_thread, thread_dedup_key
from tocsin.integrations.intake import Intake

log = logging.getLogger(__name__)

# One message may page several integrations, but not an unbounded number of them.
MAX_RECIPIENTS = 20


class AlertMailHandler:
    """aiosmtpd hooks: check recipients at RCPT, turn the message into alerts at DATA."""

    def __init__(self, intake: Intake, writer: AsyncEngine, rules: EmailRules) -> None:
        self._intake = intake
        self._writer = writer  # thread rows are written before the alert is submitted
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
        async with self._intake.read_engine.connect() as conn:
            integration = await find_email_integration(conn, address, self._intake.settings)
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
        intake = self._intake
        async with self._writer.begin() as conn:
            integration = await find_email_integration(conn, address, intake.settings)
            if integration is None:  # deleted or deactivated since RCPT
                log.info("dropping mail to %s: its integration is gone", address)
                return
            dedup_key = await thread_dedup_key(conn, integration.id, parsed)
            if dedup_key is None:
                dedup_key = subject_dedup_key(parsed.subject)
            await remember_thread(conn, integration.id, parsed, dedup_key, intake.clock.now())
        alert = alert_from_email(parsed, dedup_key=dedup_key, rules=self._rules, recipient=address)
        async with intake.read_engine.connect() as conn:
            prepared = await prepare(conn, integration, alert)
        outcome = (await intake.batcher.submit(Submission(integration, alerts=(prepared,)))).alerts[
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


async def start_smtp_listener(intake: Intake, writer: AsyncEngine) -> SmtpListener:
    """Listen on settings.smtp_listen_host:smtp_listen_port in this event loop, so the
    handler shares the process's engine and ingest batcher."""
    settings = intake.settings
    rules = EmailRules.from_settings(settings.smtp_severity_rules, settings.smtp_resolve_pattern)
    handler = AlertMailHandler(intake, writer, rules)
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
