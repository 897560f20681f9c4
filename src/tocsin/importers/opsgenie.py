"""Opsgenie: read the REST API (v2, `GenieKey` auth) and convert it to an `Export`.

Opsgenie rotations put their participants on call in turn; where rotations of one schedule
overlap, everyone in them is on call at once, while Tocsin gives the overlap to the later
layer, so overlapping rotations are noted. Escalation rules fire at a delay counted from the
alert's creation; a Tocsin level waits its own timeout, so each level's timeout is the gap to
the next rule's delay. Alerts reach Opsgenie through integrations owned by a team and routed by
its routing rules; each team's integrations are attached to one service per team, which
escalates through the team's first escalation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tocsin.escalation.models import TargetType
from tocsin.importers.convert import (
    BadExport,
    instant,
    integration_type_for,
    zone_or_utc,
)
from tocsin.importers.http_reader import JsonApi
from tocsin.importers.source import (
    ContactIn,
    Export,
    IntegrationIn,
    Kind,
    LayerIn,
    LevelIn,
    Lossy,
    MaintenanceIn,
    MemberIn,
    OverrideIn,
    PolicyIn,
    RenderedShift,
    RuleIn,
    ScheduleIn,
    ServiceIn,
    Source,
    TargetIn,
    TeamIn,
    UserIn,
)
from tocsin.importers.windows import (
    MINUTES_PER_DAY,
    MINUTES_PER_WEEK,
    covered_minutes,
    overlap,
    restrictions_from_spans,
)
from tocsin.integrations.models import IntegrationType
from tocsin.notifications.models import ContactKind, Urgency
from tocsin.schedules.definition import Rotation
from tocsin.teams.models import TeamRole

DEFAULT_BASE_URL = "https://api.opsgenie.com"
Progress = Callable[[str], None]
_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def fetch(
    token: str,
    *,
    since: datetime,
    until: datetime,
    base_url: str | None = None,
    ca_file: str | None = None,
    progress: Progress = lambda message: None,
    backoff_seconds: float | None = None,
) -> dict[str, Any]:
    """Everything the import needs, as the API answered it: the `--from-file` format."""
    api = JsonApi(
        base_url or DEFAULT_BASE_URL,
        {"Authorization": f"GenieKey {token}"},
        name="Opsgenie",
        ca_file=ca_file,
        progress=progress,
        backoff_seconds=1.0 if backoff_seconds is None else backoff_seconds,
    )
    try:
        return _fetch_all(api, since=since, until=until, progress=progress)
    finally:
        api.close()


def _listing(api: JsonApi, path: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Every item of a listing, following `paging.next` links."""
    items: list[Any] = []
    answer = api.get(path, params)
    while True:
        items.extend(answer.get("data") or [])
        following = (answer.get("paging") or {}).get("next")
        if not following:
            return items
        answer = api.get(following)


def _fetch_all(
    api: JsonApi, *, since: datetime, until: datetime, progress: Progress
) -> dict[str, Any]:
    users = _listing(api, "/v2/users", {"limit": 100})
    for user in users:
        user["contacts"] = api.get(f"/v2/users/{user['id']}/contacts").get("data") or []
        rules = api.get(f"/v2/users/{user['id']}/notification-rules").get("data") or []
        for rule in rules:
            if rule.get("actionType") != "create-alert":
                continue  # only the rules for new alerts become Tocsin rules
            path = f"/v2/users/{user['id']}/notification-rules/{rule['id']}/steps"
            rule["steps"] = api.get(path).get("data") or []
        user["notificationRules"] = rules
    progress(f"users: {len(users)} read with contacts and notification rules")
    teams = [api.get(f"/v2/teams/{team['id']}")["data"] for team in _listing(api, "/v2/teams")]
    progress(f"teams: {len(teams)} read with members")
    schedules = _listing(api, "/v2/schedules", {"expand": "rotation"})
    days = max(1, round((until - since) / timedelta(days=1)))
    for schedule in schedules:
        schedule["overrides"] = (
            api.get(f"/v2/schedules/{schedule['id']}/overrides").get("data") or []
        )
        schedule["timeline"] = api.get(
            f"/v2/schedules/{schedule['id']}/timeline",
            {"date": since.isoformat(), "interval": days, "intervalUnit": "days"},
        ).get("data")
    progress(f"schedules: {len(schedules)} read with overrides and timelines")
    escalations = _listing(api, "/v2/escalations")
    integrations = _listing(api, "/v2/integrations")
    maintenance = [
        api.get(f"/v1/maintenance/{item['id']}")["data"]
        for item in _listing(api, "/v1/maintenance", {"type": "non-expired"})
    ]
    progress(f"escalations: {len(escalations)}, integrations: {len(integrations)} read")
    return {
        "source": Source.OPSGENIE.value,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "users": users,
        "teams": teams,
        "schedules": schedules,
        "escalations": escalations,
        "integrations": integrations,
        "maintenance": maintenance,
    }


