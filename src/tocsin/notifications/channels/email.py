"""Email over SMTP with aiosmtplib: a plain-text and an HTML part in one message."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from tocsin.config import Settings
from tocsin.notifications.channels import ChannelError, OutgoingMessage, Recipient


class EmailChannel:
    name = "email"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def build(self, recipient: Recipient, message: OutgoingMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.settings.smtp_from
        mail["To"] = recipient.address
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False)
        # The same id on every retry, so a mail system (or a person) can spot a repeat.
        digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
        mail["Message-ID"] = f"<{digest}@tocsin>"
        mail["X-Tocsin-Idempotency-Key"] = message.idempotency_key
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        return mail

    async def send(self, recipient: Recipient, message: OutgoingMessage) -> str:
        mail = self.build(recipient, message)
        s = self.settings
        try:
            await aiosmtplib.send(
                mail,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=s.smtp_password or None,
                use_tls=s.smtp_tls,
                start_tls=s.smtp_starttls,
                timeout=s.notify_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise ChannelError(f"SMTP server refused {recipient.address}", permanent=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx is the server's final word (bad address, auth); 4xx asks us to come back.
            raise ChannelError(
                f"SMTP error {exc.code}: {exc.message}", permanent=500 <= exc.code < 600
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise ChannelError(f"SMTP server unreachable: {exc}") from exc
        return str(mail["Message-ID"])
