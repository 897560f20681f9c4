"""Grafana OnCall: read the public API (`/api/v1/`) and convert it to an `Export`.

Shifts made in Grafana's web UI carry no time zone: Grafana expands them in UTC, so a handoff
set at 09:00 Berlin in winter happens at 10:00 in summer. A schedule whose shifts are all like
that is imported in UTC, which reproduces Grafana exactly (the report says how to move it to
local time). A shift with its own `time_zone` starts at local times but keeps a fixed duration
across DST in Grafana, so it overlaps or leaves a gap for an hour; Tocsin hands off at the local
time, and says so.

Escalation chains are steps; a `wait` step becomes the timeout of the notify step before it.
Grafana routes alerts per integration, so each integration becomes a service of its own that
escalates through the chain of the integration's default route.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tocsin.escalation.models import TargetType
from tocsin.importers.convert import BadExport, instant, zone_or_utc
from tocsin.importers.http_reader import JsonApi
from tocsin.importers.source import (
    ContactIn,
    Export,
    IntegrationIn,
    Kind,
    LayerIn,
    LevelIn,
    Lossy,
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
from tocsin.importers.windows import MINUTES_PER_DAY, restrictions_from_spans
from tocsin.integrations.models import IntegrationType
from tocsin.notifications.models import ContactKind, Urgency
from tocsin.schedules.definition import Rotation
from tocsin.teams.models import TeamRole

Progress = Callable[[str], None]
_UTC = ZoneInfo("UTC")


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
    if not base_url:
        raise BadExport("Grafana OnCall needs --base-url: the OnCall API URL of your instance")
    api = JsonApi(
        base_url,
        {"Authorization": token},
        name="Grafana OnCall",
        ca_file=ca_file,
        progress=progress,
        backoff_seconds=1.0 if backoff_seconds is None else backoff_seconds,
    )
    try:
        raw: dict[str, Any] = {
            "source": Source.GRAFANA_ONCALL.value,
            "since": since.isoformat(),
            "until": until.isoformat(),
        }
        for key, path in (
            ("users", "/api/v1/users/"),
            ("personal_notification_rules", "/api/v1/personal_notification_rules/"),
            ("teams", "/api/v1/teams/"),
            ("schedules", "/api/v1/schedules/"),
            ("on_call_shifts", "/api/v1/on_call_shifts/"),
            ("escalation_chains", "/api/v1/escalation_chains/"),
            ("escalation_policies", "/api/v1/escalation_policies/"),
            ("integrations", "/api/v1/integrations/"),
        ):
            raw[key] = _listing(api, path)
            progress(f"{key}: {len(raw[key])} read")
        # final_shifts takes dates, both included: ask for every day the window touches.
        dates = {
            "start_date": since.date().isoformat(),
            "end_date": (until - timedelta(microseconds=1)).date().isoformat(),
        }
        for schedule in raw["schedules"]:
            if schedule.get("type") == "ical":
                continue  # not imported, so not compared
            path = f"/api/v1/schedules/{schedule['id']}/final_shifts"
            schedule["final_shifts"] = _listing(api, path, dates)
        progress(f"final shifts of {len(raw['schedules'])} schedules read")
        return raw
    finally:
        api.close()


def _listing(api: JsonApi, path: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Every item of a listing, following `next` links."""
    items: list[Any] = []
    answer = api.get(path, params)
    while True:
        items.extend(answer.get("results") or [])
        if not answer.get("next"):
            return items
        answer = api.get(answer["next"])


def convert(raw: dict[str, Any]) -> Export:
    """The neutral form of a Grafana OnCall export; what cannot be exact is noted on it."""
    export = Export(Source.GRAFANA_ONCALL)
    try:
        rules = defaultdict(list)
        for rule in raw.get("personal_notification_rules", []):
            rules[str(rule["user_id"])].append(rule)
        export.users = [
            _user(export, item, rules[str(item["id"])]) for item in raw.get("users", [])
        ]
        export.teams = _teams(raw)
        shifts = {str(shift["id"]): shift for shift in raw.get("on_call_shifts", [])}
        for item in raw.get("schedules", []):
            _schedule(export, item, shifts)
        steps = defaultdict(list)
        for step in raw.get("escalation_policies", []):
            steps[str(step["escalation_chain_id"])].append(step)
        export.policies = [
            _policy(export, chain, steps[str(chain["id"])])
            for chain in raw.get("escalation_chains", [])
        ]
        export.services = [_service(export, item) for item in raw.get("integrations", [])]
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BadExport):
            raise
        raise BadExport(f"Grafana OnCall export: missing or malformed field {exc}") from exc
    return export


