"""The index finds exactly the rules whose every matcher matches, in their order, whatever
it remembered from earlier alerts."""

from __future__ import annotations

import itertools

import pytest

from tocsin.noise.matchers import Matcher, MatchOp, matches_all
from tocsin.noise.rules import LeadIndex


def tag(name: str, op: str, value: str) -> Matcher:
    return Matcher("tag", MatchOp(op), value, name)


RULES: list[tuple[Matcher, ...]] = [
    (tag("instance", "=~", "db-.*"), Matcher("severity", MatchOp.NOT_EQUAL, "info")),
    (tag("env", "=", "prod"), tag("instance", "=~", "db-.*")),
    (tag("env", "!=", "prod"),),
    (Matcher("title", MatchOp.NOT_REGEX, "Disk.*"), tag("env", "=", "prod")),
    (tag("instance", "=", "db-1"),),
    (),  # no matchers (an inhibition rule's empty side): everything
]

LABELS = [
    {"tag:instance": "db-1", "tag:env": "prod", "severity": "high", "title": "Disk full"},
    {"tag:instance": "db-2", "tag:env": "prod", "severity": "info", "title": "CPU"},
    {"tag:instance": "old-db-1", "severity": "low", "title": "Disk full"},
    {"tag:env": "staging", "severity": "critical", "title": "Down"},
    {"severity": "high", "title": ""},
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(LABELS))))[:24])
def test_it_finds_what_trying_every_rule_finds_in_any_order_of_alerts(
    order: tuple[int, ...],
) -> None:
    index = LeadIndex([(rule, n) for n, rule in enumerate(RULES)])
    for _ in range(2):  # the second round answers from what it remembered
        for i in order:
            labels = LABELS[i]
            expected = [n for n, rule in enumerate(RULES) if matches_all(rule, labels)]
            assert index.matching(labels) == expected


def test_an_empty_index_matches_nothing() -> None:
    assert LeadIndex[int]([]).matching(LABELS[0]) == []
