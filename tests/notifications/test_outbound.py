"""The outbound guard: webhooks, Apprise URLs and the HTTP SMS gateway never reach loopback,
private, link-local (cloud metadata), unique-local, multicast or other special addresses,
neither when a contact method is added nor when a message is sent, redirects included;
unless TOCSIN_OUTBOUND_ALLOW lets them. Replies' bodies are never kept."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import httpcore
import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.factories import Cast
from tests.notifications.conftest import HttpReceiver, Paging, open_incident
from tests.notifications.helpers import (
    add_method,
    add_rule,
    app_client,
    bob_paged_by_webhook,
    drain,
    timeline_notes,
)
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.notifications.channels import ChannelError, OutgoingMessage, Recipient
from tocsin.notifications.channels.apprise_chat import AppriseChannel
from tocsin.notifications.channels.http import _GuardedNetwork
from tocsin.notifications.channels.http_sms import HttpSmsChannel
from tocsin.notifications.channels.webhook import WebhookChannel
from tocsin.notifications.delivery import send_due_deliveries
from tocsin.notifications.models import Delivery, DeliveryAttempt
from tocsin.notifications.outbound import OutboundGuard, OutboundRefused
from tocsin.worker.context import WorkerContext

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # the cloud metadata service
    ("fe80::1", "link-local"),
    ("fd00::1", "unique-local"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("100.64.0.1", "shared (carrier-grade NAT)"),
    ("240.0.0.1", "private"),
    ("255.255.255.255", "private"),
    ("::ffff:127.0.0.1", "IPv6-wrapped loopback"),
    ("::ffff:169.254.169.254", "IPv6-wrapped link-local"),
    ("::ffff:10.0.0.1", "IPv6-wrapped private"),
    ("2002:7f00:1::", "IPv6-wrapped loopback"),  # 6to4 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "IPv6-wrapped link-local"),  # NAT64 of 169.254.169.254
    ("::127.0.0.1", "reserved"),
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808"]


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_special_addresses_are_refused_by_kind(address: str, kind: str) -> None:
    guard = OutboundGuard.of([])
    assert guard.refused_kind(ipaddress.ip_address(address)) == kind
    with pytest.raises(OutboundRefused, match=kind.split(" ")[0]):
        guard.check_addresses(address, [address])


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert OutboundGuard.of([]).check_addresses(address, [address]) == [address]


def test_the_allow_list_takes_networks_names_and_domains() -> None:
    guard = OutboundGuard.of(["10.1.0.0/16", "sms.lan", ".corp.example", "::1"])
    assert guard.check_addresses("10.1.2.3", ["10.1.2.3"]) == ["10.1.2.3"]
    assert guard.check_addresses("::ffff:10.1.2.3", ["::ffff:10.1.2.3"])
    assert guard.check_addresses("::1", ["::1"]) == ["::1"]
    assert guard.check_addresses("sms.lan", ["192.168.1.5"]) == ["192.168.1.5"]
    assert guard.check_addresses("pager.corp.example", ["172.16.0.9"]) == ["172.16.0.9"]
    # A name is judged by its addresses unless the name itself is allowed.
    assert guard.check_addresses("evil.example", ["10.1.2.3"]) == ["10.1.2.3"]
    for host in ("10.2.0.1", "evil.example"):
        with pytest.raises(OutboundRefused):
            guard.check_addresses(host, ["10.2.0.1"])
    with pytest.raises(OutboundRefused, match="resolves to a private address"):
        guard.check_addresses("mixed.example", ["8.8.8.8", "192.168.0.1"])


def test_the_allow_list_reads_a_comma_separated_or_json_environment_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOCSIN_OUTBOUND_ALLOW", "10.0.0.0/8, sms.lan")
    assert Settings().outbound_allow == ["10.0.0.0/8", "sms.lan"]
    monkeypatch.setenv("TOCSIN_OUTBOUND_ALLOW", '["192.168.0.0/16"]')
    assert Settings().outbound_allow == ["192.168.0.0/16"]
    monkeypatch.delenv("TOCSIN_OUTBOUND_ALLOW")
    assert Settings().outbound_allow == []


@pytest.fixture
def strict_settings(settings: Settings) -> Settings:
    """The settings of an operator who allowed no internal target."""
    return settings.model_copy(update={"outbound_allow": []})


@pytest.fixture
def strict_ctx(ctx: WorkerContext) -> WorkerContext:
    """A worker of that operator's, on the same database."""
    return WorkerContext(
        ctx.engine,
        ctx.clock,
        ctx.settings.model_copy(update={"outbound_allow": []}),
        worker_id="strict-worker",
    )


