"""Turning pages into delivery rows, in the transaction that wrote the pages; cancelling the
ones not yet sent when the incident stops needing anyone.

Each (page, notification rule) becomes one row due at page time + the rule's delay. Its
idempotency key is made of the page and the rule, so planning the same page twice (a
retried transaction, a step run twice) adds nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from tocsin.alerts.models import Severity
from tocsin.auth.models import User
from tocsin.catalog.models import Service, ServiceUrgency
from tocsin.catalog.support_hours import SupportHours, within_support_hours
from tocsin.escalation.models import Page
from tocsin.incidents.models import Incident
from tocsin.incidents.timeline import SYSTEM, EventKind, TimelineEntry, append_to_timelines
from tocsin.notifications.downgrade import (
    WINDOW,
    PagingLimit,
    downgraded,
    load_paging_limits,
)
from tocsin.notifications.models import (
    ContactKind,
    ContactMethod,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    NotificationRule,
    Urgency,
)
from tocsin.store.connection import Connection
from tocsin.store.inserts import insert_ignoring
from tocsin.store.wakeup import announce_work
from tocsin.timers import attached

HIGH_URGENCY_SEVERITIES = frozenset({Severity.CRITICAL, Severity.HIGH})


def urgency_of(
    severity: Severity,
    service_urgency: ServiceUrgency = ServiceUrgency.SEVERITY_BASED,
    *,
    support_hours: SupportHours | None = None,
    at: datetime | None = None,
) -> Urgency:
    """The urgency of an incident of this severity: the service's own urgency when it sets
    one (high or low whatever the severity; by its support hours at `at`), otherwise high for
    critical and high. Support hours without a time, or none set, go by severity."""
    if service_urgency is ServiceUrgency.HIGH:
        return Urgency.HIGH
    if service_urgency is ServiceUrgency.LOW:
        return Urgency.LOW
    if service_urgency is ServiceUrgency.SUPPORT_HOURS and support_hours and at is not None:
        return Urgency.HIGH if within_support_hours(support_hours, at) else Urgency.LOW
    return Urgency.HIGH if severity in HIGH_URGENCY_SEVERITIES else Urgency.LOW


@dataclass(frozen=True)
class PagedPerson:
    page_id: uuid.UUID
    incident_id: uuid.UUID
    user_id: uuid.UUID
    paged_at: datetime
    urgency: Urgency


@dataclass(frozen=True)
class UsableRule:
    """A rule whose contact method is verified, so it may be used."""

    rule_id: uuid.UUID
    urgency: Urgency
    delay_minutes: int
    contact_method_id: uuid.UUID
    kind: ContactKind
    address: str


@dataclass(frozen=True)
class PlannedDelivery:
    idempotency_key: str
    page: PagedPerson
    due_at: datetime
    kind: ContactKind
    address: str
    rule_id: uuid.UUID | None = None
    contact_method_id: uuid.UUID | None = None
    payload: dict[str, Any] = field(default_factory=dict)


def plan_for_pages(
    pages: Iterable[PagedPerson],
    rules: dict[uuid.UUID, list[UsableRule]],
    account_emails: dict[uuid.UUID, str],
    quiet: Mapping[uuid.UUID, PagingLimit] | None = None,
) -> list[PlannedDelivery]:
    """One delivery per usable rule of the page's urgency; a person with none gets the
    default: their account email, at once. A page in `quiet` (by page id: downgraded) gets
    one message on the person's quiet method (or account email), at once, instead."""
    planned: list[PlannedDelivery] = []
    for page in pages:
        limit = (quiet or {}).get(page.page_id)
        if limit is not None:
            planned.append(
                PlannedDelivery(
                    idempotency_key=f"page:{page.page_id}:quiet",
                    page=page,
                    due_at=page.paged_at,
                    kind=limit.quiet_kind or ContactKind.EMAIL,
                    address=limit.quiet_address or account_emails[page.user_id],
                    contact_method_id=limit.quiet_method_id,
                )
            )
            continue
        matching = [r for r in rules.get(page.user_id, []) if r.urgency == page.urgency]
        if not matching:
            planned.append(
                PlannedDelivery(
                    idempotency_key=f"page:{page.page_id}:default",
                    page=page,
                    due_at=page.paged_at,
                    kind=ContactKind.EMAIL,
                    address=account_emails[page.user_id],
                )
            )
            continue
        for rule in matching:
            planned.append(
                PlannedDelivery(
                    idempotency_key=f"page:{page.page_id}:rule:{rule.rule_id}",
                    page=page,
                    due_at=page.paged_at + timedelta(minutes=rule.delay_minutes),
                    kind=rule.kind,
                    address=rule.address,
                    rule_id=rule.rule_id,
                    contact_method_id=rule.contact_method_id,
                )
            )
    return planned


