"""`tocsin status` as a monitoring check runs it: a real process, its exit code and output."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World
from tests.operations.test_status import add_delivery
from tocsin.cli import main
from tocsin.notifications.models import DeliveryStatus


def tocsin_status(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env["TOCSIN_DATABASE_URL"] = database_url
    env["TOCSIN_SECRET_KEY"] = "status-test-key"
    return subprocess.run(
        [sys.executable, "-m", "tocsin.cli", "status", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_it_exits_1_only_when_work_is_overdue_beyond_the_threshold(
    database_url: str,
    engine: AsyncEngine,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TOCSIN_DATABASE_URL", database_url)
    assert await asyncio.to_thread(main, ["status"]) == 0
    assert "OK: nothing overdue" in capsys.readouterr().out

    # The command judges by the real clock: this delivery waits ten minutes past its time.
    real_now = datetime.now(UTC)
    await add_delivery(
        engine,
        world,
        status=DeliveryStatus.PENDING,
        due_at=real_now - timedelta(minutes=10),
        updated_at=real_now,
    )
    late = tocsin_status(database_url, "--json", "--max-overdue", "60")
    assert late.returncode == 1, late.stderr
    body = json.loads(late.stdout)
    assert body["overdue_beyond_max"] is True
    assert body["oldest_overdue"]["kind"] == "deliveries"
    assert 590 < body["oldest_overdue"]["late_seconds"] < 3600
    assert body["database"]["size_bytes"] > 0
    assert body["database"]["schema_current"] is True

    assert await asyncio.to_thread(main, ["status", "--max-overdue", "3600"]) == 0
    assert "deliveries                 1        1" in capsys.readouterr().out


def test_it_exits_2_when_there_is_no_database_to_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere" / "tocsin.db"
    monkeypatch.setenv("TOCSIN_DATABASE_URL", f"sqlite+aiosqlite:///{missing}")
    assert main(["status"]) == 2
    assert f"no database at {missing}" in capsys.readouterr().err
    assert not missing.exists(), "looking must not create an empty database"


def test_it_exits_2_when_the_database_cannot_be_reached(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOCSIN_DATABASE_URL", "postgresql+asyncpg://tocsin@127.0.0.1:1/tocsin")
    assert main(["status"]) == 2
    assert "cannot read the status from the database" in capsys.readouterr().err
