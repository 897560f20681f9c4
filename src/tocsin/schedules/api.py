"""Schedule routes: CRUD for schedules, layers and overrides; who is on call; shifts; iCal.

A team's members (observers too) and admins read its schedules; its managers and admins
create, change and delete them, their layers and their overrides. Calendar feeds are read with
a per-user secret token in the URL instead of an API key, so calendar apps can subscribe.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, AwareDatetime

from tocsin.auth.accounts import Principal
from tocsin.auth.models import User
from tocsin.auth.permissions import (
    require_team_manager,
    require_team_reader,
    visible_team_ids,
)
from tocsin.config import Settings
from tocsin.db import new_id, new_ordered_id
from tocsin.errors import Forbidden, NotFound, Unauthorized
from tocsin.schedules import calendar
from tocsin.schedules.editing import (
    LayerNotFound,
    OverrideNotFound,
    OverrideRecord,
    ScheduleNotFound,
    add_layer,
    add_override,
    change_schedule,
    create_schedule,
    delete_layer,
    delete_override,
    delete_schedule,
    find_schedule,
    list_overrides,
    replace_layer,
)
from tocsin.schedules.listing import list_visible_schedules
from tocsin.schedules.models import Schedule
from tocsin.schedules.oncall import OnCall, who_is_on_call
from tocsin.schedules.schemas import (
    CalendarTokenIssued,
    CalendarTokenOut,
    GapOut,
    LayerIn,
    LayerOut,
    LayerUpdate,
    OnCallOut,
    OverrideIn,
    OverrideOut,
    ScheduleCreate,
    ScheduleOut,
    ScheduleUpdate,
    ShiftOut,
    ShiftsOut,
    SourceOut,
    TeamOnCallList,
    TeamOnCallOut,
    UserShiftOut,
    UserShiftsOut,
    layer_update_merged,
    supported_instant,
)
from tocsin.schedules.shifts import compute_shifts
from tocsin.schedules.store import (
    ScheduleShift,
    find_team_on_call,
    find_user_shifts,
    load_layers,
    load_schedule,
)
from tocsin.web import CurrentUser, Cursor, DbSession, Limit, Now, Page, State, team_row_in_path

router = APIRouter(tags=["schedules"])

# Longest range one shifts request may ask for: a year and a bit, so "this year" always fits.
MAX_SHIFTS_RANGE = timedelta(days=400)
DEFAULT_USER_SHIFTS_RANGE = timedelta(days=28)

Instant = Annotated[AwareDatetime, AfterValidator(supported_instant)]
At = Annotated[Instant | None, Query(description="UTC instant; default now")]
RangeStart = Annotated[Instant, Query(description="UTC instant, inclusive")]
RangeEnd = Annotated[Instant, Query(description="UTC instant, exclusive")]
OptionalStart = Annotated[Instant | None, Query(description="UTC instant, inclusive")]
OptionalEnd = Annotated[Instant | None, Query(description="UTC instant, exclusive")]
CalendarSecret = Annotated[
    str, Query(min_length=1, max_length=200, description="The user's calendar token")
]


ReadableSchedule = Annotated[Schedule, team_row_in_path(Schedule, ScheduleNotFound, "schedule_id")]


async def get_writable_schedule(
    schedule: ReadableSchedule, session: DbSession, principal: CurrentUser
) -> Schedule:
    await require_team_manager(session, principal, schedule.team_id)
    return schedule


WritableSchedule = Annotated[Schedule, Depends(get_writable_schedule)]


def _checked_range(start: datetime, end: datetime) -> None:
    if end <= start:
        _query_error("end", "must be after start")
    if end - start > MAX_SHIFTS_RANGE:
        _query_error("end", f"the range may span at most {MAX_SHIFTS_RANGE.days} days")


def _query_error(field: str, message: str) -> None:
    raise RequestValidationError(
        [{"loc": ("query", field), "msg": message, "type": "value_error", "input": None}]
    )


async def _schedule_out(session: DbSession, schedule: Schedule) -> ScheduleOut:
    layers = await load_layers(await session.connection(), schedule.id)
    return ScheduleOut.of(schedule, layers)


def _on_call_out(answer: OnCall) -> OnCallOut:
    return OnCallOut(
        at=answer.at, user_ids=list(answer.user_ids), source=SourceOut.of(answer.source)
    )


def _override_out(record: OverrideRecord) -> OverrideOut:
    return OverrideOut(
        id=record.id,
        schedule_id=record.schedule_id,
        user_ids=list(record.user_ids),
        start=record.start,
        end=record.end,
        created_by=record.created_by,
        created_at=record.created_at,
    )


# --- schedules ------------------------------------------------------------------------------


@router.get("/api/v1/schedules", response_model=Page[ScheduleOut])
async def list_schedules(
    session: DbSession,
    principal: CurrentUser,
    team_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ScheduleOut]:
    """Schedules of the teams the caller belongs to (all of them for admins), newest first."""
    page, next_cursor = await list_visible_schedules(
        session, principal, team_id=team_id, limit=limit, cursor=cursor
    )
    return Page[ScheduleOut](
        items=[await _schedule_out(session, schedule) for schedule in page],
        next_cursor=next_cursor,
    )


@router.post("/api/v1/schedules", status_code=201, response_model=ScheduleOut)
async def create_schedule_route(
    body: ScheduleCreate, session: DbSession, principal: CurrentUser, now: Now
) -> ScheduleOut:
    """The team's managers or an admin. Layers are listed lowest precedence first."""
    await require_team_manager(session, principal, body.team_id)
    layers = [
        layer.definition(layer_id=new_id(), position=position, now=now)
        for position, layer in enumerate(body.layers)
    ]
    schedule = await create_schedule(
        session,
        team_id=body.team_id,
        name=body.name,
        description=body.description,
        time_zone=body.time_zone,
        layers=layers,
        now=now,
    )
    await session.commit()
    return ScheduleOut.of(schedule, layers)


