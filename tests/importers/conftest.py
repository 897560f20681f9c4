"""Running `tocsin import` as an operator would, against a loopback vendor API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.importers.vendor_server import Tls, make_tls
from tocsin.cli import main


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


ImportCli = Callable[..., Coroutine[Any, Any, Run]]


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def import_cli(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> ImportCli:
    """`tocsin import ...` in a thread (it runs its own event loop), with its output."""
    monkeypatch.setenv("TOCSIN_DATABASE_URL", database_url)
    monkeypatch.setenv("TOCSIN_PUBLIC_URL", "https://tocsin.example.com")

    async def run(*argv: str | Path) -> Run:
        capsys.readouterr()
        code = await asyncio.to_thread(main, ["import", *map(str, argv)])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
