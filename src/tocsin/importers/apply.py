"""Writing an `Export` into Tocsin: idempotent, one transaction per kind of object, same report.

Each source object is looked up in the import ledger first: found and unchanged (same
fingerprint) means nothing to do, found and changed means update in place, not found means
match an existing Tocsin object (a user by email, a team by name) or create one. A dry run does
exactly the same work and rolls it back, so its report is the one `--apply` would print.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tocsin.audit.recorder import Actor, act_as
from tocsin.auth.accounts import create_user, find_user_by_email
from tocsin.auth.models import User
from tocsin.catalog.models import Service, ServiceStatus
from tocsin.catalog.registry import change_service, register_service
from tocsin.db import new_ordered_id
from tocsin.errors import TocsinError
from tocsin.escalation.models import EscalationPolicy, TargetType
from tocsin.escalation.policies import LevelSpec, change_policy, create_policy
from tocsin.importers.models import ImportRecord
from tocsin.importers.report import Action, Endpoint, Report
from tocsin.importers.source import (
    ContactIn,
    Export,
    Kind,
    Lossy,
    MaintenanceIn,
    OverrideIn,
    PolicyIn,
    RuleIn,
    ScheduleIn,
    ServiceIn,
    TeamIn,
    UserIn,
)
from tocsin.integrations.models import Integration, IntegrationType
from tocsin.integrations.provisioning import change_integration, create_integration, webhook_url
from tocsin.noise.models import MaintenanceWindow
from tocsin.notifications.models import ContactMethod, NotificationRule
from tocsin.schedules.definition import LayerDef, OverrideDef, ScheduleDef
from tocsin.schedules.editing import add_layer, add_override, change_schedule, create_schedule
from tocsin.schedules.models import Schedule, ScheduleLayer, ScheduleOverride
from tocsin.schedules.validation import validate_schedule
from tocsin.teams.directory import create_team
from tocsin.teams.models import Team, TeamMember, TeamRole

# The team that receives schedules, policies and services the source kept outside any team.
DEFAULT_TEAM_ID = "__default_team__"


@dataclass(frozen=True, slots=True)
class ImportOptions:
    apply: bool
    now: datetime
    # Where monitoring tools reach this Tocsin: the start of each new webhook URL.
    base_url: str


@dataclass(slots=True)
class _Run:
    session: AsyncSession
    export: Export
    options: ImportOptions
    report: Report
    users: dict[str, uuid.UUID] = field(default_factory=dict)
    contacts: dict[str, uuid.UUID] = field(default_factory=dict)
    teams: dict[str, uuid.UUID] = field(default_factory=dict)
    schedules: dict[str, uuid.UUID] = field(default_factory=dict)
    policies: dict[str, uuid.UUID] = field(default_factory=dict)
    services: dict[str, uuid.UUID] = field(default_factory=dict)

    @property
    def now(self) -> datetime:
        return self.options.now

    @property
    def source(self) -> str:
        return self.export.source.value

    async def find(self, kind: Kind, source_id: str) -> ImportRecord | None:
        return await self.session.get(ImportRecord, (self.source, kind.value, source_id))

    async def remember(
        self, kind: Kind, source_id: str, object_id: uuid.UUID, fingerprint: str
    ) -> None:
        record = await self.find(kind, source_id)
        if record is None:
            self.session.add(
                ImportRecord(
                    source=self.source,
                    kind=kind.value,
                    source_id=source_id,
                    object_id=object_id,
                    fingerprint=fingerprint,
                    imported_at=self.now,
                    updated_at=self.now,
                )
            )
        else:
            record.object_id = object_id
            record.fingerprint = fingerprint
            record.updated_at = self.now
        await self.session.flush()

    def lossy(self, kind: Kind, name: str, reason: str) -> None:
        self.report.lossy.append(Lossy(kind, name, reason))


async def run_import(
    sessions: async_sessionmaker[AsyncSession], export: Export, options: ImportOptions
) -> Report:
    """Write `export` (or, without `options.apply`, work out and roll back what it would write)."""
    report = Report(
        export.source, options.apply, lossy=list(export.lossy), notes=list(export.notes)
    )
    for item in export.skipped:
        report.add(item.kind, item.name, Action.SKIP, item.reason)
    steps: list[Callable[[_Run], Awaitable[None]]] = [
        _import_users,
        _import_teams,
        _import_schedules,
        _import_policies,
        _import_services,
        _import_maintenance,
    ]
    async with sessions() as session:
        act_as(session, Actor(user_id=None, via="cli", via_id=None, now=lambda: options.now))
        run = _Run(session, export, options, report)
        for step in steps:
            await step(run)
            if options.apply:
                await session.commit()
        if not options.apply:
            await session.rollback()
    return report


def fingerprint(value: Any) -> str:
    """A stable digest of a converted object: equal digests mean nothing changed."""
    data = (
        dataclasses.asdict(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type)
        else value
    )
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --- users, contact methods, notification rules -------------------------------------------


async def _import_users(run: _Run) -> None:
    for user in run.export.users:
        try:
            async with run.session.begin_nested():
                await _import_user(run, user)
        except TocsinError as exc:
            run.report.add(Kind.USER, user.email, Action.SKIP, str(exc))


async def _import_user(run: _Run, user: UserIn) -> None:
    own = fingerprint(dataclasses.replace(user, contacts=(), rules=()))
    record = await run.find(Kind.USER, user.source_id)
    row = await run.session.get(User, record.object_id) if record else None
    if row is not None and record is not None:
        if record.fingerprint == own:
            run.report.add(Kind.USER, user.email, Action.UNCHANGED)
        else:
            row.name = user.name
            row.time_zone = user.time_zone
            row.updated_at = run.now
            run.report.add(Kind.USER, user.email, Action.UPDATE, "name and time zone")
    else:
        row = await find_user_by_email(run.session, user.email)
        if row is not None:
            run.report.add(Kind.USER, user.email, Action.MATCH, "a user with this email exists")
        else:
            row = await create_user(
                run.session,
                email=user.email,
                name=user.name,
                is_admin=False,
                now=run.now,
                time_zone=user.time_zone,
            )
            run.report.add(Kind.USER, user.email, Action.CREATE, "no password: sign-in by reset")
    await run.remember(Kind.USER, user.source_id, row.id, own)
    run.users[user.source_id] = row.id
    for contact in user.contacts:
        await _import_contact(run, row.id, user, contact)
    for rule in user.rules:
        await _import_rule(run, row.id, user, rule)


async def _import_contact(run: _Run, user_id: uuid.UUID, user: UserIn, contact: ContactIn) -> None:
    name = f"{user.email} {contact.kind.value} {contact.address}"
    digest = fingerprint(contact)
    record = await run.find(Kind.CONTACT_METHOD, contact.source_id)
    row = await run.session.get(ContactMethod, record.object_id) if record else None
    if row is None:
        row = (
            await run.session.execute(
                select(ContactMethod).where(
                    ContactMethod.user_id == user_id,
                    ContactMethod.kind == contact.kind,
                    ContactMethod.address == contact.address,
                )
            )
        ).scalar_one_or_none()
        if row is not None:
            run.report.add(Kind.CONTACT_METHOD, name, Action.MATCH)
        else:
            # The source verified this address already: paging it needs no new code.
            row = ContactMethod(
                id=uuid.uuid4(),
                user_id=user_id,
                kind=contact.kind,
                name=contact.label[:200],
                address=contact.address,
                verified_at=run.now,
                verification_failures=0,
                created_at=run.now,
                updated_at=run.now,
            )
            run.session.add(row)
            await run.session.flush()
            run.report.add(Kind.CONTACT_METHOD, name, Action.CREATE, "verified by the source")
    elif record is not None and record.fingerprint != digest:
        row.name = contact.label[:200]
        row.address = contact.address
        row.updated_at = run.now
        run.report.add(Kind.CONTACT_METHOD, name, Action.UPDATE)
    else:
        run.report.add(Kind.CONTACT_METHOD, name, Action.UNCHANGED)
    await run.remember(Kind.CONTACT_METHOD, contact.source_id, row.id, digest)
    run.contacts[contact.source_id] = row.id


async def _import_rule(run: _Run, user_id: uuid.UUID, user: UserIn, rule: RuleIn) -> None:
    name = f"{user.email} {rule.urgency.value} after {rule.delay_minutes} min"
    method_id = run.contacts.get(rule.contact_source_id)
    if method_id is None:
        run.report.add(Kind.NOTIFICATION_RULE, name, Action.SKIP, "its contact method was skipped")
        return
    digest = fingerprint(rule)
    record = await run.find(Kind.NOTIFICATION_RULE, rule.source_id)
    row = await run.session.get(NotificationRule, record.object_id) if record else None
    same = select(NotificationRule).where(
        NotificationRule.user_id == user_id,
        NotificationRule.urgency == rule.urgency,
        NotificationRule.contact_method_id == method_id,
        NotificationRule.delay_minutes == rule.delay_minutes,
    )
    if row is None:
        row = (await run.session.execute(same)).scalar_one_or_none()
        if row is not None:
            run.report.add(Kind.NOTIFICATION_RULE, name, Action.MATCH)
        else:
            row = NotificationRule(
                id=uuid.uuid4(),
                user_id=user_id,
                urgency=rule.urgency,
                delay_minutes=rule.delay_minutes,
                contact_method_id=method_id,
                created_at=run.now,
            )
            run.session.add(row)
            await run.session.flush()
            run.report.add(Kind.NOTIFICATION_RULE, name, Action.CREATE)
    elif record is not None and record.fingerprint != digest:
        row.urgency = rule.urgency
        row.delay_minutes = rule.delay_minutes
        row.contact_method_id = method_id
        run.report.add(Kind.NOTIFICATION_RULE, name, Action.UPDATE)
    else:
        run.report.add(Kind.NOTIFICATION_RULE, name, Action.UNCHANGED)
    await run.remember(Kind.NOTIFICATION_RULE, rule.source_id, row.id, digest)


# --- teams ---------------------------------------------------------------------------------


async def _import_teams(run: _Run) -> None:
    for team in run.export.teams:
        try:
            async with run.session.begin_nested():
                await _import_team(run, team)
        except TocsinError as exc:
            run.report.add(Kind.TEAM, team.name, Action.SKIP, str(exc))


async def _import_team(run: _Run, team: TeamIn) -> None:
    digest = fingerprint(team)
    record = await run.find(Kind.TEAM, team.source_id)
    row = await run.session.get(Team, record.object_id) if record else None
    added, changed = 0, 0
    if row is None:
        row = (await run.session.execute(select(Team).where(Team.name == team.name))).scalar()
        action = Action.MATCH if row is not None else Action.CREATE
        if row is None:
            row = await create_team(
                run.session, name=team.name, description=team.description, now=run.now
            )
    elif record is not None and record.fingerprint != digest:
        action = Action.UPDATE
        row.description = team.description
        row.updated_at = run.now
    else:
        action = Action.UNCHANGED
    run.teams[team.source_id] = row.id
    for member in team.members:
        user_id = run.users.get(member.user_source_id)
        if user_id is None:
            run.lossy(Kind.TEAM, team.name, f"member {member.user_source_id} was not imported")
            continue
        current = await run.session.get(TeamMember, (row.id, user_id))
        if current is None:
            await _add_member(run, row.id, user_id, member.role)
            added += 1
        elif current.role != member.role:
            current.role = member.role
            changed += 1
    detail = ", ".join(
        part
        for part in (
            f"{added} members added" if added else "",
            f"{changed} roles" if changed else "",
        )
        if part
    )
    if action is Action.UNCHANGED and (added or changed):
        action = Action.UPDATE
    run.report.add(Kind.TEAM, team.name, action, detail)
    await run.remember(Kind.TEAM, team.source_id, row.id, digest)


async def _add_member(run: _Run, team_id: uuid.UUID, user_id: uuid.UUID, role: TeamRole) -> None:
    run.session.add(TeamMember(team_id=team_id, user_id=user_id, role=role, created_at=run.now))
    await run.session.flush()


async def _team_for(run: _Run, team_source_id: str | None) -> uuid.UUID:
    """The Tocsin team of an object; the source's objects outside any team share one team."""
    if team_source_id is not None and team_source_id in run.teams:
        return run.teams[team_source_id]
    if DEFAULT_TEAM_ID in run.teams:
        return run.teams[DEFAULT_TEAM_ID]
    name = f"Imported from {run.export.source.label}"
    await _import_team(run, TeamIn(DEFAULT_TEAM_ID, name, "Objects the source kept outside a team"))
    return run.teams[DEFAULT_TEAM_ID]