@router.get("/api/v1/schedules/{schedule_id}", response_model=ScheduleOut)
async def get_schedule_route(schedule: ReadableSchedule, session: DbSession) -> ScheduleOut:
    return await _schedule_out(session, schedule)


@router.patch("/api/v1/schedules/{schedule_id}", response_model=ScheduleOut)
async def update_schedule_route(
    schedule: WritableSchedule, body: ScheduleUpdate, session: DbSession, now: Now
) -> ScheduleOut:
    """Name, description, time zone; handoffs keep their local reading in a new zone."""
    await change_schedule(session, schedule, body.model_dump(exclude_unset=True), now=now)
    out = await _schedule_out(session, schedule)
    await session.commit()
    return out


@router.delete("/api/v1/schedules/{schedule_id}", status_code=204)
async def delete_schedule_route(schedule: WritableSchedule, session: DbSession) -> None:
    """Layers and overrides go with it; 409 while an escalation policy pages through it."""
    await delete_schedule(session, schedule)
    await session.commit()


# --- layers ---------------------------------------------------------------------------------


@router.post("/api/v1/schedules/{schedule_id}/layers", status_code=201, response_model=LayerOut)
async def add_layer_route(
    schedule: WritableSchedule, body: LayerIn, session: DbSession, now: Now
) -> LayerOut:
    """Adds the layer on top: it takes precedence over every existing layer."""
    count = len(await load_layers(await session.connection(), schedule.id))
    layer = body.definition(layer_id=new_id(), position=count, now=now)
    await add_layer(session, schedule, layer, now=now)
    await session.commit()
    return LayerOut.of(layer, count)


async def _find_layer_out(session: DbSession, schedule: Schedule, layer_id: uuid.UUID) -> LayerOut:
    layers = await load_layers(await session.connection(), schedule.id)
    for position, layer in enumerate(layers):
        if layer.id == layer_id:
            return LayerOut.of(layer, position)
    raise LayerNotFound(layer_id)


@router.get("/api/v1/schedules/{schedule_id}/layers/{layer_id}", response_model=LayerOut)
async def get_layer_route(
    schedule: ReadableSchedule, layer_id: uuid.UUID, session: DbSession
) -> LayerOut:
    return await _find_layer_out(session, schedule, layer_id)


