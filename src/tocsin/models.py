"""Imports every domain's tables so Base.metadata is complete (Alembic, tests)."""

from tocsin.alerts.models import Alert
from tocsin.auth.models import ApiKey, User
from tocsin.catalog.models import Service
from tocsin.db import Base
from tocsin.escalation.models import (
    EscalationJob,
    EscalationLevel,
    EscalationPolicy,
    IncidentEscalation,
    Page,
)
from tocsin.importers.models import ImportRecord
from tocsin.incidents.models import Incident, IncidentEvent
from tocsin.integrations.email_models import EmailThread
from tocsin.integrations.heartbeat_models import HeartbeatMonitor
from tocsin.integrations.models import (
    ChangeEvent,
    InboundDelivery,
    Integration,
    IntegrationPayload,
)
from tocsin.notifications.models import ContactMethod, Delivery, DeliveryAttempt, NotificationRule
from tocsin.operations.models import ProcessRow
from tocsin.schedules.models import (
    CalendarToken,
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
    ScheduleOverrideUser,
    ScheduleParticipant,
)
from tocsin.teams.models import Team, TeamMember, TeamTag

__all__ = [
    "Alert",
    "ApiKey",
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
    "Integration",
    "IntegrationPayload",
    "NotificationRule",
    "Page",
    "ProcessRow",
    "Schedule",
    "ScheduleLayer",
    "ScheduleOverride",
    "ScheduleOverrideUser",
    "ScheduleParticipant",
    "Service",
    "Team",
    "TeamMember",
    "TeamTag",
    "User",
]