def convert(raw: dict[str, Any]) -> Export:
    """The neutral form of an Opsgenie export; what cannot be exact is noted on it."""
    export = Export(Source.OPSGENIE)
    try:
        export.users = [_user(export, item) for item in raw.get("users", [])]
        export.teams = [_team(item) for item in raw.get("teams", [])]
        for item in raw.get("schedules", []):
            _schedule(export, item)
        export.policies = [_policy(export, item) for item in raw.get("escalations", [])]
        export.services = _services(export, raw)
        export.maintenance = _maintenance(export, raw)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BadExport):
            raise
        raise BadExport(f"Opsgenie export: missing or malformed field {exc}") from exc
    return export


_CONTACTS = {"email": ContactKind.EMAIL, "sms": ContactKind.SMS, "voice": ContactKind.VOICE}


def _user(export: Export, item: dict[str, Any]) -> UserIn:
    email = str(item["username"]).strip().lower()
    contacts = []
    for contact in item.get("contacts") or []:
        kind = _CONTACTS.get(contact.get("method", ""))
        if kind is None:
            export.lossy.append(
                Lossy(
                    Kind.CONTACT_METHOD,
                    f"{email} {contact.get('method')}",
                    "the Opsgenie mobile app has no Tocsin equivalent",
                )
            )
            continue
        address = str(contact["to"])
        if kind is not ContactKind.EMAIL:
            # Opsgenie writes phone numbers as "<country code>-<number>".
            address = "+" + address.lstrip("+").replace("-", "")
        contacts.append(ContactIn(str(contact["id"]), kind, kind.value, address))
    by_address = {(c.kind, c.address): c.source_id for c in contacts}
    rules = []
    for rule in item.get("notificationRules") or []:
        if rule.get("actionType") != "create-alert" or rule.get("enabled") is False:
            continue
        if rule.get("criteria", {}).get("type", "match-all") != "match-all":
            export.lossy.append(
                Lossy(
                    Kind.NOTIFICATION_RULE,
                    f"{email} {rule.get('name')}",
                    "its conditions are dropped: the steps apply to every page",
                )
            )
        for step in rule.get("steps") or []:
            contact = step.get("contact") or {}
            kind = _CONTACTS.get(contact.get("method", ""))
            address = str(contact.get("to", ""))
            if kind is not None and kind is not ContactKind.EMAIL:
                address = "+" + address.lstrip("+").replace("-", "")
            method = by_address.get((kind, address)) if kind else None
            if method is None:
                continue  # the contact itself was left out, and said so above
            delay = _minutes(step.get("sendAfter"))
            # Opsgenie notifies the same way whatever the alert's priority.
            for urgency in (Urgency.HIGH, Urgency.LOW):
                rules.append(RuleIn(f"{step['id']}:{urgency.value}", urgency, delay, method))
    zone = zone_or_utc(export, Kind.USER, email, item.get("timeZone"))
    name = str(item.get("fullName") or email)
    return UserIn(str(item["id"]), email, name, zone, tuple(contacts), tuple(rules))


def _minutes(amount: dict[str, Any] | None) -> int:
    if not amount:
        return 0
    value = int(amount.get("timeAmount") or 0)
    unit = amount.get("timeUnit", "minutes")
    return min(value * {"hours": 60, "days": 1440}.get(unit, 1), 1440)


def _team(item: dict[str, Any]) -> TeamIn:
    members = tuple(
        MemberIn(
            str(member["user"]["id"]),
            TeamRole.MANAGER if member.get("role") == "admin" else TeamRole.RESPONDER,
        )
        for member in item.get("members") or []
    )
    return TeamIn(str(item["id"]), str(item["name"]), str(item.get("description") or ""), members)


_ROTATIONS = {"hourly": Rotation.HOURLY, "daily": Rotation.DAILY, "weekly": Rotation.WEEKLY}


