"""The whole API fuzzed from its own OpenAPI document with schemathesis: whatever a client
sends, no 5xx, requests the document calls invalid are refused with a 4xx, and every answer
has a status code, content type and body the document declares for that operation.

One real server (uvicorn on loopback, SQLite file) serves every operation; requests carry an
admin's key so they get past authentication into the handlers. The seeded world gives the
fuzzer real rows to trip over (a team with members, a service, a policy, an integration).
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import make_cast, make_world
from tocsin.app import create_app
from tocsin.config import Settings
from tocsin.db import create_engine
from tocsin.migrations import upgrade


# Built without a database: only the document is needed to generate the tests, so every
# route mounted when the suite runs is covered.
def _without_security(document: dict[str, Any]) -> dict[str, Any]:
    """The document minus its security requirements. Every request here carries an admin's
    key, so cases the fuzzer makes by leaving the key out would be sent with it anyway and
    wrongly flagged as invalid data accepted; authentication has tests of its own
    (tests/auth, and test_smoke for the scheme the document declares)."""
    document = copy.deepcopy(document)
    for operations in document["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)
    document.get("components", {}).pop("securitySchemes", None)
    return document


schema = schemathesis.openapi.from_dict(
    _without_security(create_app(Settings(database_url="sqlite+aiosqlite://")).openapi())
)
# The coverage phase (hundreds of boundary cases per operation) would take minutes for the
# whole API; random generation within the example budget keeps the test near a minute.
schema.config.phases.update(phases=["examples", "fuzzing"])

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    # Requests the document says are invalid must get a 4xx, not be taken.
    negative_data_rejection,
]


@dataclass(frozen=True)
class FuzzTarget:
    base_url: str
    headers: dict[str, str]


async def _seed(url: str) -> str:
    engine = create_engine(url)
    try:
        now = datetime.now(UTC)
        cast = await make_cast(engine, now)
        await make_world(engine, now, cast)
        return cast.admin.key
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "tocsin.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    admin_key = asyncio.run(_seed(url))
    app = create_app(
        Settings(database_url=url, secret_key="fuzz", log_level="warning"), run_worker=False
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fuzz target did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield FuzzTarget(f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {admin_key}"})
    server.should_exit = True
    thread.join(timeout=30)


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_every_request_as_its_openapi_says(
    case: schemathesis.Case, target: FuzzTarget
) -> None:
    case.call_and_validate(base_url=target.base_url, headers=target.headers, checks=CHECKS)
