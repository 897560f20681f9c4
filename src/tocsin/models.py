"""Imports every domain's tables so Base.metadata is complete (Alembic, tests)."""

from tocsin.alerts.models import Alert
from tocsin.auth.models import ApiKey, User
from tocsin.catalog.models import Service
from tocsin.db import Base
from tocsin.escalation.models import EscalationJob, EscalationLevel, EscalationPolicy
from tocsin.incidents.models import Incident, IncidentEvent
from tocsin.integrations.models import Integration
from tocsin.teams.models import Team, TeamMember, TeamTag

__all__ = [
    "Alert",
    "ApiKey",
    "Base",
    "EscalationJob",
    "EscalationLevel",
    "EscalationPolicy",
    "Incident",
    "IncidentEvent",
    "Integration",
    "Service",
    "Team",
    "TeamMember",
    "TeamTag",
    "User",
]
