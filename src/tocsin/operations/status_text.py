"""`tocsin status` for people: the report as a few aligned lines."""

from __future__ import annotations

from datetime import datetime, timedelta

from tocsin.operations.processes import ProcessState
from tocsin.operations.status import DueKind, OverdueItem, StatusReport

_DUE_NAMES = {
    DueKind.ESCALATION_TIMERS: "escalation timers",
    DueKind.DELIVERIES: "deliveries",
    DueKind.HEARTBEAT_DEADLINES: "heartbeat deadlines",
}


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _overdue(item: OverdueItem) -> str:
    of = f" of incident {item.incident_id}" if item.incident_id else ""
    return (
        f"{_DUE_NAMES[item.kind].rstrip('s')} {item.id}{of}, due {_when(item.due_at)},"
        f" {ago(item.late_seconds)} late"
    )


def render(report: StatusReport, *, threshold: timedelta) -> str:
    db = report.database
    lines = [f"Tocsin status at {_when(report.now)}", ""]
    detail = ""
    if db.file_bytes is not None:
        detail = f" ({size(db.file_bytes)} file + {size(db.wal_bytes or 0)} write-ahead log)"
    schema = f"schema {db.schema_revision or 'none'}"
    schema += " (current)" if db.schema_current else f" (this Tocsin knows {db.schema_head})"
    lines.append(f"Database   {db.backend}, {size(db.size_bytes)}{detail}; {schema}")

    lines += ["", "Processes"]
    if not report.processes:
        lines.append("  none seen (is a `tocsin serve` or `tocsin worker` running?)")
    for p in report.processes:
        seen = ago((report.now - p.last_seen).total_seconds())
        state = p.state.value.upper() if p.state != ProcessState.RUNNING else p.state.value
        lines.append(
            f"  {state:<8} {p.kind.value:<11} {p.host}:{p.pid:<8} v{p.version:<8}"
            f" up since {_when(p.started_at)}, last seen {seen} ago"
        )
    if not any(p.state == ProcessState.RUNNING for p in report.processes):
        lines.append("  WARNING: no process is running: nothing is paging")

    lines += ["", "Due work   pending  overdue"]
    for b in report.backlogs:
        lines.append(f"  {_DUE_NAMES[b.kind]:<20} {b.pending:>7}  {b.overdue:>7}")
    oldest = report.oldest_overdue
    lines.append(f"  oldest overdue: {_overdue(oldest) if oldest else 'none'}")

    lines += ["", "Parked (failed for good; a person must look)"]
    for parked in report.parked:
        newest = f", newest {_when(parked.newest_at)}" if parked.newest_at else ""
        lines.append(
            f"  {parked.kind.replace('_', ' '):<20} {parked.count:>7}"
            f"  ({parked.recent} in the last 24 h{newest})"
        )

    lines.append("")
    limit = ago(threshold.total_seconds())
    if report.overdue_beyond(threshold):
        lines.append(f"OVERDUE: due work has waited more than {limit} past its time")
    else:
        lines.append(f"OK: nothing overdue by more than {limit}")
    return "\n".join(lines)
