"""Which channels exist: the built-ins plus every `tocsin.channels` entry point installed."""

from __future__ import annotations

import functools
import logging
from importlib.metadata import entry_points

from tocsin.config import Settings
from tocsin.notifications.channels import Channel, ChannelFactory
from tocsin.notifications.channels.apprise_chat import AppriseChannel
from tocsin.notifications.channels.email import EmailChannel
from tocsin.notifications.channels.http_sms import HttpSmsChannel
from tocsin.notifications.channels.twilio import TwilioSmsChannel, TwilioVoiceChannel
from tocsin.notifications.channels.webhook import WebhookChannel
from tocsin.notifications.models import ContactKind

ENTRY_POINT_GROUP = "tocsin.channels"

log = logging.getLogger(__name__)

BUILTIN_CHANNELS: dict[str, ChannelFactory] = {
    "email": EmailChannel,
    "webhook": WebhookChannel,
    "apprise": AppriseChannel,
    "twilio_sms": TwilioSmsChannel,
    "twilio_voice": TwilioVoiceChannel,
    "http_sms": HttpSmsChannel,
}


class UnknownChannel(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no channel named {name!r} is installed")
        self.name = name


@functools.cache
def installed_channel_factories() -> dict[str, ChannelFactory]:
    """Built-ins, then plugins; a plugin may not take a built-in's name."""
    factories = dict(BUILTIN_CHANNELS)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in BUILTIN_CHANNELS:
            log.warning(
                "channel plugin %s ignored: %r is a built-in channel", entry.value, entry.name
            )
            continue
        try:
            factories[entry.name] = entry.load()
        except Exception:
            # A broken plugin must not take email and webhooks down with it.
            log.exception("channel plugin %s (%s) failed to load", entry.name, entry.value)
    return factories


def channel_name_for(kind: ContactKind, settings: Settings) -> str:
    """The channel that serves a kind of contact method; SMS and voice are the operator's
    choice of provider."""
    match kind:
        case ContactKind.EMAIL:
            return "email"
        case ContactKind.WEBHOOK:
            return "webhook"
        case ContactKind.CHAT:
            return "apprise"
        case ContactKind.SMS:
            return settings.sms_channel
        case ContactKind.VOICE:
            return settings.voice_channel


def make_channel(name: str, settings: Settings) -> Channel:
    """An instance of the named channel configured from settings; UnknownChannel if none."""
    factory = installed_channel_factories().get(name)
    if factory is None:
        raise UnknownChannel(name)
    return factory(settings)