async def _ensure_members(
    run: _Run, team_id: uuid.UUID, user_ids: Sequence[uuid.UUID], *, why: str
) -> None:
    """Make every user a member of the team (as responder), as Tocsin needs for on-call."""
    for user_id in dict.fromkeys(user_ids):
        if await run.session.get(TeamMember, (team_id, user_id)) is None:
            await _add_member(run, team_id, user_id, TeamRole.RESPONDER)
            user = await run.session.get(User, user_id)
            team = await run.session.get(Team, team_id)
            run.report.notes.append(
                f"{user.email if user else user_id} is added to team "
                f"{team.name if team else team_id!r} as responder: {why}"
            )


# --- schedules and overrides ---------------------------------------------------------------


async def _import_schedules(run: _Run) -> None:
    for schedule in run.export.schedules:
        try:
            async with run.session.begin_nested():
                await _import_schedule(run, schedule)
        except TocsinError as exc:
            run.report.add(Kind.SCHEDULE, schedule.name, Action.SKIP, str(exc))


def _resolve_users(
    run: _Run, source_ids: Sequence[str], *, kind: Kind, name: str
) -> list[uuid.UUID]:
    found = []
    for source_id in source_ids:
        if source_id in run.users:
            found.append(run.users[source_id])
        else:
            run.lossy(kind, name, f"user {source_id} was not imported, so is left out")
    return found