def _schedule(export: Export, item: dict[str, Any]) -> None:
    name = str(item["name"])
    zone_name = zone_or_utc(export, Kind.SCHEDULE, name, item.get("timezone"))
    zone = ZoneInfo(zone_name)
    layers: list[LayerIn] = []
    coverage: list[bytearray] = []
    for rotation in item.get("rotations") or []:
        where = f"{name} / {rotation.get('name')}"
        participants = []
        for participant in rotation.get("participants") or []:
            if participant.get("type") == "user":
                participants.append((str(participant["id"]),))
            else:
                export.lossy.append(
                    Lossy(
                        Kind.SCHEDULE,
                        where,
                        f"a {participant.get('type')} participant cannot take a turn in "
                        "Tocsin; left out, so the turns after it move up",
                    )
                )
        if not participants:
            export.lossy.append(Lossy(Kind.SCHEDULE, where, "no user takes a turn; left out"))
            continue
        spans = _restriction_spans(rotation.get("timeRestriction"))
        windows = restrictions_from_spans(spans) if spans else None
        covered = covered_minutes(spans) if spans else bytearray(b"\x01" * MINUTES_PER_WEEK)
        if any(overlap(covered, earlier) for earlier in coverage):
            export.lossy.append(
                Lossy(
                    Kind.SCHEDULE,
                    where,
                    "overlaps an earlier rotation: Opsgenie puts both on call there, "
                    "Tocsin this later one",
                )
            )
        coverage.append(covered)
        start = instant(rotation["startDate"])
        layers.append(
            LayerIn(
                name=str(rotation.get("name") or rotation["id"]),
                start=start,
                end=instant(rotation["endDate"]) if rotation.get("endDate") else None,
                rotation=_ROTATIONS[rotation["type"]],
                turn_length=int(rotation.get("length") or 1),
                handoff=start.astimezone(zone).replace(tzinfo=None),
                participants=tuple(participants),
                restrictions=windows or (),
            )
        )
    overrides = []
    for override in item.get("overrides") or []:
        user = override.get("user") or {}
        if user.get("type") != "user":
            continue
        if override.get("rotations") and len(item.get("rotations") or []) > 1:
            export.lossy.append(
                Lossy(
                    Kind.OVERRIDE,
                    f"{name} / {override.get('alias')}",
                    "covers some rotations only; in Tocsin it covers the whole schedule",
                )
            )
        overrides.append(
            OverrideIn(
                str(override.get("alias") or f"{override['startDate']}"),
                (str(user["id"]),),
                instant(override["startDate"]),
                instant(override["endDate"]),
            )
        )
    team = (item.get("ownerTeam") or {}).get("id")
    export.schedules.append(
        ScheduleIn(
            str(item["id"]),
            name,
            str(item.get("description") or ""),
            str(team) if team else None,
            zone_name,
            tuple(layers),
            tuple(overrides),
        )
    )
    timeline = item.get("timeline")
    if timeline:
        rendered = []
        for rotation in (timeline.get("finalTimeline") or {}).get("rotations") or []:
            for period in rotation.get("periods") or []:
                recipient = period.get("recipient") or {}
                if recipient.get("type") != "user":
                    continue
                rendered.append(
                    RenderedShift(
                        instant(period["startDate"]),
                        instant(period["endDate"]),
                        (str(recipient["id"]),),
                    )
                )
        export.rendered[str(item["id"])] = sorted(rendered, key=lambda shift: shift.start)


def _restriction_spans(restriction: dict[str, Any] | None) -> list[tuple[int, int]]:
    """Week-minute spans of an Opsgenie time restriction (empty when there is none)."""
    if not restriction:
        return []
    if restriction["type"] == "time-of-day":
        window = restriction["restriction"]
        start = int(window["startHour"]) * 60 + int(window.get("startMin") or 0)
        end = int(window["endHour"]) * 60 + int(window.get("endMin") or 0)
        length = (end - start) % MINUTES_PER_DAY or MINUTES_PER_DAY
        return [(day * MINUTES_PER_DAY + start, length) for day in range(7)]
    spans = []
    for window in restriction.get("restrictions") or []:
        start = (
            _DAYS.index(window["startDay"].lower()) * MINUTES_PER_DAY
            + int(window["startHour"]) * 60
            + int(window.get("startMin") or 0)
        )
        end = (
            _DAYS.index(window["endDay"].lower()) * MINUTES_PER_DAY
            + int(window["endHour"]) * 60
            + int(window.get("endMin") or 0)
        )
        spans.append((start, (end - start) % MINUTES_PER_WEEK or MINUTES_PER_WEEK))
    return spans


_RECIPIENTS = {"user": TargetType.USER, "schedule": TargetType.SCHEDULE}


