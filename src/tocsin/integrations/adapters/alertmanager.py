"""Prometheus Alertmanager webhook (payload version 4); Grafana's unified alerting reuses it.

By default one incident per alert group: the dedup key is the group's `groupKey`, which is
stable for the group's life, and the incident resolves when the message's `status` is
`resolved` (every alert in it resolved). Messages in between that resolve some alerts are
recorded on the incident. With the option `grouping: alert` each alert is its own incident,
keyed by its `fingerprint` and resolved by its own status. Alertmanager re-sends identical
messages every repeat_interval; those are recognised and add nothing.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tocsin.alerts.models import AlertStatus, Severity
from tocsin.alerts.normalised import NormalisedAlert
from tocsin.config import Settings
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

MAX_ALERTS = 1000
MAX_TAGS = 100
LabelMap = dict[Annotated[str, StringConstraints(max_length=1024)], str]

# Per-alert fields Grafana adds to Alertmanager's, kept in the details when present.
GRAFANA_ALERT_FIELDS = (
    "silenceURL",
    "dashboardURL",
    "panelURL",
    "values",
    "valueString",
    "imageURL",
    "ruleUID",
    "orgId",
)


class GroupingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grouping: Literal["group", "alert"] = Field(
        default="group",
        description="group: one incident per alert group (groupKey); "
        "alert: one incident per alert (fingerprint)",
    )


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: LabelMap
    annotations: LabelMap = Field(default_factory=dict)
    startsAt: str = ""
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = ""


class WebhookMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: str
    groupKey: Annotated[str, StringConstraints(min_length=1, max_length=8192)]
    truncatedAlerts: int = 0
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: LabelMap = Field(default_factory=dict)
    commonLabels: LabelMap = Field(default_factory=dict)
    commonAnnotations: LabelMap = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[WebhookAlert] = Field(min_length=1, max_length=MAX_ALERTS)


def parse_message(data: dict[str, Any], *, version: str) -> WebhookMessage:
    message = validated(WebhookMessage, data)
    if message.version != version:
        raise PayloadRejected.one(("version",), f"expected version {version!r}")
    return message


def _status(word: str) -> AlertStatus:
    return AlertStatus.RESOLVED if word == "resolved" else AlertStatus.FIRING


def _tags(labels: dict[str, str]) -> dict[str, str]:
    return {k[:200]: v[:500] for k, v in list(labels.items())[:MAX_TAGS]}


def _worst_severity(alerts: list[WebhookAlert], common: dict[str, str]) -> Severity:
    if "severity" in common:
        return severity_from_word(common["severity"])
    firing = [a for a in alerts if a.status == "firing"] or alerts
    ranked = list(Severity)  # declared from critical down to info
    found = [severity_from_word(a.labels.get("severity")) for a in firing]
    return min(found, key=ranked.index)


def _alert_detail(alert: WebhookAlert) -> dict[str, Any]:
    extra = alert.model_extra or {}
    return {
        "status": alert.status,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": alert.startsAt,
        "endsAt": alert.endsAt,
        "generatorURL": alert.generatorURL,
        "fingerprint": alert.fingerprint,
        **{name: extra[name] for name in GRAFANA_ALERT_FIELDS if name in extra},
    }


def _name(labels: dict[str, str], annotations: dict[str, str]) -> str:
    if annotations.get("summary"):
        return annotations["summary"]
    name = labels.get("alertname", "")
    if name and labels.get("instance"):
        return f"{name} on {labels['instance']}"
    return name


def unescape_receiver(receiver: str) -> str:
    """Alertmanager regex-quotes the receiver name (`team\\.a`); this undoes it."""
    out = []
    escaped = False
    for ch in receiver:
        if ch == "\\" and not escaped:
            escaped = True
            continue
        out.append(ch)
        escaped = False
    return "".join(out)


def _alert_key(alert: WebhookAlert) -> str:
    if alert.fingerprint:
        return alert.fingerprint
    labels = "\x00".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
    return hashlib.sha256(labels.encode()).hexdigest()[:16]


def group_alert(
    message: WebhookMessage, *, source: str, key_prefix: str, title: str = ""
) -> MappedAlert:
    """The whole message as one alert, keyed by groupKey."""
    firing = sum(1 for a in message.alerts if a.status == "firing")
    name = (
        _name(message.commonLabels, message.commonAnnotations)
        or title
        or ", ".join(f"{k}={v}" for k, v in message.groupLabels.items())
        or "Alert group"
    )
    lines = [f"[{a.status}] {_name(a.labels, a.annotations) or a.labels}" for a in message.alerts]
    description = message.commonAnnotations.get("description") or "\n".join(lines)
    details = {
        "groupKey": message.groupKey,
        "receiver": unescape_receiver(message.receiver),
        "groupLabels": message.groupLabels,
        "commonLabels": message.commonLabels,
        "commonAnnotations": message.commonAnnotations,
        "externalURL": message.externalURL,
        "truncatedAlerts": message.truncatedAlerts,
        "firing": firing,
        "resolved": len(message.alerts) - firing,
        "alerts": [_alert_detail(a) for a in message.alerts],
    }
    alert = NormalisedAlert(
        title=clip(name, 1024),
        severity=_worst_severity(message.alerts, message.commonLabels),
        status=_status(message.status),
        description=clip(description, 65_536),
        source=clip(message.alerts[0].generatorURL or message.externalURL or source, 512),
        dedup_key=f"{key_prefix}:{message.groupKey}",
        tags=_tags(message.commonLabels),
        details=details,
    )
    return MappedAlert(alert, repeat=Repeat.IDENTICAL_IS_DUPLICATE)


def per_alert(message: WebhookMessage, *, source: str, key_prefix: str) -> list[MappedAlert]:
    """One alert per element of alerts[], keyed by its fingerprint."""
    out = []
    for item in message.alerts:
        name = _name(item.labels, item.annotations) or "Alert"
        details = {
            **_alert_detail(item),
            "groupKey": message.groupKey,
            "receiver": unescape_receiver(message.receiver),
            "externalURL": message.externalURL,
        }
        alert = NormalisedAlert(
            title=clip(name, 1024),
            severity=severity_from_word(item.labels.get("severity")),
            status=_status(item.status),
            description=clip(item.annotations.get("description", ""), 65_536),
            source=clip(item.generatorURL or message.externalURL or source, 512),
            dedup_key=f"{key_prefix}:{_alert_key(item)}",
            tags=_tags(item.labels),
            details=details,
        )
        out.append(MappedAlert(alert, repeat=Repeat.IDENTICAL_IS_DUPLICATE))
    return out


def map_message(
    message: WebhookMessage,
    options: GroupingOptions,
    *,
    source: str,
    key_prefix: str,
    title: str = "",
) -> Mapped:
    if options.grouping == "alert":
        return Mapped(alerts=per_alert(message, source=source, key_prefix=key_prefix))
    return Mapped(alerts=[group_alert(message, source=source, key_prefix=key_prefix, title=title)])


class AlertmanagerAdapter:
    integration_type: ClassVar[IntegrationType] = IntegrationType.ALERTMANAGER
    options_model: ClassVar[type[BaseModel]] = GroupingOptions

    async def map(self, inbound: Inbound, options: Any, settings: Settings) -> Mapped:
        message = parse_message(json_object(inbound.body), version="4")
        return map_message(message, options, source="alertmanager", key_prefix="am")
