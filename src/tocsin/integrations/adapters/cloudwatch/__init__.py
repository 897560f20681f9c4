"""AWS CloudWatch alarms delivered by an Amazon SNS HTTP(S) subscription.

SNS posts JSON with `Content-Type: text/plain`. A SubscriptionConfirmation is confirmed (by
visiting its SubscribeURL) only once its signature checks out and, if the integration lists
topics, its topic is one of them. Notifications are verified the same way and processed once
per MessageId, since SNS retries with the same id. The alarm inside opens on `ALARM` and
resolves on `OK`, keyed by the alarm's ARN.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tocsin.alerts.models import AlertStatus, Severity
from tocsin.alerts.normalised import NormalisedAlert
from tocsin.config import Settings
from tocsin.integrations.adapters.base import (
    Inbound,
    Mapped,
    MappedAlert,
    PayloadForbidden,
    PayloadRejected,
    Repeat,
    clip,
    json_object,
    validated,
)
from tocsin.integrations.adapters.cloudwatch.sns import confirm_subscription, verify_message
from tocsin.integrations.models import IntegrationType

Required = Annotated[str, StringConstraints(min_length=1, max_length=300_000)]


class CloudWatchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic_arns: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] = Field(
        default_factory=list,
        description="Accept only these SNS topics (empty: any topic whose messages SNS signed)",
    )
    insufficient_data: Literal["ignore", "alert"] = Field(
        default="ignore",
        description="What an INSUFFICIENT_DATA state does: nothing, or a low alert",
    )


# A signed message stays valid for whoever captured it: only recent ones are taken, so a
# replay must be fresh, and the MessageIds seen need keeping only that long
# (integrations/inbound.py prunes them after SEEN_DELIVERIES_KEPT).
MAX_MESSAGE_AGE = timedelta(hours=1)
MAX_CLOCK_AHEAD = timedelta(minutes=5)  # SNS's clock a little ahead of ours
SEEN_DELIVERIES_KEPT = MAX_MESSAGE_AGE + 2 * MAX_CLOCK_AHEAD


def refuse_stale(timestamp: str, now: datetime) -> None:
    """PayloadRejected naming `Timestamp` unless the message was sent within the hour."""
    try:
        sent = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        raise PayloadRejected.one(("Timestamp",), "not an ISO 8601 time") from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    if sent < now - MAX_MESSAGE_AGE:
        raise PayloadRejected.one(
            ("Timestamp",), "older than an hour: SNS delivers fresh messages; a replay?"
        )
    if sent > now + MAX_CLOCK_AHEAD:
        raise PayloadRejected.one(("Timestamp",), "in the future")


class Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    Type: Literal["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]
    MessageId: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    TopicArn: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    Message: str
    Timestamp: Required
    SignatureVersion: Required
    Signature: Required
    SigningCertURL: Required
    Subject: str | None = None
    SubscribeURL: str | None = None
    Token: str | None = None


def _alarm(alarm: dict[str, Any], options: CloudWatchOptions, subject: str | None) -> Mapped:
    state = str(alarm.get("NewStateValue", ""))
    name = str(alarm.get("AlarmName", ""))
    if state == "INSUFFICIENT_DATA" and options.insufficient_data == "ignore":
        return Mapped(ignored=[f"alarm {name} has insufficient data"])
    if state not in ("ALARM", "OK", "INSUFFICIENT_DATA"):
        raise PayloadRejected.one(
            ("Message", "NewStateValue"), "must be ALARM, OK or INSUFFICIENT_DATA"
        )
    key = str(alarm.get("AlarmArn") or "") or ":".join(
        str(alarm.get(k, "")) for k in ("AWSAccountId", "Region", "AlarmName")
    )
    trigger = alarm.get("Trigger") if isinstance(alarm.get("Trigger"), dict) else {}
    assert isinstance(trigger, dict)
    tags = {
        k: str(v)[:500]
        for k, v in {
            "region": alarm.get("Region"),
            "account": alarm.get("AWSAccountId"),
            "namespace": trigger.get("Namespace"),
            "metric": trigger.get("MetricName"),
        }.items()
        if v
    }
    alert = NormalisedAlert(
        title=clip(name or subject or "CloudWatch alarm", 1024),
        severity=Severity.LOW if state == "INSUFFICIENT_DATA" else Severity.HIGH,
        status=AlertStatus.RESOLVED if state == "OK" else AlertStatus.FIRING,
        description=clip(str(alarm.get("NewStateReason", "")), 65_536),
        source=clip(str(alarm.get("AlarmArn") or "cloudwatch"), 512),
        dedup_key=f"cloudwatch:{key}",
        tags=tags,
        details={"subject": subject, "alarm": alarm},
    )
    return Mapped(alerts=[MappedAlert(alert, repeat=Repeat.IDENTICAL_IS_DUPLICATE)])


def _plain_notification(envelope: Envelope) -> Mapped:
    """An SNS message that is not a CloudWatch alarm: one alert per message."""
    first_line = envelope.Message.strip().splitlines()[0] if envelope.Message.strip() else ""
    alert = NormalisedAlert(
        title=clip(envelope.Subject or first_line or "SNS notification", 1024),
        severity=Severity.HIGH,
        description=clip(envelope.Message, 65_536),
        source=clip(envelope.TopicArn, 512),
        dedup_key=f"sns:{envelope.MessageId}",
        details={"topic": envelope.TopicArn},
    )
    return Mapped(alerts=[MappedAlert(alert)])


class CloudWatchAdapter:
    integration_type: ClassVar[IntegrationType] = IntegrationType.CLOUDWATCH
    options_model: ClassVar[type[BaseModel]] = CloudWatchOptions

    async def map(self, inbound: Inbound, options: Any, settings: Settings) -> Mapped:
        data = json_object(inbound.body)
        envelope = validated(Envelope, data)
        header_type = inbound.headers.get("x-amz-sns-message-type")
        if header_type and header_type != envelope.Type:
            raise PayloadRejected.one(("Type",), "differs from the x-amz-sns-message-type header")
        refuse_stale(str(data.get("Timestamp", "")), inbound.now)
        noted: list[str] = []
        if inbound.dry_run:
            # Checking the signature means fetching Amazon's certificate: not in a dry run.
            noted.append("dry run: the SNS signature was not checked")
        else:
            await verify_message(
                data, patterns=settings.sns_signing_cert_url_patterns, now=inbound.now
            )
        if options.topic_arns and envelope.TopicArn not in options.topic_arns:
            raise PayloadForbidden(f"topic {envelope.TopicArn} is not one this integration takes")
        if envelope.Type == "SubscriptionConfirmation":
            if not envelope.SubscribeURL:
                raise PayloadRejected.one(("SubscribeURL",), "Field required")
            if inbound.dry_run:
                return Mapped(
                    ignored=[
                        *noted,
                        f"dry run: the subscription to {envelope.TopicArn} would be"
                        " confirmed (not done)",
                    ]
                )
            await confirm_subscription(envelope.SubscribeURL)
            return Mapped(
                ignored=[f"subscription to {envelope.TopicArn} confirmed"],
                reply={"subscription": "confirmed", "topic": envelope.TopicArn},
            )
        if envelope.Type == "UnsubscribeConfirmation":
            return Mapped(ignored=[*noted, f"unsubscribed from {envelope.TopicArn}"])
        try:
            inner = orjson.loads(envelope.Message)
        except orjson.JSONDecodeError:
            inner = None
        if isinstance(inner, dict) and "AlarmName" in inner:
            mapped = _alarm(inner, options, envelope.Subject)
        else:
            mapped = _plain_notification(envelope)
        return Mapped(
            alerts=mapped.alerts, ignored=[*noted, *mapped.ignored], delivery_id=envelope.MessageId
        )
