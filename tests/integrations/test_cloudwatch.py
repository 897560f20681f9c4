"""CloudWatch alarms over Amazon SNS (PROTOCOLS.md section 3.5): text/plain bodies, signature
checked against a certificate fetched from an allowed URL, subscription confirmed only after
that, notifications processed once per MessageId.

The certificate is made by the test and served over loopback HTTP; the settings allow that
URL, as an operator's would allow only SNS's own hosts.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import CURRENT_TIME, count_rows
from tests.factories import IntegrationRef, World
from tests.integrations.adapter_support import (
    incident,
    integration_of,
    later,
    self_signed_certificate,
    stored,
)
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.integrations.adapters.cloudwatch.sns import canonical_string
from tocsin.integrations.models import IntegrationType

TOPIC = "arn:aws:sns:us-east-1:123456789012:alarms"


@dataclass
class FakeSns:
    """Serves signing certificates and records visits to SubscribeURL (and every fetch)."""

    base_url: str
    certificates: dict[str, bytes] = field(default_factory=dict)
    visits: list[str] = field(default_factory=list)
    fetches: list[str] = field(default_factory=list)


@pytest.fixture
def sns() -> Iterator[FakeSns]:
    holder: dict[str, FakeSns] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake = holder["sns"]
            fake.fetches.append(self.path)
            body = fake.certificates.get(self.path)
            if self.path.startswith("/confirm"):
                fake.visits.append(self.path)
                body = b"<ConfirmSubscriptionResponse/>"
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["sns"] = FakeSns(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder["sns"]
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(database_url: str, sns: FakeSns) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret",
        public_url="http://test",
        sns_signing_cert_url_patterns=[rf"^{sns.base_url}/certs/"],
    )


@dataclass(frozen=True)
class Signer:
    key: rsa.RSAPrivateKey
    cert_url: str

    def sign(self, message: dict[str, Any], version: str = "1") -> dict[str, Any]:
        signed = {**message, "SignatureVersion": version, "SigningCertURL": self.cert_url}
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(canonical_string(signed), padding.PKCS1v15(), algorithm)
        return {**signed, "Signature": base64.b64encode(signature).decode()}


def signer(sns: FakeSns, name: str, organisation: str = "Amazon") -> Signer:
    # Valid at the test clock's "now", which is what the check uses.
    key, certificate = self_signed_certificate(organisation=organisation, now=CURRENT_TIME)
    path = f"/certs/{name}.pem"
    sns.certificates[path] = certificate.public_bytes(Encoding.PEM)
    return Signer(key, sns.base_url + path)


@pytest.fixture
async def cloudwatch(engine: AsyncEngine, clock: FrozenClock, world: World) -> IntegrationRef:
    return await integration_of(engine, clock, world, IntegrationType.CLOUDWATCH)


def confirmation(sns: FakeSns) -> dict[str, Any]:
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
        "SubscribeURL": f"{sns.base_url}/confirm?Action=ConfirmSubscription&Token=2336",
        "Timestamp": "2026-03-10T08:59:00.000Z",
    }


def alarm(state: str, message_id: str) -> dict[str, Any]:
    body = {
        "AlarmName": "checkout-5xx-high",
        "AlarmDescription": "5xx over 5%",
        "AWSAccountId": "123456789012",
        "AlarmConfigurationUpdatedTimestamp": "2026-03-01T10:00:00.000+0000",
        "NewStateValue": state,
        "NewStateReason": "Threshold Crossed: 1 datapoint [7.5] was greater than 5.0",
        "StateChangeTime": "2026-03-10T08:59:00.000+0000",
        "Region": "US East (N. Virginia)",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-5xx-high",
        "OldStateValue": "OK" if state == "ALARM" else "ALARM",
        "Trigger": {
            "MetricName": "HTTPCode_Target_5XX_Count",
            "Namespace": "AWS/ApplicationELB",
            "StatisticType": "Statistic",
            "Statistic": "SUM",
            "Unit": None,
            "Dimensions": [{"name": "LoadBalancer", "value": "app/checkout/1"}],
            "Period": 60,
            "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 5.0,
            "TreatMissingData": "missing",
        },
    }
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": TOPIC,
        "Subject": f'{state}: "checkout-5xx-high" in US East (N. Virginia)',
        "Message": json.dumps(body),
        "Timestamp": "2026-03-10T08:59:01.000Z",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


async def post_sns(client: AsyncClient, integration: IntegrationRef, body: dict[str, Any]) -> Any:
    # SNS sends JSON labelled text/plain.
    return await client.post(
        integration.url,
        content=json.dumps(body).encode(),
        headers={
            "content-type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": body["Type"],
            "user-agent": "Amazon Simple Notification Service Agent",
        },
    )


async def test_a_signed_subscription_confirmation_is_confirmed(
    client: AsyncClient, cloudwatch: IntegrationRef, sns: FakeSns, engine: AsyncEngine
) -> None:
    response = await post_sns(client, cloudwatch, signer(sns, "a").sign(confirmation(sns)))
    assert response.status_code == 202, response.text
    assert sns.visits == ["/confirm?Action=ConfirmSubscription&Token=2336"]
    assert await stored(engine) == (0, 0)


@pytest.mark.parametrize("flaw", ["tampered", "not amazon", "url not allowed", "bad version"])
async def test_a_confirmation_that_fails_verification_is_refused_and_not_confirmed(
    client: AsyncClient, cloudwatch: IntegrationRef, sns: FakeSns, flaw: str
) -> None:
    good = signer(sns, "good")
    if flaw == "tampered":
        body = {**good.sign(confirmation(sns)), "SubscribeURL": f"{sns.base_url}/confirm?evil"}
    elif flaw == "not amazon":
        body = signer(sns, "other", organisation="Mallory Ltd").sign(confirmation(sns))
    elif flaw == "url not allowed":
        body = Signer(good.key, "https://attacker.example.com/certs/x.pem").sign(confirmation(sns))
    else:
        body = {**good.sign(confirmation(sns)), "SignatureVersion": "3"}
    response = await post_sns(client, cloudwatch, body)
    assert response.status_code == 403
    assert sns.visits == []


async def test_alarm_opens_retries_are_ignored_and_ok_resolves(
    client: AsyncClient,
    world: World,
    cloudwatch: IntegrationRef,
    sns: FakeSns,
    engine: AsyncEngine,
    clock: FrozenClock,
) -> None:
    sign = signer(sns, "n").sign
    first = sign(alarm("ALARM", "m-1"), version="2")
    response = await post_sns(client, cloudwatch, first)
    assert response.status_code == 202, response.text
    incident_id = response.json()["alerts"][0]["incident_id"]
    detail = await incident(client, world, incident_id)
    assert detail["title"] == "checkout-5xx-high"
    assert detail["description"].startswith("Threshold Crossed")
    assert detail["alerts"][0]["tags"]["namespace"] == "AWS/ApplicationELB"

    later(clock)
    retry = await post_sns(client, cloudwatch, copy.deepcopy(first))
    assert retry.status_code == 202
    assert retry.json()["duplicate_delivery"] is True
    assert await stored(engine) == (1, 1)

    later(clock)
    await post_sns(client, cloudwatch, sign(alarm("INSUFFICIENT_DATA", "m-2")))
    assert await stored(engine) == (1, 1)

    later(clock)
    await post_sns(client, cloudwatch, sign(alarm("OK", "m-3")))
    assert (await incident(client, world, incident_id))["status"] == "resolved"
    assert await count_rows(engine, "inbound_deliveries") == 3


async def test_unsigned_or_malformed_notifications_store_nothing(
    client: AsyncClient, cloudwatch: IntegrationRef, sns: FakeSns, engine: AsyncEngine
) -> None:
    unsigned = {**alarm("ALARM", "m-1"), "SignatureVersion": "1", "Signature": "AAAA"}
    unsigned["SigningCertURL"] = sns.base_url + "/certs/missing.pem"
    assert (await post_sns(client, cloudwatch, unsigned)).status_code == 403

    missing_fields = signer(sns, "x").sign({"Type": "Notification", "Message": "{}"})
    response = await post_sns(client, cloudwatch, missing_fields)
    assert response.status_code == 422
    fields = {error["loc"][-1] for error in response.json()["detail"]}
    assert {"MessageId", "TopicArn", "Timestamp"} <= fields

    garbage = await client.post(cloudwatch.url, content=b"<xml/>")
    assert garbage.status_code == 422
    assert await stored(engine) == (0, 0)


@pytest.fixture
async def only_other(engine: AsyncEngine, clock: FrozenClock, world: World) -> IntegrationRef:
    """A CloudWatch integration that takes another topic only."""
    return await integration_of(
        engine,
        clock,
        world,
        IntegrationType.CLOUDWATCH,
        options={"topic_arns": ["arn:aws:sns:us-east-1:123456789012:other"]},
    )


async def test_topics_outside_the_integrations_list_are_refused(
    client: AsyncClient, only_other: IntegrationRef, sns: FakeSns
) -> None:
    response = await post_sns(client, only_other, signer(sns, "t").sign(confirmation(sns)))
    assert response.status_code == 403
    assert sns.visits == []


async def simulate_sns(
    client: AsyncClient, world: World, integration: IntegrationRef, body: dict[str, Any]
) -> Any:
    return await client.post(
        "/api/v1/simulate",
        json={"integration_id": str(integration.id), "payload": body},
        headers=world.cast.admin.headers,
    )


async def test_a_dry_run_of_a_subscription_confirmation_contacts_nobody(
    client: AsyncClient, cloudwatch: IntegrationRef, sns: FakeSns, world: World
) -> None:
    body = signer(sns, "dry").sign(confirmation(sns))
    response = await simulate_sns(client, world, cloudwatch, body)
    assert response.status_code == 200, response.text
    assert any("would be confirmed (not done)" in note for note in response.json()["ignored"])
    assert sns.visits == []
    assert sns.fetches == []  # not even the signing certificate


async def test_a_dry_run_of_a_payload_the_integration_refuses_is_a_4xx(
    client: AsyncClient, only_other: IntegrationRef, sns: FakeSns, world: World
) -> None:
    response = await simulate_sns(
        client, world, only_other, signer(sns, "t").sign(alarm("ALARM", "m-1"))
    )
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "payload"]
    assert "is not one this integration takes" in problem["msg"]


@pytest.mark.parametrize(
    ("sent", "problem"),
    [("2026-03-10T07:58:59.000Z", "older than an hour"), ("2026-03-10T10:00:00.000Z", "future")],
)
async def test_a_signed_message_sent_more_than_an_hour_ago_is_refused(
    client: AsyncClient,
    cloudwatch: IntegrationRef,
    sns: FakeSns,
    engine: AsyncEngine,
    sent: str,
    problem: str,
) -> None:
    # Correctly signed, but captured long ago and replayed (or stamped in the future).
    replayed = signer(sns, "old").sign({**alarm("ALARM", "m-old"), "Timestamp": sent})
    response = await post_sns(client, cloudwatch, replayed)
    assert response.status_code == 422, response.text
    assert "Timestamp" in response.text and problem in response.text
    assert await stored(engine) == (0, 0)
    assert sns.visits == [], "refused before fetching any certificate"


async def test_seen_message_ids_are_forgotten_once_their_messages_would_be_too_old(
    client: AsyncClient,
    cloudwatch: IntegrationRef,
    sns: FakeSns,
    engine: AsyncEngine,
    clock: FrozenClock,
) -> None:
    sign = signer(sns, "n").sign
    assert (await post_sns(client, cloudwatch, sign(alarm("ALARM", "m-1")))).status_code == 202
    assert await count_rows(engine, "inbound_deliveries") == 1
    clock.advance(timedelta(minutes=50))
    fresh = {**alarm("OK", "m-2"), "Timestamp": clock.now().isoformat()}
    assert (await post_sns(client, cloudwatch, sign(fresh))).status_code == 202
    assert await count_rows(engine, "inbound_deliveries") == 2, "m-1 could still be retried"
    clock.advance(timedelta(minutes=30))
    later_one = {**alarm("ALARM", "m-3"), "Timestamp": clock.now().isoformat()}
    assert (await post_sns(client, cloudwatch, sign(later_one))).status_code == 202
    # m-1 (80 minutes ago) is pruned: a retry of it would be refused by its Timestamp.
    assert await count_rows(engine, "inbound_deliveries") == 2
    retried = await post_sns(client, cloudwatch, sign(alarm("ALARM", "m-1")))
    assert retried.status_code == 422
