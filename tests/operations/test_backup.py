"""`tocsin db backup` / `tocsin db restore` for the embedded SQLite database: a consistent copy
taken while the server ingests, and a restore that is all-or-nothing and refuses to pull the
database from under a running server."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory

from tests.conftest import serving
from tests.factories import make_cast, make_world
from tocsin.cli import main
from tocsin.clock import FrozenClock, SystemClock
from tocsin.config import Settings
from tocsin.db import create_engine
from tocsin.migrations import alembic_config, upgrade
from tocsin.operations.backup import BackupRefused, DatabaseInUse, backup_sqlite, restore_sqlite
from tocsin.operations.models import ProcessKind
from tocsin.operations.processes import GONE_AFTER, ProcessHeartbeat

HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def cli_env(database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env["TOCSIN_DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"
    env["TOCSIN_LOG_LEVEL"] = "warning"
    return env


async def tocsin_async(database: Path, *args: str) -> tuple[int, str]:
    """The command run without blocking this event loop (a server may be serving on it)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tocsin.cli",
        *args,
        env=cli_env(database),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


def rows(database: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as conn:
        return conn.execute(sql).fetchall()


def revision(database: Path) -> str:
    return str(rows(database, "SELECT version_num FROM alembic_version")[0][0])


def alert_ids(database: Path) -> set[str]:
    # SQLite keeps UUIDs as 32 hex digits.
    return {str(r[0]) for r in rows(database, "SELECT id FROM alerts")}


@pytest.fixture
def live_db(tmp_path: Path, sqlite_template: Path) -> Path:
    path = tmp_path / "live" / "tocsin.db"
    path.parent.mkdir()
    shutil.copy(sqlite_template, path)
    return path


@pytest.fixture
async def populated(live_db: Path, clock: FrozenClock) -> AsyncIterator[str]:
    """The live database with the usual world in it; yields the integration's webhook path."""
    engine = create_engine(f"sqlite+aiosqlite:///{live_db}")
    try:
        world = await make_world(engine, clock.now(), await make_cast(engine, clock.now()))
    finally:
        await engine.dispose()
    yield world.integration.url


async def test_a_backup_taken_while_alerts_pour_in_holds_every_alert_answered_before_it(
    live_db: Path, populated: str, clock: FrozenClock, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{live_db}", secret_key="k", public_url="http://test"
    )
    accepted: list[tuple[float, str]] = []  # (when the 202 arrived, alert id)
    stop = asyncio.Event()
    warmed_up = asyncio.Event()

    async def send_alerts(http: httpx.AsyncClient, lane: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            response = await http.post(
                populated,
                json={
                    "title": f"alert {lane}-{n}",
                    "dedup_key": f"{lane}-{n}",
                    "routing_key": "payments-api",
                },
            )
            assert response.status_code == 202, response.text
            accepted.append((time.monotonic(), response.json()["alert_id"]))
            if len(accepted) >= 50:
                warmed_up.set()

    backup = tmp_path / "backups" / "tocsin-backup.db"
    async with (
        serving(settings, clock) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=30) as http,
    ):
        senders = [asyncio.create_task(send_alerts(http, lane)) for lane in range(4)]
        await warmed_up.wait()
        backup_started = time.monotonic()
        code, output = await tocsin_async(live_db, "db", "backup", str(backup))
        count_during = len(accepted)
        await asyncio.sleep(0.2)  # some more after the backup, which it must not need
        stop.set()
        await asyncio.gather(*senders)
    assert code == 0, output
    assert f"backed up {live_db} to {backup}" in output
    assert count_during > 50, "alerts kept arriving while the backup was taken"

    restored = tmp_path / "restored" / "tocsin.db"
    await asyncio.to_thread(restore_sqlite, backup, restored, clock=SystemClock())
    assert revision(restored) == HEAD
    before_backup = {alert_id.replace("-", "") for at, alert_id in accepted if at < backup_started}
    assert before_backup <= alert_ids(restored)
    assert rows(restored, "PRAGMA integrity_check") == [("ok",)]
    assert rows(restored, "PRAGMA foreign_key_check") == []
    # Every stored alert has its incident: the copy is of one moment, not of a moving target.
    assert rows(
        restored,
        "SELECT count(*) FROM alerts a LEFT JOIN incidents i ON i.id = a.incident_id"
        " WHERE i.id IS NULL",
    ) == [(0,)]
    assert not [p for p in restored.parent.iterdir() if ".partial-" in p.name]

    # The restored database is one a server serves from.
    restored_settings = Settings(database_url=f"sqlite+aiosqlite:///{restored}", secret_key="k")
    async with (
        serving(restored_settings, clock) as server,
        httpx.AsyncClient(base_url=server.base_url) as http,
    ):
        again = await http.post(populated, json={"title": "after", "routing_key": "payments-api"})
        assert again.status_code == 202, again.text


def test_a_backup_never_replaces_a_file_unless_forced(
    live_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TOCSIN_DATABASE_URL", f"sqlite+aiosqlite:///{live_db}")
    existing = tmp_path / "kept.db"
    existing.write_bytes(b"precious")
    assert main(["db", "backup", str(existing)]) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert existing.read_bytes() == b"precious"
    assert main(["db", "backup", "--force", str(existing)]) == 0
    assert revision(existing) == HEAD
    assert not existing.with_name("kept.db-wal").exists(), "a backup is one file"
    assert [p.name for p in tmp_path.iterdir() if ".partial-" in p.name] == []


async def test_restore_refuses_a_database_a_running_server_uses_unless_forced(
    live_db: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "b.db"
    backup_sqlite(live_db, backup)
    settings = Settings(database_url=f"sqlite+aiosqlite:///{live_db}", secret_key="k")
    async with serving(settings, FrozenClock(SystemClock().now())):
        with pytest.raises(DatabaseInUse, match=r"is in use \(api "):
            await asyncio.to_thread(restore_sqlite, backup, live_db, clock=SystemClock())
        await asyncio.to_thread(restore_sqlite, backup, live_db, clock=SystemClock(), force=True)


async def test_restore_refuses_while_the_registry_says_a_server_runs(
    live_db: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "b.db"
    backup_sqlite(live_db, backup)
    engine = create_engine(f"sqlite+aiosqlite:///{live_db}")
    try:
        beat = ProcessHeartbeat(engine, SystemClock(), kind=ProcessKind.WORKER, process_id="w:9:z")
        await beat.beat()
    finally:
        await engine.dispose()  # nobody has the file open: only the registry speaks
    where = f"(worker {socket.gethostname()}:{os.getpid()})"
    with pytest.raises(DatabaseInUse, match=re.escape(where)):
        restore_sqlite(backup, live_db, clock=SystemClock())
    # Once it has not been heard of for a while, it is taken for gone.
    later = FrozenClock(SystemClock().now() + GONE_AFTER + timedelta(seconds=1))
    await asyncio.to_thread(restore_sqlite, backup, live_db, clock=later)


def test_restore_refuses_while_another_process_has_the_database_open(
    live_db: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "b.db"
    backup_sqlite(live_db, backup)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
            " c.execute('SELECT count(*) FROM alerts').fetchall(); print('open', flush=True);"
            " sys.stdin.read()",
            str(live_db),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        with pytest.raises(DatabaseInUse, match=f"process {holder.pid} has the file open"):
            restore_sqlite(backup, live_db, clock=SystemClock())
    finally:
        holder.communicate("")
    restore_sqlite(backup, live_db, clock=SystemClock())


def test_a_failed_restore_leaves_the_database_as_it_was(live_db: Path, tmp_path: Path) -> None:
    before = live_db.read_bytes()
    not_sqlite = tmp_path / "junk.db"
    not_sqlite.write_bytes(b"this is not a database" * 100)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    newer = tmp_path / "newer.db"
    shutil.copy(live_db, newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    for backup, complaint in [
        (not_sqlite, "not a SQLite database"),
        (foreign, "not a Tocsin database"),
        (newer, "made by a newer release"),
        (tmp_path / "missing.db", "no backup at"),
    ]:
        with pytest.raises(BackupRefused, match=complaint):
            restore_sqlite(backup, live_db, clock=SystemClock())
    assert live_db.read_bytes() == before


def test_a_backup_of_an_older_release_is_migrated_when_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.db"
    upgrade(f"sqlite+aiosqlite:///{old}", "0007")
    backup = tmp_path / "old-backup.db"
    assert backup_sqlite(old, backup).schema_revision == "0007"
    target = tmp_path / "new" / "tocsin.db"
    monkeypatch.setenv("TOCSIN_DATABASE_URL", f"sqlite+aiosqlite:///{target}")
    assert main(["db", "restore", str(backup)]) == 0
    assert f"schema 0007, migrated to {HEAD}" in capsys.readouterr().out
    assert revision(target) == HEAD


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_postgresql_is_pointed_at_its_own_tools(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TOCSIN_DATABASE_URL", "postgresql+asyncpg://tocsin@127.0.0.1:1/tocsin")
    assert main(["db", command, str(tmp_path / "x")]) == 2
    advice = capsys.readouterr().err
    assert "pg_dump" in advice and "docs/operations.md" in advice
    assert not (tmp_path / "x").exists()
