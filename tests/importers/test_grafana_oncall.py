"""`tocsin import grafana-oncall` against a loopback Grafana OnCall API answering from
tests/fixtures/grafana-oncall/ (written from Grafana OnCall's API reference)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.importers.conftest import ImportCli
from tests.importers.test_pagerduty import counts
from tests.importers.vendor_server import vendor_api
from tocsin.db import create_session_factory
from tocsin.escalation.models import EscalationLevel, EscalationPolicy
from tocsin.schedules.models import Schedule

# Web-UI rotations run on UTC in Grafana, whatever the schedule's zone: imported in UTC, they
# agree through each zone's DST change.
WINDOWS = [
    ("SRE Berlin", "2026-03-23T00:00:00Z"),  # Europe/Berlin, 2026-03-29
    ("Night New York", "2026-03-02T00:00:00Z"),  # America/New_York, 2026-03-08
    ("SRE Lord Howe", "2026-03-30T00:00:00Z"),  # Australia/Lord_Howe, 2026-04-05
]


def go_args(api_url: str, *extra: str) -> list[str]:
    return ["grafana-oncall", "--token", "gr-test-token", "--base-url", api_url, *extra]


async def test_a_dry_run_reports_everything_and_writes_nothing(
    import_cli: ImportCli, engine: AsyncEngine
) -> None:
    with vendor_api("grafana-oncall") as api:
        run = await import_cli(*go_args(api.base_url))
    assert run.code == 0, run.err
    assert "would create schedule 'SRE Berlin'" in run.out
    assert "skipped schedule 'Holidays feed' (an iCal-fed schedule" in run.out
    assert "would create service 'Prometheus'" in run.out
    assert "schedule 'SRE Berlin' is kept in UTC, as Grafana computes rotations" in run.out
    assert "keep a fixed duration across DST in Grafana" in run.out  # the API-made shift
    assert "a step notifies 2 people" in run.out
    assert "a trigger_webhook step has no Tocsin equivalent" in run.out
    assert "no Tocsin adapter for Grafana OnCall's zabbix integration" in run.out
    assert "does not give the phone number" in run.out
    assert set((await counts(engine)).values()) == {0}
    assert api.headers[0]["Authorization"] == "gr-test-token"
    assert any("page=2" in query for path, query, _ in api.requests if path == "/api/v1/users/")


async def test_apply_twice_imports_once(import_cli: ImportCli, engine: AsyncEngine) -> None:
    with vendor_api("grafana-oncall") as api:
        first = await import_cli(*go_args(api.base_url, "--apply"))
        after_first = await counts(engine)
        second = await import_cli(*go_args(api.base_url, "--apply"))
    assert first.code == 0, first.err
    assert second.code == 0, second.err
    assert after_first["users"] == 4
    assert after_first["schedules"] == 4
    assert after_first["schedule_overrides"] == 1
    assert after_first["escalation_policies"] == 2
    assert after_first["services"] == 3
    assert after_first["integrations"] == 3
    assert await counts(engine) == after_first
    assert " created " not in second.out and " updated " not in second.out
    sessions = create_session_factory(engine)
    async with sessions() as session:
        berlin = (
            await session.execute(select(Schedule).where(Schedule.name == "SRE Berlin"))
        ).scalar_one()
        assert berlin.time_zone == "UTC"
        policy = (
            await session.execute(
                select(EscalationPolicy).where(EscalationPolicy.name == "SRE chain")
            )
        ).scalar_one()
        assert policy.repeat_count == 2
        levels = (
            await session.execute(
                select(EscalationLevel)
                .where(EscalationLevel.policy_id == policy.id)
                .order_by(EscalationLevel.level_number)
            )
        ).scalars()
        assert [(lv.target_type.value, lv.timeout_minutes) for lv in levels] == [
            ("schedule", 10),
            ("user", 15),
        ]


async def test_a_429_in_the_middle_is_waited_out(
    import_cli: ImportCli, engine: AsyncEngine
) -> None:
    with vendor_api("grafana-oncall") as api:
        api.rate_limit_at = {2}
        run = await import_cli(*go_args(api.base_url, "--apply"))
    assert run.code == 0, run.err
    assert api.statuses().count(429) == 1
    assert api.requests[1][:2] == api.requests[2][:2]
    assert "Grafana OnCall answered 429: backing off" in run.err
    assert await count_rows(engine, "users") == 4


@pytest.mark.parametrize(("schedule", "since"), WINDOWS)
async def test_imported_schedules_agree_with_grafanas_final_shifts(
    import_cli: ImportCli, schedule: str, since: str
) -> None:
    with vendor_api("grafana-oncall") as api:
        applied = await import_cli(*go_args(api.base_url, "--apply"))
        assert applied.code == 0, applied.err
        run = await import_cli(
            *go_args(api.base_url, "--compare", "--since", since, "--schedule", schedule)
        )
    assert run.out == f"{schedule}: 336 hours compared, 0 disagreements\n"
    assert run.code == 0