def _user(export: Export, item: dict[str, Any], rules: list[dict[str, Any]]) -> UserIn:
    email = str(item["email"]).strip().lower()
    contact = ContactIn(f"{item['id']}:email", ContactKind.EMAIL, "Email", email)
    converted: list[RuleIn] = []
    delay = 0
    for rule in sorted(rules, key=lambda rule: int(rule.get("position") or 0)):
        kind = rule.get("type", "")
        if rule.get("important"):
            export.lossy.append(
                Lossy(
                    Kind.NOTIFICATION_RULE,
                    f"{email} {kind}",
                    "an 'important' rule: Tocsin has no important notifications",
                )
            )
            continue
        if kind == "wait":
            delay += int(rule.get("duration") or 0) // 60
        elif kind == "notify_by_email":
            for urgency in (Urgency.HIGH, Urgency.LOW):
                converted.append(
                    RuleIn(
                        f"{rule['id']}:{urgency.value}",
                        urgency,
                        min(delay, 1440),
                        contact.source_id,
                    )
                )
        else:
            export.lossy.append(
                Lossy(
                    Kind.NOTIFICATION_RULE,
                    f"{email} {kind}",
                    "Grafana OnCall's API does not give the phone number or chat account; "
                    "add it in Tocsin",
                )
            )
    zone = zone_or_utc(export, Kind.USER, email, item.get("timezone") or "UTC")
    name = str(item.get("name") or item.get("username") or email)
    return UserIn(str(item["id"]), email, name, zone, (contact,), tuple(converted))


def _teams(raw: dict[str, Any]) -> list[TeamIn]:
    members: dict[str, list[MemberIn]] = defaultdict(list)
    for user in raw.get("users", []):
        for team in user.get("teams") or []:
            role = TeamRole.MANAGER if user.get("role") == "admin" else TeamRole.RESPONDER
            members[str(team)].append(MemberIn(str(user["id"]), role))
    return [
        TeamIn(str(team["id"]), str(team["name"]), "", tuple(members[str(team["id"])]))
        for team in raw.get("teams", [])
    ]


_FREQUENCIES = {
    "hourly": (Rotation.HOURLY, 3600),
    "daily": (Rotation.DAILY, 86400),
    "weekly": (Rotation.WEEKLY, 604800),
}
_WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def _schedule(export: Export, item: dict[str, Any], shifts: dict[str, dict[str, Any]]) -> None:
    name = str(item["name"])
    if item.get("type") == "ical":
        export.skipped.append(
            Lossy(Kind.SCHEDULE, name, "an iCal-fed schedule: its calendar stays outside Grafana")
        )
        return
    own = [
        shifts[str(shift_id)] for shift_id in item.get("shifts") or [] if str(shift_id) in shifts
    ]
    zones = {shift.get("time_zone") for shift in own if shift.get("type") != "override"}
    if zones <= {None}:
        zone_name = "UTC"
        if item.get("time_zone") not in (None, "UTC"):
            export.notes.append(
                f"schedule {name!r} is kept in UTC, as Grafana computes rotations made in its "
                f"web UI; change its zone to {item['time_zone']} to hand off at local times "
                "across DST (that changes who is on call after each change)"
            )
    else:
        zone_name = zone_or_utc(export, Kind.SCHEDULE, name, next(z for z in zones if z))
        export.lossy.append(
            Lossy(
                Kind.SCHEDULE,
                name,
                "shifts with a time zone keep a fixed duration across DST in Grafana (an hour "
                "of overlap or gap); Tocsin hands off at the local time",
            )
        )
        if len(zones) > 1:
            export.lossy.append(
                Lossy(Kind.SCHEDULE, name, "its shifts use several time zones; one is kept")
            )
    zone = ZoneInfo(zone_name)
    layers: list[tuple[int, LayerIn]] = []
    overrides: list[OverrideIn] = []
    levels_seen: set[int] = set()
    for shift in own:
        if shift.get("type") in ("override", "single_event"):
            overrides.extend(_override(export, name, shift, zone))
            continue
        layer = _layer(export, name, shift, zone)
        if layer is None:
            continue
        level = int(shift.get("level") or 0)
        if level in levels_seen:
            export.lossy.append(
                Lossy(
                    Kind.SCHEDULE,
                    f"{name} / {shift.get('name')}",
                    "shares its priority level with another shift: Grafana puts both on call "
                    "where they overlap, Tocsin the later one",
                )
            )
        levels_seen.add(level)
        layers.append((level, layer))
    layers.sort(key=lambda pair: pair[0])
    export.schedules.append(
        ScheduleIn(
            str(item["id"]),
            name,
            "",
            str(item["team_id"]) if item.get("team_id") else None,
            zone_name,
            tuple(layer for _, layer in layers),
            tuple(overrides),
        )
    )
    if "final_shifts" in item:
        export.rendered[str(item["id"])] = [
            RenderedShift(
                instant(entry["shift_start"]), instant(entry["shift_end"]), (str(entry["user_pk"]),)
            )
            for entry in item["final_shifts"]
        ]


