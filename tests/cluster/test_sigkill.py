"""A cluster of real processes on PostgreSQL (2 `serve --no-worker`, 2 `tocsin worker`):
alerts go to both API nodes, a WebSocket client on one hears incidents opened through the
other, and SIGKILLing an API node and a worker mid-run loses no accepted alert and neither
repeats nor skips an escalation level. The long version is bench/cluster_sigkill.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import scenario
from tests.cluster.harness import Cluster, drop_database, new_database
from tests.conftest import POSTGRES_URL
from tocsin.migrations import upgrade

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="TOCSIN_TEST_POSTGRES_URL not set")


@pytest.fixture
def cluster_database() -> Iterator[str]:
    url = new_database(POSTGRES_URL)
    try:
        upgrade(url)
        yield url
    finally:
        drop_database(url)


async def test_killing_an_api_node_and_a_worker_loses_no_alert_and_no_page(
    cluster_database: str, tmp_path: Path
) -> None:
    seeded = await scenario.seed(cluster_database)
    cluster = Cluster(cluster_database, log_dir=tmp_path)
    try:
        await asyncio.to_thread(cluster.start)
        outcome = await scenario.run(cluster, seeded, seconds=10)
    finally:
        await asyncio.to_thread(cluster.stop)
    # Both nodes took alerts, the restarted one after its restart too.
    assert outcome.sent_by_node["api1"] > 10
    assert outcome.after_restart > 5
    assert outcome.failed > 0 or outcome.sent_by_node["api2"] > outcome.after_restart
    assert await scenario.problems(cluster_database, seeded, outcome) == []
