"""Email over SMTP with aiosmtplib: a plain-text and an HTML part in one message."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import socket
import time
import weakref
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
            await _sessions().send(s, raw, recipient.address)
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


# An idle session is dropped after this long: servers close quiet connections themselves
# (Postfix after 300 s), and a fresh one costs less than finding out the old one died.
SESSION_IDLE_SECONDS = 30.0
SESSIONS_KEPT = 8

_Key = tuple[str, int, str, bool, bool]


class SmtpSessions:
    """SMTP connections kept open and reused for the next message to the same server: a
    session costs a TCP (and maybe TLS) handshake, EHLO and AUTH, several times the cost of
    one message. One set per event loop; each session sends one message at a time."""

    def __init__(self) -> None:
        self._idle: dict[_Key, list[tuple[float, aiosmtplib.SMTP]]] = {}

    async def _connect(self, s: Settings) -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            local_hostname=await _ehlo_name(),
            use_tls=s.smtp_tls,
            start_tls=s.smtp_starttls,
            timeout=s.notify_timeout_seconds,
        )
        await smtp.connect()
        if s.smtp_username:
            await smtp.login(s.smtp_username, s.smtp_password)
        return smtp

    def close_idle(self) -> None:
        for idle in self._idle.values():
            for _since, smtp in idle:
                smtp.close()
        self._idle.clear()

    def _take(self, key: _Key) -> aiosmtplib.SMTP | None:
        idle = self._idle.get(key, [])
        now = time.monotonic()
        while idle:
            since, smtp = idle.pop()
            if now - since < SESSION_IDLE_SECONDS and smtp.is_connected:
                return smtp
            smtp.close()
        return None

    def _give_back(self, key: _Key, smtp: aiosmtplib.SMTP) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= SESSIONS_KEPT or not smtp.is_connected:
            smtp.close()
            return
        idle.append((time.monotonic(), smtp))

    async def send(self, s: Settings, raw: bytes, to: str) -> None:
        """Send one message, on an idle session to the server if there is one. A reused
        session that turns out closed is replaced once, before anything was accepted."""
        key = (s.smtp_host, s.smtp_port, s.smtp_username, s.smtp_tls, s.smtp_starttls)
        sender = parseaddr(s.smtp_from)[1]
        smtp = self._take(key)
        if smtp is not None:
            try:
                await smtp.sendmail(sender, [to], raw)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                smtp.close()  # it went away while idle: try once on a fresh session
            except BaseException:
                smtp.close()
                raise
            else:
                self._give_back(key, smtp)
                return
        smtp = await self._connect(s)
        try:
            await smtp.sendmail(sender, [to], raw)
        except BaseException:
            smtp.close()
            raise
        self._give_back(key, smtp)


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SmtpSessions] = (
    weakref.WeakKeyDictionary()
)


def _sessions() -> SmtpSessions:
    loop = asyncio.get_running_loop()
    found = _by_loop.get(loop)
    if found is None:
        found = _by_loop[loop] = SmtpSessions()
    return found


def close_sessions() -> None:
    """Close this event loop's idle SMTP sessions (the runtime's stop)."""
    sessions = _by_loop.pop(asyncio.get_running_loop(), None)
    if sessions is not None:
        sessions.close_idle()


@functools.cache
def _fqdn() -> str:
    return socket.getfqdn()


async def _ehlo_name() -> str:
    """The name we greet SMTP servers with: looked up once (aiosmtplib would resolve it
    again for every message)."""
    return await asyncio.to_thread(_fqdn)
