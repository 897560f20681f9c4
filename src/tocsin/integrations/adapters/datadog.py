"""Datadog webhooks. Datadog posts whatever JSON the webhook's template says; this reads the
recommended template (docs/integrations.md) and Datadog's default one.

Dedup key: alert_cycle_key (the same from trigger to recovery), else alert_id plus scope,
else aggreg_key, else the title without its `[Triggered]` prefix. `Recovered` resolves;
`Renotify` and `Re-*` transitions are repeats of what is already open.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from tocsin.alerts.models import AlertStatus, Severity
from tocsin.alerts.normalised import NormalisedAlert
from tocsin.config import Settings
from tocsin.integrations.adapters.base import (
    Inbound,
    Mapped,
    MappedAlert,
    NoOptions,
    PayloadRejected,
    Repeat,
    clip,
    json_object,
    validated,
)
from tocsin.integrations.adapters.severity import severity_from_word
from tocsin.integrations.models import IntegrationType

# Datadog prefixes event titles with the transition: "[Triggered on {host:a}] CPU high".
_TITLE_PREFIX = re.compile(r"^\s*\[(?P<transition>[A-Za-z -]+?)(?: on [^\]]*)?\]\s*")
_ALERT_TYPE_SEVERITY = {"error": Severity.HIGH, "warning": Severity.MEDIUM, "info": Severity.INFO}


def _as_text(value: Any) -> Any:
    """Datadog's variables are substituted as text, but numbers arrive unquoted too."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_as_text), StringConstraints(max_length=1024)]


class DatadogEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    title: Text = ""
    body: Annotated[str, StringConstraints(max_length=65_536)] = ""
    alert_id: Text = ""
    alert_cycle_key: Text = ""
    alert_transition: Text = ""
    alert_type: Text = ""
    alert_status: Text = ""
    alert_scope: Text = Field(default="", alias="scope")
    aggreg_key: Text = ""
    priority: Text = ""
    hostname: Text = ""
    link: Text = ""
    tags: str | list[str] = ""
    event_type: Text = ""
    date: Text = ""
    id: Text = ""


def _tags(raw: str | list[str]) -> dict[str, str]:
    items = raw if isinstance(raw, list) else [t for t in raw.split(",")]
    tags: dict[str, str] = {}
    for item in items[:100]:
        key, _, value = item.strip().partition(":")
        if key:
            tags[key[:200]] = value[:500]
    return tags


def map_event(data: dict[str, Any]) -> Mapped:
    event = validated(DatadogEvent, data)
    if not (event.title or event.body):
        raise PayloadRejected.one(("title",), "title (or body) is required")
    prefix = _TITLE_PREFIX.match(event.title)
    transition = event.alert_transition or (prefix.group("transition") if prefix else "")
    bare_title = event.title[prefix.end() :] if prefix else event.title
    recovered = transition.lower() in ("recovered", "success") or event.alert_type == "success"
    repeat = (
        Repeat.DUPLICATE_WHILE_OPEN
        if transition.lower() == "renotify" or transition.lower().startswith("re-")
        else Repeat.RECORD
    )
    if event.alert_cycle_key:
        key = f"cycle:{event.alert_cycle_key}"
    elif event.alert_id:
        key = f"monitor:{event.alert_id}:{event.alert_scope}"
    elif event.aggreg_key:
        key = f"aggreg:{event.aggreg_key}"
    else:
        key = f"title:{bare_title}"
    severity = severity_from_word(
        event.priority, _ALERT_TYPE_SEVERITY.get(event.alert_type, Severity.HIGH)
    )
    alert = NormalisedAlert(
        title=clip(bare_title or event.body, 1024),
        severity=severity,
        status=AlertStatus.RESOLVED if recovered else AlertStatus.FIRING,
        description=event.body,
        source=clip(event.hostname or "datadog", 512),
        dedup_key=key,
        tags=_tags(event.tags),
        details={
            "transition": transition,
            "link": event.link,
            "alert_id": event.alert_id,
            "alert_type": event.alert_type,
            "alert_status": event.alert_status,
            "priority": event.priority,
            "scope": event.alert_scope,
            "event_id": event.id,
            "date": event.date,
            **(event.model_extra or {}),
        },
    )
    return Mapped(alerts=[MappedAlert(alert, repeat=repeat)])


class DatadogAdapter:
    integration_type: ClassVar[IntegrationType] = IntegrationType.DATADOG
    options_model: ClassVar[type[BaseModel]] = NoOptions

    async def map(self, inbound: Inbound, options: Any, settings: Settings) -> Mapped:
        return map_event(json_object(inbound.body))