async def _import_schedule(run: _Run, schedule: ScheduleIn) -> None:
    team_id = await _team_for(run, schedule.team_source_id)
    layers: list[LayerDef] = []
    for layer in schedule.layers:
        participants = []
        for group in layer.participants:
            users = _resolve_users(run, group, kind=Kind.SCHEDULE, name=schedule.name)
            if users:
                participants.append(tuple(users))
        if not participants:
            run.lossy(Kind.SCHEDULE, schedule.name, f"layer {layer.name!r} has nobody left")
            continue
        layers.append(
            LayerDef(
                id=uuid.uuid4(),
                name=layer.name,
                start=layer.start,
                end=layer.end,
                rotation=layer.rotation,
                turn_length=layer.turn_length,
                handoff=layer.handoff,
                participants=tuple(participants),
                restrictions=layer.restrictions,
            )
        )
    validate_schedule(ScheduleDef(schedule.time_zone, tuple(layers)))
    everyone = [user for layer in layers for group in layer.participants for user in group]
    await _ensure_members(run, team_id, everyone, why=f"schedule {schedule.name!r} has them")
    digest = fingerprint(dataclasses.replace(schedule, overrides=()))
    record = await run.find(Kind.SCHEDULE, schedule.source_id)
    row = await run.session.get(Schedule, record.object_id) if record else None
    if row is None:
        name = await _free_schedule_name(run, team_id, schedule.name)
        row = await create_schedule(
            run.session,
            team_id=team_id,
            name=name,
            description=schedule.description,
            time_zone=schedule.time_zone,
            layers=layers,
            now=run.now,
        )
        detail = f"{len(layers)} layers" + (f", named {name!r}" if name != schedule.name else "")
        run.report.add(Kind.SCHEDULE, schedule.name, Action.CREATE, detail)
    elif record is not None and record.fingerprint != digest:
        await change_schedule(
            run.session,
            row,
            {"description": schedule.description, "time_zone": schedule.time_zone},
            now=run.now,
        )
        await run.session.execute(delete(ScheduleLayer).where(ScheduleLayer.schedule_id == row.id))
        for layer_def in layers:
            await add_layer(run.session, row, layer_def, now=run.now)
        run.report.add(Kind.SCHEDULE, schedule.name, Action.UPDATE, f"{len(layers)} layers")
    else:
        run.report.add(Kind.SCHEDULE, schedule.name, Action.UNCHANGED)
    await run.remember(Kind.SCHEDULE, schedule.source_id, row.id, digest)
    run.schedules[schedule.source_id] = row.id
    for override in schedule.overrides:
        await _import_override(run, row, schedule, override)


