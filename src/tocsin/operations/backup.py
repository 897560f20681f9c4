"""Backing up and restoring the embedded SQLite database, safely while it serves.

Backup uses SQLite's online backup API in a single step: it reads the database inside one
read transaction, which in WAL mode never blocks the server's writers and sees exactly the
commits made before it began. So every alert answered with 202 before the backup started is
in the copy. The copy is written beside its destination under a temporary name, checked,
flushed to disk and only then renamed into place: a crash leaves the old file or none, never
half a backup.

Restore copies a backup over the live database file with the same API, inside one write
transaction of the destination, so SQLite's own journal makes it all-or-nothing; then it
applies the migrations this Tocsin knows. It refuses while a server uses the database.

PostgreSQL has its own tools for this (pg_dump, pg_basebackup and WAL archiving; see
docs/operations.md).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import delete, select

from tocsin.clock import Clock
from tocsin.db import create_sqlite_sync_engine
from tocsin.errors import Conflict, InvalidInput
from tocsin.migrations import alembic_config, upgrade
from tocsin.operations.models import ProcessRow
from tocsin.operations.processes import GONE_AFTER

# How long a backup or restore waits for SQLite's locks before giving up.
BUSY_TIMEOUT_SECONDS = 30.0


class BackupRefused(InvalidInput):
    """The backup or restore cannot be done as asked (nothing was changed)."""


class DatabaseInUse(Conflict):
    """A running server uses the database a restore would overwrite."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size_bytes: int
    schema_revision: str | None
    seconds: float


