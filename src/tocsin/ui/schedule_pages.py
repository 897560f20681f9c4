"""/schedules and /schedules/{id}: the list, creating a schedule, its 14-day timeline, and
editing its layers and overrides.

Every read and change goes through the functions `/api/v1/schedules` uses (listing.py,
editing.py, store.py, shifts.py) with the API's own schemas (`ScheduleCreate`, `LayerIn`,
`OverrideIn`) and permission checks, so a page shows and changes exactly what the API allows
and a bad field gets the API's message beside it. Another team's schedule is a 404 page.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, available_timezones

from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from tocsin.auth.permissions import find_team_role, require_team_manager
from tocsin.db import new_id, new_ordered_id
from tocsin.errors import Forbidden, InvalidInput, TocsinError
from tocsin.incidents.choices import Choice, reassign_targets, user_names, visible_teams
from tocsin.schedules.definition import LayerDef, Rotation, Weekday
from tocsin.schedules.editing import (
    ScheduleNotFound,
    add_layer,
    add_override,
    change_schedule,
    create_schedule,
    delete_layer,
    delete_override,
    delete_schedule,
    list_overrides,
    replace_layer,
)
from tocsin.schedules.listing import list_visible_schedules
from tocsin.schedules.models import Schedule
from tocsin.schedules.oncall import who_is_on_call
from tocsin.schedules.schemas import LayerIn, OverrideIn, ScheduleCreate, ScheduleUpdate
from tocsin.schedules.shifts import compute_shifts
from tocsin.schedules.store import load_layers, load_schedule
from tocsin.teams.models import TeamRole
from tocsin.ui.clockface import zone_named
from tocsin.ui.pages import SignedIn, Viewer, list_links, page_router, readable_on_page, render
from tocsin.ui.schedule_timeline import build_days, final_intervals, local_days
from tocsin.web import DbSession, Now

router = page_router()

PAGE_SIZE = 50
# The override form's shift picker lists this many final shifts; an hourly rotation has
# hundreds in a fortnight, and a person picks among the next few.
MAX_SHIFT_CHOICES = 100
ZONES = sorted(available_timezones())
WEEKDAYS = [day.value for day in Weekday]
ROTATIONS = [rotation.value for rotation in Rotation]
LOCAL_MINUTE = "%Y-%m-%dT%H:%M"


# --- reading -------------------------------------------------------------------------------


async def _readable(session: AsyncSession, viewer: Viewer, schedule_id: uuid.UUID) -> Schedule:
    """The schedule if the viewer may read it; another team's is 'not found' on a page, so a
    URL tells an outsider nothing (the API answers 403)."""
    return await readable_on_page(session, viewer, Schedule, schedule_id, ScheduleNotFound)


async def _writable(session: AsyncSession, viewer: Viewer, schedule_id: uuid.UUID) -> Schedule:
    schedule = await _readable(session, viewer, schedule_id)
    await require_team_manager(session, viewer.principal, schedule.team_id)
    return schedule


async def _may_manage(session: AsyncSession, viewer: Viewer, team_id: uuid.UUID) -> bool:
    if viewer.is_admin:
        return True
    return await find_team_role(session, viewer.principal, team_id) == TeamRole.MANAGER


async def _manageable_teams(session: AsyncSession, viewer: Viewer) -> list[Choice]:
    return [
        t
        for t in await visible_teams(session, viewer.principal)
        if await _may_manage(session, viewer, t.id)
    ]


def _errors_of(exc: ValidationError, prefix: str, renames: Mapping[str, str]) -> dict[str, str]:
    """The API's messages by form field: the first part of each error's location, renamed
    (`participants.0.user_ids` is the participants field), prefixed with the form's id."""
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        head = loc[0] if loc else "form"
        name = renames.get(head, head)
        message = str(err.get("msg", "is not valid")).removeprefix("Value error, ")
        if len(loc) > 1 and head in ("restrictions", "participants") and loc[1].isdigit():
            what = "window" if head == "restrictions" else "turn"
            message = f"{what} {int(loc[1]) + 1}: {message}"
        out.setdefault(f"{prefix}-{name}", message)
    return out