@router.patch("/api/v1/schedules/{schedule_id}/layers/{layer_id}", response_model=LayerOut)
async def update_layer_route(
    schedule: WritableSchedule,
    layer_id: uuid.UUID,
    body: LayerUpdate,
    session: DbSession,
    now: Now,
) -> LayerOut:
    """Only the fields sent change (`participants` and `restrictions` are replaced whole)."""
    layers = await load_layers(await session.connection(), schedule.id)
    position = next((i for i, layer in enumerate(layers) if layer.id == layer_id), None)
    if position is None:
        raise LayerNotFound(layer_id)
    merged = layer_update_merged(layers[position], body)
    layer = merged.definition(layer_id=layer_id, position=position, now=now)
    await replace_layer(session, schedule, layer, now=now)
    await session.commit()
    return LayerOut.of(layer, position)


@router.delete("/api/v1/schedules/{schedule_id}/layers/{layer_id}", status_code=204)
async def delete_layer_route(
    schedule: WritableSchedule, layer_id: uuid.UUID, session: DbSession, now: Now
) -> None:
    await delete_layer(session, schedule, layer_id, now=now)
    await session.commit()


# --- overrides ------------------------------------------------------------------------------


@router.get("/api/v1/schedules/{schedule_id}/overrides", response_model=list[OverrideOut])
async def list_overrides_route(
    schedule: ReadableSchedule,
    session: DbSession,
    start: OptionalStart = None,
    end: OptionalEnd = None,
) -> list[OverrideOut]:
    """Overrides overlapping [start, end) (all of them when not given), oldest first."""
    records = await list_overrides(session, schedule.id, start=start, end=end)
    return [_override_out(record) for record in records]


@router.post(
    "/api/v1/schedules/{schedule_id}/overrides", status_code=201, response_model=OverrideOut
)
async def add_override_route(
    schedule: WritableSchedule,
    body: OverrideIn,
    session: DbSession,
    principal: CurrentUser,
    now: Now,
) -> OverrideOut:
    """These users are on call instead of the layers from start to end; where overrides
    overlap, the newest wins."""
    record = await add_override(
        session,
        schedule,
        body.definition(new_ordered_id()),
        created_by=principal.user_id,
        now=now,
    )
    await session.commit()
    return _override_out(record)


@router.get("/api/v1/schedules/{schedule_id}/overrides/{override_id}", response_model=OverrideOut)
async def get_override_route(
    schedule: ReadableSchedule, override_id: uuid.UUID, session: DbSession
) -> OverrideOut:
    records = await list_overrides(session, schedule.id, override_id=override_id)
    if not records:
        raise OverrideNotFound(override_id)
    return _override_out(records[0])


@router.delete("/api/v1/schedules/{schedule_id}/overrides/{override_id}", status_code=204)
async def delete_override_route(
    schedule: WritableSchedule, override_id: uuid.UUID, session: DbSession
) -> None:
    await delete_override(session, schedule, override_id)
    await session.commit()


# --- who is on call, shifts -----------------------------------------------------------------


@router.get("/api/v1/schedules/{schedule_id}/oncall", response_model=OnCallOut)
async def schedule_on_call(
    schedule: ReadableSchedule, session: DbSession, now: Now, at: At = None
) -> OnCallOut:
    """Who is on call at `at` (default now); `user_ids` empty and `source` null: nobody."""
    instant = at or now
    definition = await load_schedule(
        await session.connection(), schedule.id, overrides_from=instant, overrides_until=instant
    )
    if definition is None:  # pragma: no cover - deleted since the dependency read it
        raise ScheduleNotFound(schedule.id)
    return _on_call_out(who_is_on_call(definition, instant))


