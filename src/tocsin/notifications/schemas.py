"""What the notification endpoints accept and return."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import apprise
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from tocsin.errors import InvalidInput
from tocsin.notifications.models import (
    AttemptStatus,
    ContactKind,
    DeliveryKind,
    DeliveryStatus,
    Urgency,
)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
WEB_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")


def address_problem(kind: ContactKind, address: str) -> str | None:
    """Why this address cannot be used for this kind of contact method, or None."""
    match kind:
        case ContactKind.EMAIL:
            ok = EMAIL.match(address) is not None
            return None if ok else "not an email address"
        case ContactKind.SMS | ContactKind.VOICE:
            ok = PHONE.match(address) is not None
            return None if ok else "not a phone number in E.164 form, like +14155550100"
        case ContactKind.WEBHOOK:
            ok = WEB_URL.match(address) is not None
            return None if ok else "not an http:// or https:// URL"
        case ContactKind.CHAT:
            ok = apprise.Apprise.instantiate(address) is not None
            return None if ok else "not an Apprise URL this server understands"


def check_address(kind: ContactKind, address: str) -> None:
    problem = address_problem(kind, address)
    if problem is not None:
        raise InvalidInput(problem, field="address")


class ContactMethodIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ContactKind
    name: str = Field(min_length=1, max_length=200)
    address: str = Field(
        min_length=1,
        max_length=2048,
        description="Email address, E.164 phone number, Apprise URL or webhook URL",
    )

    @field_validator("address")
    @classmethod
    def _address_fits_kind(cls, address: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        if kind is not None:
            problem = address_problem(kind, address)
            if problem is not None:
                raise ValueError(problem)
        return address


class ContactMethodUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    address: str | None = Field(default=None, min_length=1, max_length=2048)


class ContactMethodOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    kind: ContactKind
    name: str
    address: str
    verified_at: datetime | None
    signing_secret: str | None = Field(
        description="Webhooks only: the HMAC-SHA256 key their signatures are made with"
    )
    created_at: datetime
    updated_at: datetime


class ContactMethodList(BaseModel):
    items: list[ContactMethodOut]
    warnings: list[str]


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[0-9]{6}$", description="The six digits that were sent")


class QueuedOut(BaseModel):
    delivery_id: uuid.UUID
    status: DeliveryStatus


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    urgency: Urgency
    delay_minutes: int = Field(ge=0, le=1440)
    contact_method_id: uuid.UUID


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    urgency: Urgency
    delay_minutes: int
    contact_method_id: uuid.UUID
    created_at: datetime


class RuleList(BaseModel):
    items: list[RuleOut]
    warnings: list[str]


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    status: AttemptStatus
    channel: str
    provider_id: str | None
    error: str | None
    started_at: datetime
    finished_at: datetime


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: DeliveryKind
    incident_id: uuid.UUID | None
    user_id: uuid.UUID
    contact_method_id: uuid.UUID | None
    rule_id: uuid.UUID | None
    contact_kind: ContactKind
    address: str = Field(
        description="Where it went; for anyone but the recipient and admins only the kind and"
        " the last four characters"
    )
    address_masked: bool = False
    status: DeliveryStatus
    due_at: datetime
    attempts: int
    channel: str | None
    provider_id: str | None
    last_error: str | None
    bundle_size: int
    bundled_into_id: uuid.UUID | None
    sent_at: datetime | None
    created_at: datetime
    attempt_log: list[AttemptOut] = Field(default_factory=list)


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


class PagingPreferenceIn(BaseModel):
    """Adaptive downgrade: after `pages_per_hour` pages within an hour, further low-urgency
    pages go to `quiet_contact_method_id` only (null: the account email)."""

    model_config = ConfigDict(extra="forbid")

    pages_per_hour: int | None = Field(
        default=None, ge=0, le=1000, description="null or 0: never downgrade"
    )
    quiet_contact_method_id: uuid.UUID | None = Field(
        default=None, description="A verified method of this user; null: the account email"
    )


class PagingPreferenceOut(BaseModel):
    user_id: uuid.UUID
    pages_per_hour: int | None
    quiet_contact_method_id: uuid.UUID | None
