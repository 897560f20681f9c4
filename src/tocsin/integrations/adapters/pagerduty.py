"""PagerDuty Events API v2 (alert and change events) and the v1 generic events API.

Field names, limits and enumerations follow PagerDuty's published schema, so a client written
for PagerDuty passes or fails validation here as it would there. A trigger without a dedup
key gets a fresh one (32 hex characters), which the reply carries back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    model_validator,
)

from tocsin.alerts.models import AlertStatus, Severity
from tocsin.alerts.normalised import NormalisedAlert
from tocsin.config import Settings
from tocsin.integrations.adapters.base import (
    ChangeNotice,
    Inbound,
    Mapped,
    MappedAlert,
    NoOptions,
    Signal,
    SignalAction,
    json_object,
    validated,
)
from tocsin.integrations.models import IntegrationType

MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255

# critical and error are high urgency at PagerDuty, warning and info low.
SEVERITIES: dict[str, Severity] = {
    "critical": Severity.CRITICAL,
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "info": Severity.INFO,
}

Summary = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SUMMARY)]
DedupKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_DEDUP_KEY)]
ShortText = Annotated[str, StringConstraints(max_length=1024)]


class Link(BaseModel):
    href: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    text: ShortText | None = None


class Image(BaseModel):
    src: Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=r"^https://")] = (
        Field(description="must be an https URL")
    )
    href: str | None = None
    alt: ShortText | None = None


class AlertPayload(BaseModel):
    summary: Summary
    source: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: datetime | None = None
    component: ShortText | None = None
    group: ShortText | None = None
    class_: ShortText | None = Field(default=None, alias="class")
    custom_details: Any = None


class AlertEvent(BaseModel):
    """POST /v2/enqueue."""

    routing_key: Annotated[str, StringConstraints(min_length=1)]
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: DedupKey | None = None
    payload: AlertPayload | None = None
    images: list[Image] = Field(default_factory=list, max_length=100)
    links: list[Link] = Field(default_factory=list, max_length=100)
    client: ShortText | None = None
    client_url: Annotated[str, StringConstraints(max_length=2048)] | None = None

    @model_validator(mode="after")
    def _required_by_action(self) -> AlertEvent:
        if self.event_action == "trigger" and self.payload is None:
            raise ValueError("payload is required when event_action is trigger")
        if self.event_action != "trigger" and self.dedup_key is None:
            raise ValueError(f"dedup_key is required when event_action is {self.event_action}")
        return self


class ChangePayload(BaseModel):
    summary: Summary
    source: Annotated[str, StringConstraints(max_length=512)] = ""
    timestamp: datetime | None = None
    custom_details: Any = None


class ChangeEventIn(BaseModel):
    """POST /v2/change/enqueue."""

    routing_key: Annotated[str, StringConstraints(min_length=1)]
    payload: ChangePayload
    links: list[Link] = Field(default_factory=list, max_length=100)
    images: list[Image] = Field(default_factory=list, max_length=100)


class Context(BaseModel):
    type: Literal["link", "image"]
    href: str | None = None
    src: str | None = None
    text: str | None = None
    alt: str | None = None

    @model_validator(mode="after")
    def _needs_target(self) -> Context:
        if self.type == "link" and not self.href:
            raise ValueError("a link context needs href")
        if self.type == "image" and not (self.src or "").startswith("https://"):
            raise ValueError("an image context needs an https src")
        return self


class V1Event(BaseModel):
    """POST /generic/2010-04-15/create_event.json."""

    service_key: Annotated[str, StringConstraints(min_length=1)]
    event_type: Literal["trigger", "acknowledge", "resolve"]
    incident_key: DedupKey | None = None
    description: Annotated[str, StringConstraints(max_length=MAX_SUMMARY)] | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    client: ShortText | None = None
    client_url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    contexts: list[Context] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _required_by_type(self) -> V1Event:
        if self.event_type == "trigger" and not self.description:
            raise ValueError("description is required when event_type is trigger")
        if self.event_type != "trigger" and self.incident_key is None:
            raise ValueError(f"incident_key is required when event_type is {self.event_type}")
        return self


def new_dedup_key() -> str:
    return uuid.uuid4().hex


def _trigger_or_signal(
    action: str, given_key: str | None, *, reply_field: str, alert: Callable[[str], NormalisedAlert]
) -> Mapped:
    """A v1 or v2 alert event: a trigger is the alert `alert` makes under the event's key,
    any other action (acknowledge, resolve) a signal to the alerts with that key. The key is
    a new one when the event names none; the reply names it."""
    key = given_key or new_dedup_key()
    mapped = Mapped(reply={reply_field: key})
    if action == "trigger":
        mapped.alerts.append(MappedAlert(alert(key)))
    else:
        mapped.signals.append(Signal(SignalAction(action), key))
    return mapped


def _dropping_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != []}


def map_alert_event(data: dict[str, Any]) -> Mapped:
    """A v2 alert event: a trigger becomes an alert, acknowledge and resolve signals."""
    event: AlertEvent = validated(AlertEvent, data)
    alert = partial(_v2_alert, event)
    return _trigger_or_signal(
        event.event_action, event.dedup_key, reply_field="dedup_key", alert=alert
    )


def _v2_alert(event: AlertEvent, key: str) -> NormalisedAlert:
    assert event.payload is not None
    payload = event.payload
    tags = _dropping_none(
        {"component": payload.component, "group": payload.group, "class": payload.class_}
    )
    details = _dropping_none(
        {
            "custom_details": payload.custom_details,
            "timestamp": payload.timestamp.isoformat() if payload.timestamp else None,
            "links": [link.model_dump(exclude_none=True) for link in event.links],
            "images": [image.model_dump(exclude_none=True) for image in event.images],
            "client": event.client,
            "client_url": event.client_url,
            "pagerduty_severity": payload.severity,
        }
    )
    return NormalisedAlert(
        title=payload.summary,
        severity=SEVERITIES[payload.severity],
        status=AlertStatus.FIRING,
        source=payload.source,
        dedup_key=key,
        tags={k: str(v)[:500] for k, v in tags.items()},
        details=details,
    )


def map_change_event(data: dict[str, Any]) -> Mapped:
    event: ChangeEventIn = validated(ChangeEventIn, data)
    custom = event.payload.custom_details
    notice = ChangeNotice(
        summary=event.payload.summary,
        source=event.payload.source,
        happened_at=event.payload.timestamp,
        custom_details=custom if isinstance(custom, dict) else _dropping_none({"value": custom}),
        links=[link.model_dump(exclude_none=True) for link in event.links],
    )
    return Mapped(changes=[notice])


def map_v1_event(data: dict[str, Any]) -> Mapped:
    event: V1Event = validated(V1Event, data)
    alert = partial(_v1_alert, event)
    return _trigger_or_signal(
        event.event_type, event.incident_key, reply_field="incident_key", alert=alert
    )


def _v1_alert(event: V1Event, key: str) -> NormalisedAlert:
    assert event.description is not None
    details = _dropping_none(
        {
            "details": event.details or None,
            "client": event.client,
            "client_url": event.client_url,
            "contexts": [c.model_dump(exclude_none=True) for c in event.contexts],
        }
    )
    return NormalisedAlert(
        title=event.description,
        # v1 has no severity; PagerDuty treats such events as high urgency.
        severity=Severity.HIGH,
        source=event.client or "",
        dedup_key=key,
        details=details,
    )


class PagerDutyAdapter:
    """At /webhooks/{key}: v2 alert events, or v1 events (told apart by event_type)."""

    integration_type: ClassVar[IntegrationType] = IntegrationType.PAGERDUTY
    options_model: ClassVar[type[BaseModel]] = NoOptions

    async def map(self, inbound: Inbound, options: Any, settings: Settings) -> Mapped:
        data = json_object(inbound.body)
        # The URL already names the integration; a routing key in the body is not needed.
        data.setdefault("routing_key", "-")
        data.setdefault("service_key", "-")
        if "event_type" in data and "event_action" not in data:
            return map_v1_event(data)
        return map_alert_event(data)
