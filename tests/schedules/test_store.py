"""Reading stored schedules back as definitions, and "who is on call" inside a caller's
transaction (what the escalation engine calls), on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time

from sqlalchemy.ext.asyncio import AsyncEngine
from tests.factories import Cast

from tocsin.db import create_session_factory, new_id, new_ordered_id
from tocsin.schedules.definition import LayerDef, OverrideDef, Restriction, Rotation, Weekday
from tocsin.schedules.editing import add_override, create_schedule
from tocsin.schedules.shifts import ShiftSource, SourceKind
from tocsin.schedules.store import find_on_call, load_schedule

NOW = datetime(2026, 3, 10, 9, tzinfo=UTC)


def layer(*groups: tuple[uuid.UUID, ...], restrictions: tuple[Restriction, ...] = ()) -> LayerDef:
    return LayerDef(
        id=new_id(),
        name="primary",
        start=datetime(2026, 1, 1, tzinfo=UTC),
        end=None,
        rotation=Rotation.DAILY,
        turn_length=1,
        handoff=datetime(2026, 3, 1, 9, 0),
        participants=groups,
        restrictions=restrictions,
    )


async def seed(
    engine: AsyncEngine, cast: Cast, layers: list[LayerDef], overrides: list[OverrideDef]
) -> uuid.UUID:
    async with create_session_factory(engine)() as session, session.begin():
        schedule = await create_schedule(
            session,
            team_id=cast.payments,
            name="Payments",
            description="",
            time_zone="Europe/Berlin",
            layers=layers,
            now=NOW,
        )
        for override in overrides:
            await add_override(session, schedule, override, created_by=cast.alice.id, now=NOW)
        return schedule.id


async def test_a_stored_schedule_loads_back_as_the_definition_it_was_made_from(
    engine: AsyncEngine, cast: Cast
) -> None:
    office = (Restriction(time(9), time(17), (Weekday.MON, Weekday.FRI)),)
    nights = (Restriction(time(22), time(6)),)
    layers = [
        # The same user twice in the order, and a group of two.
        layer(
            (cast.alice.id,), (cast.bob.id, cast.olive.id), (cast.alice.id,), restrictions=nights
        ),
        layer((cast.bob.id,), restrictions=office),
    ]
    overrides = [
        OverrideDef(
            new_ordered_id(),
            (cast.olive.id,),
            datetime(2026, 3, 12, tzinfo=UTC),
            datetime(2026, 3, 13, tzinfo=UTC),
        ),
        OverrideDef(
            new_ordered_id(),
            (cast.bob.id,),
            datetime(2026, 4, 12, tzinfo=UTC),
            datetime(2026, 4, 13, tzinfo=UTC),
        ),
    ]
    schedule_id = await seed(engine, cast, layers, overrides)

    async with engine.connect() as conn:
        loaded = await load_schedule(conn, schedule_id)
        windowed = await load_schedule(
            conn,
            schedule_id,
            overrides_from=datetime(2026, 4, 1, tzinfo=UTC),
            overrides_until=datetime(2026, 5, 1, tzinfo=UTC),
        )

    assert loaded is not None and windowed is not None
    assert loaded.time_zone == "Europe/Berlin"
    assert [stored.id for stored in loaded.layers] == [made.id for made in layers]
    first = loaded.layers[0]
    assert [set(group) for group in first.participants] == [
        {cast.alice.id},
        {cast.bob.id, cast.olive.id},
        {cast.alice.id},
    ]
    assert first.restrictions == nights
    assert loaded.layers[1].restrictions == office
    assert first.handoff == datetime(2026, 3, 1, 9, 0)
    assert first.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert loaded.overrides == tuple(overrides)
    assert windowed.overrides == (overrides[1],)


async def test_find_on_call_answers_inside_the_callers_transaction(
    engine: AsyncEngine, cast: Cast
) -> None:
    daily = layer((cast.alice.id,), (cast.bob.id,))
    override = OverrideDef(
        new_ordered_id(),
        (cast.olive.id,),
        datetime(2026, 3, 10, 12, tzinfo=UTC),
        datetime(2026, 3, 10, 13, tzinfo=UTC),
    )
    schedule_id = await seed(engine, cast, [daily], [override])

    async with engine.begin() as conn:
        # 2026-03-10 09:00 Berlin (08:00Z) is the tenth handoff from Sunday 03-01: Bob.
        before = await find_on_call(conn, schedule_id, datetime(2026, 3, 10, 7, 59, tzinfo=UTC))
        at_handoff = await find_on_call(conn, schedule_id, datetime(2026, 3, 10, 8, tzinfo=UTC))
        overridden = await find_on_call(conn, schedule_id, datetime(2026, 3, 10, 12, tzinfo=UTC))
        override_over = await find_on_call(conn, schedule_id, datetime(2026, 3, 10, 13, tzinfo=UTC))
        missing = await find_on_call(conn, uuid.uuid4(), NOW)

    assert before is not None and before.user_ids == (cast.alice.id,)
    assert at_handoff is not None and at_handoff.user_ids == (cast.bob.id,)
    assert at_handoff.source == ShiftSource(SourceKind.LAYER, daily.id)
    assert overridden is not None and overridden.user_ids == (cast.olive.id,)
    assert overridden.source == ShiftSource(SourceKind.OVERRIDE, override.id)
    assert override_over is not None and override_over.user_ids == (cast.bob.id,)
    assert missing is None


async def test_find_on_call_says_nobody_for_a_schedule_without_layers(
    engine: AsyncEngine, cast: Cast
) -> None:
    schedule_id = await seed(engine, cast, [], [])

    async with engine.connect() as conn:
        answer = await find_on_call(conn, schedule_id, NOW)

    assert answer is not None
    assert (answer.user_ids, answer.source) == ((), None)
