"""The lean keep-alive client (channels/keepalive.py) against real receivers on loopback:
connections reused, every way an answer's body can end, a receiver that closes or never
answers, TLS, the guard; and the channels that use it retry what is worth retrying."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.notifications.conftest import HttpReceiver, SilentReceiver
from tocsin.config import Settings
from tocsin.notifications.channels import ChannelError, OutgoingMessage, Recipient
from tocsin.notifications.channels.http import close_clients
from tocsin.notifications.channels.http_sms import HttpSmsChannel
from tocsin.notifications.channels.keepalive import (
    MAX_BODY_BYTES,
    Answer,
    KeepAliveSender,
    NotLean,
    keepalive_sender,
)
from tocsin.notifications.channels.twilio import TwilioSmsChannel
from tocsin.notifications.channels.webhook import WebhookChannel
from tocsin.notifications.outbound import OutboundGuard, OutboundRefused, guard_for

LOOPBACK = OutboundGuard.of(["127.0.0.0/8", "::1"])
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-Id: r-1\r\n\r\n{}"


@dataclass
class Request:
    line: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RawReceiver:
    """An HTTP/1.1 receiver written byte by byte: each request is answered with the next
    of `answers` (then OK); an answer given as a function is called with the writer."""

    base_url: str = ""
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    answers: list[bytes | Callable[[asyncio.StreamWriter], None]] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *rest = head.decode("latin-1").split("\r\n")
                headers = {}
                for text in rest:
                    if text:
                        name, _, value = text.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(Request(line, headers, body))
                answer = self.answers.pop(0) if self.answers else OK
                if callable(answer):
                    answer(writer)
                else:
                    writer.write(answer)
                await writer.drain()
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def raw() -> AsyncIterator[RawReceiver]:
    receiver = RawReceiver()
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
    receiver.base_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield receiver
    finally:
        server.close()


async def post(
    sender: KeepAliveSender, url: str, body: bytes = b"{}", *, within: float = 5.0
) -> Answer:
    return await sender.request(
        "POST", url, headers={"Content-Type": "application/json"}, body=body, timeout=within
    )


async def test_requests_in_turn_share_one_connection(raw: RawReceiver) -> None:
    sender = KeepAliveSender(LOOPBACK)
    answers = [
        await post(sender, raw.base_url + f"/hook/{n}?team=a", b'{"n": %d}' % n) for n in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].headers["x-request-id"] == "r-1" and answers[0].body == b"{}"
    assert raw.connections == 1
    assert [r.line for r in raw.requests] == [f"POST /hook/{n}?team=a HTTP/1.1" for n in range(3)]
    port = raw.base_url.rsplit(":", 1)[1]
    assert raw.requests[2].headers["host"] == f"127.0.0.1:{port}"
    assert raw.requests[2].body == b'{"n": 2}'
    sender.close()


async def test_a_chunked_answer_is_read_whole_and_the_connection_kept(raw: RawReceiver) -> None:
    raw.answers = [
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ]
    sender = KeepAliveSender(LOOPBACK)
    first = await post(sender, raw.base_url + "/a")
    second = await post(sender, raw.base_url + "/b")
    third = await post(sender, raw.base_url + "/c")
    assert (first.status_code, first.body) == (201, b"hello, world")
    assert (second.status_code, second.body) == (200, b"")
    assert third.status_code == 200
    assert raw.connections == 1
    sender.close()


async def test_an_answer_arriving_byte_by_byte_is_parsed_the_same(raw: RawReceiver) -> None:
    whole = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\nX-Message-Id: m-7\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
    )

    def trickle(writer: asyncio.StreamWriter) -> None:
        async def write_slowly() -> None:
            for n in range(len(whole)):
                writer.write(whole[n : n + 1])
                await writer.drain()
                await asyncio.sleep(0)

        asyncio.get_running_loop().create_task(write_slowly())

    raw.answers = [trickle]
    sender = KeepAliveSender(LOOPBACK)
    answer = await post(sender, raw.base_url + "/slow")
    assert (answer.status_code, answer.body) == (202, b"abc")
    assert answer.headers["x-message-id"] == "m-7"
    sender.close()


async def test_an_answer_without_a_length_ends_with_the_connection(raw: RawReceiver) -> None:
    def until_close(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        writer.close()

    raw.answers = [until_close]
    sender = KeepAliveSender(LOOPBACK)
    answer = await post(sender, raw.base_url + "/a")
    assert (answer.status_code, answer.body) == (200, b"all of it")
    assert (await post(sender, raw.base_url + "/b")).status_code == 200
    assert raw.connections == 2
    sender.close()


async def test_connection_close_in_the_answer_is_honoured(raw: RawReceiver) -> None:
    raw.answers = [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"]
    sender = KeepAliveSender(LOOPBACK)
    await post(sender, raw.base_url + "/a")
    await post(sender, raw.base_url + "/b")
    assert raw.connections == 2
    sender.close()


async def test_a_connection_the_receiver_closed_while_idle_is_replaced_unnoticed(
    raw: RawReceiver,
) -> None:
    def answer_then_hang_up(writer: asyncio.StreamWriter) -> None:
        writer.write(OK)  # keep-alive by every header, closed anyway
        writer.close()

    raw.answers = [answer_then_hang_up]
    sender = KeepAliveSender(LOOPBACK)
    await post(sender, raw.base_url + "/a")
    await asyncio.sleep(0.05)
    answer = await post(sender, raw.base_url + "/b")
    assert answer.status_code == 200
    assert [r.line.split()[1] for r in raw.requests] == ["/a", "/b"]
    assert raw.connections == 2
    sender.close()


async def test_an_answer_cut_off_midway_is_an_error_not_an_answer(raw: RawReceiver) -> None:
    def cut(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly some")
        writer.close()

    raw.answers = [cut]
    sender = KeepAliveSender(LOOPBACK)
    with pytest.raises(Exception, match="mid-answer"):
        await post(sender, raw.base_url + "/a")
    sender.close()


async def test_a_long_answer_is_cut_at_the_cap_and_its_connection_dropped(
    raw: RawReceiver,
) -> None:
    size = MAX_BODY_BYTES * 4
    raw.answers = [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size]
    sender = KeepAliveSender(LOOPBACK)
    answer = await post(sender, raw.base_url + "/big")
    assert answer.status_code == 200 and len(answer.body) == MAX_BODY_BYTES
    await post(sender, raw.base_url + "/next")
    assert raw.connections == 2
    sender.close()


async def test_a_receiver_that_never_answers_runs_into_the_deadline(
    silent: SilentReceiver,
) -> None:
    sender = KeepAliveSender(LOOPBACK)
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        await post(sender, silent.base_url + "/x", within=0.3)
    assert asyncio.get_running_loop().time() - started < 5
    assert silent.connections == 1
    assert sender.idle == {} or all(not pool for pool in sender.idle.values())
    sender.close()


async def test_a_refused_address_is_never_connected_to(raw: RawReceiver) -> None:
    port = raw.base_url.rsplit(":", 1)[1]
    strict = KeepAliveSender(OutboundGuard.of([]))
    for url in (raw.base_url + "/a", f"http://localhost:{port}/b", f"http://[::1]:{port}/c"):
        with pytest.raises(OutboundRefused, match="loopback"):
            await post(strict, url)
    assert raw.connections == 0


async def test_urls_it_does_not_write_as_they_are_are_left_to_httpx(raw: RawReceiver) -> None:
    sender = KeepAliveSender(LOOPBACK)
    host = raw.base_url.removeprefix("http://")
    for url in (
        f"http://user:pw@{host}/a",
        f"http://{host}/with space",
        f"http://{host}/a/../b",
        f"ftp://{host}/a",
        "http://bücher.example/a",
    ):
        with pytest.raises(NotLean):
            await post(sender, url)
    for headers in ({"X-A": "1\r\nX-B: 2"}, {"X-A\r\nX-B": "2"}, {"X A": "1"}, {"": "1"}):
        with pytest.raises(NotLean):
            await sender.request("POST", raw.base_url + "/a", headers=headers, body=b"", timeout=5)
    for method in ("POST /x HTTP/1.1\r\nX:", "PO ST", ""):
        with pytest.raises(NotLean):
            await sender.request(method, raw.base_url + "/a", headers={}, body=b"", timeout=5)
    assert raw.connections == 0


async def test_the_webhook_channel_sends_such_a_url_through_httpx(
    receiver: HttpReceiver, settings: Settings
) -> None:
    await WebhookChannel(settings).send(Recipient(receiver.base_url + "/a b"), _message())
    assert [r.path for r in receiver.requests] == ["/a b"]


@pytest.mark.parametrize(
    ("status", "permanent"), [(500, False), (503, False), (429, False), (400, True), (404, True)]
)
async def test_a_webhook_answered_with_an_error_is_retried_unless_it_cannot_pass(
    receiver: HttpReceiver, settings: Settings, status: int, permanent: bool
) -> None:
    receiver.script = [status]
    with pytest.raises(ChannelError) as failed:
        await WebhookChannel(settings).send(Recipient(receiver.base_url + "/h"), _message())
    assert failed.value.permanent is permanent
    assert str(failed.value) == f"webhook answered {status}"


async def test_a_webhook_that_never_answers_is_worth_a_retry(
    silent: SilentReceiver, settings: Settings
) -> None:
    quick = settings.model_copy(update={"notify_timeout_seconds": 0.3})
    with pytest.raises(ChannelError) as failed:
        await WebhookChannel(quick).send(Recipient(silent.base_url + "/h"), _message())
    assert not failed.value.permanent
    assert "webhook unreachable" in str(failed.value)


async def test_a_closed_port_is_worth_a_retry(raw: RawReceiver, settings: Settings) -> None:
    server_gone = raw.base_url.rsplit(":", 1)[0] + ":9"  # discard: nobody listens on loopback
    with pytest.raises(ChannelError) as failed:
        await WebhookChannel(settings).send(Recipient(server_gone + "/h"), _message())
    assert not failed.value.permanent
    assert "webhook unreachable" in str(failed.value)


async def test_webhooks_and_the_sms_gateway_reuse_their_connections(
    raw: RawReceiver, settings: Settings
) -> None:
    webhook = WebhookChannel(settings)
    for n in range(3):
        await webhook.send(Recipient(raw.base_url + f"/hook/{n}"), _message())
    sms = HttpSmsChannel(settings.model_copy(update={"http_sms_url": raw.base_url + "/sms"}))
    for _ in range(2):
        await sms.send(Recipient("+14155550100"), _message())
    assert raw.connections == 1
    assert [r.headers["user-agent"] for r in raw.requests] == ["Tocsin"] * 5
    assert raw.requests[3].line == "POST /sms HTTP/1.1"
    assert raw.requests[3].headers["idempotency-key"] == "k"
    keepalive_sender(guard_for(settings)).close()


async def test_https_is_verified_against_the_name_and_refused_without_a_known_root(
    tmp_path: Path,
) -> None:
    root, server_context = _certificates(tmp_path)
    receiver = RawReceiver()
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        trusting = KeepAliveSender(LOOPBACK, tls=ssl.create_default_context(cafile=root))
        answer = await post(trusting, f"https://127.0.0.1:{port}/secure")
        assert answer.status_code == 200
        await post(trusting, f"https://127.0.0.1:{port}/again")
        assert receiver.connections == 1
        trusting.close()
        # The default roots do not know this certificate: no request gets through.
        with pytest.raises(ssl.SSLCertVerificationError):
            await post(KeepAliveSender(LOOPBACK), f"https://127.0.0.1:{port}/secure")
        assert len(receiver.requests) == 2
    finally:
        server.close()


def _certificates(tmp_path: Path) -> tuple[str, ssl.SSLContext]:
    """A throwaway root and a certificate it signed for 127.0.0.1; the root's file and a
    server context holding the certificate."""
    now = datetime.datetime.now(datetime.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test root")])
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "receiver")]))
        .issuer_name(root_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )
    root_file = tmp_path / "root.pem"
    root_file.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    cert_file = tmp_path / "cert.pem"
    cert_file.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file)
    return str(root_file), server_context


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


async def test_twilio_goes_through_the_keepalive_client_unguarded(
    raw: RawReceiver, settings_for_twilio: Callable[[str], Settings]
) -> None:
    # Twilio's URL is the operator's: not guarded, and its connection reused too.
    strict = settings_for_twilio(raw.base_url).model_copy(update={"outbound_allow": []})
    raw.answers = [
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n"
        b'{"sid": "SM1", "status": "q"}',
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
        b'Transfer-Encoding: chunked\r\n\r\n10\r\n{"code": 21211}\n\r\n0\r\n\r\n',
    ]
    channel = TwilioSmsChannel(strict)
    assert await channel.send(Recipient("+14155550100"), _message()) == "SM1"
    with pytest.raises(ChannelError, match=r"Twilio \(error 21211\) answered 400") as refused:
        await channel.send(Recipient("+14155550100"), _message())
    assert refused.value.permanent
    assert raw.connections == 1
    assert raw.requests[0].headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(raw.requests[0].body.decode())["Body"] == ["st"]
    keepalive_sender(OutboundGuard.of(["0.0.0.0/0", "::/0"])).close()


async def test_twilio_behind_a_proxy_from_the_environment_goes_through_httpx(
    raw: RawReceiver,
    settings_for_twilio: Callable[[str], Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only httpx speaks to proxies: an operator's HTTP_PROXY keeps working for Twilio.
    monkeypatch.setenv("HTTP_PROXY", raw.base_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    raw.answers = [b'HTTP/1.1 201 Created\r\nContent-Length: 14\r\n\r\n{"sid": "SM2"}']
    await close_clients()  # the shared httpx client reads the environment when made
    channel = TwilioSmsChannel(settings_for_twilio("http://api.twilio.invalid"))
    assert await channel.send(Recipient("+14155550100"), _message()) == "SM2"
    [request] = raw.requests
    assert request.line.startswith("POST http://api.twilio.invalid/2010-04-01/Accounts/")
    await close_clients()


@pytest.fixture
def settings_for_twilio(settings: Settings) -> Callable[[str], Settings]:
    def configured(base_url: str) -> Settings:
        return settings.model_copy(
            update={
                "twilio_account_sid": "AC1",
                "twilio_auth_token": "token",
                "twilio_from": "+15005550006",
                "twilio_base_url": base_url,
            }
        )

    return configured


async def test_twilio_exempted_by_no_proxy_goes_straight_there(
    raw: RawReceiver,
    settings_for_twilio: Callable[[str], Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    raw.answers = [b'HTTP/1.1 201 Created\r\nContent-Length: 14\r\n\r\n{"sid": "SM3"}']
    channel = TwilioSmsChannel(settings_for_twilio(raw.base_url))
    assert await channel.send(Recipient("+14155550100"), _message()) == "SM3"
    assert raw.requests[0].line.startswith("POST /2010-04-01/Accounts/AC1/Messages.json ")
    keepalive_sender(OutboundGuard.of(["0.0.0.0/0", "::/0"])).close()
