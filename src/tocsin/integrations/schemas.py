"""What the integration endpoints accept and return."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from tocsin.alerts.models import AlertStatus
from tocsin.catalog.schemas import GROUP_WINDOW_HELP, GroupKey, GroupWindow, check_group_by
from tocsin.integrations.adapters import adapter_for
from tocsin.integrations.adapters.base import NoOptions
from tocsin.integrations.models import IntegrationType
from tocsin.integrations.templates import MAX_TEMPLATE, InvalidTemplate, check_template
from tocsin.noise.schemas import SuppressionOut
from tocsin.patching import not_null

MAX_DEDUP_WINDOW_MINUTES = 7 * 24 * 60

IntegrationName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
DedupWindow = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_DEDUP_WINDOW_MINUTES,
        description="Alerts with the same fingerprint within this many minutes join one "
        "incident; 0 turns deduplication off",
    ),
]
RateLimit = Annotated[
    int,
    Field(ge=1, le=1_000_000, description="Requests accepted per minute; null for no limit"),
]
INTEGRATION_GROUP_BY_HELP = (
    "Tag names whose values group this integration's alerts into one incident, overriding "
    "their service's group_by; null: the service's; empty: by fingerprint only"
)
TemplateSource = Annotated[str, StringConstraints(max_length=MAX_TEMPLATE)]


class Templates(BaseModel):
    """Jinja2 templates over `payload` (the body) and `alert` (what the adapter made of it);
    an empty result keeps the adapter's value."""

    model_config = ConfigDict(extra="forbid")

    title: TemplateSource | None = None
    severity: TemplateSource | None = Field(
        default=None, description="Must render to critical, high, medium, low or info (or P1-P5)"
    )
    dedup_key: TemplateSource | None = None
    routing_key: TemplateSource | None = None

    @field_validator("title", "severity", "dedup_key", "routing_key")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_template(value)
            except InvalidTemplate as exc:
                raise ValueError(f"invalid template: {exc}") from exc
        return value


def checked_options(type: IntegrationType, options: dict[str, Any]) -> dict[str, Any]:
    """The options as the adapter for `type` understands them; ValueError naming the problem."""
    try:
        model = adapter_for(type).options_model
    except KeyError:  # email and heartbeat integrations have no payload adapter, no options
        model = NoOptions
    try:
        return model.model_validate(options).model_dump(mode="json")
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where}: {first['msg']}" if where else first["msg"]) from exc


class IntegrationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    type: IntegrationType
    default_service_id: uuid.UUID | None
    dedup_window_minutes: int
    auto_resolve: bool
    active: bool
    options: dict[str, Any]
    templates: dict[str, Any]
    rate_limit_per_minute: int | None
    group_by: list[str] | None = Field(default=None, description=INTEGRATION_GROUP_BY_HELP)
    group_window_seconds: int | None = Field(default=None, description=GROUP_WINDOW_HELP)
    key_prefix: str = Field(description="The first characters of the key, to tell keys apart")
    created_at: datetime
    updated_at: datetime


class IntegrationWithKey(IntegrationOut):
    """Answered on creation and key rotation only: the key is never shown again."""

    key: str
    webhook_url: str
    email_address: str | None = Field(
        default=None, description="Email integrations: mail to this address raises alerts"
    )


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: IntegrationName
    type: IntegrationType = IntegrationType.GENERIC
    default_service_id: uuid.UUID | None = Field(
        default=None, description="Where alerts go that name no routing key"
    )
    dedup_window_minutes: DedupWindow = Field(
        default=60,
        description="Default 60 for generic integrations; for the other types, whose payloads "
        "carry their own dedup key, the longest window, so an incident takes its tool's "
        "updates for as long as it is open",
    )
    auto_resolve: bool = Field(default=True, description="A resolving alert resolves its incident")
    active: bool = True
    options: dict[str, Any] = Field(
        default_factory=dict, description="Settings of the type's adapter (docs/integrations.md)"
    )
    templates: Templates = Field(default_factory=Templates)
    rate_limit_per_minute: RateLimit | None = None
    group_by: list[GroupKey] | None = Field(
        default=None, max_length=10, description=INTEGRATION_GROUP_BY_HELP
    )
    group_window_seconds: GroupWindow | None = Field(default=None, description=GROUP_WINDOW_HELP)

    _distinct_keys = field_validator("group_by")(check_group_by)

    @model_validator(mode="after")
    def _type_defaults(self) -> IntegrationCreate:
        if "dedup_window_minutes" not in self.model_fields_set and self.type != "generic":
            self.dedup_window_minutes = MAX_DEDUP_WINDOW_MINUTES
        return self


class IntegrationUpdate(BaseModel):
    """Only the fields sent are changed; default_service_id and rate_limit_per_minute may be
    set to null."""

    model_config = ConfigDict(extra="forbid")

    name: IntegrationName | None = None
    default_service_id: uuid.UUID | None = None
    dedup_window_minutes: DedupWindow | None = None
    auto_resolve: bool | None = None
    active: bool | None = None
    options: dict[str, Any] | None = None
    templates: Templates | None = None
    rate_limit_per_minute: RateLimit | None = None
    group_by: list[GroupKey] | None = Field(
        default=None, max_length=10, description=INTEGRATION_GROUP_BY_HELP
    )
    group_window_seconds: GroupWindow | None = Field(default=None, description=GROUP_WINDOW_HELP)

    _distinct_keys = field_validator("group_by")(check_group_by)

    _not_null = not_null(
        "name", "dedup_window_minutes", "auto_resolve", "active", "options", "templates"
    )


class PayloadOut(BaseModel):
    """One received payload and what it became."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    received_at: datetime
    status_code: int
    content_type: str
    body: str
    body_truncated: bool
    mapping: dict[str, Any]


class InboundAlert(BaseModel):
    alert_id: uuid.UUID
    incident_id: uuid.UUID | None
    deduplicated: bool
    status: AlertStatus
    repeat: bool = Field(description="A resend of an alert already stored: nothing was added")
    suppressed: SuppressionOut | None = Field(
        default=None, description="Why it opened no incident (maintenance, silence, inhibition)"
    )


class InboundAccepted(BaseModel):
    """What /webhooks/{key} answers for integrations of a type other than generic."""

    alerts: list[InboundAlert]
    acknowledged: list[uuid.UUID] = Field(description="Incidents acknowledged by this payload")
    resolved: list[uuid.UUID] = Field(description="Incidents resolved by this payload's signals")
    ignored: list[str] = Field(description="Parts deliberately not turned into alerts, and why")
    duplicate_delivery: bool = Field(description="Already received (same delivery id)")
    reply: dict[str, Any] = Field(default_factory=dict)


class ChangeEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    integration_id: uuid.UUID | None
    service_id: uuid.UUID | None
    summary: str
    source: str
    happened_at: datetime
    received_at: datetime
    custom_details: dict[str, Any]
    links: list[dict[str, Any]]
