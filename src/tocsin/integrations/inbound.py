"""Receiving one inbound request for an integration, whatever its format: rate limit, map it
with the integration's adapter, apply its templates, drop repeats, store the alerts through
the ingest pipeline, apply acknowledge/resolve signals and change events, and log what it
all became for the integration's debug view.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.alerts.ingest import (
    IngestOutcome,
    PreparedAlert,
    Submission,
    SubmissionOutcome,
    prepare,
)
from tocsin.alerts.limits import problems_of
from tocsin.alerts.models import Alert, AlertStatus
from tocsin.alerts.normalised import NormalisedAlert, fingerprint
from tocsin.incidents.lifecycle import ACTIVE_STATUSES
from tocsin.incidents.models import Incident
from tocsin.integrations.adapters import adapter_for
from tocsin.integrations.adapters.base import (
    FieldProblem,
    Inbound,
    Mapped,
    PayloadForbidden,
    PayloadRejected,
    Repeat,
    Signal,
)
from tocsin.integrations.adapters.cloudwatch import SEEN_DELIVERIES_KEPT
from tocsin.integrations.changes import record_change
from tocsin.integrations.intake import Intake
from tocsin.integrations.lookup import IntegrationInfo
from tocsin.integrations.models import InboundDelivery
from tocsin.integrations.payload_log import MAX_BODY_CHARS, PayloadEntry
from tocsin.integrations.signals import signal_for_pipeline
from tocsin.integrations.templates import apply_templates
from tocsin.noise.decide import Suppression
from tocsin.store.connection import Connection
from tocsin.store.inserts import insert_ignoring
from tocsin.telemetry.logs import bind_integration_id, log_context

log = logging.getLogger(__name__)

MapPayload = Callable[[Inbound], Awaitable[Mapped]]

# How many of a fingerprint's latest alerts a repeat is compared with.
_REPEAT_LOOKBACK = 20


@dataclass(frozen=True)
class AlertResult:
    alert_id: uuid.UUID
    incident_id: uuid.UUID | None
    deduplicated: bool
    status: AlertStatus
    dedup_key: str | None
    # True when this was a repeat of an alert already stored, and nothing new was stored.
    repeat: bool = False
    suppressed: Suppression | None = None


@dataclass(frozen=True)
class SignalResult:
    signal: Signal
    incident_ids: list[uuid.UUID]


@dataclass(frozen=True)
class Received:
    alerts: list[AlertResult] = field(default_factory=list)
    signals: list[SignalResult] = field(default_factory=list)
    change_ids: list[uuid.UUID] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)
    duplicate_delivery: bool = False
    template_problems: list[dict[str, str]] = field(default_factory=list)


def _content(alert: NormalisedAlert | Any) -> bytes:
    """A canonical form of what an alert says, to tell an identical resend."""
    return orjson.dumps(
        {
            "status": str(alert.status),
            "title": alert.title,
            "severity": str(alert.severity),
            "description": alert.description,
            "source": alert.source,
            "routing_key": alert.routing_key,
            "tags": alert.tags,
            "details": alert.details,
        },
        option=orjson.OPT_SORT_KEYS,
    )


async def find_repeat(
    conn: Connection,
    integration_id: uuid.UUID,
    alert: NormalisedAlert,
    repeat: Repeat,
) -> AlertResult | None:
    """The stored alert this one merely repeats, or None if it brings something new."""
    rows = (
        await conn.execute(
            select(
                Alert.id,
                Alert.incident_id,
                Alert.status,
                Alert.title,
                Alert.severity,
                Alert.description,
                Alert.source,
                Alert.routing_key,
                Alert.tags,
                Alert.details,
                Incident.status.label("incident_status"),
            )
            .outerjoin(Incident, Incident.id == Alert.incident_id)
            .where(
                Alert.integration_id == integration_id,
                Alert.fingerprint == fingerprint(alert),
            )
            .order_by(Alert.received_at.desc())
            .limit(_REPEAT_LOOKBACK)
        )
    ).all()
    wanted = _content(alert)
    for row in rows:
        active = row.incident_status in ACTIVE_STATUSES
        if repeat == Repeat.DUPLICATE_WHILE_OPEN:
            match = active and alert.status == AlertStatus.FIRING
        elif alert.status == AlertStatus.FIRING:
            match = active and _content(row) == wanted
        else:
            match = not active and _content(row) == wanted
        if match:
            return AlertResult(
                row.id,
                row.incident_id,
                deduplicated=True,
                status=alert.status,
                dedup_key=alert.dedup_key,
                repeat=True,
            )
    return None


async def _seen_delivery(conn: AsyncConnection, integration_id: uuid.UUID, delivery: str) -> bool:
    row = (
        await conn.execute(
            select(InboundDelivery.delivery_id).where(
                InboundDelivery.integration_id == integration_id,
                InboundDelivery.delivery_id == delivery,
            )
        )
    ).first()
    return row is not None


async def _remember_delivery(
    conn: Connection, integration_id: uuid.UUID, delivery: str, now: datetime
) -> None:
    await insert_ignoring(
        conn,
        InboundDelivery,
        {"integration_id": integration_id, "delivery_id": delivery[:200], "received_at": now},
    )
    # A retry older than this is refused by its Timestamp anyway: forget older ids.
    await conn.execute(
        delete(InboundDelivery).where(InboundDelivery.received_at < now - SEEN_DELIVERIES_KEPT)
    )


def refuse_oversized(mapped: Mapped) -> None:
    """Every format's alerts are held to the same nesting and size limits (alerts/limits.py),
    named by the normalised field (`details`, `tags`); nothing of the payload is stored."""
    problems = [
        FieldProblem(("body", "alerts", n, field) if len(mapped.alerts) > 1 else (field,), msg)
        for n, item in enumerate(mapped.alerts)
        for field, msg in problems_of(item.alert)
    ]
    if problems:
        raise PayloadRejected(problems)


def _parsed_body(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", errors="replace")


async def _store(
    intake: Intake, integration: IntegrationInfo, inbound: Inbound, mapped: Mapped
) -> Received:
    if mapped.delivery_id:
        async with intake.read_engine.connect() as conn:
            if await _seen_delivery(conn, integration.id, mapped.delivery_id):
                return Received(duplicate_delivery=True, reply=mapped.reply)
    payload = _parsed_body(inbound.body) if integration.templates and mapped.alerts else None
    # Each alert is either a repeat of one already stored (answered from it) or goes into the
    # one submission that stores the whole payload in one transaction.
    slots: list[AlertResult | NormalisedAlert] = []
    prepared: list[PreparedAlert] = []
    problems: list[dict[str, str]] = []
    for item in mapped.alerts:
        rendered = apply_templates(integration.templates, item.alert, payload)
        if rendered.problems:
            problems.append(rendered.problems)
        alert = rendered.alert
        async with intake.quick_reads.connect() as reads:
            found = None
            if item.repeat != Repeat.RECORD:
                found = await find_repeat(reads, integration.id, alert, item.repeat)
            if found is not None:
                slots.append(found)
                continue
            prepared.append(await prepare(reads, integration, alert))
        slots.append(alert)
    change_ids: list[uuid.UUID] = []

    async def extra(conn: Connection, now: datetime) -> list[uuid.UUID]:
        change_ids.clear()  # a failed shared transaction is retried alone
        touched: list[uuid.UUID] = []
        for notice in mapped.changes:
            change_id, noted = await record_change(
                conn,
                integration_id=integration.id,
                service_id=integration.default_service_id,
                notice=notice,
                now=now,
            )
            change_ids.append(change_id)
            touched.extend(noted)
        if mapped.delivery_id:
            await _remember_delivery(conn, integration.id, mapped.delivery_id, now)
        return touched

    source = integration.type.value
    submission = Submission(
        integration,
        alerts=tuple(prepared),
        signals=tuple(signal_for_pipeline(s, source=source) for s in mapped.signals),
        extra=extra if mapped.changes or mapped.delivery_id else None,
    )
    outcome = SubmissionOutcome()
    if prepared or submission.signals or submission.extra is not None:
        outcome = await intake.batcher.submit(submission)
    stored = iter(outcome.alerts)
    results: list[AlertResult] = []
    for slot in slots:
        if isinstance(slot, AlertResult):
            results.append(slot)
            continue
        alert_outcome = next(stored)
        _log_outcome(alert_outcome)
        results.append(
            AlertResult(
                alert_outcome.alert_id,
                alert_outcome.incident_id,
                alert_outcome.deduplicated,
                slot.status,
                slot.dedup_key,
                suppressed=alert_outcome.suppressed,
            )
        )
    signal_results = [
        SignalResult(signal, list(changed))
        for signal, changed in zip(mapped.signals, outcome.signals, strict=True)
    ]
    return Received(
        alerts=results,
        signals=signal_results,
        change_ids=change_ids,
        ignored=mapped.ignored,
        reply=mapped.reply,
        template_problems=problems,
    )


def _log_outcome(outcome: IngestOutcome) -> None:
    if outcome.incident_id is None:
        return  # unrouted: the ingest pipeline says so
    if not log.isEnabledFor(logging.DEBUG if outcome.deduplicated else logging.INFO):
        return  # spares every alert of a storm the context it would be logged with
    with log_context(incident_id=outcome.incident_id):
        if outcome.deduplicated:
            log.debug("alert %s joined incident %s", outcome.alert_id, outcome.incident_id)
        else:
            log.info("alert %s opened incident %s", outcome.alert_id, outcome.incident_id)


def describe(received: Received) -> dict[str, Any]:
    """What a payload became, as the debug view shows it."""
    return {
        "alerts": [
            {
                "alert_id": str(a.alert_id),
                "incident_id": str(a.incident_id) if a.incident_id else None,
                "status": a.status.value,
                "dedup_key": a.dedup_key,
                "deduplicated": a.deduplicated,
                "repeat": a.repeat,
                "suppressed": a.suppressed.reason if a.suppressed else None,
            }
            for a in received.alerts
        ],
        "signals": [
            {
                "action": s.signal.action.value,
                "dedup_key": s.signal.dedup_key,
                "incident_ids": [str(i) for i in s.incident_ids],
            }
            for s in received.signals
        ],
        "change_event_ids": [str(c) for c in received.change_ids],
        "ignored": received.ignored,
        "duplicate_delivery": received.duplicate_delivery,
        "template_problems": received.template_problems,
    }


async def receive(
    intake: Intake,
    integration: IntegrationInfo,
    inbound: Inbound,
    *,
    map_payload: MapPayload | None = None,
    secret: str | None = None,
    rejected_status: int = 422,
) -> Received:
    """Map and store one request. Raises RateLimited, PayloadRejected (nothing stored) or
    PayloadForbidden. `map_payload` replaces the adapter's own mapping (PagerDuty's change
    events endpoint, Opsgenie's close); `secret` is cut out of the logged body."""
    bind_integration_id(integration.id)
    intake.rate_limiter.take(integration.id, integration.rate_limit_per_minute, inbound.now)
    plog = intake.payload_log

    def record(status: int, mapping: dict[str, Any]) -> None:
        if plog is not None:
            plog.record(
                PayloadEntry(
                    integration_id=integration.id,
                    received_at=inbound.now,
                    status_code=status,
                    content_type=inbound.headers.get("content-type", ""),
                    # Keep no more than the log can show (plus one byte: "it was longer").
                    body=inbound.body[: MAX_BODY_CHARS * 4 + 1],
                    mapping=mapping,
                    secret=secret,
                )
            )

    try:
        if map_payload is not None:
            mapped = await map_payload(inbound)
        else:
            try:
                adapter = adapter_for(integration.type)
            except KeyError:  # email and heartbeat integrations take no HTTP payloads
                raise PayloadRejected.one(
                    ("body",),
                    f"a {integration.type.value} integration takes no payloads over HTTP",
                ) from None
            try:
                options = adapter.options_model.model_validate(integration.options)
            except ValidationError:
                log.warning("integration %s has invalid options; using defaults", integration.id)
                options = adapter.options_model()
            mapped = await adapter.map(inbound, options, intake.settings)
        refuse_oversized(mapped)
    except PayloadRejected as exc:
        record(
            rejected_status,
            {"error": [{"loc": list(p.loc), "msg": p.msg} for p in exc.problems]},
        )
        raise
    except PayloadForbidden as exc:
        record(403, {"error": str(exc)})
        raise
    received = await _store(intake, integration, inbound, mapped)
    record(202, describe(received))
    return received