async def load_usable_rules(
    conn: Connection, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[UsableRule]]:
    """Each user's rules whose contact method is verified, by user."""
    rows = await conn.execute(
        select(
            NotificationRule.id,
            NotificationRule.user_id,
            NotificationRule.urgency,
            NotificationRule.delay_minutes,
            ContactMethod.id.label("method_id"),
            ContactMethod.kind,
            ContactMethod.address,
        )
        .join(ContactMethod, ContactMethod.id == NotificationRule.contact_method_id)
        .where(
            NotificationRule.user_id.in_(list(user_ids)),
            ContactMethod.verified_at.is_not(None),
        )
        .order_by(NotificationRule.delay_minutes, NotificationRule.id)
    )
    found: dict[uuid.UUID, list[UsableRule]] = {}
    for row in rows:
        found.setdefault(row.user_id, []).append(
            UsableRule(row.id, row.urgency, row.delay_minutes, row.method_id, row.kind, row.address)
        )
    return found


def delivery_row(
    *,
    kind: DeliveryKind,
    idempotency_key: str,
    user_id: uuid.UUID,
    contact_kind: ContactKind,
    address: str,
    due_at: datetime,
    now: datetime,
    incident_id: uuid.UUID | None = None,
    page_id: uuid.UUID | None = None,
    rule_id: uuid.UUID | None = None,
    contact_method_id: uuid.UUID | None = None,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The column values of a new pending delivery."""
    return {
        "id": uuid.uuid4(),
        "kind": kind,
        "idempotency_key": idempotency_key,
        "incident_id": incident_id,
        "page_id": page_id,
        "user_id": user_id,
        "contact_method_id": contact_method_id,
        "rule_id": rule_id,
        "contact_kind": contact_kind,
        "address": address,
        "status": DeliveryStatus.PENDING,
        "due_at": due_at,
        "attempts": 0,
        "bundle_size": 1,
        "payload": payload or {},
        "created_at": now,
        "updated_at": now,
    }


async def write_deliveries(conn: Connection, rows: list[dict[str, Any]], *, now: datetime) -> None:
    """Insert delivery rows (a repeated idempotency key is skipped) and wake the workers
    if any is due already."""
    if not rows:
        return
    await insert_ignoring(conn, Delivery, rows, unique=["idempotency_key"])
    if any(row["due_at"] <= now for row in rows):
        await announce_work(conn)


async def plan_deliveries(
    conn: Connection, page_ids: Sequence[uuid.UUID], *, now: datetime
) -> None:
    """Write the delivery rows for these pages (inside the caller's transaction)."""
    if not page_ids:
        return
    # Outer join: an incident with no service (routed to a team by its tags) is paged by its
    # severity.
    rows = await conn.execute(
        select(
            Page.id,
            Page.incident_id,
            Page.user_id,
            Page.created_at,
            Incident.priority,
            Incident.urgency,
            Service.urgency.label("service_urgency"),
        )
        .join(Incident, Incident.id == Page.incident_id)
        .outerjoin(Service, Service.id == Incident.service_id)
        .where(Page.id.in_(list(page_ids)))
    )
    pages = [
        PagedPerson(
            r.id,
            r.incident_id,
            r.user_id,
            r.created_at,
            # Decided when the incident opened; older incidents go by severity and service.
            Urgency(r.urgency)
            if r.urgency
            else urgency_of(r.priority, r.service_urgency or ServiceUrgency.SEVERITY_BASED),
        )
        for r in rows
    ]
    user_ids = {p.user_id for p in pages}
    rules = await load_usable_rules(conn, user_ids)
    emails = {
        r.id: r.email
        for r in await conn.execute(select(User.id, User.email).where(User.id.in_(user_ids)))
    }
    quiet = await _downgrades(conn, pages, now=now)
    planned = plan_for_pages(pages, rules, emails, quiet)
    await write_deliveries(
        conn,
        [
            delivery_row(
                kind=DeliveryKind.PAGE,
                idempotency_key=p.idempotency_key,
                user_id=p.page.user_id,
                contact_kind=p.kind,
                address=p.address,
                due_at=p.due_at,
                now=now,
                incident_id=p.page.incident_id,
                page_id=p.page.page_id,
                rule_id=p.rule_id,
                contact_method_id=p.contact_method_id,
            )
            for p in planned
        ],
        now=now,
    )


async def _count_recent_pages(
    conn: Connection,
    user_ids: Iterable[uuid.UUID],
    *,
    now: datetime,
    leaving_out: Iterable[uuid.UUID],
) -> dict[uuid.UUID, int]:
    """Pages of each person in the hour up to `now`, not counting `leaving_out` (the pages
    being planned now)."""
    users = list(user_ids)
    if not users:
        return {}
    rows = await conn.execute(
        select(Page.user_id, func.count())
        .where(
            Page.user_id.in_(users),
            Page.created_at > now - WINDOW,
            Page.created_at <= now,
            Page.id.not_in(list(leaving_out)),
        )
        .group_by(Page.user_id)
    )
    counts = dict.fromkeys(users, 0)
    counts.update({row[0]: int(row[1]) for row in rows})
    return counts


async def _downgrades(
    conn: Connection, pages: list[PagedPerson], *, now: datetime
) -> dict[uuid.UUID, PagingLimit]:
    """The low-urgency pages that go to their person's quiet channel (downgrade.py), each
    with a timeline entry on its incident saying so."""
    low = [p for p in pages if p.urgency == Urgency.LOW]
    if not low:
        return {}
    limits = await load_paging_limits(conn, {p.user_id for p in low})
    if not limits:
        return {}
    counts = await _count_recent_pages(
        conn, limits.keys(), now=now, leaving_out=[p.page_id for p in pages]
    )
    quiet: dict[uuid.UUID, PagingLimit] = {}
    entries: list[tuple[uuid.UUID, TimelineEntry]] = []
    for page in sorted(pages, key=lambda p: p.paged_at):
        limit = limits.get(page.user_id)
        if limit is None:
            continue
        before = counts[page.user_id]
        # Pages of this set count for the ones after them.
        counts[page.user_id] += 1
        if page.urgency != Urgency.LOW or not downgraded(limit, pages_in_last_hour=before):
            continue
        quiet[page.page_id] = limit
        channel = (limit.quiet_kind or ContactKind.EMAIL).value
        entries.append(
            (
                page.incident_id,
                TimelineEntry(
                    EventKind.PAGE_DOWNGRADED,
                    SYSTEM,
                    note=f"paged {before} times in the last hour (limit "
                    f"{limit.pages_per_hour}): this low-urgency page goes to the quiet "
                    f"channel ({channel}) only",
                    data={
                        "user_id": str(page.user_id),
                        "page_id": str(page.page_id),
                        "pages_in_last_hour": before,
                        "pages_per_hour": limit.pages_per_hour,
                        "contact_kind": channel,
                    },
                ),
            )
        )
    await append_to_timelines(conn, entries, now=now)
    return quiet


@attached.stops_pages
async def cancel_unsent_pages(conn: Connection, incident_id: uuid.UUID, *, now: datetime) -> int:
    """Cancel the incident's page deliveries not yet sent, when its escalation stops (an
    acknowledgement, a resolve: incidents/lifecycle.py through the timers); returns how many.
    One a worker is sending right now still goes out (and a worker claiming one later finds
    it cancelled, or re-checks the incident itself: notifications/delivery.py)."""
    result = await conn.execute(
        update(Delivery)
        .where(Delivery.incident_id == incident_id, Delivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.CANCELLED, updated_at=now)
    )
    return result.rowcount or 0