async def _free_schedule_name(run: _Run, team_id: uuid.UUID, name: str) -> str:
    taken = await run.session.execute(
        select(Schedule.id).where(Schedule.team_id == team_id, Schedule.name == name)
    )
    if taken.first() is None:
        return name
    return f"{name} ({run.export.source.label})"


async def _import_override(
    run: _Run, schedule_row: Schedule, schedule: ScheduleIn, override: OverrideIn
) -> None:
    zone_name = (
        f"{schedule.name}: {override.start:%Y-%m-%d %H:%M}-{override.end:%Y-%m-%d %H:%M} UTC"
    )
    users = _resolve_users(run, override.user_source_ids, kind=Kind.OVERRIDE, name=zone_name)
    if not users:
        run.report.add(Kind.OVERRIDE, zone_name, Action.SKIP, "nobody of it was imported")
        return
    digest = fingerprint(override)
    record = await run.find(Kind.OVERRIDE, override.source_id)
    existing = await run.session.get(ScheduleOverride, record.object_id) if record else None
    if existing is not None and record is not None and record.fingerprint == digest:
        run.report.add(Kind.OVERRIDE, zone_name, Action.UNCHANGED)
        return
    if existing is not None:
        await run.session.delete(existing)
        await run.session.flush()
    await _ensure_members(
        run, schedule_row.team_id, users, why=f"an override of {schedule.name!r} has them"
    )
    stored = await add_override(
        run.session,
        schedule_row,
        OverrideDef(new_ordered_id(), tuple(users), override.start, override.end),
        created_by=None,
        now=run.now,
    )
    action = Action.UPDATE if existing is not None else Action.CREATE
    run.report.add(Kind.OVERRIDE, zone_name, action)
    await run.remember(Kind.OVERRIDE, override.source_id, stored.id, digest)