def _invalid_input(exc: InvalidInput, prefix: str, renames: Mapping[str, str]) -> dict[str, str]:
    head = (exc.field or "form").split(".")[0].split("[")[0]
    if head == "layers":  # create_schedule names layers.<i>.<field>
        parts = (exc.field or "").split(".")
        head = parts[2] if len(parts) > 2 else "form"
    name = renames.get(head, head)
    message = getattr(exc, "message", None) or exc.detail
    return {f"{prefix}-{name}": message}


def _form_errors(
    exc: ValidationError | InvalidInput, prefix: str, renames: Mapping[str, str]
) -> dict[str, str]:
    """The messages of either kind of refusal, by form field."""
    if isinstance(exc, ValidationError):
        return _errors_of(exc, prefix, renames)
    return _invalid_input(exc, prefix, renames)


# --- the list ------------------------------------------------------------------------------


async def _list_context(
    session: AsyncSession, viewer: Viewer, now: datetime, cursor: str | None
) -> dict[str, Any]:
    schedules, next_cursor = await list_visible_schedules(
        session, viewer.principal, limit=PAGE_SIZE, cursor=cursor
    )
    teams = await visible_teams(session, viewer.principal)
    team_names = {team.id: team.name for team in teams}
    conn = await session.connection()
    rows: list[dict[str, Any]] = []
    ids: set[uuid.UUID] = set()
    for schedule in schedules:
        definition = await load_schedule(conn, schedule.id, overrides_from=now, overrides_until=now)
        on_call = who_is_on_call(definition, now).user_ids if definition else ()
        ids |= set(on_call)
        rows.append(
            {
                "schedule": schedule,
                "team": team_names.get(schedule.team_id, ""),
                "layers": len(definition.layers) if definition else 0,
                "on_call": on_call,
            }
        )
    return {
        "title": "Schedules",
        "rows": rows,
        "names": await user_names(session, ids),
        **list_links("/schedules?", cursor, next_cursor),
        "create_teams": await _manageable_teams(session, viewer),
        "zones": ZONES,
    }


