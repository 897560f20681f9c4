"""Acting on an incident from a message: one-click links and SMS reply codes.

Both end in the incidents lifecycle (`apply_transition`) as the person the message went to,
so the timeline says who acknowledged, and how.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.auth.models import User
from tocsin.incidents.lifecycle import (
    ACTIVE_STATUSES,
    Action,
    IllegalTransition,
    Transition,
    apply_transition,
)
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.incidents.timeline import Actor
from tocsin.notifications.links import BadLink, LinkClaim
from tocsin.notifications.models import ContactKind, ContactMethod, Delivery

# "4" acknowledges, "6" resolves, optionally followed by the incident number: "4 1234".
REPLY = re.compile(r"^\s*(?P<code>[46]|ack|acknowledge|resolve)\s*#?(?P<number>[0-9]+)?\s*$", re.I)
REPLY_ACTIONS = {
    "4": Action.ACKNOWLEDGE,
    "ack": Action.ACKNOWLEDGE,
    "acknowledge": Action.ACKNOWLEDGE,
    "6": Action.RESOLVE,
    "resolve": Action.RESOLVE,
}


@dataclass(frozen=True)
class IncidentSummary:
    id: uuid.UUID
    number: int
    title: str
    status: IncidentStatus


async def find_incident_summary(
    conn: AsyncConnection, incident_id: uuid.UUID
) -> IncidentSummary | None:
    row = (
        await conn.execute(
            select(Incident.id, Incident.number, Incident.title, Incident.status).where(
                Incident.id == incident_id
            )
        )
    ).first()
    return None if row is None else IncidentSummary(*row)


async def act_on_link(conn: AsyncConnection, claim: LinkClaim, *, now: datetime) -> Transition:
    """Do what a one-click link says, as the person it was made for."""
    active = (
        await conn.execute(select(User.is_active).where(User.id == claim.user_id))
    ).scalar_one_or_none()
    if not active:
        raise BadLink("this link belongs to an account that is no longer active")
    return await apply_transition(
        conn,
        claim.incident_id,
        claim.action,
        actor=Actor.user(claim.user_id),
        now=now,
        note="from a one-click link in a notification",
    )


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's request signature: HMAC-SHA1 of the URL followed by each POST parameter's
    name and value, sorted by name, base64-encoded."""
    data = url + "".join(f"{k}{v}" for k, v in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


async def _users_with_phone(conn: AsyncConnection, phone: str) -> list[uuid.UUID]:
    rows = await conn.execute(
        select(ContactMethod.user_id)
        .join(User, User.id == ContactMethod.user_id)
        .where(
            ContactMethod.kind.in_([ContactKind.SMS, ContactKind.VOICE]),
            ContactMethod.address == phone,
            ContactMethod.verified_at.is_not(None),
            User.is_active.is_(True),
        )
        .distinct()
    )
    return list(rows.scalars())


async def _paged_active_incidents(
    conn: AsyncConnection, user_id: uuid.UUID
) -> list[IncidentSummary]:
    """The active incidents this person was sent a page for, oldest first."""
    paged = select(Delivery.incident_id).where(Delivery.user_id == user_id).distinct()
    rows = await conn.execute(
        select(Incident.id, Incident.number, Incident.title, Incident.status)
        .where(Incident.id.in_(paged), Incident.status.in_(ACTIVE_STATUSES))
        .order_by(Incident.number)
    )
    return [IncidentSummary(*r) for r in rows]


async def answer_sms_reply(conn: AsyncConnection, *, phone: str, body: str, now: datetime) -> str:
    """Act on an SMS reply from `phone` and return the text to answer with."""
    users = await _users_with_phone(conn, phone)
    if len(users) != 1:
        return "This number is not a verified contact method of one Tocsin user."
    user_id = users[0]
    match = REPLY.match(body)
    if match is None:
        return "Reply 4 to acknowledge or 6 to resolve, followed by the incident number."
    action = REPLY_ACTIONS[match["code"].lower()]
    incidents = await _paged_active_incidents(conn, user_id)
    if match["number"] is not None:
        number = int(match["number"])
        chosen = [i for i in incidents if i.number == number]
        if not chosen:
            return f"Incident #{number} is not an open incident you were paged for."
    elif len(incidents) == 1:
        chosen = incidents
    elif not incidents:
        return "You have no open incidents."
    else:
        listed = ", ".join(f"#{i.number}" for i in incidents[:10])
        code = "4" if action == Action.ACKNOWLEDGE else "6"
        return (
            f"You have {len(incidents)} open incidents ({listed}). "
            f"Reply {code} followed by the number, e.g. {code} {incidents[0].number}."
        )
    incident = chosen[0]
    try:
        await apply_transition(
            conn,
            incident.id,
            action,
            actor=Actor.user(user_id),
            now=now,
            note="from an SMS reply",
        )
    except IllegalTransition as exc:
        return f"Incident #{incident.number}: {exc.detail}."
    done = "acknowledged" if action == Action.ACKNOWLEDGE else "resolved"
    return f"Incident #{incident.number} {done}: {incident.title}"
