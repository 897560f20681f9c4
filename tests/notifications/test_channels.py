"""Each built-in channel against a real receiver on loopback, and a third-party channel found
through the `tocsin.channels` entry-point group."""

from __future__ import annotations

import base64
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from tests.conftest import LOOPBACK_ALLOWED
from tests.notifications.conftest import TWILIO_SID, TWILIO_TOKEN, HttpReceiver, SmtpServer
from tocsin.config import Settings
from tocsin.notifications.channels import ChannelError, OutgoingMessage, Recipient
from tocsin.notifications.channels.registry import (
    installed_channel_factories,
    make_channel,
)
from tocsin.notifications.channels.webhook import verify
from tocsin.notifications.messages import IncidentFacts, incident_message

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
FACTS = IncidentFacts(
    id=__import__("uuid").UUID("00000000-0000-4000-8000-000000000042"),
    number=42,
    title="Checkout down",
    severity="critical",
    status="open",
    service="Checkout",
    team="Payments",
)


def message(settings: Settings) -> OutgoingMessage:
    return incident_message(
        settings,
        FACTS,
        user_id=__import__("uuid").UUID("00000000-0000-4000-8000-000000000007"),
        idempotency_key="page:abc:rule:def",
        now=NOW,
    )


@pytest.fixture
def settings_for(receiver: HttpReceiver) -> Settings:
    return Settings(
        database_url="sqlite+aiosqlite:///:memory:",
        secret_key="test-secret",
        public_url="http://test",
        twilio_account_sid=TWILIO_SID,
        twilio_auth_token=TWILIO_TOKEN,
        twilio_from="+15005550006",
        twilio_base_url=receiver.base_url,
        notify_timeout_seconds=2.0,
        outbound_allow=LOOPBACK_ALLOWED,
    )


async def test_webhook_body_is_signed_over_timestamp_and_body(
    settings_for: Settings, receiver: HttpReceiver
) -> None:
    channel = make_channel("webhook", settings_for)
    provider_id = await channel.send(
        Recipient(receiver.base_url + "/hook", signing_secret="s3cret"), message(settings_for)
    )
    assert provider_id == "page:abc:rule:def"
    [request] = receiver.requests
    body = request.json()
    assert body["incident"]["title"] == "Checkout down"
    assert body["incident"]["service"] == "Checkout" and body["incident"]["team"] == "Payments"
    assert body["links"]["acknowledge"].startswith("http://test/a/")
    assert request.headers["idempotency-key"] == "page:abc:rule:def"
    stamp = request.headers["x-tocsin-timestamp"]
    signature = request.headers["x-tocsin-signature"]
    now = float(stamp)
    assert verify(
        "s3cret", timestamp=stamp, body=request.body, signature=signature, now=now, tolerance=300
    )
    assert not verify(
        "wrong", timestamp=stamp, body=request.body, signature=signature, now=now, tolerance=300
    )
    tampered = request.body.replace(b"Checkout down", b"All fine")
    assert not verify(
        "s3cret", timestamp=stamp, body=tampered, signature=signature, now=now, tolerance=300
    )
    # Replayed ten minutes later: refused by the timestamp check.
    assert not verify(
        "s3cret",
        timestamp=stamp,
        body=request.body,
        signature=signature,
        now=now + 600,
        tolerance=300,
    )


async def test_twilio_sms_posts_a_short_text_with_basic_auth_and_returns_the_sid(
    settings_for: Settings, receiver: HttpReceiver
) -> None:
    sid = await make_channel("twilio_sms", settings_for).send(
        Recipient("+14155550100"), message(settings_for)
    )
    assert sid.startswith("SM")
    [request] = receiver.requests
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    expected = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    form = parse_qs(request.body.decode())
    assert form["To"] == ["+14155550100"] and form["From"] == ["+15005550006"]
    text = form["Body"][0]
    assert "#42 Checkout down" in text and "Reply 4 42 to ack" in text
    assert len(text) <= 320


async def test_twilio_voice_places_a_call_that_reads_the_incident(
    settings_for: Settings, receiver: HttpReceiver
) -> None:
    await make_channel("twilio_voice", settings_for).send(
        Recipient("+14155550100"), message(settings_for)
    )
    [request] = receiver.requests
    assert request.path.endswith("/Calls.json")
    twiml = parse_qs(request.body.decode())["Twiml"][0]
    assert twiml.startswith("<Response><Say>") and "Checkout down" in twiml


