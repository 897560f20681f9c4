"""`tocsin import opsgenie` against a loopback Opsgenie REST API answering from
tests/fixtures/opsgenie/ (written from Opsgenie's API documentation)."""

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
from tocsin.notifications.models import NotificationRule

WINDOWS = [
    ("Ops Berlin", "2026-10-19T00:00:00Z"),  # Europe/Berlin, 2026-10-25
    ("Ops New York", "2026-10-26T00:00:00Z"),  # America/New_York, 2026-11-01 (01:30 twice)
    ("Ops Lord Howe", "2026-09-28T00:00:00Z"),  # Australia/Lord_Howe, 2026-10-04 (+30 min)
]


def og_args(api_url: str, *extra: str) -> list[str]:
    return ["opsgenie", "--token", "og-test-key", "--base-url", api_url, *extra]


async def test_a_dry_run_reports_everything_and_writes_nothing(
    import_cli: ImportCli, engine: AsyncEngine
) -> None:
    with vendor_api("opsgenie") as api:
        run = await import_cli(*og_args(api.base_url))
    assert run.code == 0, run.err
    assert "would create schedule 'Ops Lord Howe'" in run.out
    assert "would create escalation_policy 'Ops_escalation'" in run.out
    assert "would create service 'Ops alerts'" in run.out
    assert "the Opsgenie mobile app has no Tocsin equivalent" in run.out
    assert "notifies a team through its routing rules" in run.out
    assert "no Tocsin adapter for Opsgenie's Nagios integration" in run.out
    assert "covers some rotations only" in run.out
    assert "would create maintenance_window 'Prometheus upgrade: 2026-10-24 22:00 UTC'" in run.out
    assert "covers a policy; Tocsin windows cover services only" in run.out
    assert "overlaps an earlier rotation" not in run.out  # weekdays and weekends do not
    assert set((await counts(engine)).values()) == {0}
    assert api.headers[0]["Authorization"] == "GenieKey og-test-key"
    assert any("offset=2" in query for path, query, _ in api.requests if path == "/v2/users")


async def test_apply_twice_imports_once(import_cli: ImportCli, engine: AsyncEngine) -> None:
    with vendor_api("opsgenie") as api:
        first = await import_cli(*og_args(api.base_url, "--apply"))
        after_first = await counts(engine)
        second = await import_cli(*og_args(api.base_url, "--apply"))
    assert first.code == 0, first.err
    assert second.code == 0, second.err
    assert after_first["users"] == 4
    assert after_first["schedules"] == 3
    assert after_first["schedule_overrides"] == 1
    assert after_first["escalation_policies"] == 2
    assert after_first["services"] == 2
    assert after_first["integrations"] == 3
    assert after_first["maintenance_windows"] == 1
    assert await counts(engine) == after_first
    assert "POST https://tocsin.example.com/v2/alerts, 'Authorization: GenieKey" in first.out
    assert " created " not in second.out and " updated " not in second.out
    sessions = create_session_factory(engine)
    async with sessions() as session:
        policy = (
            await session.execute(
                select(EscalationPolicy).where(EscalationPolicy.name == "Ops_escalation")
            )
        ).scalar_one()
        assert policy.repeat_count == 3
        levels = (
            await session.execute(
                select(EscalationLevel)
                .where(EscalationLevel.policy_id == policy.id)
                .order_by(EscalationLevel.level_number)
            )
        ).scalars()
        # Rules at 0, 10 and 25 minutes after the alert: each level waits for the next one.
        assert [(lv.target_type.value, lv.timeout_minutes) for lv in levels] == [
            ("schedule", 10),
            ("user", 15),
            ("entire_team", 10),
        ]
        rules = (await session.execute(select(NotificationRule))).scalars().all()
        assert sorted((r.urgency.value, r.delay_minutes) for r in rules) == [
            ("high", 0),
            ("high", 3),
            ("low", 0),
            ("low", 3),
        ]


async def test_a_429_in_the_middle_is_waited_out(
    import_cli: ImportCli, engine: AsyncEngine
) -> None:
    with vendor_api("opsgenie") as api:
        api.rate_limit_at = {3}
        run = await import_cli(*og_args(api.base_url, "--apply"))
    assert run.code == 0, run.err
    assert api.statuses().count(429) == 1
    assert api.requests[2][0] == api.requests[3][0]
    assert "Opsgenie answered 429: backing off" in run.err
    assert await count_rows(engine, "schedules") == 3


@pytest.mark.parametrize(("schedule", "since"), WINDOWS)
async def test_imported_schedules_agree_with_opsgenies_timeline(
    import_cli: ImportCli, schedule: str, since: str
) -> None:
    with vendor_api("opsgenie") as api:
        applied = await import_cli(*og_args(api.base_url, "--apply"))
        assert applied.code == 0, applied.err
        run = await import_cli(
            *og_args(api.base_url, "--compare", "--since", since, "--schedule", schedule)
        )
    assert run.out == f"{schedule}: 336 hours compared, 0 disagreements\n"
    assert run.code == 0
    timeline = next(path for path, _, _ in api.requests if path.endswith("/timeline"))
    assert timeline.startswith("/v2/schedules/")
