"""Matchers: each operator on tags and on each field, as Alertmanager treats them."""

from __future__ import annotations

import pytest

from tocsin.noise.matchers import Matcher, MatchOp, labels_of, matches

LABELS = labels_of(
    tags={"env": "prod", "instance": "db-1", "service": "tag value"},
    title="Disk full on db-1",
    source="node-exporter",
    severity="critical",
    service="Payments API",
)


@pytest.mark.parametrize(
    ("field", "name", "op", "value", "expected"),
    [
        ("tag", "env", "=", "prod", True),
        ("tag", "env", "=", "staging", False),
        ("tag", "env", "!=", "staging", True),
        ("tag", "env", "!=", "prod", False),
        ("tag", "instance", "=~", "db-.*", True),
        ("tag", "instance", "=~", "db", False),  # anchored at both ends
        ("tag", "instance", "=~", "b-1", False),
        ("tag", "instance", "!~", "web-.*", True),
        ("tag", "instance", "!~", "db-[0-9]", False),
        # A missing tag has the empty value.
        ("tag", "team", "=", "", True),
        ("tag", "team", "!=", "payments", True),
        ("tag", "team", "=~", ".+", False),
        ("title", "", "=~", "Disk full.*", True),
        ("title", "", "=", "Disk full", False),
        ("source", "", "=", "node-exporter", True),
        ("source", "", "!~", "node-.*", False),
        ("severity", "", "=~", "critical|high", True),
        ("severity", "", "!=", "critical", False),
        ("service", "", "=", "Payments API", True),
        # The field and a tag of the same name are told apart.
        ("tag", "service", "=", "tag value", True),
        ("service", "", "=", "tag value", False),
    ],
)
def test_each_operator_on_tags_and_fields(
    field: str, name: str, op: str, value: str, expected: bool
) -> None:
    assert matches(Matcher(field, MatchOp(op), value, name), LABELS) is expected