@router.get("/api/v1/schedules/{schedule_id}/shifts", response_model=ShiftsOut)
async def schedule_shifts(
    schedule: ReadableSchedule, session: DbSession, start: RangeStart, end: RangeEnd
) -> ShiftsOut:
    """The final shifts within [start, end), each layer's own shifts, and the gaps."""
    _checked_range(start, end)
    definition = await load_schedule(
        await session.connection(), schedule.id, overrides_from=start, overrides_until=end
    )
    if definition is None:  # pragma: no cover - deleted since the dependency read it
        raise ScheduleNotFound(schedule.id)
    result = compute_shifts(definition, start, end)
    return ShiftsOut(
        start=start,
        end=end,
        final=[ShiftOut.of(shift) for shift in result.final],
        layers={
            layer_id: [ShiftOut.of(shift) for shift in shifts]
            for layer_id, shifts in result.layers.items()
        },
        gaps=[GapOut.of(gap) for gap in result.gaps],
    )


@router.get("/api/v1/oncall", response_model=TeamOnCallList)
async def team_on_call(
    session: DbSession,
    principal: CurrentUser,
    now: Now,
    team_id: uuid.UUID,
    at: At = None,
) -> TeamOnCallList:
    """Who is on call now (or at `at`) in every schedule of the team, schedules by name."""
    await require_team_reader(session, principal, team_id)
    instant = at or now
    answers = await find_team_on_call(await session.connection(), team_id, instant)
    return TeamOnCallList(
        items=[
            TeamOnCallOut(
                schedule_id=answer.schedule_id,
                schedule_name=answer.schedule_name,
                at=answer.on_call.at,
                user_ids=list(answer.on_call.user_ids),
                source=SourceOut.of(answer.on_call.source),
            )
            for answer in answers
        ]
    )


async def _user_shift_teams(
    session: DbSession, principal: Principal, user_id: uuid.UUID
) -> set[uuid.UUID] | None:
    """Which teams' schedules the caller may see another user's shifts in (None: all)."""
    if principal.user_id == user_id or principal.is_admin:
        return None
    return await visible_team_ids(session, principal)


@router.get("/api/v1/users/{user_id}/shifts", response_model=UserShiftsOut)
async def user_shifts(
    user_id: uuid.UUID,
    session: DbSession,
    principal: CurrentUser,
    now: Now,
    start: OptionalStart = None,
    end: OptionalEnd = None,
) -> UserShiftsOut:
    """The user's shifts in every schedule, in time order ("my upcoming shifts"). Others see
    only the shifts in schedules of teams they belong to."""
    if await session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} not found")
    range_start = start or now
    range_end = end or range_start + DEFAULT_USER_SHIFTS_RANGE
    _checked_range(range_start, range_end)
    teams = await _user_shift_teams(session, principal, user_id)
    found = await find_user_shifts(
        await session.connection(), user_id, range_start, range_end, team_ids=teams
    )
    return UserShiftsOut(
        user_id=user_id,
        start=range_start,
        end=range_end,
        shifts=[_user_shift_out(item) for item in found],
    )


def _user_shift_out(item: ScheduleShift) -> UserShiftOut:
    shift = item.shift
    return UserShiftOut(
        schedule_id=item.schedule_id,
        schedule_name=item.schedule_name,
        start=shift.start,
        end=shift.end,
        user_ids=list(shift.user_ids),
        source=SourceOut(kind=shift.source.kind, id=shift.source.id),
    )


# --- iCalendar ------------------------------------------------------------------------------


def _require_self_or_admin(principal: Principal, user_id: uuid.UUID) -> None:
    if principal.user_id != user_id and not principal.is_admin:
        raise Forbidden("only the user themself or an administrator may do this")


@router.get("/api/v1/users/{user_id}/calendar-token", response_model=CalendarTokenOut)
async def calendar_token_status(
    user_id: uuid.UUID, session: DbSession, principal: CurrentUser
) -> CalendarTokenOut:
    """Whether the user has a calendar token (the token itself is only shown when issued)."""
    _require_self_or_admin(principal, user_id)
    status = await calendar.find_token_status(await session.connection(), user_id)
    if status is None:
        return CalendarTokenOut(exists=False)
    return CalendarTokenOut(exists=True, prefix=status.prefix, created_at=status.created_at)


