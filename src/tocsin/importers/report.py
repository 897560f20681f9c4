"""What an import did or would do, object by object, and how it reads on a terminal or a page."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from tocsin.importers.source import Kind, Lossy, Source


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    # An object that already existed in Tocsin (a user with the same email, a team with the
    # same name) and is now linked to its source object.
    MATCH = "match"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Entry:
    kind: Kind
    name: str
    action: Action
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a monitoring tool must now send alerts for one imported integration."""

    service: str
    integration: str
    type: str
    # None when the integration already existed: its key was shown when it was created.
    url: str | None
    how: str


@dataclass(slots=True)
class Report:
    source: Source
    applied: bool
    entries: list[Entry] = field(default_factory=list)
    lossy: list[Lossy] = field(default_factory=list)
    endpoints: list[Endpoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, kind: Kind, name: str, action: Action, detail: str = "") -> None:
        self.entries.append(Entry(kind, name, action, detail))

    def count(self, action: Action, kind: Kind | None = None) -> int:
        return sum(
            1
            for entry in self.entries
            if entry.action is action and (kind is None or entry.kind is kind)
        )

    def summary(self) -> dict[str, dict[str, int]]:
        """{kind: {action: count}} for the kinds present, in import order."""
        table: dict[str, dict[str, int]] = {}
        for kind in Kind:
            row = {
                action.value: self.count(action, kind)
                for action in Action
                if self.count(action, kind)
            }
            if row:
                table[kind.value] = row
        return table


def render_text(report: Report) -> str:
    """The report as a terminal shows it."""
    mode = "applied" if report.applied else "dry run: nothing written (add --apply to write)"
    lines = [f"Import from {report.source.label} ({mode})", ""]
    for kind, row in report.summary().items():
        counts = ", ".join(f"{count} {action}" for action, count in row.items())
        lines.append(f"  {kind:<20} {counts}")
    lines.append("")
    verb = {
        Action.CREATE: "created" if report.applied else "would create",
        Action.UPDATE: "updated" if report.applied else "would update",
        Action.UNCHANGED: "unchanged",
        Action.MATCH: "matched" if report.applied else "would match",
        Action.SKIP: "skipped",
    }
    for entry in report.entries:
        if entry.action is Action.UNCHANGED:
            continue
        detail = f" ({entry.detail})" if entry.detail else ""
        lines.append(f"{verb[entry.action]:>14} {entry.kind.value} {entry.name!r}{detail}")
    if report.lossy:
        lines += ["", f"Not exact ({len(report.lossy)}):"]
        lines += [f"  {item.kind.value} {item.name!r}: {item.reason}" for item in report.lossy]
    if report.endpoints:
        lines += ["", "Point your monitoring tools at Tocsin:"]
        for endpoint in report.endpoints:
            name = f"{endpoint.service} / {endpoint.integration} [{endpoint.type}]"
            if endpoint.url:
                lines.append(f"  {name}: {endpoint.url}")
                if endpoint.how:
                    lines.append(f"      {endpoint.how}")
            else:
                lines.append(f"  {name}: {endpoint.how or 'exists; its URL was shown when made'}")
    if report.notes:
        lines += ["", *report.notes]
    return "\n".join(lines) + "\n"
