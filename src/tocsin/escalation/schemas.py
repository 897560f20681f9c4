"""What the escalation policy endpoints accept and return."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from tocsin.escalation.models import EscalationLevel, EscalationPolicy, TargetType
from tocsin.escalation.policies import LevelSpec
from tocsin.escalation.simulate import Simulation
from tocsin.noise.schemas import SuppressionOut
from tocsin.patching import not_null

MAX_LEVELS = 20
# A level waits at most a week before handing on; longer is a typo, not a policy.
MAX_TIMEOUT_MINUTES = 7 * 24 * 60

PolicyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
RepeatCount = Annotated[int, Field(ge=1, le=9, description="How many times the levels run")]
AckTimeout = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_TIMEOUT_MINUTES,
        description="Minutes after which an acknowledged incident returns to open and "
        "escalation resumes; null for never",
    ),
]


class LevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level_number: int = Field(ge=1, le=MAX_LEVELS)
    target_type: TargetType = Field(description="user | schedule | entire_team")
    target_id: uuid.UUID | None = Field(
        default=None,
        validate_default=True,
        description="The user or schedule; null for entire_team",
    )
    timeout_minutes: int = Field(default=30, ge=1, le=MAX_TIMEOUT_MINUTES)

    @field_validator("target_id")
    @classmethod
    def _fits_target_type(cls, value: uuid.UUID | None, info: ValidationInfo) -> uuid.UUID | None:
        target_type = info.data.get("target_type")
        if target_type is None:  # target_type itself was invalid and is reported on its own
            return value
        if target_type == TargetType.ENTIRE_TEAM and value is not None:
            raise ValueError("must be null for an entire_team target")
        if target_type != TargetType.ENTIRE_TEAM and value is None:
            raise ValueError(f"is required for a {target_type.value} target")
        return value

    def spec(self) -> LevelSpec:
        return LevelSpec(
            level_number=self.level_number,
            target_type=self.target_type,
            target_id=self.target_id,
            timeout_minutes=self.timeout_minutes,
        )


def _numbered_one_to_n(levels: list[LevelIn]) -> list[LevelIn]:
    numbers = sorted(level.level_number for level in levels)
    if numbers != list(range(1, len(levels) + 1)):
        raise ValueError(
            f"level_number values must be 1..{len(levels)} without gaps or duplicates; "
            f"got {numbers}"
        )
    return levels


Levels = Annotated[
    list[LevelIn],
    Field(min_length=1, max_length=MAX_LEVELS),
    AfterValidator(_numbered_one_to_n),
]


class PolicyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team_id: uuid.UUID
    name: PolicyName
    description: Description = ""
    is_default: bool = Field(
        default=False, description="The team's policy for alerts routed by tag; one per team"
    )
    repeat_count: RepeatCount = 1
    is_active: bool = True
    ack_timeout_minutes: AckTimeout | None = None
    levels: Levels


class PolicyUpdate(BaseModel):
    """Only the fields sent are changed; `levels`, when sent, replaces all levels. A policy
    cannot move to another team."""

    model_config = ConfigDict(extra="forbid")

    name: PolicyName | None = None
    description: Description | None = None
    is_default: bool | None = None
    repeat_count: RepeatCount | None = None
    is_active: bool | None = None
    # null is allowed here: it switches the acknowledgement timeout off.
    ack_timeout_minutes: AckTimeout | None = None
    levels: Levels | None = None

    _not_null = not_null("name", "description", "is_default", "repeat_count", "is_active", "levels")


class LevelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    level_number: int
    target_type: TargetType
    target_id: uuid.UUID | None
    timeout_minutes: int


class PolicyOut(BaseModel):
    id: uuid.UUID
    team_id: uuid.UUID
    name: str
    description: str
    is_default: bool
    repeat_count: int
    is_active: bool
    ack_timeout_minutes: int | None
    levels: list[LevelOut] = Field(description="In level_number order")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, policy: EscalationPolicy, levels: Sequence[EscalationLevel]) -> PolicyOut:
        """The policy's own fields read by name, and its levels in order."""
        own = {name: getattr(policy, name) for name in cls.model_fields if name != "levels"}
        ordered = sorted(levels, key=lambda lv: lv.level_number)
        return cls(**own, levels=[LevelOut.model_validate(level) for level in ordered])


class SimulateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    integration_id: uuid.UUID
    payload: dict[str, Any] = Field(
        description="The body as the integration would receive it, in its own format"
    )
    at: AwareDatetime | None = Field(
        default=None, description="The instant to simulate (default: now)"
    )


class RouteOut(BaseModel):
    team_id: uuid.UUID
    service_id: uuid.UUID | None
    escalation_policy_id: uuid.UUID | None
    reason: str


class RecipientOut(BaseModel):
    user_id: uuid.UUID
    via: str = Field(description="user | schedule | entire_team")
    schedule_id: uuid.UUID | None
    layer_id: uuid.UUID | None
    override_id: uuid.UUID | None


class PlanStepOut(BaseModel):
    at: datetime
    action: str = Field(description="page | skip | exhausted")
    level: int | None
    repeat: int | None
    users: list[RecipientOut]
    reason: str


class AlertSimulationOut(BaseModel):
    title: str
    status: str
    fingerprint: str
    route: RouteOut | None = Field(description="null: no rule matches; stored as unrouted")
    joins_incident_id: uuid.UUID | None = Field(
        description="The open incident it would join (then nobody new is paged)"
    )
    joins_hidden_incident: bool = Field(
        default=False,
        description="It would join an open incident of a team you may not see (not named)",
    )
    policy_name: str | None
    plan: list[PlanStepOut] = Field(description="Assuming nobody acknowledges")
    suppressed: SuppressionOut | None = Field(
        default=None,
        description="It would open no incident: the maintenance window, silence or "
        "inhibition rule that would suppress it, and why; or (kind group) it would join its "
        "group's incident, joins_incident_id (then the plan is empty)",
    )
    urgency: str | None = Field(
        default=None,
        description="high or low: the urgency of the incident it would open (the service's "
        "urgency, its support hours at `at`, or the severity); null when it opens none",
    )


class SimulationOut(BaseModel):
    at: datetime
    alerts: list[AlertSimulationOut]
    ignored: list[str]

    @classmethod
    def of(cls, simulation: Simulation) -> SimulationOut:
        return cls(
            at=simulation.at,
            ignored=list(simulation.ignored),
            alerts=[
                AlertSimulationOut(
                    title=a.title,
                    status=a.status.value,
                    fingerprint=a.fingerprint,
                    route=RouteOut(
                        team_id=a.route.team_id,
                        service_id=a.route.service_id,
                        escalation_policy_id=a.route.escalation_policy_id,
                        reason=a.route.reason.value,
                    )
                    if a.route
                    else None,
                    joins_incident_id=a.joins_incident_id,
                    joins_hidden_incident=a.joins_hidden_incident,
                    suppressed=SuppressionOut(
                        kind=a.suppressed.kind.value, id=a.suppressed.id, reason=a.suppressed.reason
                    )
                    if a.suppressed
                    else None,
                    policy_name=a.policy.name if a.policy else None,
                    urgency=a.urgency.value if a.urgency else None,
                    plan=[
                        PlanStepOut(
                            at=step.at,
                            action=step.action,
                            level=step.position.level if step.position else None,
                            repeat=step.position.repeat if step.position else None,
                            users=[
                                RecipientOut(
                                    user_id=r.user_id,
                                    via=r.via.value,
                                    schedule_id=r.schedule_id,
                                    layer_id=r.layer_id,
                                    override_id=r.override_id,
                                )
                                for r in step.recipients
                            ],
                            reason=step.reason,
                        )
                        for step in a.plan
                    ],
                )
                for a in simulation.alerts
            ],
        )