def _local(value: str, zone: ZoneInfo) -> datetime:
    """A shift's naive start, read in its zone (UTC for web-UI shifts), as a naive wall clock."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(zone).replace(tzinfo=None)
    return parsed


def _groups(shift: dict[str, Any]) -> list[tuple[str, ...]]:
    # Web-UI overrides come with `rolling_users` too; API-made ones with `users`.
    if shift.get("type") == "rolling_users" or (
        shift.get("rolling_users") and not shift.get("users")
    ):
        groups = [tuple(str(user) for user in group) for group in shift.get("rolling_users") or []]
        first = int(shift.get("start_rotation_from_user_index") or 0)
        groups = [group for group in groups if group]
        return groups[first:] + groups[:first] if groups else []
    users = tuple(str(user) for user in shift.get("users") or [])
    return [users] if users else []


def _layer(export: Export, schedule: str, shift: dict[str, Any], zone: ZoneInfo) -> LayerIn | None:
    where = f"{schedule} / {shift.get('name')}"
    groups = _groups(shift)
    frequency = _FREQUENCIES.get(shift.get("frequency") or "")
    if not groups or frequency is None:
        export.lossy.append(
            Lossy(
                Kind.SCHEDULE,
                where,
                f"a {shift.get('frequency') or 'one-off'} shift without users or a rotation "
                "Tocsin knows; left out",
            )
        )
        return None
    rotation, unit = frequency
    interval = int(shift.get("interval") or 1)
    step = unit * interval
    duration = int(shift["duration"])
    start = _local(shift["start"], zone)
    by_day = [day for day in shift.get("by_day") or [] if day in _WEEKDAYS]
    spans: list[tuple[int, int]] = []
    clock = start.hour * 60 + start.minute
    if duration > step:
        export.lossy.append(
            Lossy(Kind.SCHEDULE, where, "each turn lasts longer than the rotation step; cut")
        )
    if by_day:
        if rotation is not Rotation.WEEKLY:
            export.lossy.append(
                Lossy(
                    Kind.SCHEDULE,
                    where,
                    "a daily rotation on some weekdays: Grafana counts only those days as "
                    "turns, Tocsin counts every day",
                )
            )
        spans = [(_WEEKDAYS.index(day) * MINUTES_PER_DAY + clock, duration // 60) for day in by_day]
    elif duration < step:
        if rotation is Rotation.DAILY and interval == 1:
            spans = [(day * MINUTES_PER_DAY + clock, duration // 60) for day in range(7)]
        elif rotation is Rotation.WEEKLY and interval == 1:
            spans = [(start.weekday() * MINUTES_PER_DAY + clock, duration // 60)]
        else:
            export.lossy.append(
                Lossy(Kind.SCHEDULE, where, "a turn shorter than its step; taken as whole")
            )
    restrictions = restrictions_from_spans(spans) if spans else None
    begins = instant_in(start, zone)
    if shift.get("rotation_start"):
        begins = max(begins, instant_in(_local(shift["rotation_start"], zone), zone))
    return LayerIn(
        name=str(shift.get("name") or shift["id"]),
        start=begins,
        end=instant_in(_local(shift["until"], zone), zone) if shift.get("until") else None,
        rotation=rotation,
        turn_length=interval,
        handoff=start,
        participants=tuple(groups),
        restrictions=restrictions or (),
    )


def instant_in(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive wall-clock reading in `zone` as an instant (UTC)."""
    return local.replace(tzinfo=zone).astimezone(_UTC)


