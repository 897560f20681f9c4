"""The few columns of tables owned above this package that a lifecycle change reads or stops
when it writes its timers: named here as plain table definitions (no model imported), so the
timers stay below `incidents` in the layering. Each use says why it needs the column."""

from __future__ import annotations

from sqlalchemy import Integer, String, Uuid, column, table

from tocsin.db import JSONType, UTCDateTime

# escalation/models.py: IncidentEscalation. The snapshot's "ack_timeout_minutes" is the
# acknowledgement timeout of an incident whose escalation has started; the acknowledgement
# timer carries where it stands (level, repeat, seq), as every timer does.
incident_escalations = table(
    "incident_escalations",
    column("incident_id", Uuid),
    column("policy_snapshot", JSONType),
    column("level", Integer),
    column("repeat", Integer),
    column("seq", Integer),
)

# escalation/models.py: EscalationPolicy. The acknowledgement timeout of an incident
# acknowledged before its escalation started (its policy not snapshotted yet).
escalation_policies = table(
    "escalation_policies",
    column("id", Uuid),
    column("ack_timeout_minutes", Integer),
)

# incidents/models.py: Incident (the policy it escalates through).
incidents = table(
    "incidents",
    column("id", Uuid),
    column("escalation_policy_id", Uuid),
)

# notifications/models.py: Delivery. Pages not yet sent are cancelled with the timers when an
# incident stops escalating. Statuses are stored as DeliveryStatus values (a test checks
# these two still are).
deliveries = table(
    "deliveries",
    column("incident_id", Uuid),
    column("status", String),
    column("updated_at", UTCDateTime()),
)
DELIVERY_PENDING = "pending"
DELIVERY_CANCELLED = "cancelled"
