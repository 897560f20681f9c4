"""`tocsin import SOURCE`: read, convert, report (dry run) or apply, or compare schedules."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tocsin.clock import SystemClock
from tocsin.config import Settings
from tocsin.db import create_engine, create_session_factory
from tocsin.importers.apply import ImportOptions, run_import
from tocsin.importers.compare import compare_schedules, render_comparison
from tocsin.importers.convert import BadExport
from tocsin.importers.reading import Connection, convert, fetch, load_file, window_of
from tocsin.importers.report import render_text
from tocsin.importers.source import Source

TOKEN_VARIABLE = "TOCSIN_IMPORT_TOKEN"


def add_parser(commands: Any) -> None:
    """Register `tocsin import` on the CLI's subcommands."""
    parser = commands.add_parser(
        "import",
        help="move users, teams, schedules, policies and services in from another tool",
        description=(
            "Read PagerDuty, Opsgenie or Grafana OnCall (REST API or a saved export) and show "
            "what would be created, changed or skipped, with every conversion that is not "
            "exact. Nothing is written without --apply; re-running updates, never duplicates."
        ),
    )
    parser.add_argument("source", choices=[source.value for source in Source])
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--token", help=f"the source's API token (or set {TOKEN_VARIABLE} to keep it out of ps)"
    )
    given.add_argument("--from-file", type=Path, help="a saved export instead of the API")
    parser.add_argument("--base-url", help="the source API's base URL (EU region, self-hosted)")
    parser.add_argument("--ca-file", help="trust this CA bundle for the source API's TLS")
    parser.add_argument("--apply", action="store_true", help="write (default: dry run)")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="compare each imported schedule with the source's final schedule, hour by hour",
    )
    parser.add_argument("--days", type=int, default=14, help="how far --compare looks (days)")
    parser.add_argument(
        "--since", help="start of the --compare window, ISO 8601 (default: now, to the hour)"
    )
    parser.add_argument("--schedule", help="--compare only this schedule (name or source id)")
    parser.add_argument("--save", type=Path, help="also write what was read to this file")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    source = Source(args.source)
    # One line per request would bury the progress lines.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        raw = _read(args, source)
        export = convert(source, raw)
    except BadExport as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.save:
        args.save.write_text(json.dumps(raw, indent=1))
        _progress(f"saved what was read to {args.save}")
    if args.compare:
        since, until = _compare_window(args, raw)
        results = asyncio.run(_compare(settings, export, since, until, args.schedule))
        sys.stdout.write(render_comparison(results))
        bad = any(result.disagreements or result.problem for result in results)
        return 1 if bad else 0
    options = ImportOptions(apply=args.apply, now=SystemClock().now(), base_url=settings.base_url())
    report = asyncio.run(_import(settings, export, options))
    if args.json:
        print(json.dumps(_report_json(report), indent=1, default=str))
    else:
        sys.stdout.write(render_text(report))
    return 0


def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def _read(args: argparse.Namespace, source: Source) -> dict[str, Any]:
    if args.from_file:
        return load_file(args.from_file)
    token = args.token or os.environ.get(TOKEN_VARIABLE, "")
    if not token:
        raise BadExport(f"no API token: pass --token or set {TOKEN_VARIABLE}")
    since, until = _compare_window(args, {})
    _progress(f"reading {source.label}")
    return fetch(
        source,
        Connection(token, base_url=args.base_url, ca_file=args.ca_file),
        since=since,
        until=until,
        progress=_progress,
    )


def _compare_window(args: argparse.Namespace, raw: dict[str, Any]) -> tuple[datetime, datetime]:
    if args.since:
        since = datetime.fromisoformat(args.since)
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
    elif (window := window_of(raw)) is not None:
        since = window[0]
    else:
        since = SystemClock().now().replace(minute=0, second=0, microsecond=0)
    return since.astimezone(UTC), since.astimezone(UTC) + timedelta(days=args.days)


async def _import(settings: Settings, export: Any, options: ImportOptions) -> Any:
    engine = create_engine(settings.database_url)
    try:
        return await run_import(create_session_factory(engine), export, options)
    finally:
        await engine.dispose()


async def _compare(
    settings: Settings, export: Any, since: datetime, until: datetime, only: str | None
) -> Any:
    engine = create_engine(settings.database_url)
    try:
        return await compare_schedules(engine, export, since=since, until=until, only=only)
    finally:
        await engine.dispose()


def _report_json(report: Any) -> dict[str, Any]:
    return {
        "source": report.source.value,
        "applied": report.applied,
        "summary": report.summary(),
        "entries": [
            {"kind": e.kind.value, "name": e.name, "action": e.action.value, "detail": e.detail}
            for e in report.entries
        ],
        "lossy": [
            {"kind": item.kind.value, "name": item.name, "reason": item.reason}
            for item in report.lossy
        ],
        "endpoints": [
            {
                "service": p.service,
                "integration": p.integration,
                "type": p.type,
                "url": p.url,
                "how": p.how,
            }
            for p in report.endpoints
        ],
        "notes": report.notes,
    }