def _override(
    export: Export, schedule: str, shift: dict[str, Any], zone: ZoneInfo
) -> list[OverrideIn]:
    if shift.get("type") == "single_event":
        export.lossy.append(
            Lossy(
                Kind.SCHEDULE,
                f"{schedule} / {shift.get('name')}",
                "a one-off event becomes an override, above every layer",
            )
        )
    users = tuple(user for group in _groups(shift) for user in group)
    if not users:
        return []
    # Web-UI overrides, like rotations, are in UTC unless the shift names a zone.
    shift_zone = ZoneInfo(shift["time_zone"]) if shift.get("time_zone") else _UTC
    start = instant_in(_local(shift["start"], shift_zone), shift_zone)
    return [
        OverrideIn(
            str(shift["id"]), users, start, start + timedelta(seconds=int(shift["duration"]))
        )
    ]


def _policy(export: Export, chain: dict[str, Any], steps: list[dict[str, Any]]) -> PolicyIn:
    name = str(chain["name"])
    levels: list[list[Any]] = []  # [timeout minutes, target]
    repeats = 0
    for step in sorted(steps, key=lambda step: int(step.get("position") or 0)):
        kind = step.get("type")
        target: TargetIn | None = None
        if kind == "wait":
            if levels:
                levels[-1][0] += int(step.get("duration") or 60) // 60
            else:
                export.lossy.append(
                    Lossy(Kind.POLICY, name, "it starts with a wait; Tocsin pages level 1 at once")
                )
            continue
        if kind == "repeat_escalation":
            repeats += 1
            continue
        if kind == "notify_on_call_from_schedule" and step.get("notify_on_call_from_schedule"):
            target = TargetIn(TargetType.SCHEDULE, str(step["notify_on_call_from_schedule"]))
        elif kind == "notify_persons" and step.get("persons_to_notify"):
            persons = step["persons_to_notify"]
            if len(persons) > 1:
                export.lossy.append(
                    Lossy(
                        Kind.POLICY,
                        name,
                        f"a step notifies {len(persons)} people; a Tocsin level has one target, "
                        "so only the first is kept",
                    )
                )
            target = TargetIn(TargetType.USER, str(persons[0]))
        elif kind == "notify_team_members":
            target = TargetIn(TargetType.ENTIRE_TEAM, None)
        else:
            export.lossy.append(
                Lossy(Kind.POLICY, name, f"a {kind} step has no Tocsin equivalent; left out")
            )
            continue
        if step.get("important"):
            export.lossy.append(
                Lossy(Kind.POLICY, name, "an 'important' step pages as a normal one")
            )
        levels.append([0, target])
    for level in levels[:-1]:
        if level[0] == 0:
            export.lossy.append(
                Lossy(
                    Kind.POLICY,
                    name,
                    "two steps notify without a wait between them; Tocsin pages them a "
                    "minute apart",
                )
            )
            break
    return PolicyIn(
        str(chain["id"]),
        name,
        "",
        str(chain["team_id"]) if chain.get("team_id") else None,
        min(repeats + 1, 9),
        tuple(LevelIn(max(1, timeout), target) for timeout, target in levels),
    )


_INTEGRATIONS = {
    "alertmanager": IntegrationType.ALERTMANAGER,
    "grafana_alerting": IntegrationType.GRAFANA,
    "grafana": IntegrationType.GRAFANA,
    "webhook": IntegrationType.GENERIC,
    "formatted_webhook": IntegrationType.GENERIC,
    "inbound_email": IntegrationType.EMAIL,
    "email": IntegrationType.EMAIL,
    "amazon_sns": IntegrationType.CLOUDWATCH,
    "datadog": IntegrationType.DATADOG,
}


def _service(export: Export, item: dict[str, Any]) -> ServiceIn:
    name = str(item["name"])
    kind = str(item.get("type") or "")
    type = _INTEGRATIONS.get(kind)
    if type is None:
        type = IntegrationType.GENERIC
        export.lossy.append(
            Lossy(
                Kind.INTEGRATION,
                name,
                f"no Tocsin adapter for Grafana OnCall's {kind} integration; a generic webhook "
                "is made",
            )
        )
    if item.get("routes") and len(item["routes"]) > 1:
        export.lossy.append(
            Lossy(Kind.SERVICE, name, "only the default route is kept: routes by alert content")
        )
    route = item.get("default_route") or {}
    chain = route.get("escalation_chain_id")
    return ServiceIn(
        str(item["id"]),
        name,
        f"Alerts of the Grafana OnCall integration {name!r}",
        str(item["team_id"]) if item.get("team_id") else None,
        str(chain) if chain else None,
        (IntegrationIn(str(item["id"]), name, type),),
    )
