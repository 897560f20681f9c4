"""The channel interface: one message to one address, a provider id back, or a ChannelError
that says whether trying again could help.

Built-in channels register through the same entry-point group third-party packages use
(`tocsin.channels`), so an SMS gateway other than Twilio is a package, not a fork::

    [project.entry-points."tocsin.channels"]
    acme_sms = "acme_tocsin:make_channel"   # make_channel(settings) -> Channel

An operator then picks it with TOCSIN_SMS_CHANNEL=acme_sms (or TOCSIN_VOICE_CHANNEL).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tocsin.config import Settings

# Line breaks of every kind and the other control characters: none may reach a header.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    """Text fit for a subject or a header: control characters (CR and LF above all, which
    would end the header and start another) folded into single spaces."""
    return " ".join(_CONTROLS.sub(" ", text).split())


@dataclass(frozen=True)
class Recipient:
    """Where to send: an email address, an E.164 number, an Apprise URL or a webhook URL."""

    address: str
    # Per-contact-method secrets a channel needs (the webhook signing secret).
    signing_secret: str | None = None


@dataclass(frozen=True)
class OutgoingMessage:
    """A message rendered for every kind of channel; each channel takes the parts it can use."""

    subject: str
    text: str  # plain text: email, chat
    short_text: str  # one SMS-sized text
    spoken_text: str  # read out by a voice call
    html: str
    data: dict[str, Any]  # the JSON document a webhook receives
    idempotency_key: str
    links: dict[str, str] = field(default_factory=dict)


class ChannelError(Exception):
    """A send that did not happen. `permanent` means retrying cannot help (a rejected
    address, bad credentials); otherwise the delivery is tried again with backoff."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    name: str

    async def send(self, recipient: Recipient, message: OutgoingMessage) -> str:
        """Send the message; returns the provider's id for it. Raises ChannelError."""
        ...


ChannelFactory = Callable[[Settings], Channel]
