"""Silences and inhibition rules in the parsed form the decision uses, and the index that
finds the few of them an alert may match without trying every one."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from tocsin.noise.matchers import Matcher, MatchOp, matches, matches_all


@dataclass(frozen=True)
class SilenceRule:
    id: uuid.UUID
    team_id: uuid.UUID | None
    matchers: tuple[Matcher, ...]
    comment: str
    # None: no bound on that side (the cache keeps silences not yet started or just ended,
    # and the decision checks the time).
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def active_at(self, at: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= at) and (
            self.ends_at is None or at < self.ends_at
        )


@dataclass(frozen=True)
class Inhibition:
    id: uuid.UUID
    team_id: uuid.UUID | None
    name: str
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


T = TypeVar("T")

# Which matcher of a set is tried first: the one least likely to match.
_SELECTIVITY = {MatchOp.EQUAL: 0, MatchOp.REGEX: 1, MatchOp.NOT_REGEX: 2, MatchOp.NOT_EQUAL: 3}
# Remembered label values per lead label; past this the memo starts again (unbounded values
# such as titles must not grow it for ever).
_MEMO_LIMIT = 4096


@dataclass(frozen=True)
class _Entry(Generic[T]):
    position: int
    lead: Matcher | None  # None: no matchers, matches everything
    rest: tuple[Matcher, ...]
    item: T


class LeadIndex(Generic[T]):
    """Items with matcher sets, found by the labels they all match, in their original order.

    Each set is filed under one "lead" matcher (an equality if it has one). The lead matchers
    of a label are evaluated once per distinct value of that label and the answer remembered,
    so an alert costs a dictionary lookup per lead label plus the full check of the few items
    whose lead matched, not a regex per item: 100 silences on `instance=~...` cost one lookup
    for an alert whose instance was seen before.
    """

    def __init__(self, entries: Sequence[tuple[Sequence[Matcher], T]]) -> None:
        self._always: list[_Entry[T]] = []
        self._by_label: dict[str, list[_Entry[T]]] = {}
        for position, (matchers, item) in enumerate(entries):
            if not matchers:
                self._always.append(_Entry(position, None, (), item))
                continue
            ordered = sorted(matchers, key=lambda m: _SELECTIVITY[m.op])
            lead = ordered[0]
            entry = _Entry(position, lead, tuple(ordered[1:]), item)
            self._by_label.setdefault(lead.label, []).append(entry)
        self._memo: dict[str, dict[str, tuple[_Entry[T], ...]]] = {k: {} for k in self._by_label}
        self.size = len(entries)

    def matching(self, labels: Mapping[str, str]) -> list[T]:
        """The items whose every matcher matches these labels, in the order given."""
        found = list(self._always)
        for label, entries in self._by_label.items():
            value = labels.get(label, "")
            memo = self._memo[label]
            hits = memo.get(value)
            if hits is None:
                alone = {label: value}
                hits = tuple(e for e in entries if e.lead is not None and matches(e.lead, alone))
                if len(memo) >= _MEMO_LIMIT:
                    memo.clear()
                memo[value] = hits
            found.extend(hits)
        if len(found) > 1:
            found.sort(key=lambda e: e.position)
        return [e.item for e in found if matches_all(e.rest, labels)]


def empty_index() -> LeadIndex[T]:
    return LeadIndex(())
