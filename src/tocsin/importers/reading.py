"""Reading a source: live from its REST API or from a saved export, into the neutral `Export`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tocsin.importers import grafana_oncall, opsgenie, pagerduty
from tocsin.importers.convert import BadExport
from tocsin.importers.source import Export, Source

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Connection:
    """How to reach the source's API."""

    token: str
    base_url: str | None = None
    ca_file: str | None = None
    # Tests shorten the client's first pause after a 429; None keeps the client's own.
    backoff_seconds: float | None = None


# Each source's reader: its REST API read into the raw export, and that export made neutral.
_FETCH: dict[Source, Callable[..., dict[str, Any]]] = {
    Source.PAGERDUTY: pagerduty.fetch,
    Source.GRAFANA_ONCALL: grafana_oncall.fetch,
    Source.OPSGENIE: opsgenie.fetch,
}
_CONVERT: dict[Source, Callable[[dict[str, Any]], Export]] = {
    Source.PAGERDUTY: pagerduty.convert,
    Source.GRAFANA_ONCALL: grafana_oncall.convert,
    Source.OPSGENIE: opsgenie.convert,
}


def fetch(
    source: Source,
    connection: Connection,
    *,
    since: datetime,
    until: datetime,
    progress: Progress = lambda message: None,
) -> dict[str, Any]:
    """The raw export, read from the source's API (blocking: run it in a thread from async code)."""
    reader = _FETCH.get(source)
    if reader is None:
        raise BadExport(f"no reader for {source.value}")
    return reader(
        connection.token,
        since=since,
        until=until,
        base_url=connection.base_url,
        ca_file=connection.ca_file,
        progress=progress,
        backoff_seconds=connection.backoff_seconds,
    )


def convert(source: Source, raw: dict[str, Any]) -> Export:
    """The neutral form of a raw export of `source`."""
    declared = raw.get("source")
    if declared is not None and declared != source.value:
        raise BadExport(f"this export comes from {declared!r}, not {source.value!r}")
    converter = _CONVERT.get(source)
    if converter is None:
        raise BadExport(f"no converter for {source.value}")
    return converter(raw)


def load_file(path: Path) -> dict[str, Any]:
    """A saved export (what `--save` wrote, or the UI's upload)."""
    return parse_export(path.read_bytes())


def parse_export(data: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadExport(f"not a JSON export: {exc}") from exc
    if not isinstance(raw, dict):
        raise BadExport("an export is a JSON object")
    return raw


def window_of(raw: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """The [since, until) window the export's rendered schedules cover, when it says."""
    if raw.get("since") and raw.get("until"):
        return datetime.fromisoformat(raw["since"]), datetime.fromisoformat(raw["until"])
    return None
