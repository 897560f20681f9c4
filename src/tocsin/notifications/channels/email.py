"""Email over SMTP with aiosmtplib: a plain-text and an HTML part in one message."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import socket
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib

from tocsin.config import Settings
from tocsin.notifications.channels import ChannelError, OutgoingMessage, Recipient, one_line


class EmailChannel:
    name = "email"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def build(self, recipient: Recipient, message: OutgoingMessage) -> EmailMessage:
        """The message. Every header made from data is one line (`one_line`): the email
        package refuses a header with CR or LF, and a sender could otherwise have every email
        page for an incident fail by putting a line break in the alert's title."""
        mail = EmailMessage()
        mail["From"] = one_line(self.settings.smtp_from)
        mail["To"] = one_line(recipient.address)
        mail["Subject"] = one_line(message.subject)
        mail["Date"] = formatdate(localtime=False)
        # The same id on every retry, so a mail system (or a person) can spot a repeat.
        digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
        mail["Message-ID"] = f"<{digest}@tocsin>"
        mail["X-Tocsin-Idempotency-Key"] = one_line(message.idempotency_key)
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        return mail

    def _wire_form(self, recipient: Recipient, message: OutgoingMessage) -> tuple[bytes, str]:
        mail = self.build(recipient, message)
        return mail.as_bytes(policy=policy.SMTP), str(mail["Message-ID"])

    async def send(self, recipient: Recipient, message: OutgoingMessage) -> str:
        # Composing a MIME message with the email package's header parser costs about a
        # millisecond of CPU; a batch of them would hold the event loop (and every request
        # waiting on it) for tens of milliseconds, so they are composed on a thread.
        raw, message_id = await asyncio.to_thread(self._wire_form, recipient, message)
        s = self.settings
        try:
            await aiosmtplib.send(
                raw,
                sender=parseaddr(s.smtp_from)[1],
                recipients=[recipient.address],
                local_hostname=await _ehlo_name(),
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=s.smtp_password or None,
                use_tls=s.smtp_tls,
                start_tls=s.smtp_starttls,
                timeout=s.notify_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise ChannelError("SMTP server refused the recipient", permanent=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx is the server's final word (bad address, auth); 4xx asks us to come back.
            raise ChannelError(
                f"SMTP error {exc.code}: {exc.message}", permanent=500 <= exc.code < 600
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise ChannelError(f"SMTP server unreachable: {exc}") from exc
        return message_id


@functools.cache
def _fqdn() -> str:
    return socket.getfqdn()


async def _ehlo_name() -> str:
    """The name we greet SMTP servers with: looked up once (aiosmtplib would resolve it
    again for every message)."""
    return await asyncio.to_thread(_fqdn)
