"""Incident facts in words: what a timeline entry says, who did it, an alert's details."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tocsin.incidents.models import ActorType
from tocsin.incidents.schemas import TimelineEventOut
from tocsin.incidents.timeline import EventKind

MAX_DETAILS_CHARS = 20_000

_PLAIN = {
    EventKind.CREATED: "Incident opened",
    EventKind.ALERT_ADDED: "Another alert arrived",
    EventKind.ACKNOWLEDGED: "Acknowledged",
    EventKind.RESOLVED: "Resolved",
    EventKind.CLOSED: "Closed",
    EventKind.UNACKNOWLEDGED: "Un-acknowledged: paging again",
    EventKind.NO_ESCALATION_POLICY: "No escalation policy: nobody is paged",
    EventKind.ESCALATION_EXHAUSTED: "Escalation exhausted: every level was tried",
    EventKind.ESCALATED_NOW: "Escalated by hand",
    EventKind.CHANGE_EVENT: "Change on the service",
    EventKind.POLICY_REASSIGNED: "Reassigned to another escalation policy",
    EventKind.NOTIFICATION_SENT: "Notification sent",
    EventKind.NOTIFICATION_RETRYING: "Notification failed, retrying",
    EventKind.NOTIFICATION_FAILED: "Notification failed",
    EventKind.NOTE: "Note",
    EventKind.PAGING_STUCK: "Paging is stuck: an escalation timer kept failing",
}


@dataclass(frozen=True)
class Names:
    users: dict[uuid.UUID, str]
    integrations: dict[uuid.UUID, str]

    def user(self, user_id: Any) -> str:
        try:
            return self.users.get(uuid.UUID(str(user_id)), "a former user")
        except ValueError:
            return "someone"


def user_ids_in(events: Iterable[TimelineEventOut]) -> set[uuid.UUID]:
    """Every user id an event names: its actor, the people paged, reassignment targets."""
    ids: set[uuid.UUID] = set()
    for event in events:
        if event.actor_type == ActorType.USER and event.actor_id is not None:
            ids.add(event.actor_id)
        raw = [
            *event.data.get("user_ids", []),
            event.data.get("to_user_id"),
            event.data.get("user_id"),
        ]
        for value in raw:
            try:
                ids.add(uuid.UUID(str(value)))
            except ValueError:
                continue
    return ids


def actor_name(event: TimelineEventOut, names: Names) -> str:
    if event.actor_type == ActorType.USER and event.actor_id is not None:
        return names.user(event.actor_id)
    if event.actor_type == ActorType.INTEGRATION and event.actor_id is not None:
        return names.integrations.get(event.actor_id, "an integration")
    return "Tocsin"


def describe(event: TimelineEventOut, names: Names) -> str:
    """One line saying what happened, without the actor or the note."""
    data = event.data
    try:
        kind = EventKind(event.kind)
    except ValueError:
        return event.kind.replace("_", " ").capitalize()
    if kind == EventKind.PAGED:
        people = ", ".join(names.user(u) for u in data.get("user_ids", [])) or "nobody"
        level = data.get("level")
        where = f" (level {level})" if level else " (directly)"
        if data.get("responder"):
            where = " (added responder)"
        return f"Paged {people}{where}"
    if kind == EventKind.RESPONDER_ADDED:
        if data.get("user_id"):
            return f"Asked for {names.user(data['user_id'])} as a responder"
        return "Asked for an escalation policy's first level as responders"
    if kind == EventKind.PRIORITY_CHANGED:
        return f"Priority changed from {data.get('from')} to {data.get('to')}"
    if kind == EventKind.PAGE_DOWNGRADED:
        return (
            f"Low-urgency page to {names.user(data.get('user_id'))} sent to their quiet "
            f"channel ({data.get('contact_kind')}): paged {data.get('pages_in_last_hour')} "
            "times in the last hour"
        )
    if kind == EventKind.REASSIGNED:
        return f"Reassigned to {names.user(data.get('to_user_id'))}"
    if kind == EventKind.MERGED:
        numbers = ", ".join(f"#{n}" for n in data.get("source_numbers", []))
        return f"Incidents {numbers} merged into this one"
    if kind == EventKind.MERGED_INTO:
        return f"Merged into incident #{data.get('target_number')}"
    if kind == EventKind.SPLIT:
        return f"An alert split out into incident #{data.get('number')}"
    if kind == EventKind.CREATED and data.get("split_from"):
        return "Incident opened: an alert split out of another incident"
    if kind == EventKind.ALERT_ADDED and data.get("grouped"):
        return f"Another alert of the group arrived ({data['grouped']})"
    if kind == EventKind.LEVEL_SKIPPED:
        return f"Level {data.get('level')} skipped: nobody to page"
    if kind == EventKind.ESCALATION_SCHEDULED:
        level = data.get("level")
        return f"Escalation to level {level} scheduled" if level else "Timer scheduled"
    return _PLAIN.get(kind, kind.value.replace("_", " ").capitalize())


def details_json(details: dict[str, Any]) -> str:
    """An alert's details as indented JSON for a <pre> (escaped by the template), cut short
    when huge; details too deeply nested to print are said to be so."""
    try:
        text = json.dumps(details, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    except (RecursionError, ValueError):
        return "(these details are nested too deeply to show)"
    if len(text) > MAX_DETAILS_CHARS:
        return text[:MAX_DETAILS_CHARS] + "\n… (cut: too long to show in full)"
    return text
