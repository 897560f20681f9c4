"""A generic HTTP SMS gateway: URL, method and a body template with $to and $body.

Most SMS gateways take one HTTP request per message; this channel covers them without a
plugin, and is the smallest example of the channel interface.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from string import Template
from urllib.parse import quote_plus

from tocsin.config import Settings
from tocsin.notifications.channels import ChannelError, OutgoingMessage, Recipient
from tocsin.notifications.channels.http import channel_request, raise_for_answer
from tocsin.notifications.outbound import guard_for


def _json_escape(value: str) -> str:
    return json.dumps(value)[1:-1]


def render_body(template: str, content_type: str, *, to: str, body: str) -> str:
    """The request body: values escaped for JSON or form encoding, as the template needs."""
    escape: Callable[[str], str]
    if "json" in content_type:
        escape = _json_escape
    elif "x-www-form-urlencoded" in content_type:
        escape = quote_plus
    else:
        escape = str
    try:
        return Template(template).substitute(to=escape(to), body=escape(body))
    except (KeyError, ValueError) as exc:
        raise ChannelError(f"HTTP SMS body template is invalid: {exc}", permanent=True) from exc


class HttpSmsChannel:
    name = "http_sms"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, recipient: Recipient, message: OutgoingMessage) -> str:
        s = self.settings
        if not s.http_sms_url:
            raise ChannelError("TOCSIN_HTTP_SMS_URL is not set", permanent=True)
        content = render_body(
            s.http_sms_body_template,
            s.http_sms_content_type,
            to=recipient.address,
            body=message.short_text,
        )
        response = await channel_request(
            guard_for(self.settings),
            s.http_sms_method.upper(),
            s.http_sms_url,
            headers={
                "Content-Type": s.http_sms_content_type,
                "User-Agent": "Tocsin",
                "Idempotency-Key": message.idempotency_key,
            },
            content=content.encode(),
            timeout=s.notify_timeout_seconds,
            what="SMS gateway",
        )
        raise_for_answer(response, what="SMS gateway")
        return response.headers.get("x-message-id") or message.idempotency_key