@router.post(
    "/api/v1/users/{user_id}/calendar-token", status_code=201, response_model=CalendarTokenIssued
)
async def issue_calendar_token(
    user_id: uuid.UUID, session: DbSession, principal: CurrentUser, now: Now, state: State
) -> CalendarTokenIssued:
    """A new calendar token, shown once; the previous one (and every URL using it) stops
    working."""
    _require_self_or_admin(principal, user_id)
    if await session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} not found")
    token, status = await calendar.issue_calendar_token(
        await session.connection(), user_id, now=now
    )
    await session.commit()
    base = _public_base(state.settings)
    return CalendarTokenIssued(
        token=token,
        prefix=status.prefix,
        created_at=status.created_at,
        user_calendar_url=calendar.user_calendar_url(base, user_id, token),
        schedule_calendar_url=f"{base}/api/v1/schedules/{{schedule_id}}/ical?token={token}",
    )


@router.delete("/api/v1/users/{user_id}/calendar-token", status_code=204)
async def revoke_calendar_token(
    user_id: uuid.UUID, session: DbSession, principal: CurrentUser
) -> None:
    _require_self_or_admin(principal, user_id)
    await calendar.revoke_calendar_token(await session.connection(), user_id)
    await session.commit()


def _public_base(settings: Settings) -> str:
    return settings.public_url.rstrip("/")


async def _calendar_principal(session: DbSession, token: str) -> Principal:
    found = await calendar.find_user_by_calendar_token(await session.connection(), token)
    if found is None:
        raise Unauthorized("invalid or revoked calendar token")
    return Principal(user_id=found[0], is_admin=found[1])


def _ical_response(body: bytes) -> Response:
    return Response(
        content=body,
        media_type="text/calendar; charset=utf-8",
        headers={"Cache-Control": "private, max-age=300"},
    )


@router.get(
    "/api/v1/schedules/{schedule_id}/ical",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}},
)
async def schedule_ical(
    schedule_id: uuid.UUID, token: CalendarSecret, session: DbSession, now: Now
) -> Response:
    """The schedule's final shifts from 30 days ago to 180 days ahead, as iCalendar."""
    principal = await _calendar_principal(session, token)
    schedule = await find_schedule(session, schedule_id)
    if schedule is None:
        raise ScheduleNotFound(schedule_id)
    await require_team_reader(session, principal, schedule.team_id)
    start, end = now - calendar.FEED_PAST, now + calendar.FEED_FUTURE
    conn = await session.connection()
    definition = await load_schedule(conn, schedule.id, overrides_from=start, overrides_until=end)
    if definition is None:  # pragma: no cover - deleted between the two reads
        raise ScheduleNotFound(schedule_id)
    shifts = [
        ScheduleShift(schedule.id, schedule.name, shift)
        for shift in compute_shifts(definition, start, end).final
    ]
    names = await calendar.find_user_names(
        conn, [user_id for item in shifts for user_id in item.shift.user_ids]
    )
    body = calendar.render_calendar(
        name=f"On call: {schedule.name}",
        shifts=shifts,
        user_names=names,
        now=now,
        summary_by_schedule=False,
    )
    return _ical_response(body)


@router.get(
    "/api/v1/users/{user_id}/ical",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}},
)
async def user_ical(
    user_id: uuid.UUID, token: CalendarSecret, session: DbSession, now: Now
) -> Response:
    """The user's shifts in every schedule from 30 days ago to 180 days ahead, as iCalendar."""
    principal = await _calendar_principal(session, token)
    _require_self_or_admin(principal, user_id)
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    start, end = now - calendar.FEED_PAST, now + calendar.FEED_FUTURE
    conn = await session.connection()
    shifts = await find_user_shifts(conn, user_id, start, end, team_ids=None)
    names = await calendar.find_user_names(
        conn, [uid for item in shifts for uid in item.shift.user_ids]
    )
    body = calendar.render_calendar(
        name=f"On call: {user.name}",
        shifts=shifts,
        user_names=names,
        now=now,
        summary_by_schedule=True,
    )
    return _ical_response(body)
