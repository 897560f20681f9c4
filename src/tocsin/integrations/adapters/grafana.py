"""Grafana alerting webhooks: unified alerting (Grafana 8+, `version: "1"`), which is
Alertmanager's message plus Grafana's fields, and the legacy dashboard-alert payload (no
`version`, a `state` and a `ruleName`)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, Field, StringConstraints

from tocsin.alerts.models import AlertStatus, Severity
from tocsin.alerts.normalised import NormalisedAlert
from tocsin.config import Settings
from tocsin.integrations.adapters.alertmanager import GroupingOptions, map_message, parse_message
from tocsin.integrations.adapters.base import (
    Inbound,
    Mapped,
    MappedAlert,
    PayloadRejected,
    Repeat,
    clip,
    json_object,
    validated,
)
from tocsin.integrations.adapters.severity import severity_from_word
from tocsin.integrations.models import IntegrationType

# Legacy states that say nothing about whether there is a problem.
IGNORED_LEGACY_STATES = ("no_data", "paused", "pending")


class LegacyAlert(BaseModel):
    title: Annotated[str, StringConstraints(max_length=1024)] = ""
    ruleId: int | str | None = None
    ruleName: Annotated[str, StringConstraints(max_length=1024)] = ""
    ruleUrl: str = ""
    state: str
    message: Annotated[str, StringConstraints(max_length=65_536)] = ""
    imageUrl: str = ""
    evalMatches: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    orgId: int | None = None
    dashboardId: int | None = None
    panelId: int | None = None
    tags: dict[str, Any] = Field(default_factory=dict)


def map_legacy(data: dict[str, Any]) -> Mapped:
    legacy = validated(LegacyAlert, data)
    if legacy.state in IGNORED_LEGACY_STATES:
        return Mapped(ignored=[f"state {legacy.state} is not an alert"])
    if legacy.state not in ("alerting", "ok"):
        raise PayloadRejected.one(
            ("state",), "must be one of alerting, ok, no_data, paused, pending"
        )
    name = legacy.ruleName or legacy.title
    if not name:
        raise PayloadRejected.one(("ruleName",), "ruleName or title is required")
    rule = str(legacy.ruleId) if legacy.ruleId is not None else name
    tags = {str(k)[:200]: str(v)[:500] for k, v in list(legacy.tags.items())[:100]}
    alert = NormalisedAlert(
        title=clip(name, 1024),
        severity=severity_from_word(tags.get("severity"), Severity.HIGH),
        status=AlertStatus.RESOLVED if legacy.state == "ok" else AlertStatus.FIRING,
        description=legacy.message,
        source=clip(legacy.ruleUrl or "grafana", 512),
        dedup_key=f"grafana-rule:{legacy.orgId or 0}:{rule}",
        tags=tags,
        details={
            "state": legacy.state,
            "ruleUrl": legacy.ruleUrl,
            "imageUrl": legacy.imageUrl,
            "evalMatches": legacy.evalMatches,
            "dashboardId": legacy.dashboardId,
            "panelId": legacy.panelId,
        },
    )
    return Mapped(alerts=[MappedAlert(alert, repeat=Repeat.IDENTICAL_IS_DUPLICATE)])


class GrafanaAdapter:
    integration_type: ClassVar[IntegrationType] = IntegrationType.GRAFANA
    options_model: ClassVar[type[BaseModel]] = GroupingOptions

    async def map(self, inbound: Inbound, options: Any, settings: Settings) -> Mapped:
        data = json_object(inbound.body)
        if "version" not in data and "alerts" not in data:
            return map_legacy(data)
        message = parse_message(data, version="1")
        title = data.get("title") if isinstance(data.get("title"), str) else ""
        return map_message(
            message, options, source="grafana", key_prefix="grafana", title=title or ""
        )
