"""What the alert endpoints accept and return."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from tocsin.alerts.limits import MAX_DEPTH, clip, depth_beyond
from tocsin.alerts.models import AlertStatus, Severity
from tocsin.alerts.normalised import NormalisedAlert
from tocsin.noise.schemas import SuppressionOut

TagKey = Annotated[str, StringConstraints(min_length=1, max_length=200)]
TagValue = Annotated[str, StringConstraints(max_length=500)]

_ROUTING_KEY_NAMES = ("routing_key", "routingKey")


def _find_routing_key(data: dict[str, Any]) -> Any:
    """routing_key or routingKey at the top, else inside details or metadata."""
    for name in _ROUTING_KEY_NAMES:
        if data.get(name) is not None:
            return data[name]
    for container in ("details", "metadata"):
        inner = data.get(container)
        if isinstance(inner, dict):
            for name in _ROUTING_KEY_NAMES:
                if inner.get(name) is not None:
                    return inner[name]
    return None


class GenericAlertIn(BaseModel):
    """The generic webhook payload. Unknown top-level fields are ignored, so tools that send
    more than this still work."""

    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1, max_length=1024)
    description: str = Field(default="", max_length=65_536)
    severity: Severity = Field(
        default=Severity.HIGH, description="critical | high | medium | low | info"
    )
    source: str = Field(default="", max_length=512)
    dedup_key: str | None = Field(default=None, min_length=1, max_length=512)
    status: AlertStatus = AlertStatus.FIRING
    routing_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Also read as routingKey, and inside details or metadata",
    )
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=100)
    details: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _routing_key_aliases(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("routing_key") is None:
            found = _find_routing_key(data)
            if found is not None:
                data = {**data, "routing_key": found}
        return data

    def normalise(self) -> NormalisedAlert:
        details = dict(self.details)
        if self.metadata:
            details.setdefault("metadata", self.metadata)
        return NormalisedAlert(
            title=self.title,
            severity=self.severity,
            status=self.status,
            description=self.description,
            source=self.source,
            dedup_key=self.dedup_key,
            routing_key=self.routing_key,
            tags=dict(self.tags),
            details=details,
        )


class IngestAccepted(BaseModel):
    alert_id: uuid.UUID
    incident_id: uuid.UUID | None
    deduplicated: bool
    suppressed: SuppressionOut | None = Field(
        default=None,
        description="Present when the alert opened no incident because of a maintenance "
        "window, a silence or an inhibition rule: which one, and why",
    )


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    integration_id: uuid.UUID
    incident_id: uuid.UUID | None
    fingerprint: str
    title: str
    description: str
    severity: Severity
    status: AlertStatus
    source: str
    dedup_key: str | None
    routing_key: str | None
    tags: dict[str, Any]
    details: dict[str, Any]
    routed: bool
    received_at: datetime
    suppressed_kind: str | None = Field(
        default=None, description="Why it opened no incident: maintenance, silence or inhibition"
    )
    suppressed_by: uuid.UUID | None = Field(
        default=None, description="The maintenance window's, silence's or inhibition rule's id"
    )
    suppression_reason: str | None = None

    @field_validator("tags", "details", mode="before")
    @classmethod
    def _cut_too_deep(cls, value: Any) -> Any:
        # Rows stored before ingest limited nesting: shown cut, never failing the read.
        return clip(value) if depth_beyond(value, MAX_DEPTH) else value
