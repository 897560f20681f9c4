"""Records every change to configuration objects in the transaction that makes it.

One hook for the whole application: after each ORM flush it compares the audited objects
the flush wrote with what they were, and inserts one audit row per object on the same
connection, so the entry commits or rolls back with the change. Domain code does nothing;
it only has to change objects through the ORM (a bulk `update()` statement is invisible
here, like to any ORM event). Who acted comes from the session: the request's credential
(`tocsin.web` puts the request in `session.info`) or an actor set explicitly (the CLI).
Changes made with no one acting (the worker, ingest) are bookkeeping and not recorded.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import event, insert, inspect, update
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction

from tocsin.audit.models import AuditEntry
from tocsin.clock import Clock
from tocsin.db import new_ordered_id
from tocsin.telemetry.logs import REQUEST_ID

ACTOR_KEY = "audit_actor"
REQUEST_KEY = "request"
CLOCK_KEY = "clock"  # beside the request: when its changes happened

# The tables whose rows are configuration someone may later ask "who changed this?" about.
AUDITED_TABLES = frozenset(
    {
        "users",
        "api_keys",
        "teams",
        "team_members",
        "team_tags",
        "services",
        "escalation_policies",
        "escalation_levels",
        "schedules",
        "schedule_layers",
        "schedule_participants",
        "schedule_overrides",
        "schedule_override_users",
        "integrations",
        "heartbeat_monitors",
        "contact_methods",
        "notification_rules",
        "silences",
        "inhibition_rules",
        "maintenance_windows",
    }
)
# Columns whose value is never written down, only that it changed.
SECRET_COLUMNS = frozenset(
    {"password_hash", "key_hash", "token_hash", "signing_secret", "verification_code_hash"}
)
# Keys inside JSON options that hold credentials (an SNS token, a basic-auth password...).
SECRET_KEY = re.compile(r"secret|token|password|passwd|key|auth|credential", re.IGNORECASE)
# Bookkeeping that changes with every edit and says nothing of its own.
IGNORED_COLUMNS = frozenset({"created_at", "updated_at"})
SECRET = "(secret)"


@dataclass(frozen=True)
class Actor:
    """Who is changing things, and through which credential."""

    user_id: uuid.UUID | None
    via: str  # api_key, session or cli
    via_id: uuid.UUID | None
    now: Callable[[], datetime]
    request_id: str | None = None


def act_as(session: Any, actor: Actor) -> None:
    """Name the actor of every change this session flushes (an AsyncSession or a Session)."""
    session.info[ACTOR_KEY] = actor


def command_line(clock: Clock) -> Actor:
    """The actor of changes made with the `tocsin` command (no user signs in there)."""
    return Actor(user_id=None, via="cli", via_id=None, now=clock.now)


def find_actor(session: Session) -> Actor | None:
    actor = session.info.get(ACTOR_KEY)
    if isinstance(actor, Actor):
        return actor
    request = session.info.get(REQUEST_KEY)
    principal = getattr(getattr(request, "state", None), "principal", None)
    clock: Clock | None = session.info.get(CLOCK_KEY)
    if request is None or principal is None or clock is None:
        return None
    if principal.api_key_id is not None:
        via, via_id = "api_key", principal.api_key_id
    else:
        via, via_id = "session", principal.session_id
    return Actor(
        user_id=principal.user_id,
        via=via,
        via_id=via_id,
        now=clock.now,
        request_id=REQUEST_ID.get(),
    )


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a column value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: SECRET if SECRET_KEY.search(str(k)) else _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def _shown(table: str, column: str, value: Any) -> Any:
    if column in SECRET_COLUMNS:
        return None if value is None else SECRET
    if table == "contact_methods" and column == "address" and isinstance(value, str):
        # Chat and webhook addresses are URLs that often carry a token (a Slack webhook
        # path): keep the scheme and host only.
        parts = urlsplit(value)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.hostname or ''}/…"
    return _plain(value)


def _columns(obj: Any) -> Iterable[tuple[str, Any]]:
    state = inspect(obj)
    keys = {col.key for col in state.mapper.primary_key}
    for attr in state.mapper.column_attrs:
        if attr.key in IGNORED_COLUMNS or (attr.key in keys and len(keys) == 1):
            continue  # a single-column key is the entry's object_id
        yield attr.key, state.attrs[attr.key]


def _object_id(obj: Any) -> str:
    identity = inspect(obj).mapper.primary_key_from_instance(obj)
    return ":".join(str(part) for part in identity)


def _team_of(table: str, obj: Any) -> uuid.UUID | None:
    if table == "teams":
        team: uuid.UUID | None = obj.id
        return team
    found = getattr(obj, "team_id", None)
    return found if isinstance(found, uuid.UUID) else None


def _entry(actor: Actor, action: str, obj: Any, changes: dict[str, Any]) -> dict[str, Any]:
    table: str = obj.__table__.name
    return {
        "id": new_ordered_id(),
        "at": actor.now(),
        "actor_user_id": actor.user_id,
        "via": actor.via,
        "via_id": actor.via_id,
        "request_id": actor.request_id,
        "action": action,
        "object_type": table,
        "object_id": _object_id(obj),
        "team_id": _team_of(table, obj),
        "changes": changes,
    }


def _created(actor: Actor, obj: Any) -> dict[str, Any]:
    table = obj.__table__.name
    changes = {
        key: {"before": None, "after": _shown(table, key, attr.value)}
        for key, attr in _columns(obj)
        if attr.value is not None
    }
    return _entry(actor, "created", obj, changes)


def _changed(actor: Actor, obj: Any) -> dict[str, Any] | None:
    table = obj.__table__.name
    changes = {}
    for key, attr in _columns(obj):
        history = attr.history
        if not history.added and not history.deleted:
            continue
        before = history.deleted[0] if history.deleted else None
        after = history.added[0] if history.added else None
        if before == after:
            continue
        changes[key] = {"before": _shown(table, key, before), "after": _shown(table, key, after)}
    return _entry(actor, "changed", obj, changes) if changes else None


def _deleted(actor: Actor, obj: Any) -> dict[str, Any]:
    table = obj.__table__.name
    loaded = inspect(obj).dict
    changes = {
        key: {"before": _shown(table, key, loaded[key]), "after": None}
        for key, _attr in _columns(obj)
        if loaded.get(key) is not None
    }
    return _entry(actor, "deleted", obj, changes)


def _audited(obj: Any) -> bool:
    table = getattr(obj, "__table__", None)
    return table is not None and table.name in AUDITED_TABLES


WRITTEN_KEY = "audit_written"


@event.listens_for(Session, "after_flush")
def record_changes(session: Session, _flush: UOWTransaction) -> None:
    """Write an audit row for each audited object this flush created, changed or deleted.
    After the flush, new rows have their ids and every attribute still has its history.
    An object flushed again in the same transaction updates its row: one entry per object
    and change, however many flushes the change took."""
    actor = find_actor(session)
    if actor is None:
        return
    rows = [_created(actor, obj) for obj in session.new if _audited(obj)]
    for obj in session.dirty:
        if _audited(obj) and session.is_modified(obj, include_collections=False):
            row = _changed(actor, obj)
            if row is not None:
                rows.append(row)
    rows.extend(_deleted(actor, obj) for obj in session.deleted if _audited(obj))
    if not rows:
        return
    written: dict[tuple[str, str], dict[str, Any]] = session.info.setdefault(WRITTEN_KEY, {})
    fresh = []
    for row in rows:
        earlier = written.get((row["object_type"], row["object_id"]))
        if earlier is None or row["action"] == "deleted" or earlier["action"] == "deleted":
            written[(row["object_type"], row["object_id"])] = row
            fresh.append(row)
            continue
        for field, change in row["changes"].items():
            before = earlier["changes"].get(field, change)["before"]
            earlier["changes"][field] = {"before": before, "after": change["after"]}
        session.connection().execute(
            update(AuditEntry)
            .where(AuditEntry.id == earlier["id"])
            .values(changes=dict(earlier["changes"]))
        )
    if fresh:
        session.connection().execute(insert(AuditEntry), fresh)


@event.listens_for(Session, "after_transaction_end")
def forget_written(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(WRITTEN_KEY, None)
