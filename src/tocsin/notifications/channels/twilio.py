"""SMS and voice calls through Twilio's REST API (base URL configurable, for tests and for
Twilio-compatible providers)."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import httpx
import orjson

from tocsin.config import Settings
from tocsin.notifications.channels import ChannelError, OutgoingMessage, Recipient
from tocsin.notifications.channels.http import channel_request, raise_for_answer
from tocsin.notifications.channels.keepalive import Answer


class _TwilioChannel:
    name = "twilio"
    resource = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def form(self, recipient: Recipient, message: OutgoingMessage) -> dict[str, str]:
        raise NotImplementedError

    async def send(self, recipient: Recipient, message: OutgoingMessage) -> str:
        s = self.settings
        if not (s.twilio_account_sid and s.twilio_auth_token and s.twilio_from):
            raise ChannelError(
                "Twilio is not configured (TOCSIN_TWILIO_ACCOUNT_SID, _AUTH_TOKEN, _FROM)",
                permanent=True,
            )
        url = (
            f"{s.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/"
            f"{s.twilio_account_sid}/{self.resource}.json"
        )
        credentials = f"{s.twilio_account_sid}:{s.twilio_auth_token}".encode()
        response = await channel_request(
            None,  # Twilio's API is the operator's own target: not guarded
            "POST",
            url,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "User-Agent": "Tocsin",
                "Authorization": "Basic " + base64.b64encode(credentials).decode(),
            },
            content=urlencode(self.form(recipient, message)).encode(),
            timeout=s.notify_timeout_seconds,
            what="Twilio",
        )
        raise_for_answer(response, what=_who_answered(response))
        try:
            sid = _json_of(response)["sid"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ChannelError("Twilio answered without a sid") from exc
        return str(sid)


def _json_of(response: httpx.Response | Answer) -> Any:
    """The answer's body read as JSON; ValueError if it is not."""
    body = response.body if isinstance(response, Answer) else response.content
    return orjson.loads(body)


def _who_answered(response: httpx.Response | Answer) -> str:
    """Who answered, for the error: Twilio, with its numeric error code when it gave one
    (21211: not a valid number), which says what went wrong without the reply's text."""
    if response.is_success:
        return "Twilio"
    try:
        code = _json_of(response).get("code")
    except (ValueError, AttributeError):
        code = None
    return f"Twilio (error {code})" if isinstance(code, int) else "Twilio"


class TwilioSmsChannel(_TwilioChannel):
    name = "twilio_sms"
    resource = "Messages"

    def form(self, recipient: Recipient, message: OutgoingMessage) -> dict[str, str]:
        return {
            "To": recipient.address,
            "From": self.settings.twilio_from,
            "Body": message.short_text,
        }


class TwilioVoiceChannel(_TwilioChannel):
    name = "twilio_voice"
    resource = "Calls"

    def form(self, recipient: Recipient, message: OutgoingMessage) -> dict[str, str]:
        said = escape(message.spoken_text)
        # Said twice: the first time often lands while the phone is still at the ear.
        twiml = f'<Response><Say>{said}</Say><Pause length="1"/><Say>{said}</Say></Response>'
        return {"To": recipient.address, "From": self.settings.twilio_from, "Twiml": twiml}