async def test_twilio_rejecting_the_number_is_a_permanent_failure(
    settings_for: Settings, receiver: HttpReceiver
) -> None:
    receiver.script = [400]
    with pytest.raises(ChannelError) as failure:
        await make_channel("twilio_sms", settings_for).send(
            Recipient("+14155550100"), message(settings_for)
        )
    assert failure.value.permanent
    receiver.script = [400]
    receiver.reply_text = '{"code": 21211, "message": "The \'To\' number +14155550100 is invalid"}'
    with pytest.raises(ChannelError) as explained:
        await make_channel("twilio_sms", settings_for).send(
            Recipient("+14155550100"), message(settings_for)
        )
    # Twilio's code says why; its text (which repeats the number) is not kept.
    assert str(explained.value) == "Twilio (error 21211) answered 400"
    receiver.reply_text = None
    receiver.script = [503]
    with pytest.raises(ChannelError) as transient:
        await make_channel("twilio_sms", settings_for).send(
            Recipient("+14155550100"), message(settings_for)
        )
    assert not transient.value.permanent


async def test_apprise_json_target_receives_title_and_body(
    settings_for: Settings, receiver: HttpReceiver
) -> None:
    port = receiver.base_url.rsplit(":", 1)[1]
    await make_channel("apprise", settings_for).send(
        Recipient(f"json://127.0.0.1:{port}/apprise"), message(settings_for)
    )
    [request] = receiver.requests
    assert request.path == "/apprise"
    body = request.json()
    assert "Checkout down" in body["title"]
    assert "Acknowledge: http://test/a/" in body["message"]


async def test_apprise_failure_is_retryable(settings_for: Settings, receiver: HttpReceiver) -> None:
    receiver.script = [500]
    port = receiver.base_url.rsplit(":", 1)[1]
    with pytest.raises(ChannelError) as failure:
        await make_channel("apprise", settings_for).send(
            Recipient(f"json://127.0.0.1:{port}/apprise"), message(settings_for)
        )
    assert not failure.value.permanent


async def test_the_http_sms_gateway_fills_its_template(
    settings_for: Settings, receiver: HttpReceiver
) -> None:
    settings = settings_for.model_copy(
        update={
            "http_sms_url": receiver.base_url + "/gateway/send",
            "http_sms_method": "PUT",
            "http_sms_body_template": '{"recipient": "$to", "message": "$body", "sender": "ops"}',
        }
    )
    await make_channel("http_sms", settings).send(Recipient("+14155550100"), message(settings))
    [request] = receiver.requests
    assert request.method == "PUT" and request.path == "/gateway/send"
    body = request.json()  # quotes in the text did not break the JSON
    assert body["recipient"] == "+14155550100"
    assert body["sender"] == "ops"
    assert "#42 Checkout down" in body["message"]


@pytest.fixture
def plugin_on_path(tmp_path: Path) -> Iterator[None]:
    """An installed third-party package (a module plus its dist-info with an entry point)."""
    (tmp_path / "acme_pager.py").write_text(
        textwrap.dedent(
            """
            SENT = []

            class AcmePager:
                name = "acme_pager"

                def __init__(self, settings):
                    self.settings = settings

                async def send(self, recipient, message):
                    SENT.append((recipient.address, message.short_text))
                    return "acme-1"
            """
        )
    )
    info = tmp_path / "acme_pager-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-pager\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tocsin.channels]\nacme_pager = acme_pager:AcmePager\n")
    sys.path.insert(0, str(tmp_path))
    installed_channel_factories.cache_clear()
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("acme_pager", None)
        installed_channel_factories.cache_clear()


async def test_a_channel_package_is_found_through_its_entry_point(
    plugin_on_path: None, settings_for: Settings
) -> None:
    assert "acme_pager" in installed_channel_factories()
    settings = settings_for.model_copy(update={"sms_channel": "acme_pager"})
    from tocsin.notifications.channels.registry import channel_name_for
    from tocsin.notifications.models import ContactKind

    name = channel_name_for(ContactKind.SMS, settings)
    assert name == "acme_pager"
    provider_id = await make_channel(name, settings).send(
        Recipient("+14155550100"), message(settings)
    )
    assert provider_id == "acme-1"
    import acme_pager  # type: ignore[import-not-found]

    assert acme_pager.SENT[0][0] == "+14155550100"


async def test_the_email_channel_folds_control_characters_in_every_header(
    settings_for: Settings, smtp: SmtpServer
) -> None:
    settings = settings_for.model_copy(
        update={"smtp_host": smtp.host, "smtp_port": smtp.port, "smtp_from": "tocsin@example.com"}
    )
    channel = make_channel("email", settings)
    page = replace(message(settings), subject="Queue\nstuck\r\nX-Evil: 1\x00\x7f\x85 now")
    await channel.send(Recipient("bob@example.com"), page)
    [mail] = smtp.box.messages
    assert mail["Subject"] == "Queue stuck X-Evil: 1 now"
    assert mail["X-Evil"] is None
