"""What an import brings in, as plain values independent of the vendor it came from.

Every reference between objects is by the source's own id (a string); `apply.py` resolves them
to Tocsin ids through the import ledger. Conversions that could not be exact are collected as
`Lossy` notes beside the objects, so the report can list each with its reason.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from tocsin.escalation.models import TargetType
from tocsin.integrations.models import IntegrationType
from tocsin.notifications.models import ContactKind, Urgency
from tocsin.schedules.definition import Restriction, Rotation
from tocsin.teams.models import TeamRole


class Source(enum.StrEnum):
    PAGERDUTY = "pagerduty"
    OPSGENIE = "opsgenie"
    GRAFANA_ONCALL = "grafana-oncall"

    @property
    def label(self) -> str:
        return _TITLES[self]


_TITLES = {
    Source.PAGERDUTY: "PagerDuty",
    Source.OPSGENIE: "Opsgenie",
    Source.GRAFANA_ONCALL: "Grafana OnCall",
}


class Kind(enum.StrEnum):
    """The kinds of object an import writes, in the order they are written."""

    USER = "user"
    CONTACT_METHOD = "contact_method"
    NOTIFICATION_RULE = "notification_rule"
    TEAM = "team"
    SCHEDULE = "schedule"
    OVERRIDE = "override"
    POLICY = "escalation_policy"
    SERVICE = "service"
    INTEGRATION = "integration"
    MAINTENANCE = "maintenance_window"


@dataclass(frozen=True, slots=True)
class Lossy:
    """A conversion that is not exact: what it concerns and why."""

    kind: Kind
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class ContactIn:
    source_id: str
    kind: ContactKind
    label: str
    address: str


@dataclass(frozen=True, slots=True)
class RuleIn:
    source_id: str
    urgency: Urgency
    delay_minutes: int
    contact_source_id: str


@dataclass(frozen=True, slots=True)
class UserIn:
    source_id: str
    email: str
    name: str
    time_zone: str
    contacts: tuple[ContactIn, ...] = ()
    rules: tuple[RuleIn, ...] = ()


@dataclass(frozen=True, slots=True)
class MemberIn:
    user_source_id: str
    role: TeamRole


@dataclass(frozen=True, slots=True)
class TeamIn:
    source_id: str
    name: str
    description: str
    members: tuple[MemberIn, ...] = ()


@dataclass(frozen=True, slots=True)
class LayerIn:
    """One rotation layer; `handoff` is a naive wall-clock reading in the schedule's zone."""

    name: str
    start: datetime
    end: datetime | None
    rotation: Rotation
    turn_length: int
    handoff: datetime
    # Each turn's people, by source user id: everyone in a group is on call together.
    participants: tuple[tuple[str, ...], ...]
    restrictions: tuple[Restriction, ...] = ()


@dataclass(frozen=True, slots=True)
class OverrideIn:
    source_id: str
    user_source_ids: tuple[str, ...]
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class ScheduleIn:
    """Layers lowest precedence first, as Tocsin stores them."""

    source_id: str
    name: str
    description: str
    team_source_id: str | None
    time_zone: str
    layers: tuple[LayerIn, ...]
    overrides: tuple[OverrideIn, ...] = ()


@dataclass(frozen=True, slots=True)
class TargetIn:
    type: TargetType
    source_id: str | None  # None for the entire team


@dataclass(frozen=True, slots=True)
class LevelIn:
    timeout_minutes: int
    target: TargetIn


@dataclass(frozen=True, slots=True)
class PolicyIn:
    source_id: str
    name: str
    description: str
    team_source_id: str | None
    repeat_count: int
    levels: tuple[LevelIn, ...]
    ack_timeout_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class IntegrationIn:
    source_id: str
    name: str
    type: IntegrationType


@dataclass(frozen=True, slots=True)
class ServiceIn:
    source_id: str
    name: str
    description: str
    team_source_id: str | None
    policy_source_id: str | None
    integrations: tuple[IntegrationIn, ...] = ()


@dataclass(frozen=True, slots=True)
class MaintenanceIn:
    """Alerts of these services page nobody over [start, end)."""

    source_id: str
    description: str
    start: datetime
    end: datetime
    service_source_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RenderedShift:
    """The source's own answer: these users (by source id) are on call over [start, end)."""

    start: datetime
    end: datetime
    user_source_ids: tuple[str, ...]


@dataclass(slots=True)
class Export:
    """Everything read from one source, converted, with the notes on what was not exact."""

    source: Source
    users: list[UserIn] = field(default_factory=list)
    teams: list[TeamIn] = field(default_factory=list)
    schedules: list[ScheduleIn] = field(default_factory=list)
    policies: list[PolicyIn] = field(default_factory=list)
    services: list[ServiceIn] = field(default_factory=list)
    maintenance: list[MaintenanceIn] = field(default_factory=list)
    lossy: list[Lossy] = field(default_factory=list)
    # Things not imported at all: (kind, name, reason).
    skipped: list[Lossy] = field(default_factory=list)
    # Things the reader should know that are not losses (a schedule kept in UTC, say).
    notes: list[str] = field(default_factory=list)
    # schedule source id -> the source's rendered final schedule, when it was fetched.
    rendered: dict[str, list[RenderedShift]] = field(default_factory=dict)
