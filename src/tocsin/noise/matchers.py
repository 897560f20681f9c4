"""Matchers, as silences and inhibition rules use them: pure functions of an alert's labels.

An alert is seen as labels: its tags by name (`field: "tag"`), plus the fields `title`,
`source`, `severity` and `service` (the routed service's name). A missing label has the
empty value, so `env!=prod` matches an alert without `env`, as in Alertmanager. Regexes are
anchored at both ends (`=~ db-.*` matches `db-1`, not `old-db-1`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

FIELDS = ("title", "source", "severity", "service")


class MatchOp(enum.StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True)
class Matcher:
    # "tag" (then `name` is the tag's name) or one of FIELDS.
    field: str
    op: MatchOp
    value: str
    name: str = ""

    @property
    def label(self) -> str:
        """The key it reads in `labels_of`: `tag:<name>`, or the field's name."""
        return tag_label(self.name) if self.field == "tag" else self.field

    def describe(self) -> str:
        shown = self.name if self.field == "tag" else self.field
        return f"{shown}{self.op.value}{self.value!r}"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "name": self.name, "op": self.op.value, "value": self.value}


def tag_label(name: str) -> str:
    return f"tag:{name}"


@lru_cache(maxsize=4096)
def _anchored(pattern: str) -> re.Pattern[str]:
    return re.compile(f"(?:{pattern})\\Z", re.DOTALL)


def check_regex(pattern: str) -> str | None:
    """What is wrong with the pattern, or None if it compiles."""
    try:
        _anchored(pattern)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    return None


def matches(matcher: Matcher, labels: Mapping[str, str]) -> bool:
    value = labels.get(matcher.label, "")
    if matcher.op == MatchOp.EQUAL:
        return value == matcher.value
    if matcher.op == MatchOp.NOT_EQUAL:
        return value != matcher.value
    found = _anchored(matcher.value).match(value) is not None
    return found if matcher.op == MatchOp.REGEX else not found


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    return all(matches(m, labels) for m in matchers)


def from_stored(rows: Sequence[Mapping[str, Any]]) -> tuple[Matcher, ...]:
    """Matchers as stored in a JSON column (validated when they were written)."""
    return tuple(
        Matcher(
            field=str(r["field"]),
            op=MatchOp(r["op"]),
            value=str(r.get("value", "")),
            name=str(r.get("name", "")),
        )
        for r in rows
    )


def labels_of(
    *, tags: Mapping[str, Any], title: str, source: str, severity: str, service: str
) -> dict[str, str]:
    """The labels matchers see: the named fields, and each tag as `tag:<name>` (so a tag
    called `service` does not hide the service field)."""
    labels = {tag_label(str(k)): str(v) for k, v in tags.items()}
    labels["title"] = title
    labels["source"] = source
    labels["severity"] = severity
    labels["service"] = service
    return labels
