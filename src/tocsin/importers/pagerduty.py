"""PagerDuty: read the REST API v2 (with the `pagerduty` client) and convert it to an `Export`.

The client paginates (classic offset/limit/more) and retries 429 answers with growing pauses;
we only count those pauses for the progress line. Schedules are read with `time_zone` set to
the schedule's own zone, so restriction times come back as that zone's wall clock, and with
`since`/`until`, so `final_schedule` holds PagerDuty's own rendering for `--compare`.

Layer semantics: the API lists layers highest precedence first (the bottom layer of the web
UI); Tocsin stores them lowest first. A turn of whole days or weeks becomes a wall-clock
rotation anchored at `rotation_virtual_start` read in the schedule's zone, so handoffs keep
their local time across DST, as PagerDuty's web UI describes them ("handoff time 09:00").
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pagerduty import RestApiV2Client

from tocsin.escalation.models import TargetType
from tocsin.importers.convert import (
    BadExport,
    instant,
    integration_type_for,
    rotation_for_seconds,
    zone_or_utc,
)
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
from tocsin.importers.windows import restrictions_from_spans
from tocsin.integrations.models import IntegrationType
from tocsin.notifications.models import ContactKind, Urgency
from tocsin.teams.models import TeamRole

DEFAULT_BASE_URL = "https://api.pagerduty.com"
Progress = Callable[[str], None]

# Overrides are read this far ahead of `since`: older ones no longer matter.
OVERRIDES_AHEAD = timedelta(days=90)


class _Client(RestApiV2Client):
    """The `pagerduty` REST client, telling the progress line about each rate-limit pause."""

    progress: Progress = staticmethod(lambda message: None)
    rate_limited = 0

    def postprocess(self, response: Any, suffix: str | None = None) -> Any:
        if response.status_code == 429:
            self.rate_limited += 1
            self.progress(f"PagerDuty answered 429 (rate limit): backing off ({self.rate_limited})")
        return super().postprocess(response, suffix)


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
    kwargs: dict[str, Any] = {}
    if ca_file:
        kwargs["verify"] = ssl.create_default_context(cafile=ca_file)
    client = _Client(token, base_url=base_url or DEFAULT_BASE_URL, **kwargs)
    client.progress = progress
    if backoff_seconds is not None:
        client.sleep_timer = backoff_seconds
    try:
        return _fetch_all(client, since=since, until=until, progress=progress)
    finally:
        client.close()


def _fetch_all(
    client: _Client, *, since: datetime, until: datetime, progress: Progress
) -> dict[str, Any]:
    def listing(path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        items = []
        for item in client.iter_all(path, params=params):
            items.append(item)
            if len(items) % 100 == 0:
                progress(f"{path}: {len(items)}")
        progress(f"{path}: {len(items)} read")
        return items

    users = listing("users", {"include[]": ["contact_methods", "notification_rules"]})
    teams = listing("teams")
    for team in teams:
        team["members"] = list(client.iter_all(f"teams/{team['id']}/members"))
    progress(f"team members: {sum(len(team['members']) for team in teams)} read")
    schedules = []
    for summary in listing("schedules"):
        params = {
            "time_zone": summary.get("time_zone") or "UTC",
            "since": since.isoformat(),
            "until": until.isoformat(),
        }
        schedule = client.rget(f"schedules/{summary['id']}", params=params)
        assert isinstance(schedule, dict)
        overrides = client.rget(
            f"schedules/{summary['id']}/overrides",
            params={"since": since.isoformat(), "until": (since + OVERRIDES_AHEAD).isoformat()},
        )
        schedule["overrides"] = overrides
        schedules.append(schedule)
    progress(f"schedules: {len(schedules)} read with layers and overrides")
    policies = listing("escalation_policies")
    services = listing("services", {"include[]": ["integrations"]})
    # Ongoing and future windows only: past ones change nothing any more.
    maintenance = {
        item["id"]: item
        for state in ("ongoing", "future")
        for item in listing("maintenance_windows", {"filter": state})
    }
    return {
        "source": Source.PAGERDUTY.value,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "users": users,
        "teams": teams,
        "schedules": schedules,
        "escalation_policies": policies,
        "services": services,
        "maintenance_windows": list(maintenance.values()),
    }


def convert(raw: dict[str, Any]) -> Export:
    """The neutral form of a PagerDuty export; what cannot be exact is noted on it."""
    export = Export(Source.PAGERDUTY)
    try:
        export.users = [_user(export, item) for item in raw.get("users", [])]
        export.users = [user for user in export.users if user.email]
        export.teams = [_team(item) for item in raw.get("teams", [])]
        for item in raw.get("schedules", []):
            _schedule(export, item)
        ack_timeouts = _ack_timeouts(export, raw.get("services", []))
        export.policies = [
            _policy(export, item, ack_timeouts.get(item["id"]))
            for item in raw.get("escalation_policies", [])
        ]
        export.services = [_service(export, item) for item in raw.get("services", [])]
        export.maintenance = [
            MaintenanceIn(
                str(item["id"]),
                str(item.get("description") or ""),
                instant(item["start_time"]),
                instant(item["end_time"]),
                tuple(str(service["id"]) for service in item.get("services") or []),
            )
            for item in raw.get("maintenance_windows", [])
        ]
    except (KeyError, TypeError) as exc:
        raise BadExport(f"PagerDuty export: missing or malformed field {exc}") from exc
    return export


def _ref(item: dict[str, Any] | None) -> str | None:
    return None if not item else str(item["id"])


def _first_team(item: dict[str, Any]) -> str | None:
    teams = item.get("teams") or []
    return str(teams[0]["id"]) if teams else None


_CONTACT_KINDS = {
    "email_contact_method": ContactKind.EMAIL,
    "email_contact_method_reference": ContactKind.EMAIL,
    "phone_contact_method": ContactKind.VOICE,
    "phone_contact_method_reference": ContactKind.VOICE,
    "sms_contact_method": ContactKind.SMS,
    "sms_contact_method_reference": ContactKind.SMS,
}


def _user(export: Export, item: dict[str, Any]) -> UserIn:
    email = str(item.get("email") or "").strip().lower()
    name = str(item.get("name") or email)
    if not email:
        export.skipped.append(Lossy(Kind.USER, name, "no email address to match or sign in with"))
    contacts = []
    for method in item.get("contact_methods") or []:
        kind = _CONTACT_KINDS.get(method.get("type", ""))
        label = method.get("label") or method.get("summary") or ""
        if kind is None or "address" not in method:
            export.lossy.append(
                Lossy(
                    Kind.CONTACT_METHOD,
                    f"{email} {label or method.get('type')}",
                    f"{method.get('type')} has no Tocsin equivalent (push to the PagerDuty app)",
                )
            )
            continue
        address = str(method["address"])
        if kind is not ContactKind.EMAIL:
            address = f"+{method.get('country_code', '')}{address}".replace("++", "+")
        contacts.append(ContactIn(str(method["id"]), kind, label or kind.value, address))
    known = {contact.source_id for contact in contacts}
    rules = []
    for rule in item.get("notification_rules") or []:
        method_id = _ref(rule.get("contact_method"))
        if method_id not in known:
            continue  # its contact method was left out, and said so above
        rules.append(
            RuleIn(
                str(rule["id"]),
                Urgency.LOW if rule.get("urgency") == "low" else Urgency.HIGH,
                min(int(rule.get("start_delay_in_minutes") or 0), 1440),
                str(method_id),
            )
        )
    zone = zone_or_utc(export, Kind.USER, email, item.get("time_zone"))
    return UserIn(str(item["id"]), email, name, zone, tuple(contacts), tuple(rules))


_ROLES = {
    "manager": TeamRole.MANAGER,
    "responder": TeamRole.RESPONDER,
    "observer": TeamRole.OBSERVER,
}


def _team(item: dict[str, Any]) -> TeamIn:
    members = tuple(
        MemberIn(str(member["user"]["id"]), _ROLES.get(member.get("role", ""), TeamRole.RESPONDER))
        for member in item.get("members") or []
    )
    return TeamIn(str(item["id"]), str(item["name"]), str(item.get("description") or ""), members)


def _schedule(export: Export, item: dict[str, Any]) -> None:
    name = str(item["name"])
    if "schedule_layers" not in item:
        export.skipped.append(
            Lossy(Kind.SCHEDULE, name, "not a layer-based schedule (shift-based v3 schedules)")
        )
        return
    zone_name = zone_or_utc(export, Kind.SCHEDULE, name, item.get("time_zone"))
    zone = ZoneInfo(zone_name)
    layers = [_layer(export, name, zone, layer) for layer in reversed(item["schedule_layers"])]
    overrides = tuple(
        OverrideIn(
            str(override["id"]),
            (str(override["user"]["id"]),),
            instant(override["start"]),
            instant(override["end"]),
        )
        for override in item.get("overrides") or []
        if override.get("user")
    )
    export.schedules.append(
        ScheduleIn(
            str(item["id"]),
            name,
            str(item.get("description") or ""),
            _first_team(item),
            zone_name,
            tuple(layer for layer in layers if layer is not None),
            overrides,
        )
    )
    final = (item.get("final_schedule") or {}).get("rendered_schedule_entries")
    if final is not None:
        export.rendered[str(item["id"])] = [
            RenderedShift(
                instant(entry["start"]),
                instant(entry["end"]),
                (str(entry["user"]["id"]),) if entry.get("user") else (),
            )
            for entry in final
        ]


def _layer(export: Export, schedule: str, zone: ZoneInfo, item: dict[str, Any]) -> LayerIn | None:
    layer_name = str(item.get("name") or item.get("id"))
    where = f"{schedule} / {layer_name}"
    users = tuple((str(entry["user"]["id"]),) for entry in item.get("users") or [])
    if not users:
        export.lossy.append(Lossy(Kind.SCHEDULE, where, "layer has no users; left out"))
        return None
    rotation, turns = rotation_for_seconds(
        export, Kind.SCHEDULE, where, int(item["rotation_turn_length_seconds"])
    )
    anchor = instant(item["rotation_virtual_start"]).astimezone(zone).replace(tzinfo=None)
    spans: list[tuple[int, int]] = []
    for restriction in item.get("restrictions") or []:
        hours, minutes, seconds = (
            int(part) for part in restriction["start_time_of_day"].split(":")
        )
        length = int(restriction["duration_seconds"])
        if seconds or length % 60:
            export.lossy.append(
                Lossy(Kind.SCHEDULE, where, "restriction times rounded down to the minute")
            )
        start = hours * 60 + minutes
        if restriction["type"] == "weekly_restriction":
            day = int(restriction["start_day_of_week"]) - 1
            spans.append((day * 24 * 60 + start, length // 60))
        else:
            spans.extend((day * 24 * 60 + start, length // 60) for day in range(7))
    restrictions = restrictions_from_spans(spans) if spans else None
    return LayerIn(
        name=layer_name,
        start=instant(item["start"]),
        end=instant(item["end"]) if item.get("end") else None,
        rotation=rotation,
        turn_length=turns,
        handoff=anchor,
        participants=users,
        restrictions=restrictions or (),
    )


def _ack_timeouts(export: Export, services: list[dict[str, Any]]) -> dict[str, int | None]:
    """Each policy's acknowledgement timeout in minutes: PagerDuty keeps it per service."""
    found: dict[str, int | None] = {}
    for service in services:
        policy = _ref(service.get("escalation_policy"))
        if policy is None:
            continue
        seconds = service.get("acknowledgement_timeout")
        minutes = max(1, int(seconds) // 60) if seconds else None
        if policy in found and found[policy] != minutes:
            export.lossy.append(
                Lossy(
                    Kind.SERVICE,
                    str(service["name"]),
                    "services sharing its escalation policy have different acknowledgement "
                    f"timeouts; Tocsin keeps one per policy ({found[policy]} min)",
                )
            )
            continue
        found[policy] = minutes
    return found


_TARGETS = {
    "user": TargetType.USER,
    "user_reference": TargetType.USER,
    "schedule": TargetType.SCHEDULE,
    "schedule_reference": TargetType.SCHEDULE,
}


def _policy(export: Export, item: dict[str, Any], ack_timeout: int | None) -> PolicyIn:
    name = str(item["name"])
    loops = int(item.get("num_loops") or 0)
    if loops + 1 > 9:
        export.lossy.append(
            Lossy(Kind.POLICY, name, f"{loops} repeats; Tocsin runs a policy at most 9 times")
        )
    levels = []
    for number, rule in enumerate(item.get("escalation_rules") or [], start=1):
        targets = [target for target in rule.get("targets") or [] if target.get("type") in _TARGETS]
        if len(targets) != len(rule.get("targets") or []):
            export.lossy.append(
                Lossy(Kind.POLICY, name, f"level {number}: a target type Tocsin cannot page")
            )
        if not targets:
            continue
        if len(targets) > 1:
            export.lossy.append(
                Lossy(
                    Kind.POLICY,
                    name,
                    f"level {number} has {len(targets)} targets; a Tocsin level has one, "
                    "so only the first is kept",
                )
            )
        strategy = rule.get("escalation_rule_assignment_strategy") or "assign_to_everyone"
        if (strategy.get("type") if isinstance(strategy, dict) else strategy) == "round_robin":
            export.lossy.append(
                Lossy(Kind.POLICY, name, f"level {number}: round robin becomes notify everyone")
            )
        first = targets[0]
        levels.append(
            LevelIn(
                max(1, int(rule.get("escalation_delay_in_minutes") or 1)),
                TargetIn(_TARGETS[first["type"]], str(first["id"])),
            )
        )
    return PolicyIn(
        str(item["id"]),
        name,
        str(item.get("description") or ""),
        _first_team(item),
        min(loops + 1, 9),
        tuple(levels),
        ack_timeout,
    )


_INBOUND_TYPES = {
    "events_api_v2_inbound_integration": IntegrationType.PAGERDUTY,
    "generic_events_api_inbound_integration": IntegrationType.PAGERDUTY,
    "generic_email_inbound_integration": IntegrationType.EMAIL,
}


def _service(export: Export, item: dict[str, Any]) -> ServiceIn:
    name = str(item["name"])
    if item.get("auto_resolve_timeout"):
        export.lossy.append(
            Lossy(Kind.SERVICE, name, "auto-resolve timeout: Tocsin does not resolve by itself")
        )
    integrations = []
    for integration in item.get("integrations") or []:
        label = str(integration.get("name") or integration.get("summary") or integration["id"])
        type = _INBOUND_TYPES.get(integration.get("type", ""))
        vendor = (integration.get("vendor") or {}).get("summary") or ""
        if vendor:
            type = integration_type_for(vendor) or type
        if type is None:
            type = IntegrationType.GENERIC
            export.lossy.append(
                Lossy(
                    Kind.INTEGRATION,
                    f"{name} / {label}",
                    f"no Tocsin adapter for {vendor or integration.get('type')}; "
                    "a generic webhook is made",
                )
            )
        integrations.append(IntegrationIn(str(integration["id"]), label, type))
    return ServiceIn(
        str(item["id"]),
        name,
        str(item.get("description") or ""),
        _first_team(item),
        _ref(item.get("escalation_policy")),
        tuple(integrations),
    )