# --- escalation policies -------------------------------------------------------------------


async def _import_policies(run: _Run) -> None:
    for policy in run.export.policies:
        try:
            async with run.session.begin_nested():
                await _import_policy(run, policy)
        except TocsinError as exc:
            run.report.add(Kind.POLICY, policy.name, Action.SKIP, str(exc))


async def _import_policy(run: _Run, policy: PolicyIn) -> None:
    team_id = await _team_for(run, policy.team_source_id)
    levels: list[LevelSpec] = []
    for level in policy.levels:
        target = level.target
        target_id: uuid.UUID | None = None
        if target.type is TargetType.USER:
            target_id = run.users.get(target.source_id or "")
            if target_id is not None:
                await _ensure_members(
                    run, team_id, [target_id], why=f"policy {policy.name!r} pages them"
                )
        elif target.type is TargetType.SCHEDULE:
            target_id = run.schedules.get(target.source_id or "")
            schedule = await run.session.get(Schedule, target_id) if target_id else None
            if schedule is not None and schedule.team_id != team_id:
                run.lossy(
                    Kind.POLICY,
                    policy.name,
                    f"schedule {schedule.name!r} belongs to another team; its level is left out",
                )
                continue
        if target.type is not TargetType.ENTIRE_TEAM and target_id is None:
            run.lossy(
                Kind.POLICY,
                policy.name,
                f"{target.type.value} {target.source_id} was not imported; its level is left out",
            )
            continue
        levels.append(LevelSpec(len(levels) + 1, target.type, target_id, level.timeout_minutes))
    if not levels:
        run.report.add(Kind.POLICY, policy.name, Action.SKIP, "no level has a target left")
        return
    digest = fingerprint(policy)
    record = await run.find(Kind.POLICY, policy.source_id)
    row = await run.session.get(EscalationPolicy, record.object_id) if record else None
    if row is None:
        created = await create_policy(
            run.session,
            team_id=team_id,
            name=policy.name,
            description=policy.description,
            is_default=False,
            repeat_count=policy.repeat_count,
            is_active=True,
            levels=levels,
            now=run.now,
            ack_timeout_minutes=policy.ack_timeout_minutes,
        )
        row = created.policy
        run.report.add(Kind.POLICY, policy.name, Action.CREATE, f"{len(levels)} levels")
    elif record is not None and record.fingerprint != digest:
        await change_policy(
            run.session,
            row,
            {
                "name": policy.name,
                "description": policy.description,
                "repeat_count": policy.repeat_count,
                "ack_timeout_minutes": policy.ack_timeout_minutes,
            },
            levels=levels,
            now=run.now,
        )
        run.report.add(Kind.POLICY, policy.name, Action.UPDATE, f"{len(levels)} levels")
    else:
        run.report.add(Kind.POLICY, policy.name, Action.UNCHANGED)
    await run.remember(Kind.POLICY, policy.source_id, row.id, digest)
    run.policies[policy.source_id] = row.id