@router.get("/schedules")
async def schedule_list(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    context = await _list_context(session, viewer, now, cursor)
    form = {"time_zone": viewer.time_zone}
    return render(request, "schedules/list.html", {**context, "form": form, "errors": {}})


@router.post("/schedules")
async def schedule_create(
    request: Request, viewer: SignedIn, session: DbSession, now: Now
) -> Response:
    data = await request.form()
    form = {name: text_of(data, name) for name in ("team_id", "name", "time_zone", "description")}
    errors: dict[str, str] = {}
    status = 422
    try:
        body = ScheduleCreate.model_validate({**form, "team_id": form["team_id"] or None})
        await require_team_manager(session, viewer.principal, body.team_id)
        schedule = await create_schedule(
            session,
            team_id=body.team_id,
            name=body.name,
            description=body.description,
            time_zone=body.time_zone,
            layers=[],
            now=now,
        )
    except ValidationError as exc:
        errors = _errors_of(exc, "new", {})
    except InvalidInput as exc:
        errors = _invalid_input(exc, "new", {})
    except Forbidden as exc:
        errors, status = {"new-team_id": exc.detail}, exc.status_code
    except TocsinError as exc:  # a taken name
        errors, status = {"new-name": exc.detail}, exc.status_code
    if errors:
        await session.rollback()
        context = await _list_context(session, viewer, now, None)
        return render(
            request,
            "schedules/list.html",
            {**context, "form": form, "errors": errors},
            status_code=status,
        )
    await session.commit()
    return RedirectResponse(f"/schedules/{schedule.id}?done=created", status_code=303)


# --- one schedule --------------------------------------------------------------------------


@dataclass
class RestrictionForm:
    days: list[str]
    start: str
    end: str


@dataclass
class LayerForm:
    """What a layer form shows: a stored layer, a blank one, or what was just sent."""

    prefix: str
    layer_id: uuid.UUID | None
    name: str = ""
    rotation: str = "weekly"
    turn_length: str = "1"
    handoff: str = ""
    start: str = ""
    end: str = ""
    participants: list[str] = field(default_factory=list)
    restrictions: list[RestrictionForm] = field(default_factory=list)

    @property
    def participant_slots(self) -> list[str]:
        """The chosen people in order and a few empty places to add more."""
        return [*self.participants, *[""] * max(2, 4 - len(self.participants))]

    @property
    def restriction_rows(self) -> list[RestrictionForm]:
        return [*self.restrictions, RestrictionForm([], "", "")]


def _layer_form(layer: LayerDef, zone: ZoneInfo) -> LayerForm:
    return LayerForm(
        prefix=f"layer-{layer.id}",
        layer_id=layer.id,
        name=layer.name,
        rotation=layer.rotation.value,
        turn_length=str(layer.turn_length),
        handoff=layer.handoff.strftime(LOCAL_MINUTE),
        start=layer.start.astimezone(zone).strftime(LOCAL_MINUTE),
        end=layer.end.astimezone(zone).strftime(LOCAL_MINUTE) if layer.end else "",
        participants=[",".join(str(uid) for uid in group) for group in layer.participants],
        restrictions=[
            RestrictionForm(
                [day.value for day in item.days] if item.days else [],
                item.start.strftime("%H:%M"),
                item.end.strftime("%H:%M"),
            )
            for item in layer.restrictions
        ],
    )


def _blank_layer(now: datetime, zone: ZoneInfo) -> LayerForm:
    local = now.astimezone(zone)
    return LayerForm(
        prefix="new-layer",
        layer_id=None,
        handoff=local.replace(hour=9, minute=0, second=0, microsecond=0).strftime(LOCAL_MINUTE),
    )


def text_of(data: FormData, name: str) -> str:
    value = data.get(name)
    return value.strip() if isinstance(value, str) else ""


def _sent_layer(data: FormData, prefix: str, layer_id: uuid.UUID | None) -> LayerForm:
    rows = []
    count = min(
        int(text_of(data, "restriction_rows") or 0)
        if text_of(data, "restriction_rows").isdigit()
        else 0,
        60,
    )
    for index in range(count):
        days = [d for d in data.getlist(f"r{index}_days") if isinstance(d, str)]
        start, end = text_of(data, f"r{index}_start"), text_of(data, f"r{index}_end")
        if start or end or days:
            rows.append(RestrictionForm(days, start, end))
    return LayerForm(
        prefix=prefix,
        layer_id=layer_id,
        name=text_of(data, "name"),
        rotation=text_of(data, "rotation"),
        turn_length=text_of(data, "turn_length"),
        handoff=text_of(data, "handoff"),
        start=text_of(data, "start"),
        end=text_of(data, "end"),
        participants=[
            p.strip() for p in data.getlist("participant") if isinstance(p, str) and p.strip()
        ],
        restrictions=rows,
    )


def local_instant(text: str, zone: ZoneInfo) -> datetime | str | None:
    """A `datetime-local` value read in `zone`, as UTC; the text itself when it is no date (the
    schema then names the field); None when empty."""
    if not text:
        return None
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        return text
    if local.tzinfo is not None:
        return local
    return local.replace(tzinfo=zone).astimezone(UTC)


def _layer_body(form: LayerForm, zone: ZoneInfo) -> LayerIn:
    """The form as the API's LayerIn (ValidationError with the API's messages)."""
    values: dict[str, Any] = {
        "name": form.name,
        "rotation": form.rotation,
        "turn_length": form.turn_length or "1",
        "handoff": form.handoff,
        "participants": [{"user_ids": p.split(",")} for p in form.participants],
        "restrictions": [
            {"days": r.days or None, "start": r.start, "end": r.end} for r in form.restrictions
        ],
    }
    start = local_instant(form.start, zone)
    end = local_instant(form.end, zone)
    if start is not None:
        values["start"] = start
    if end is not None:
        values["end"] = end
    return LayerIn.model_validate(values)


LAYER_FIELDS = {"user_ids": "participants"}


async def _schedule_context(
    session: AsyncSession,
    viewer: Viewer,
    schedule: Schedule,
    now: datetime,
    *,
    forms: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything /schedules/{id} shows. `forms` holds what was sent to a form that failed,
    by its prefix, so it comes back as typed."""
    forms = forms or {}
    viewer_zone = zone_named(viewer.time_zone)
    schedule_zone = zone_named(schedule.time_zone)
    day_starts = local_days(viewer_zone, now)
    start, end = day_starts[0], day_starts[-1]
    conn = await session.connection()
    definition = await load_schedule(conn, schedule.id, overrides_from=start, overrides_until=end)
    if definition is None:  # pragma: no cover - deleted since it was read
        raise ScheduleNotFound(schedule.id)
    result = compute_shifts(definition, start, end)
    overrides = await list_overrides(session, schedule.id, start=now)
    people = (await reassign_targets(session, schedule.team_id)).people
    ids = {p.id for p in people}
    ids |= {uid for layer in definition.layers for group in layer.participants for uid in group}
    ids |= {uid for o in overrides for uid in o.user_ids}
    names = await user_names(session, ids)
    finals = final_intervals(result, definition.layers)
    # From now on: the current shift counts from now (an override of the past is no use).
    upcoming = [replace(item, start=max(item.start, now)) for item in finals if item.end > now]
    layer_forms = [
        forms.get(f"layer-{layer.id}") or _layer_form(layer, schedule_zone)
        for layer in definition.layers
    ]
    teams = {t.id: t.name for t in await visible_teams(session, viewer.principal)}
    return {
        "title": schedule.name,
        "schedule": schedule,
        "team_name": teams.get(schedule.team_id, ""),
        "may_manage": await _may_manage(session, viewer, schedule.team_id),
        "days": build_days(
            result,
            definition.layers,
            definition.overrides,
            day_starts=day_starts,
            zone=viewer_zone,
            now=now,
            names=names,
        ),
        "finals": upcoming,
        "shift_choices": upcoming[:MAX_SHIFT_CHOICES],
        "more_shifts": len(upcoming) > MAX_SHIFT_CHOICES,
        "gap_count": sum(1 for item in upcoming if item.kind == "gap"),
        "overrides": overrides,
        "layers": list(zip(definition.layers, layer_forms, strict=True)),
        "new_layer": forms.get("new-layer") or _blank_layer(now, schedule_zone),
        "override_form": forms.get("override") or {},
        "edit_form": forms.get("edit") or {},
        "people": people,
        "names": names,
        "name_of": {str(uid): name for uid, name in names.items()},
        "zones": ZONES,
        "weekdays": WEEKDAYS,
        "rotations": ROTATIONS,
        "range_start": start,
        "range_end": end,
    }


async def _schedule_page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    schedule: Schedule,
    now: datetime,
    *,
    status_code: int = 200,
    done: str = "",
    error: str = "",
    errors: Mapping[str, str] | None = None,
    forms: Mapping[str, Any] | None = None,
) -> Response:
    context = await _schedule_context(session, viewer, schedule, now, forms=forms)
    errors = dict(errors or {})
    prefixes = ["new-layer", *(lf.prefix for _, lf in context["layers"])]
    open_forms = {p for p in prefixes if any(key.startswith(p + "-") for key in errors)}
    return render(
        request,
        "schedules/detail.html",
        {**context, "done": done, "error": error, "errors": errors, "open_forms": open_forms},
        status_code=status_code,
    )


async def _refused(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    schedule_id: uuid.UUID,
    now: datetime,
    *,
    status_code: int = 422,
    error: str = "",
    errors: Mapping[str, str] | None = None,
    forms: Mapping[str, Any] | None = None,
    because: TocsinError | None = None,
) -> Response:
    """The schedule page again with why, nothing saved: `because` a refusal for the whole
    page (its status and message at the top), or `errors` beside the fields."""
    if because is not None:
        status_code, error = because.status_code, because.detail
    await session.rollback()
    schedule = await _readable(session, viewer, schedule_id)
    return await _schedule_page(
        request,
        session,
        viewer,
        schedule,
        now,
        status_code=status_code,
        error=error,
        errors=errors,
        forms=forms,
    )


def _saved(schedule_id: uuid.UUID, word: str, anchor: str = "") -> Response:
    return RedirectResponse(f"/schedules/{schedule_id}?done={word}{anchor}", status_code=303)


@router.get("/schedules/{schedule_id}")
async def schedule_page(
    request: Request,
    schedule_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    done: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    schedule = await _readable(session, viewer, schedule_id)
    return await _schedule_page(request, session, viewer, schedule, now, done=done)


@router.post("/schedules/{schedule_id}")
async def schedule_edit(
    request: Request, schedule_id: uuid.UUID, viewer: SignedIn, session: DbSession, now: Now
) -> Response:
    """Name, description and time zone (ScheduleUpdate)."""
    schedule = await _writable(session, viewer, schedule_id)
    data = await request.form()
    form = {name: text_of(data, name) for name in ("name", "time_zone", "description")}
    try:
        body = ScheduleUpdate.model_validate(form)
        await change_schedule(session, schedule, body.model_dump(exclude_unset=True), now=now)
    except ValidationError as exc:
        errors = _errors_of(exc, "edit", {})
        return await _refused(
            request, session, viewer, schedule_id, now, errors=errors, forms={"edit": form}
        )
    except TocsinError as exc:
        return await _refused(
            request,
            session,
            viewer,
            schedule_id,
            now,
            status_code=exc.status_code,
            errors={"edit-name": exc.detail},
            forms={"edit": form},
        )
    await session.commit()
    return _saved(schedule_id, "saved")


@router.post("/schedules/{schedule_id}/delete")
async def schedule_delete(
    request: Request, schedule_id: uuid.UUID, viewer: SignedIn, session: DbSession, now: Now
) -> Response:
    schedule = await _writable(session, viewer, schedule_id)
    try:
        await delete_schedule(session, schedule)
    except TocsinError as exc:
        return await _refused(request, session, viewer, schedule_id, now, because=exc)
    await session.commit()
    return RedirectResponse("/schedules", status_code=303)


@router.post("/schedules/{schedule_id}/layers")
async def layer_add(
    request: Request, schedule_id: uuid.UUID, viewer: SignedIn, session: DbSession, now: Now
) -> Response:
    """A new layer on top (highest precedence), as POST /api/v1/schedules/{id}/layers."""
    schedule = await _writable(session, viewer, schedule_id)
    form = _sent_layer(await request.form(), "new-layer", None)
    zone = zone_named(schedule.time_zone)
    try:
        body = _layer_body(form, zone)
        count = len(await load_layers(await session.connection(), schedule.id))
        layer = body.definition(layer_id=new_id(), position=count, now=now)
        await add_layer(session, schedule, layer, now=now)
    except (ValidationError, InvalidInput) as exc:
        errors = _form_errors(exc, form.prefix, LAYER_FIELDS)
        return await _refused(
            request, session, viewer, schedule_id, now, errors=errors, forms={form.prefix: form}
        )
    await session.commit()
    return _saved(schedule_id, "layer-added", "#layers")


@router.post("/schedules/{schedule_id}/layers/{layer_id}")
async def layer_edit(
    request: Request,
    schedule_id: uuid.UUID,
    layer_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
) -> Response:
    """The whole layer as sent replaces it, keeping its place (PATCH .../layers/{id})."""
    schedule = await _writable(session, viewer, schedule_id)
    form = _sent_layer(await request.form(), f"layer-{layer_id}", layer_id)
    zone = zone_named(schedule.time_zone)
    layers = await load_layers(await session.connection(), schedule.id)
    position = next((i for i, layer in enumerate(layers) if layer.id == layer_id), None)
    if position is None:
        return await _refused(
            request,
            session,
            viewer,
            schedule_id,
            now,
            status_code=404,
            error="That layer is no longer in this schedule.",
        )
    try:
        body = _layer_body(form, zone)
        layer = body.definition(layer_id=layer_id, position=position, now=now)
        await replace_layer(session, schedule, layer, now=now)
    except (ValidationError, InvalidInput) as exc:
        errors = _form_errors(exc, form.prefix, LAYER_FIELDS)
        return await _refused(
            request, session, viewer, schedule_id, now, errors=errors, forms={form.prefix: form}
        )
    await session.commit()
    return _saved(schedule_id, "layer-saved", "#layers")


@router.post("/schedules/{schedule_id}/layers/{layer_id}/delete")
async def layer_delete(
    request: Request,
    schedule_id: uuid.UUID,
    layer_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
) -> Response:
    schedule = await _writable(session, viewer, schedule_id)
    try:
        await delete_layer(session, schedule, layer_id, now=now)
    except TocsinError as exc:
        return await _refused(request, session, viewer, schedule_id, now, because=exc)
    await session.commit()
    return _saved(schedule_id, "layer-removed", "#layers")


OVERRIDE_FIELDS = {"user_ids": "user"}


def _override_values(
    data: FormData, viewer_zone: ZoneInfo
) -> tuple[dict[str, str], dict[str, Any]]:
    """The form as sent, and the API's OverrideIn body: the picked shift's times unless a
    start and an end were typed (read in the viewer's zone)."""
    form = {name: text_of(data, name) for name in ("shift", "user", "start", "end")}
    body: dict[str, Any] = {"user_ids": [form["user"]] if form["user"] else []}
    if form["start"] or form["end"]:
        body["start"] = local_instant(form["start"], viewer_zone)
        body["end"] = local_instant(form["end"], viewer_zone)
    elif form["shift"]:
        start, _, end = form["shift"].partition("/")
        body["start"], body["end"] = start, end
    return form, body


@router.post("/schedules/{schedule_id}/overrides")
async def override_add(
    request: Request, schedule_id: uuid.UUID, viewer: SignedIn, session: DbSession, now: Now
) -> Response:
    """Someone on call instead, over a picked shift or typed times (POST .../overrides)."""
    schedule = await _writable(session, viewer, schedule_id)
    form, values = _override_values(await request.form(), zone_named(viewer.time_zone))
    errors: dict[str, str] = {}
    if "start" not in values:
        errors["override-shift"] = "pick a shift, or type a start and an end"
    try:
        body = OverrideIn.model_validate(values)
        if not errors:
            await add_override(
                session,
                schedule,
                body.definition(new_ordered_id()),
                created_by=viewer.user_id,
                now=now,
            )
    except ValidationError as exc:
        found = _errors_of(exc, "override", OVERRIDE_FIELDS)
        if "start" not in values:
            found.pop("override-start", None)
            found.pop("override-end", None)
        errors = {**found, **errors}
    except InvalidInput as exc:
        errors = {**_invalid_input(exc, "override", OVERRIDE_FIELDS), **errors}
    if errors:
        return await _refused(
            request, session, viewer, schedule_id, now, errors=errors, forms={"override": form}
        )
    await session.commit()
    return _saved(schedule_id, "override-added", "#overrides")


@router.post("/schedules/{schedule_id}/overrides/{override_id}/delete")
async def override_delete(
    request: Request,
    schedule_id: uuid.UUID,
    override_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
) -> Response:
    schedule = await _writable(session, viewer, schedule_id)
    try:
        await delete_override(session, schedule, override_id)
    except TocsinError as exc:
        return await _refused(request, session, viewer, schedule_id, now, because=exc)
    await session.commit()
    return _saved(schedule_id, "override-removed", "#overrides")
