"""Opsgenie Alert API shapes: Create (`POST /v2/alerts`) opens or joins by `alias`, Close and
Acknowledge (`POST /v2/alerts/{alias}/close?identifierType=alias`) act on it. Limits are
Opsgenie's; a create without an alias is never deduplicated, as there."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tocsin.alerts.models import Severity
from tocsin.alerts.normalised import NormalisedAlert
from tocsin.config import Settings
from tocsin.integrations.adapters.base import (
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

PRIORITIES = {
    "P1": Severity.CRITICAL,
    "P2": Severity.HIGH,
    "P3": Severity.MEDIUM,
    "P4": Severity.LOW,
    "P5": Severity.INFO,
}


class Responder(BaseModel):
    id: str | None = None
    name: str | None = None
    username: str | None = None
    type: Literal["team", "user", "escalation", "schedule"]


class CreateAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: Annotated[str, StringConstraints(min_length=1, max_length=130)]
    alias: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    description: Annotated[str, StringConstraints(max_length=15_000)] = ""
    responders: list[Responder] = Field(default_factory=list, max_length=50)
    visibleTo: list[Responder] = Field(default_factory=list, max_length=50)
    actions: list[Annotated[str, StringConstraints(max_length=50)]] = Field(
        default_factory=list, max_length=10
    )
    tags: list[Annotated[str, StringConstraints(max_length=50)]] = Field(
        default_factory=list, max_length=20
    )
    details: dict[str, str] = Field(default_factory=dict)
    entity: Annotated[str, StringConstraints(max_length=512)] = ""
    source: Annotated[str, StringConstraints(max_length=100)] = ""
    priority: Literal["P1", "P2", "P3", "P4", "P5"] = "P3"
    user: Annotated[str, StringConstraints(max_length=100)] = ""
    note: Annotated[str, StringConstraints(max_length=25_000)] = ""


class ActionBody(BaseModel):
    """The optional body of Close and Acknowledge."""

    user: Annotated[str, StringConstraints(max_length=100)] = ""
    source: Annotated[str, StringConstraints(max_length=100)] = ""
    note: Annotated[str, StringConstraints(max_length=25_000)] = ""


def _tags(tags: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for tag in tags:
        key, sep, value = tag.partition(":")
        out[key] = value if sep else ""
    return out


def map_create(data: dict[str, Any]) -> Mapped:
    create = validated(CreateAlert, data)
    alias = create.alias or uuid.uuid4().hex
    alert = NormalisedAlert(
        title=create.message,
        severity=PRIORITIES[create.priority],
        description=create.description,
        source=create.source or create.entity,
        dedup_key=alias,
        tags=_tags(create.tags),
        details={
            "alias": alias,
            "priority": create.priority,
            "entity": create.entity,
            "details": create.details,
            "responders": [r.model_dump(exclude_none=True) for r in create.responders],
            "user": create.user,
            "note": create.note,
            "actions": create.actions,
        },
    )
    return Mapped(alerts=[MappedAlert(alert)], reply={"alias": alias})


def map_action(identifier: str, action: SignalAction, data: dict[str, Any]) -> Mapped:
    validated(ActionBody, data)
    return Mapped(signals=[Signal(action, identifier)])


class OpsgenieAdapter:
    """At /webhooks/{key}: a Create alert body."""

    integration_type: ClassVar[IntegrationType] = IntegrationType.OPSGENIE
    options_model: ClassVar[type[BaseModel]] = NoOptions

    async def map(self, inbound: Inbound, options: Any, settings: Settings) -> Mapped:
        return map_create(json_object(inbound.body))
