"""Builders for schedule definitions: a cast of named people and factories for layers,
overrides and schedules, so table rows can say "Alice" and "Mon 09:00"."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

import pytest

from tocsin.schedules.definition import (
    LayerDef,
    OverrideDef,
    Restriction,
    Rotation,
    ScheduleDef,
)
from tocsin.schedules.oncall import who_is_on_call

# Layers in the tables start long before anything they are asked about, unless a row says.
LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)
_NAMESPACE = uuid.UUID("5c4e1d2a-3b7f-4c11-9a0e-2f6d8b1c7e90")


class People:
    """Users by first name: stable ids, and names back from ids for readable assertions."""

    def id(self, name: str) -> uuid.UUID:
        return uuid.uuid5(_NAMESPACE, name)

    def names(self, user_ids: Iterable[uuid.UUID]) -> list[str]:
        known = {self.id(name): name for name in _CAST}
        return sorted(known[user_id] for user_id in user_ids)


_CAST = ("Alice", "Bob", "Carol", "Dave", "Erin", "A", "B", "C")

LayerFactory = Callable[..., LayerDef]


@pytest.fixture
def people() -> People:
    return People()


@pytest.fixture
def make_layer(people: People) -> LayerFactory:
    """layer(rotation, handoff, ["Alice", ("Bob", "Carol")], turn_length=..., ...)."""

    def make(
        rotation: Rotation | str,
        handoff: datetime,
        participants: Sequence[str | tuple[str, ...]],
        *,
        turn_length: int = 1,
        restrictions: Sequence[Restriction] = (),
        start: datetime = LONG_AGO,
        end: datetime | None = None,
        name: str = "layer",
    ) -> LayerDef:
        groups = tuple(
            (people.id(each),) if isinstance(each, str) else tuple(people.id(n) for n in each)
            for each in participants
        )
        return LayerDef(
            id=uuid.uuid5(_NAMESPACE, f"layer:{name}"),
            name=name,
            start=start,
            end=end,
            rotation=Rotation(rotation),
            turn_length=turn_length,
            handoff=handoff,
            participants=groups,
            restrictions=tuple(restrictions),
        )

    return make


@pytest.fixture
def make_override(people: People) -> Callable[..., OverrideDef]:
    def make(names: Sequence[str], start: datetime, end: datetime) -> OverrideDef:
        return OverrideDef(
            id=uuid.uuid5(_NAMESPACE, f"override:{start.isoformat()}"),
            user_ids=tuple(people.id(name) for name in names),
            start=start,
            end=end,
        )

    return make


@pytest.fixture
def on_call(people: People) -> Callable[[ScheduleDef, datetime], list[str]]:
    """Names on call in a schedule at an instant."""

    def names(schedule: ScheduleDef, at: datetime) -> list[str]:
        return people.names(who_is_on_call(schedule, at).user_ids)

    return names