def _policy(export: Export, item: dict[str, Any]) -> PolicyIn:
    name = str(item["name"])
    team = (item.get("ownerTeam") or {}).get("id")
    rules = sorted(item.get("rules") or [], key=lambda rule: _minutes(rule.get("delay")))
    repeat = item.get("repeat") or {}
    levels = []
    for index, rule in enumerate(rules):
        number = index + 1
        if rule.get("condition", "if-not-acked") != "if-not-acked":
            export.lossy.append(
                Lossy(
                    Kind.POLICY,
                    name,
                    f"rule {number} runs until the alert is closed; Tocsin stops at acknowledge",
                )
            )
        if rule.get("notifyType", "default") != "default":
            export.lossy.append(
                Lossy(
                    Kind.POLICY,
                    name,
                    f"rule {number} notifies '{rule.get('notifyType')}'; Tocsin pages the "
                    "recipient itself",
                )
            )
        if index == 0 and _minutes(rule.get("delay")):
            export.lossy.append(
                Lossy(Kind.POLICY, name, "its first rule waits; Tocsin pages level 1 at once")
            )
        following = rules[index + 1] if index + 1 < len(rules) else None
        if following is not None:
            timeout = _minutes(following.get("delay")) - _minutes(rule.get("delay"))
        else:
            timeout = int(repeat.get("waitInterval") or 0)
        recipient = rule.get("recipient") or {}
        kind = recipient.get("type")
        if kind == "team":
            target = TargetIn(TargetType.ENTIRE_TEAM, None)
            export.lossy.append(
                Lossy(
                    Kind.POLICY,
                    name,
                    f"rule {number} notifies a team through its routing rules; Tocsin pages "
                    "every member of the policy's team",
                )
            )
        elif kind in _RECIPIENTS:
            target = TargetIn(_RECIPIENTS[kind], str(recipient["id"]))
        else:
            export.lossy.append(
                Lossy(Kind.POLICY, name, f"rule {number}: Tocsin cannot page a {kind}")
            )
            continue
        levels.append(LevelIn(max(1, timeout), target))
    count = int(repeat.get("count") or 0) if repeat else 0
    if count + 1 > 9:
        export.lossy.append(Lossy(Kind.POLICY, name, f"repeats {count} times; Tocsin at most 8"))
    return PolicyIn(
        str(item["id"]),
        name,
        str(item.get("description") or ""),
        str(team) if team else None,
        min(count + 1, 9),
        tuple(levels),
    )


def _services(export: Export, raw: dict[str, Any]) -> list[ServiceIn]:
    """One service per team that owns integrations, escalating through its first escalation."""
    first_policy: dict[str | None, str] = {}
    for policy in export.policies:
        first_policy.setdefault(policy.team_source_id, policy.source_id)
    teams = {team.source_id: team.name for team in export.teams}
    by_team: dict[str | None, list[IntegrationIn]] = defaultdict(list)
    for integration in raw.get("integrations") or []:
        label = str(integration.get("name") or integration["id"])
        vendor = str(integration.get("type") or "")
        type = IntegrationType.OPSGENIE if vendor == "API" else integration_type_for(vendor)
        if type is None:
            type = IntegrationType.GENERIC
            export.lossy.append(
                Lossy(
                    Kind.INTEGRATION,
                    label,
                    f"no Tocsin adapter for Opsgenie's {vendor} integration; a generic "
                    "webhook is made",
                )
            )
        team = integration.get("teamId") or (integration.get("ownerTeam") or {}).get("id")
        by_team[str(team) if team else None].append(
            IntegrationIn(str(integration["id"]), label, type)
        )
    services = []
    for team, integrations in by_team.items():
        title = teams.get(team or "", "Opsgenie")
        if (
            team in first_policy
            and len([p for p in export.policies if p.team_source_id == team]) > 1
        ):
            export.lossy.append(
                Lossy(
                    Kind.SERVICE,
                    f"{title} alerts",
                    "Opsgenie picks an escalation by the team's routing rules; Tocsin uses the "
                    "team's first escalation",
                )
            )
        services.append(
            ServiceIn(
                f"team:{team}",
                f"{title} alerts",
                "Alerts of the Opsgenie integrations this team owned",
                team,
                first_policy.get(team),
                tuple(integrations),
            )
        )
    return services


def _maintenance(export: Export, raw: dict[str, Any]) -> list[MaintenanceIn]:
    """Scheduled maintenance of integrations: a window on the service holding them."""
    service_of = {
        integration.source_id: service.source_id
        for service in export.services
        for integration in service.integrations
    }
    windows = []
    for item in raw.get("maintenance") or []:
        name = str(item.get("description") or item["id"])
        timing = item.get("time") or {}
        if not timing.get("startDate") or not timing.get("endDate"):
            export.skipped.append(
                Lossy(Kind.MAINTENANCE, name, "open-ended maintenance has no Tocsin equivalent")
            )
            continue
        services = []
        for rule in item.get("rules") or []:
            entity = rule.get("entity") or {}
            if entity.get("type") == "integration" and str(entity.get("id")) in service_of:
                services.append(service_of[str(entity["id"])])
            else:
                export.lossy.append(
                    Lossy(
                        Kind.MAINTENANCE,
                        name,
                        f"covers a {entity.get('type')}; Tocsin windows cover services only",
                    )
                )
        if services:
            windows.append(
                MaintenanceIn(
                    str(item["id"]),
                    name,
                    instant(timing["startDate"]),
                    instant(timing["endDate"]),
                    tuple(dict.fromkeys(services)),
                )
            )
    return windows