# --- services and their integrations -------------------------------------------------------


async def _import_services(run: _Run) -> None:
    for service in run.export.services:
        try:
            async with run.session.begin_nested():
                await _import_service(run, service)
        except TocsinError as exc:
            run.report.add(Kind.SERVICE, service.name, Action.SKIP, str(exc))


def routing_key(source: str, source_id: str) -> str:
    """The routing key an imported service gets: stable across re-runs."""
    return f"{source}/" + re.sub(r"[^A-Za-z0-9._:-]", "-", source_id)


async def _import_service(run: _Run, service: ServiceIn) -> None:
    policy_id = run.policies.get(service.policy_source_id or "")
    if service.policy_source_id and policy_id is None:
        run.lossy(Kind.SERVICE, service.name, "its escalation policy was not imported")
    policy = await run.session.get(EscalationPolicy, policy_id) if policy_id else None
    # A service routes through a policy of its own team: follow the policy's team.
    team_id = policy.team_id if policy else await _team_for(run, service.team_source_id)
    digest = fingerprint(dataclasses.replace(service, integrations=()))
    record = await run.find(Kind.SERVICE, service.source_id)
    row = await run.session.get(Service, record.object_id) if record else None
    if row is None:
        row = await register_service(
            run.session,
            name=service.name,
            description=service.description,
            routing_key=routing_key(run.source, service.source_id),
            team_id=team_id,
            escalation_policy_id=policy_id,
            status=ServiceStatus.ACTIVE,
            now=run.now,
        )
        run.report.add(Kind.SERVICE, service.name, Action.CREATE, f"routing key {row.routing_key}")
    elif record is not None and record.fingerprint != digest:
        await change_service(
            run.session,
            row,
            {
                "name": service.name,
                "description": service.description,
                "team_id": team_id,
                "escalation_policy_id": policy_id,
            },
            now=run.now,
        )
        run.report.add(Kind.SERVICE, service.name, Action.UPDATE)
    else:
        run.report.add(Kind.SERVICE, service.name, Action.UNCHANGED)
    await run.remember(Kind.SERVICE, service.source_id, row.id, digest)
    run.services[service.source_id] = row.id
    for integration in service.integrations:
        digest = fingerprint(integration)
        record = await run.find(Kind.INTEGRATION, integration.source_id)
        existing = await run.session.get(Integration, record.object_id) if record else None
        label = f"{service.name} / {integration.name}"
        if existing is not None:
            if record is not None and record.fingerprint != digest:
                await change_integration(
                    run.session, existing, {"name": integration.name[:200]}, now=run.now
                )
                run.report.add(Kind.INTEGRATION, label, Action.UPDATE)
            else:
                run.report.add(Kind.INTEGRATION, label, Action.UNCHANGED)
            run.report.endpoints.append(
                Endpoint(service.name, integration.name, integration.type.value, None, "")
            )
            continue
        created, key = await create_integration(
            run.session,
            name=integration.name[:200],
            type=integration.type,
            default_service_id=row.id,
            dedup_window_minutes=60,
            auto_resolve=True,
            active=True,
            now=run.now,
        )
        run.report.add(Kind.INTEGRATION, label, Action.CREATE, integration.type.value)
        await run.remember(Kind.INTEGRATION, integration.source_id, created.id, digest)
        base = run.options.base_url
        if run.options.apply:
            run.report.endpoints.append(
                Endpoint(
                    service.name,
                    integration.name,
                    integration.type.value,
                    webhook_url(base, key),
                    _how(integration.type, base, key),
                )
            )
        else:
            run.report.endpoints.append(
                Endpoint(
                    service.name,
                    integration.name,
                    integration.type.value,
                    None,
                    "its new URL is shown once applied",
                )
            )


