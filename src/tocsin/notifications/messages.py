"""What a message says: one incident page, a bundle of many, a test, a verification code.

Every incident message names the title, severity, service and team, links to the incident,
and carries one-click acknowledge and resolve links signed for the person it goes to.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Any

from tocsin.config import Settings
from tocsin.incidents.lifecycle import Action
from tocsin.notifications.channels import OutgoingMessage, one_line
from tocsin.notifications.links import LinkClaim, sign_link

SMS_LIMIT = 320  # two SMS segments


@dataclass(frozen=True)
class IncidentFacts:
    id: uuid.UUID
    number: int
    title: str
    severity: str
    status: str
    service: str | None
    team: str


def incident_url(settings: Settings, incident_id: uuid.UUID) -> str:
    return f"{settings.base_url()}/api/v1/incidents/{incident_id}"


def one_click_url(
    settings: Settings, *, incident_id: uuid.UUID, user_id: uuid.UUID, action: Action, now: datetime
) -> str:
    claim = LinkClaim(
        incident_id, user_id, action, now + timedelta(hours=settings.one_click_ttl_hours)
    )
    return f"{settings.base_url()}/a/{sign_link(claim, secret_key=settings.secret_key)}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _html_page(heading: str, rows: list[tuple[str, str]], buttons: list[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><th align='left'>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows
    )
    links = " ".join(f"<a href='{escape(url)}'>{escape(label)}</a>" for label, url in buttons)
    return (
        f"<html><body><h2>{escape(heading)}</h2><table>{cells}</table><p>{links}</p></body></html>"
    )


def incident_message(
    settings: Settings,
    facts: IncidentFacts,
    *,
    user_id: uuid.UUID,
    idempotency_key: str,
    now: datetime,
) -> OutgoingMessage:
    """The page for one incident, with links signed for `user_id`."""
    link = incident_url(settings, facts.id)
    ack = one_click_url(
        settings, incident_id=facts.id, user_id=user_id, action=Action.ACKNOWLEDGE, now=now
    )
    resolve = one_click_url(
        settings, incident_id=facts.id, user_id=user_id, action=Action.RESOLVE, now=now
    )
    severity = facts.severity.upper()
    service = facts.service or "no service"
    # A title is the alert sender's text: a line break in it must not become a header.
    subject = one_line(f"[{severity}] #{facts.number} {facts.title}")
    text = "\n".join(
        [
            f"Incident #{facts.number}: {facts.title}",
            f"Severity: {facts.severity}",
            f"Service: {service}",
            f"Team: {facts.team}",
            f"Status: {facts.status}",
            "",
            f"Open: {link}",
            f"Acknowledge: {ack}",
            f"Resolve: {resolve}",
        ]
    )
    reply = f"Reply 4 {facts.number} to ack, 6 {facts.number} to resolve."
    short = f"[{severity}] #{facts.number} {facts.title} ({service}, {facts.team}). {reply}"
    with_link = f"{short} Ack: {ack}"
    short = with_link if len(with_link) <= SMS_LIMIT else _clip(short, SMS_LIMIT)
    spoken = (
        f"Tocsin alert. {facts.severity} incident number {facts.number}: {facts.title}. "
        f"Service {service}, team {facts.team}."
    )
    html = _html_page(
        subject,
        [
            ("Severity", facts.severity),
            ("Service", service),
            ("Team", facts.team),
            ("Status", facts.status),
        ],
        [("Open incident", link), ("Acknowledge", ack), ("Resolve", resolve)],
    )
    data: dict[str, Any] = {
        "type": "incident.page",
        "idempotency_key": idempotency_key,
        "incident": {
            "id": str(facts.id),
            "number": facts.number,
            "title": facts.title,
            "severity": facts.severity,
            "status": facts.status,
            "service": facts.service,
            "team": facts.team,
            "url": link,
        },
        "links": {"incident": link, "acknowledge": ack, "resolve": resolve},
    }
    return OutgoingMessage(
        subject=subject,
        text=text,
        short_text=short,
        spoken_text=spoken,
        html=html,
        data=data,
        idempotency_key=idempotency_key,
        links={"incident": link, "acknowledge": ack, "resolve": resolve},
    )


def bundle_message(
    settings: Settings, incidents: list[IncidentFacts], *, idempotency_key: str
) -> OutgoingMessage:
    """One message standing for many pages, sent when a person is being flooded."""
    count = len(incidents)
    link = f"{settings.base_url()}/api/v1/incidents?status=open"
    subject = f"{count} new incidents need you"
    listed = [f"#{f.number} [{f.severity}] {f.title}" for f in incidents[:20]]
    if count > 20:
        listed.append(f"... and {count - 20} more")
    text = "\n".join([subject + ":", "", *listed, "", f"See them all: {link}"])
    return OutgoingMessage(
        subject=subject,
        text=text,
        short_text=_clip(f"Tocsin: {subject}. {link}", SMS_LIMIT),
        spoken_text=f"Tocsin alert. {count} new incidents need you.",
        html=_html_page(
            subject, [(f"#{f.number}", f.title) for f in incidents[:20]], [("See them all", link)]
        ),
        data={
            "type": "incident.bundle",
            "idempotency_key": idempotency_key,
            "count": count,
            "incidents": [
                {"id": str(f.id), "number": f.number, "title": f.title, "severity": f.severity}
                for f in incidents
            ],
            "links": {"incidents": link},
        },
        idempotency_key=idempotency_key,
        links={"incidents": link},
    )


def plain_message(subject: str, text: str, *, idempotency_key: str, kind: str) -> OutgoingMessage:
    """A test message or a verification code."""
    return OutgoingMessage(
        subject=subject,
        text=text,
        short_text=_clip(f"Tocsin: {text}", SMS_LIMIT),
        spoken_text=f"Tocsin. {text}",
        html=_html_page(subject, [("", text)], []),
        data={"type": kind, "idempotency_key": idempotency_key, "text": text},
        idempotency_key=idempotency_key,
    )


def verification_text(code: str) -> str:
    # Spaced digits read out well on a voice call and still type easily.
    return f"Your Tocsin verification code is {code}."