@dataclass(frozen=True)
class RestoreResult:
    path: Path
    restored_revision: str
    migrated_to: str | None


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@contextlib.contextmanager
def _connect(path: Path, *, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    target = f"file:{path}?mode=ro" if read_only else f"file:{path}"
    conn = sqlite3.connect(target, uri=True, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        yield conn
    finally:
        conn.close()


def _revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return str(row[0]) if row else None


def _check(conn: sqlite3.Connection, what: Path) -> None:
    problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        raise BackupRefused(f"{what} fails SQLite's integrity check: {'; '.join(problems[:5])}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{secrets.token_hex(4)}")


def backup_sqlite(database: Path, destination: Path, *, overwrite: bool = False) -> BackupResult:
    """Copy the live database at `database` to `destination`, consistent as of the moment
    the copy starts. Refuses to replace an existing file unless `overwrite`."""
    if not database.exists():
        raise BackupRefused(f"no database at {database}")
    if destination.exists() and destination.resolve() == database.resolve():
        raise BackupRefused("the backup cannot be the database itself")
    if destination.exists() and not overwrite:
        raise BackupRefused(f"{destination} exists; pass --force to replace it")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = _temporary_beside(destination)
    started = time.monotonic()
    try:
        with _connect(database) as source, _connect(partial) as copy:
            # One step (pages=-1): the whole copy is read in a single read transaction.
            source.backup(copy, pages=-1)
            # The backup is one self-contained file, not a database with a WAL beside it.
            copy.execute("PRAGMA journal_mode=DELETE")
            _check(copy, partial)
            revision = _revision(copy)
        _fsync(partial)
        os.replace(partial, destination)
        _fsync(destination.parent)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(
        path=destination,
        size_bytes=destination.stat().st_size,
        schema_revision=revision,
        seconds=time.monotonic() - started,
    )


def _known_revisions() -> set[str]:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return {script.revision for script in scripts.walk_revisions()}


def _validate_backup(backup: Path) -> str:
    """The schema revision of a usable backup; raises BackupRefused for anything else."""
    if not backup.is_file():
        raise BackupRefused(f"no backup at {backup}")
    try:
        with _connect(backup, read_only=True) as conn:
            _check(conn, backup)
            revision = _revision(conn)
    except sqlite3.DatabaseError as exc:
        raise BackupRefused(f"{backup} is not a SQLite database: {exc}") from exc
    if revision is None:
        raise BackupRefused(f"{backup} is not a Tocsin database (it has no schema revision)")
    if revision not in _known_revisions():
        raise BackupRefused(
            f"{backup} has schema {revision}, which this Tocsin does not know:"
            " it was made by a newer release; restore it with that release"
        )
    return revision


# Every connection to a WAL database holds a shared lock on one byte of the `-shm` file
# (SQLite's "dead man switch", offset 128 in its unix VFS) for as long as it is open; asking
# for the lock that would conflict tells whether another process has the database open.
_DMS_OFFSET = 128


def opened_by_another_process(database: Path) -> int | None:
    """The pid of another process that has `database` open, if any (Linux; None elsewhere
    or when nobody has it open)."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: the registry check alone decides
        return None
    shm = database.with_name(database.name + "-shm")
    try:
        fd = os.open(shm, os.O_RDONLY)
    except FileNotFoundError:
        return None
    layout = "hhqqi4x"  # struct flock on Linux: type, whence, start, len, pid
    try:
        asked = struct.pack(layout, fcntl.F_WRLCK, os.SEEK_SET, _DMS_OFFSET, 1, 0)
        lock_type, _, _, _, pid = struct.unpack(layout, fcntl.fcntl(fd, fcntl.F_GETLK, asked))
    except OSError:
        return None
    finally:
        os.close(fd)
    return pid if lock_type != fcntl.F_UNLCK else None


def running_servers(database: Path, *, now: datetime) -> list[str]:
    """The processes the registry of `database` says are running, as 'kind host:pid'."""
    engine = create_sqlite_sync_engine(sqlite_url(database))
    assert engine is not None
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(ProcessRow.kind, ProcessRow.host, ProcessRow.pid).where(
                    ProcessRow.stopped_at.is_(None), ProcessRow.last_seen >= now - GONE_AFTER
                )
            ).all()
    except Exception:  # an older schema without the registry, or not a database at all
        return []
    finally:
        engine.dispose()
    return [f"{row.kind.value} {row.host}:{row.pid}" for row in rows]


def _refuse_if_in_use(database: Path, clock: Clock) -> None:
    users = running_servers(database, now=clock.now())
    pid = opened_by_another_process(database)
    if pid is not None:
        users.append(f"process {pid} has the file open")
    if users:
        raise DatabaseInUse(
            f"{database} is in use ({'; '.join(users)}): stop the server first, or pass --force"
            " to overwrite it under the running server (then restart it)"
        )


def _copy_into(backup: Path, database: Path) -> None:
    """Overwrite `database` with `backup`, all or nothing."""
    try:
        _copy(backup, database)
    except sqlite3.Error as exc:
        raise BackupRefused(f"restoring {backup} failed and changed nothing: {exc}") from exc


def _copy(backup: Path, database: Path) -> None:
    if database.exists():
        # The backup API writes the destination in one transaction of its own: a crash
        # half-way is rolled back from the destination's journal like any other.
        with _connect(backup, read_only=True) as source, _connect(database) as live:
            source.backup(live, pages=-1)
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    partial = _temporary_beside(database)
    try:
        with _connect(backup, read_only=True) as source, _connect(partial) as fresh:
            source.backup(fresh, pages=-1)
        _fsync(partial)
        os.replace(partial, database)
        _fsync(database.parent)
    finally:
        partial.unlink(missing_ok=True)


def _forget_old_processes(database: Path) -> None:
    """The backup's registry names the processes that ran when it was taken, not any that
    use this database now."""
    engine = create_sqlite_sync_engine(sqlite_url(database))
    assert engine is not None
    try:
        with engine.begin() as conn:
            conn.execute(delete(ProcessRow))
    finally:
        engine.dispose()


def restore_sqlite(
    backup: Path, database: Path, *, clock: Clock, force: bool = False
) -> RestoreResult:
    """Replace the database at `database` with `backup` and migrate it to this release's
    schema. Refuses while a server uses the database, unless `force`."""
    revision = _validate_backup(backup)
    if database.exists() and backup.resolve() == database.resolve():
        raise BackupRefused("the backup is the database itself")
    if database.exists() and not force:
        _refuse_if_in_use(database, clock)
    _copy_into(backup, database)
    url = sqlite_url(database)
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    migrated_to = None
    if revision != head:
        upgrade(url)
        migrated_to = head
    _forget_old_processes(database)
    return RestoreResult(path=database, restored_revision=revision, migrated_to=migrated_to)