@pytest.fixture
async def strict_client(
    strict_settings: Settings, clock: FrozenClock
) -> AsyncIterator[AsyncClient]:
    async with app_client(strict_settings, clock) as http:
        yield http


async def test_a_contact_method_aimed_inside_is_refused_naming_the_address_and_nothing_is_stored(
    strict_client: AsyncClient, cast: Cast, engine: AsyncEngine, receiver: HttpReceiver
) -> None:
    port = receiver.base_url.rsplit(":", 1)[1]
    cases = [
        ("webhook", f"http://127.0.0.1:{port}/hook", "loopback"),
        ("webhook", f"http://localhost:{port}/hook", "localhost resolves to a loopback"),
        ("webhook", "http://169.254.169.254/latest/meta-data/", "link-local"),
        ("webhook", "http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("webhook", "http://[fd12::1]/hook", "unique-local"),
        ("webhook", "https://10.0.0.8/hook", "private"),
        ("webhook", "http://0.0.0.0:8080/", "unspecified"),
        ("webhook", "http://2130706433/hook", "loopback"),  # 127.0.0.1 as one number
        ("webhook", "http://0x7f.1/hook", "loopback"),
        ("chat", f"json://127.0.0.1:{port}/hook", "loopback"),
        ("chat", "form://192.168.1.20/", "private"),
        ("chat", "ntfy://169.254.169.254/topic", "link-local"),
        ("chat", "mailto://user:pass@example.com?smtp=10.9.8.7", "private"),
    ]
    for kind, address, why in cases:
        response = await strict_client.post(
            f"/api/v1/users/{cast.bob.id}/contact-methods",
            json={"kind": kind, "name": "inside", "address": address},
            headers=cast.bob.headers,
        )
        assert response.status_code == 422, (address, response.text)
        [problem] = response.json()["detail"]
        assert problem["loc"] == ["body", "address"]
        assert why in problem["msg"], (address, problem)
    assert await count_rows(engine, "contact_methods") == 0
    assert await count_rows(engine, "deliveries") == 0
    assert receiver.requests == []


async def test_moving_a_method_inside_is_refused_too(
    strict_client: AsyncClient, cast: Cast
) -> None:
    method = await add_method(strict_client, cast.bob, kind="sms", address="+14155550100")
    webhook = await strict_client.post(
        f"/api/v1/users/{cast.bob.id}/contact-methods",
        json={"kind": "chat", "name": "ntfy", "address": "ntfy://mytopic"},
        headers=cast.bob.headers,
    )
    assert webhook.status_code == 201, webhook.text
    moved = await strict_client.patch(
        f"/api/v1/users/{cast.bob.id}/contact-methods/{webhook.json()['id']}",
        json={"address": "json://127.0.0.1:9/x"},
        headers=cast.bob.headers,
    )
    assert moved.status_code == 422
    assert moved.json()["detail"][0]["loc"] == ["body", "address"]
    assert method["address"] == "+14155550100"


async def test_an_unresolvable_webhook_host_is_refused_at_creation(
    strict_client: AsyncClient, cast: Cast
) -> None:
    response = await strict_client.post(
        f"/api/v1/users/{cast.bob.id}/contact-methods",
        json={"kind": "webhook", "name": "x", "address": "https://nowhere.invalid/hook"},
        headers=cast.bob.headers,
    )
    assert response.status_code == 422
    assert "does not resolve" in response.json()["detail"][0]["msg"]


async def test_the_guard_is_asked_again_at_send_time(
    client: AsyncClient,
    cast: Cast,
    strict_ctx: WorkerContext,
    receiver: HttpReceiver,
    engine: AsyncEngine,
) -> None:
    # Accepted while the operator allowed loopback; by the time the code goes out the
    # address is refused (as when a name's DNS answer changes to an internal address).
    await add_method(client, cast.bob, kind="webhook", address=receiver.base_url + "/later")
    assert await send_due_deliveries(strict_ctx)
    assert receiver.requests == []
    async with engine.connect() as conn:
        delivery = (await conn.execute(select(Delivery))).one()
    assert delivery.status == "failed"  # refused for good: retrying cannot help
    assert "loopback address" in delivery.last_error
    assert "TOCSIN_OUTBOUND_ALLOW" in delivery.last_error


async def test_a_page_to_a_webhook_now_inside_fails_visibly_on_the_timeline(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    strict_ctx: WorkerContext,
    receiver: HttpReceiver,
    engine: AsyncEngine,
) -> None:
    await bob_paged_by_webhook(client, paging, ctx, receiver, "/bob")
    before = len(receiver.requests)
    incident_id = await open_incident(client, paging)
    await drain(strict_ctx)
    assert len(receiver.requests) == before
    notes = await timeline_notes(engine, incident_id)
    assert any("failed for good" in n and "loopback address" in n for n in notes), notes


async def test_a_webhook_redirect_is_not_followed(
    receiver: HttpReceiver, other_receiver: HttpReceiver, settings: Settings
) -> None:
    receiver.redirect_to = other_receiver.base_url + "/inside"
    channel = WebhookChannel(settings)
    with pytest.raises(ChannelError) as refused:
        await channel.send(Recipient(receiver.base_url + "/hook"), _message())
    assert refused.value.permanent
    assert "redirects are not followed" in str(refused.value)
    assert other_receiver.requests == []


async def test_a_cookie_one_receiver_sets_is_never_sent_back(
    receiver: HttpReceiver, settings: Settings
) -> None:
    # Webhooks of many teams may share a host: a session cookie one of them is given must
    # not ride along with the next team's page.
    receiver.set_cookie = "session=team-a-secret; Path=/"
    channel = WebhookChannel(settings)
    await channel.send(Recipient(receiver.base_url + "/team-a"), _message())
    await channel.send(Recipient(receiver.base_url + "/team-b"), _message())
    assert len(receiver.requests) == 2
    assert [r.headers.get("cookie") for r in receiver.requests] == [None, None]


async def test_an_apprise_redirect_inside_is_refused_at_the_hop(
    receiver: HttpReceiver, other_receiver: HttpReceiver, settings: Settings
) -> None:
    # The operator allowed the name "localhost" (one receiver), not loopback addresses in
    # general: the redirect to 127.0.0.1 (the other) is a new connection, and refused.
    port = receiver.base_url.rsplit(":", 1)[1]
    receiver.redirect_to = other_receiver.base_url + "/inside"
    allowed_by_name = settings.model_copy(update={"outbound_allow": ["localhost"]})
    channel = AppriseChannel(allowed_by_name)
    with pytest.raises(OutboundRefused, match=r"127\.0\.0\.1 is a loopback address"):
        await channel.send(Recipient(f"json://localhost:{port}/hook"), _message())
    assert len(receiver.requests) == 1
    assert other_receiver.requests == []


async def test_apprise_sends_nothing_inside_without_the_allow_list(
    receiver: HttpReceiver, settings: Settings
) -> None:
    port = receiver.base_url.rsplit(":", 1)[1]
    channel = AppriseChannel(settings.model_copy(update={"outbound_allow": []}))
    for url in (f"json://127.0.0.1:{port}/a", f"form://localhost:{port}/b"):
        with pytest.raises(OutboundRefused):
            await channel.send(Recipient(url), _message())
    assert receiver.requests == []
    allowed = AppriseChannel(settings)
    await allowed.send(Recipient(f"json://127.0.0.1:{port}/a"), _message())
    assert [r.path for r in receiver.requests] == ["/a"]


async def test_the_http_sms_gateway_is_guarded_too(
    receiver: HttpReceiver, settings: Settings
) -> None:
    gateway = {"sms_channel": "http_sms", "http_sms_url": receiver.base_url + "/sms"}
    refused = HttpSmsChannel(settings.model_copy(update={**gateway, "outbound_allow": []}))
    with pytest.raises(OutboundRefused):
        await refused.send(Recipient("+14155550100"), _message())
    assert receiver.requests == []
    allowed = HttpSmsChannel(settings.model_copy(update=gateway))
    await allowed.send(Recipient("+14155550100"), _message())
    assert len(receiver.requests) == 1


async def test_the_connection_goes_to_the_address_that_was_checked() -> None:
    # The name is resolved once, by the guard; the socket is opened to the IP it passed,
    # so a second DNS answer (rebinding) never gets a say.
    opened: list[str] = []

    class Recording(httpcore.AnyIOBackend):
        async def connect_tcp(self, host: str, port: int, **kwargs: object) -> object:  # type: ignore[override]
            opened.append(host)
            raise httpcore.ConnectError("not really connecting")

    network = _GuardedNetwork(OutboundGuard.of(["127.0.0.0/8", "::1"]))
    network.inner = Recording()
    with pytest.raises(httpcore.ConnectError):
        await network.connect_tcp("localhost", 9)
    assert opened and all(ipaddress.ip_address(h).is_loopback for h in opened)
    strict = _GuardedNetwork(OutboundGuard.of([]))
    strict.inner = Recording()
    opened.clear()
    with pytest.raises(OutboundRefused):
        await strict.connect_tcp("localhost", 9)
    assert opened == []


async def test_a_failing_receivers_reply_is_not_kept_or_shown(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    receiver: HttpReceiver,
    engine: AsyncEngine,
) -> None:
    await bob_paged_by_webhook(client, paging, ctx, receiver, "/bob")
    receiver.script = [500]
    receiver.reply_text = "<h1>internal admin</h1> session=9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    incident_id = await open_incident(client, paging)
    await drain(ctx)
    async with engine.connect() as conn:
        errors = list((await conn.execute(select(DeliveryAttempt.error))).scalars())
        last = list((await conn.execute(select(Delivery.last_error))).scalars())
    notes = await timeline_notes(engine, incident_id)
    assert "webhook answered 500" in errors
    for text in [*errors, *last, *notes]:
        assert "internal admin" not in (text or "")
        assert "9f8e7d6c5b4a" not in (text or "")


async def test_an_unverified_method_is_sent_its_code_and_nothing_else(
    client: AsyncClient, cast: Cast, ctx: WorkerContext, receiver: HttpReceiver
) -> None:
    method = await add_method(client, cast.bob, kind="webhook", address=receiver.base_url + "/u")
    url = f"/api/v1/users/{cast.bob.id}/contact-methods/{method['id']}"
    assert (await client.post(url + "/test", headers=cast.bob.headers)).status_code == 409
    rule = await add_rule(client, cast.bob, method_id=method["id"], urgency="high", delay=0)
    assert rule.status_code == 422
    await drain(ctx)
    assert [r.json()["type"] for r in receiver.requests] == ["contact_method.verification"]


def _message() -> OutgoingMessage:
    return OutgoingMessage(
        subject="s",
        text="t",
        short_text="st",
        spoken_text="sp",
        html="<p>h</p>",
        data={"kind": "test"},
        idempotency_key="k",
    )
