"""Imports every domain's tables so Base.metadata is complete (Alembic, tests)."""

from tocsin.alerts.models import Alert
from tocsin.audit.models import AuditEntry
from tocsin.auth.models import ApiKey, User
from tocsin.catalog.models import Service
from tocsin.db import Base
from tocsin.escalation.models import (
    EscalationLevel,
    EscalationPolicy,
    IncidentEscalation,
    Page,
)
from tocsin.heartbeats.models import HeartbeatMonitor
from tocsin.importers.models import ImportRecord
from tocsin.incidents.models import Incident, IncidentEvent
from tocsin.integrations.email.models import EmailThread
from tocsin.integrations.models import (
    ChangeEvent,
    InboundDelivery,
    Integration,
    IntegrationPayload,
)
from tocsin.noise.models import InhibitionRule, MaintenanceWindow, Silence
from tocsin.notifications.models import ContactMethod, Delivery, DeliveryAttempt, NotificationRule
from tocsin.operations.models import ProcessRow
from tocsin.retention.models import RetentionCount
from tocsin.schedules.models import (
    CalendarToken,
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
    ScheduleOverrideUser,
    ScheduleParticipant,
)
from tocsin.teams.models import Team, TeamMember, TeamTag
from tocsin.timers.models import EscalationJob

__all__ = [
    "Alert",
    "ApiKey",
    "AuditEntry",
    "Base",
    "CalendarToken",
    "ChangeEvent",
    "ContactMethod",
    "Delivery",
    "DeliveryAttempt",
    "EmailThread",
    "EscalationJob",
    "EscalationLevel",
    "EscalationPolicy",
    "HeartbeatMonitor",
    "ImportRecord",
    "InboundDelivery",
    "Incident",
    "IncidentEscalation",
    "IncidentEvent",
    "InhibitionRule",
    "Integration",
    "IntegrationPayload",
    "MaintenanceWindow",
    "NotificationRule",
    "Page",
    "ProcessRow",
    "RetentionCount",
    "Schedule",
    "ScheduleLayer",
    "ScheduleOverride",
    "ScheduleOverrideUser",
    "ScheduleParticipant",
    "Service",
    "Silence",
    "Team",
    "TeamMember",
    "TeamTag",
    "User",
]
