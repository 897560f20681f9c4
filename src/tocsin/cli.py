"""The `tocsin` command: serve | worker | db upgrade | users create | api-keys create."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from tocsin import bootstrap
from tocsin.auth.models import KeyScope
from tocsin.clock import SystemClock
from tocsin.config import Settings
from tocsin.db import create_engine, read_only
from tocsin.errors import TocsinError
from tocsin.migrations import alembic_config, upgrade
from tocsin.store.backend import is_shared, upgrades_itself
from tocsin.telemetry.logs import configure_logging

T = TypeVar("T")

log = logging.getLogger("tocsin.cli")  # the same name when run as `python -m tocsin.cli`


def _with_engine(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix):
        path = url[len(prefix) :]
        if path and path != ":memory:":
            return Path(path)
    return None


def _ensure_sqlite_dir(url: str) -> None:
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def migrate(settings: Settings) -> None:
    _ensure_sqlite_dir(settings.database_url)
    upgrade(settings.database_url)


def schema_is_current(settings: Settings) -> bool:
    head = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head()

    async def current(engine: AsyncEngine) -> str | None:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )

    return _with_engine(settings, current) == head


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from tocsin.app import create_app

    settings = settings.model_copy(
        update={"host": args.host or settings.host, "port": args.port or settings.port}
    )
    if args.smtp_port is not None:
        settings = settings.model_copy(update={"smtp_listen_port": args.smtp_port})
    if args.processes > 1 and not is_shared(settings.database_url):
        print(
            "--processes needs PostgreSQL: SQLite has a single writer, which one process"
            " already keeps busy",
            file=sys.stderr,
        )
        return 2
    if args.processes > 1 and settings.smtp_listen_port is not None:
        print(
            "--processes and an SMTP listener do not go together: the processes cannot all"
            " listen on the SMTP port; run the listener in a `tocsin serve` of its own",
            file=sys.stderr,
        )
        return 2
    if not settings.secret_key_is_set:
        refusal = secret_key_refusal(
            settings, several_processes=args.processes > 1, separate_worker=args.no_worker
        )
        if refusal is not None:
            print(refusal, file=sys.stderr)
            return 2
        # A log line, so that with TOCSIN_LOG_FORMAT=json it is JSON like every other.
        log.warning(
            "TOCSIN_SECRET_KEY is not set, so this process made one up: one-click links and"
            " verification codes it hands out stop working when it restarts."
            " Set it for good: %s",
            _MAKE_A_KEY,
        )
    if upgrades_itself(settings.database_url):
        migrate(settings)  # the embedded database looks after itself
    elif not schema_is_current(settings):
        print(
            "the database schema is not up to date: run `tocsin db upgrade` first",
            file=sys.stderr,
        )
        return 2
    admin = _with_engine(
        settings, lambda engine: bootstrap.create_first_admin_if_empty(engine, SystemClock())
    )
    base = settings.base_url()
    print(f"Tocsin {base}  (API docs: {base}/api/v1/docs)", flush=True)
    if settings.smtp_listen_port is not None:
        domain = settings.smtp_inbound_domain or "<any domain>"
        print(
            f"Inbound email on {settings.smtp_listen_host}:{settings.smtp_listen_port}"
            f" for <email integration key>@{domain}",
            flush=True,
        )
    if admin is not None:
        print(
            "First start: an administrator was created. This is shown once; keep it.\n"
            f"  email:    {admin.email}\n"
            f"  password: {admin.password}\n"
            f"  API key:  {admin.api_key}\n"
            f"  try:      curl -H 'Authorization: Bearer {admin.api_key}' {base}/api/v1/users",
            flush=True,
        )
    else:
        print(
            "Log in with an existing API key (Authorization: Bearer <key>); make one with\n"
            "  tocsin api-keys create --email <your email>",
            flush=True,
        )
    if args.processes > 1:
        # Each process builds its own app from the environment (uvicorn starts them afresh),
        # so what the command line changed is handed down that way.
        os.environ.update(
            {
                "TOCSIN_HOST": settings.host,
                "TOCSIN_PORT": str(settings.port),
                SERVE_NO_WORKER_ENV: "1" if args.no_worker else "",
            }
        )
        uvicorn.run(
            "tocsin.cli:app_from_environment",
            factory=True,
            workers=args.processes,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            log_config=None,  # our handlers (tocsin.telemetry.logs), text or JSON
            access_log=settings.access_log,
        )
        return 0
    app = create_app(settings, run_worker=not args.no_worker)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=settings.access_log,
    )
    return 0


SERVE_NO_WORKER_ENV = "TOCSIN_SERVE_NO_WORKER"
_MAKE_A_KEY = (
    "TOCSIN_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))'),"
    " the same value for every process"
)


def secret_key_refusal(
    settings: Settings, *, several_processes: bool, separate_worker: bool
) -> str | None:
    """Why this process may not run without TOCSIN_SECRET_KEY, or None if it may (one
    `serve` on SQLite, which signs and checks everything itself). Links and codes signed
    with one process's made-up key fail on every other process."""
    if settings.secret_key_is_set:
        return None
    if several_processes:
        why = "`serve --processes N` runs several processes"
    elif separate_worker:
        why = "with --no-worker, a `tocsin worker` elsewhere sends the messages"
    elif is_shared(settings.database_url):
        why = "a PostgreSQL database is shared with other processes"
    else:
        return None
    return (
        f"TOCSIN_SECRET_KEY is not set, and {why}: one-click links and verification codes"
        f" signed by one process would fail on another. Set {_MAKE_A_KEY}."
    )


