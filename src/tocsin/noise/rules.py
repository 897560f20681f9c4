"""Silences and inhibition rules in the parsed form the decision uses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tocsin.noise.matchers import Matcher


@dataclass(frozen=True)
class SilenceRule:
    id: uuid.UUID
    team_id: uuid.UUID | None
    matchers: tuple[Matcher, ...]
    comment: str


@dataclass(frozen=True)
class Inhibition:
    id: uuid.UUID
    team_id: uuid.UUID | None
    name: str
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]