# --- maintenance windows -------------------------------------------------------------------


async def _import_maintenance(run: _Run) -> None:
    for window in run.export.maintenance:
        name = f"{window.description or window.source_id}: {window.start:%Y-%m-%d %H:%M} UTC"
        try:
            async with run.session.begin_nested():
                await _import_window(run, window, name)
        except TocsinError as exc:
            run.report.add(Kind.MAINTENANCE, name, Action.SKIP, str(exc))


async def _import_window(run: _Run, window: MaintenanceIn, name: str) -> None:
    """One Tocsin window per service the source's window covers."""
    digest = fingerprint(window)
    for service_source_id in window.service_source_ids:
        service_id = run.services.get(service_source_id)
        if service_id is None:
            run.report.add(Kind.MAINTENANCE, name, Action.SKIP, "its service was not imported")
            continue
        key = f"{window.source_id}@{service_source_id}"
        record = await run.find(Kind.MAINTENANCE, key)
        row = await run.session.get(MaintenanceWindow, record.object_id) if record else None
        if row is None:
            row = MaintenanceWindow(
                service_id=service_id,
                description=window.description,
                starts_at=window.start,
                ends_at=window.end,
                created_by=None,
                created_at=run.now,
            )
            run.session.add(row)
            await run.session.flush()
            run.report.add(Kind.MAINTENANCE, name, Action.CREATE)
        elif record is not None and record.fingerprint != digest:
            row.description = window.description
            row.starts_at = window.start
            row.ends_at = window.end
            run.report.add(Kind.MAINTENANCE, name, Action.UPDATE)
        else:
            run.report.add(Kind.MAINTENANCE, name, Action.UNCHANGED)
        await run.remember(Kind.MAINTENANCE, key, row.id, digest)


def _how(type: IntegrationType, base: str, key: str) -> str:
    if type is IntegrationType.PAGERDUTY:
        return f"or keep the PagerDuty Events API v2: POST {base}/v2/enqueue, routing_key {key}"
    if type is IntegrationType.OPSGENIE:
        return (
            f"or keep the Opsgenie Alert API: POST {base}/v2/alerts, "
            f"'Authorization: GenieKey {key}'"
        )
    return ""