def app_from_environment() -> Any:
    """The app of one of `serve --processes N`'s processes."""
    from tocsin.app import create_app

    settings = Settings()
    configure_logging(level=settings.log_level, log_format=settings.log_format)
    return create_app(settings, run_worker=not os.environ.get(SERVE_NO_WORKER_ENV))


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    from datetime import timedelta

    from tocsin.runtime import Runtime, WorkerOptions
    from tocsin.worker.steps import step_names

    if not settings.secret_key_is_set:
        print(
            "TOCSIN_SECRET_KEY is not set, and a `tocsin worker` signs the one-click links in"
            " the messages it sends for the API processes to check: they must share the key."
            f" Set {_MAKE_A_KEY}.",
            file=sys.stderr,
        )
        return 2
    if upgrades_itself(settings.database_url):
        migrate(settings)
    elif not schema_is_current(settings):
        print(
            "the database schema is not up to date: run `tocsin db upgrade` first",
            file=sys.stderr,
        )
        return 2

    steps = None
    if args.steps:
        known = step_names()
        wanted = [name.strip() for name in args.steps.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise TocsinError(
                f"unknown steps {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        steps = [known[name] for name in wanted]
    options = WorkerOptions(
        worker_id=args.worker_id,
        lease=timedelta(seconds=args.lease_seconds),
        steps=steps,
        poll_seconds=min(args.poll_seconds, 1.0),
    )

    async def run() -> None:
        runtime = Runtime(settings, serve_http=False, worker=options)
        worker = runtime.worker
        assert worker is not None
        # Before start: a SIGTERM while starting (the process is already in the registry)
        # stops the loop at its first round instead of killing the process.
        running = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(signum, worker.stop)
        await runtime.start()
        try:
            print(f"worker {runtime.process_id} running", flush=True)
            await runtime.wait()
        finally:
            await runtime.stop()

    asyncio.run(run())
    return 0


def cmd_db_upgrade(_args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings)
    print("database is at the latest schema")
    return 0


STATUS_UNKNOWN = 2  # the exit code when status could not be read at all


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 when nothing is overdue beyond --max-overdue, 1 when something is, 2 when the
    database could not be read: what a monitoring check wants."""
    import json
    from datetime import timedelta

    from tocsin.operations.status import gather_status
    from tocsin.operations.status_text import render

    path = sqlite_file(settings.database_url)
    if path is not None and not path.exists():
        print(f"no database at {path} (TOCSIN_DATABASE_URL)", file=sys.stderr)
        return STATUS_UNKNOWN
    head = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head()

    async def read(engine: AsyncEngine) -> Any:
        async with read_only(engine).connect() as conn:
            return await gather_status(conn, now=SystemClock().now(), schema_head=head)

    try:
        report = _with_engine(settings, read)
    except Exception as exc:
        print(
            f"cannot read the status from the database: {exc}\n"
            "(is TOCSIN_DATABASE_URL right, and the schema upgraded: `tocsin db upgrade`?)",
            file=sys.stderr,
        )
        return STATUS_UNKNOWN
    threshold = timedelta(seconds=args.max_overdue)
    if args.json:
        body = report.as_json()
        body["max_overdue_seconds"] = args.max_overdue
        body["overdue_beyond_max"] = report.overdue_beyond(threshold)
        print(json.dumps(body, indent=2))
    else:
        print(render(report, threshold=threshold))
    return 1 if report.overdue_beyond(threshold) else 0


POSTGRES_BACKUP_ADVICE = (
    "this database is PostgreSQL: back it up with PostgreSQL's own tools (pg_dump for a"
    " logical copy, pg_basebackup with WAL archiving for point-in-time recovery) and restore"
    " with pg_restore or by replaying the archive; docs/operations.md shows how"
)


def cmd_db_backup(args: argparse.Namespace, settings: Settings) -> int:
    from tocsin.operations.backup import backup_sqlite

    database = sqlite_file(settings.database_url)
    if database is None:
        print(POSTGRES_BACKUP_ADVICE, file=sys.stderr)
        return 2
    result = backup_sqlite(database, Path(args.path), overwrite=args.force)
    print(
        f"backed up {database} to {result.path} ({result.size_bytes} bytes,"
        f" schema {result.schema_revision}) in {result.seconds:.2f} s"
    )
    return 0


def cmd_db_restore(args: argparse.Namespace, settings: Settings) -> int:
    from tocsin.operations.backup import restore_sqlite

    database = sqlite_file(settings.database_url)
    if database is None:
        print(POSTGRES_BACKUP_ADVICE, file=sys.stderr)
        return 2
    result = restore_sqlite(Path(args.path), database, clock=SystemClock(), force=args.force)
    migrated = f", migrated to {result.migrated_to}" if result.migrated_to else ""
    print(f"restored {database} from {args.path} (schema {result.restored_revision}{migrated})")
    return 0


def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    from tocsin.operations.settings_reference import current_values, settings_markdown

    if args.markdown:
        print(settings_markdown(), end="")
        return 0
    for name, value in current_values(settings):
        print(f"{name}={value}")
    return 0


def cmd_users_create(args: argparse.Namespace, settings: Settings) -> int:
    user_id = _with_engine(
        settings,
        lambda engine: bootstrap.add_user(
            engine,
            SystemClock(),
            email=args.email,
            name=args.name,
            admin=args.admin,
            password=args.password,
        ),
    )
    print(user_id)
    return 0


def cmd_api_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    key = _with_engine(
        settings,
        lambda engine: bootstrap.add_api_key(
            engine,
            SystemClock(),
            email=args.email,
            name=args.name,
            scope=KeyScope(args.scope),
            expires_in_days=args.expires_in_days,
        ),
    )
    print(key)  # alone on stdout, for scripts: KEY=$(tocsin api-keys create --email ...)
    return 0


def add_import_command(commands: Any) -> None:
    """`tocsin import pagerduty|opsgenie|grafana-oncall ...` (tocsin/importers/command.py)."""
    from tocsin.importers.command import add_parser

    add_parser(commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tocsin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server (and the worker)")
    serve.add_argument("--host", help="bind address (default TOCSIN_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default TOCSIN_PORT or 8080)")
    serve.add_argument(
        "--no-worker", action="store_true", help="serve HTTP only; run `tocsin worker` elsewhere"
    )
    serve.add_argument(
        "--processes",
        type=int,
        default=1,
        help="serve from N processes sharing the port (PostgreSQL only; default 1)",
    )
    serve.add_argument(
        "--smtp-port",
        type=int,
        help="also accept alerts by email on this port (default TOCSIN_SMTP_LISTEN_PORT; off)",
    )
    serve.set_defaults(handler=cmd_serve)

    worker = commands.add_parser(
        "worker", help="run only the worker (escalation timers, deliveries); any number of them"
    )
    worker.add_argument(
        "--lease-seconds",
        type=float,
        default=60.0,
        help="how long a claimed row stays this worker's before others may retake it",
    )
    worker.add_argument(
        "--poll-seconds", type=float, default=1.0, help="longest sleep between rounds (<= 1)"
    )
    worker.add_argument(
        "--steps",
        help="comma-separated subset of steps to run (escalation, notifications, "
        "heartbeats, noise, retention); default all",
    )
    worker.add_argument("--worker-id", help="name in the lease columns (default host:pid:random)")
    worker.set_defaults(handler=cmd_worker)

    db = commands.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="apply all migrations").set_defaults(handler=cmd_db_upgrade)
    backup = db.add_parser(
        "backup", help="copy the SQLite database to PATH, consistent while the server runs"
    )
    backup.add_argument("path", help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="replace PATH if it exists")
    backup.set_defaults(handler=cmd_db_backup)
    restore = db.add_parser(
        "restore",
        help="replace the SQLite database with the backup at PATH and migrate it;"
        " refused while a server uses the database",
    )
    restore.add_argument("path", help="a file made by `tocsin db backup`")
    restore.add_argument(
        "--force", action="store_true", help="overwrite even a database a server is using"
    )
    restore.set_defaults(handler=cmd_db_restore)

    status = commands.add_parser(
        "status",
        help="processes seen, due and overdue work, parked rows, database size;"
        " exits 1 when work is overdue beyond --max-overdue",
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--max-overdue",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="exit 1 when due work waited longer than this past its time (default 60)",
    )
    status.set_defaults(handler=cmd_status)

    settings_command = commands.add_parser(
        "settings", help="the settings this process would run with (secrets masked)"
    )
    settings_command.add_argument(
        "--markdown",
        action="store_true",
        help="print the settings reference instead (docs/settings.md is made with it)",
    )
    settings_command.set_defaults(handler=cmd_settings)

    users = commands.add_parser("users", help="manage users").add_subparsers(
        dest="users_command", required=True
    )
    create_user = users.add_parser("create", help="create a user; prints its id")
    create_user.add_argument("--email", required=True)
    create_user.add_argument("--name", required=True)
    create_user.add_argument("--admin", action="store_true")
    create_user.add_argument("--password", help="optional; API keys need none")
    create_user.set_defaults(handler=cmd_users_create)

    keys = commands.add_parser("api-keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    create_key = keys.add_parser("create", help="create an API key; prints it alone")
    create_key.add_argument("--email", required=True)
    create_key.add_argument("--name", default="cli")
    create_key.add_argument(
        "--scope",
        choices=[scope.value for scope in KeyScope],
        default=KeyScope.FULL.value,
        help="read: only reads; respond: also acts on incidents; full (default): everything",
    )
    create_key.add_argument(
        "--expires-in-days", type=float, help="the key stops working after this many days"
    )
    create_key.set_defaults(handler=cmd_api_keys_create)

    add_import_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    configure_logging(level=settings.log_level, log_format=settings.log_format)
    try:
        code: int = args.handler(args, settings)
    except TocsinError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
