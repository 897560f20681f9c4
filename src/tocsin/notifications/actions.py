"""Acting on an incident from a message: one-click links and SMS reply codes.

Both end in the incidents lifecycle (`apply_transition`) as the person the message went to,
so the timeline says who acknowledged, and how; and both first ask whether that person may
still do it: an active account, and an admin or a manager or responder of the incident's team
now (a message may be read after its recipient left the team). A one-click link acts once.
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

from sqlalchemy import and_, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.auth.models import User
from tocsin.auth.permissions import RESPONDER_ROLES
from tocsin.errors import Conflict
from tocsin.incidents.lifecycle import (
    ACTIVE_STATUSES,
    Action,
    IllegalTransition,
    IncidentNotFound,
    Transition,
    apply_transition,
)
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.incidents.timeline import Actor
from tocsin.notifications.links import BadLink, LinkClaim
from tocsin.notifications.models import ContactKind, ContactMethod, Delivery, UsedLink
from tocsin.store.inserts import insert_ignoring
from tocsin.teams.models import TeamMember

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


class LinkUsed(Conflict):
    def __init__(self) -> None:
        super().__init__("this link has already been used")


async def may_act(conn: AsyncConnection, user_id: uuid.UUID, incident_id: uuid.UUID) -> str | None:
    """Why this person may not acknowledge or resolve this incident now, or None if they
    may. IncidentNotFound if there is no such incident."""
    team_id = (
        await conn.execute(select(Incident.team_id).where(Incident.id == incident_id))
    ).scalar_one_or_none()
    if team_id is None:
        raise IncidentNotFound(incident_id)
    row = (
        await conn.execute(
            select(User.is_active, User.is_admin, TeamMember.role)
            .outerjoin(
                TeamMember, and_(TeamMember.user_id == User.id, TeamMember.team_id == team_id)
            )
            .where(User.id == user_id)
        )
    ).first()
    if row is None or not row.is_active:
        return "the account is no longer active"
    if row.is_admin or row.role in RESPONDER_ROLES:
        return None
    if row.role is None:
        return "you are no longer a member of the team that owns this incident"
    return "observers may not act on incidents"


async def link_was_used(conn: AsyncConnection, claim: LinkClaim) -> bool:
    found = await conn.execute(select(UsedLink.link_id).where(UsedLink.link_id == claim.link_id))
    return found.first() is not None


async def _use_once(conn: AsyncConnection, claim: LinkClaim, now: datetime) -> bool:
    """Record that the link acted; False if it already had. Two clicks at once both insert:
    the database keeps one, and the other (on PostgreSQL after waiting for the first to
    commit) inserts nothing."""
    result = await insert_ignoring(
        conn,
        UsedLink,
        {
            "link_id": claim.link_id,
            "incident_id": claim.incident_id,
            "user_id": claim.user_id,
            "action": claim.action.value,
            "used_at": now,
            "expires_at": claim.expires_at,
        },
        unique=["link_id"],
    )
    # Links past their expiry are refused anyway: what they left behind can go.
    await conn.execute(delete(UsedLink).where(UsedLink.expires_at < now))
    return bool(result.rowcount == 1)


async def act_on_link(conn: AsyncConnection, claim: LinkClaim, *, now: datetime) -> Transition:
    """Do what a one-click link says, as the person it was made for, if they still may and
    the link has not acted before. BadLink, LinkUsed, IncidentNotFound or IllegalTransition
    otherwise (the caller's transaction then keeps nothing)."""
    refusal = await may_act(conn, claim.user_id, claim.incident_id)
    if refusal is not None:
        raise BadLink(refusal)
    if not await _use_once(conn, claim, now):
        raise LinkUsed()
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
    refusal = await may_act(conn, user_id, incident.id)
    if refusal is not None:
        return f"Incident #{incident.number}: {refusal}."
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
