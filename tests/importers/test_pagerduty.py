"""`tocsin import pagerduty` against a loopback PagerDuty REST API answering from
tests/fixtures/pagerduty/ (written from PagerDuty's API reference)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.importers.conftest import ImportCli
from tests.importers.vendor_server import Tls, vendor_api
from tocsin.auth.accounts import create_user
from tocsin.auth.models import User
from tocsin.catalog.models import Service
from tocsin.db import create_session_factory
from tocsin.escalation.models import EscalationLevel, EscalationPolicy
from tocsin.notifications.models import ContactMethod, NotificationRule
from tocsin.schedules.models import Schedule
from tocsin.teams.models import Team, TeamMember

TABLES = [
    "users",
    "contact_methods",
    "notification_rules",
    "teams",
    "team_members",
    "schedules",
    "schedule_layers",
    "schedule_participants",
    "schedule_overrides",
    "escalation_policies",
    "escalation_levels",
    "services",
    "integrations",
    "maintenance_windows",
    "import_records",
]

# Each hand-written schedule renders a 14-day window around one DST change.
WINDOWS = [
    ("Platform primary", "2026-03-23T00:00:00Z"),  # Europe/Berlin, 2026-03-29
    ("Payments primary", "2026-03-02T00:00:00Z"),  # America/New_York, 2026-03-08
    ("Support island", "2026-03-30T00:00:00Z"),  # Australia/Lord_Howe, 2026-04-05
]


async def counts(engine: AsyncEngine) -> dict[str, int]:
    return {table: await count_rows(engine, table) for table in TABLES}


def pd_args(api_url: str, tls: Tls, *extra: str) -> list[str]:
    return [
        "pagerduty",
        "--token",
        "u+TestToken",
        "--base-url",
        api_url,
        "--ca-file",
        str(tls.ca_file),
        *extra,
    ]


async def test_a_dry_run_reports_everything_and_writes_nothing(
    import_cli: ImportCli, engine: AsyncEngine, tls: Tls
) -> None:
    with vendor_api("pagerduty", tls=tls) as api:
        run = await import_cli(*pd_args(api.base_url, tls))
    assert run.code == 0, run.err
    assert "dry run: nothing written" in run.out
    assert "would create user 'alice@example.com'" in run.out
    assert "would create schedule 'Support island'" in run.out
    assert "would create escalation_policy 'Platform escalation'" in run.out
    # Every lossy conversion, with its reason.
    assert "push_notification_contact_method has no Tocsin equivalent" in run.out
    assert "level 2 has 2 targets; a Tocsin level has one" in run.out
    # Zabbix reached PagerDuty through the Events API, which Tocsin serves too.
    assert "Platform DB / Zabbix [pagerduty]" in run.out
    assert "auto-resolve timeout" in run.out
    assert "would create maintenance_window 'Database upgrade: 2026-03-28 21:00 UTC'" in run.out
    assert "its new URL is shown once applied" in run.out
    assert set((await counts(engine)).values()) == {0}
    # Every listing was read page by page, with PagerDuty's token header.
    assert api.headers[0]["Authorization"] == "Token token=u+TestToken"
    assert any("offset=2" in query for path, query, _ in api.requests if path == "/users")


async def test_apply_imports_everything_and_a_second_run_changes_nothing(
    import_cli: ImportCli, engine: AsyncEngine, tls: Tls
) -> None:
    with vendor_api("pagerduty", tls=tls) as api:
        first = await import_cli(*pd_args(api.base_url, tls, "--apply"))
        after_first = await counts(engine)
        second = await import_cli(*pd_args(api.base_url, tls, "--apply"))
    assert first.code == 0, first.err
    assert second.code == 0, second.err
    assert after_first["users"] == 4
    assert after_first["teams"] == 3  # Platform, Payments, and one for the team-less schedule
    assert after_first["schedules"] == 3
    assert after_first["schedule_layers"] == 4
    assert after_first["schedule_overrides"] == 1
    assert after_first["escalation_policies"] == 2
    assert after_first["services"] == 2
    assert after_first["integrations"] == 4
    assert after_first["maintenance_windows"] == 1
    assert await counts(engine) == after_first
    assert "created user 'alice@example.com'" in first.out
    assert "https://tocsin.example.com/webhooks/" in first.out
    assert "POST https://tocsin.example.com/v2/enqueue, routing_key" in first.out
    # The second run finds every object again: nothing is created or changed.
    assert "created" not in second.out.replace("was shown when it was created", "")
    assert "updated" not in second.out
    sessions = create_session_factory(engine)
    async with sessions() as session:
        bob = (
            await session.execute(select(User).where(User.email == "bob@example.com"))
        ).scalar_one()
        assert bob.time_zone == "America/New_York"
        sms = (
            (await session.execute(select(ContactMethod).where(ContactMethod.user_id == bob.id)))
            .scalars()
            .all()
        )
        assert {(m.kind.value, m.address) for m in sms} == {
            ("email", "bob@example.com"),
            ("sms", "+12125550101"),
        }
        assert all(m.verified_at is not None for m in sms)
        rules = (
            (
                await session.execute(
                    select(NotificationRule).where(NotificationRule.user_id == bob.id)
                )
            )
            .scalars()
            .all()
        )
        assert [(r.urgency.value, r.delay_minutes) for r in rules] == [("high", 0)]
        platform = (await session.execute(select(Team).where(Team.name == "Platform"))).scalar_one()
        roles = {
            m.user_id: m.role.value
            for m in (
                await session.execute(select(TeamMember).where(TeamMember.team_id == platform.id))
            ).scalars()
        }
        assert sorted(roles.values()) == ["manager", "observer", "responder"]
        policy = (
            await session.execute(
                select(EscalationPolicy).where(EscalationPolicy.name == "Platform escalation")
            )
        ).scalar_one()
        assert policy.repeat_count == 3  # num_loops 2: three passes in all
        levels = (
            (
                await session.execute(
                    select(EscalationLevel)
                    .where(EscalationLevel.policy_id == policy.id)
                    .order_by(EscalationLevel.level_number)
                )
            )
            .scalars()
            .all()
        )
        assert [(lv.target_type.value, lv.timeout_minutes) for lv in levels] == [
            ("schedule", 15),
            ("user", 30),
        ]
        checkout = (
            await session.execute(select(Service).where(Service.name == "Checkout API"))
        ).scalar_one()
        payments_policy = await session.get(EscalationPolicy, checkout.escalation_policy_id)
        assert payments_policy is not None
        assert payments_policy.ack_timeout_minutes == 30
        island = (
            await session.execute(select(Schedule).where(Schedule.name == "Support island"))
        ).scalar_one()
        assert (await session.get(Team, island.team_id)).name == "Imported from PagerDuty"  # type: ignore[union-attr]


async def test_an_existing_user_is_matched_by_email_not_duplicated(
    import_cli: ImportCli, engine: AsyncEngine, tls: Tls
) -> None:
    sessions = create_session_factory(engine)
    async with sessions() as session:
        from datetime import UTC, datetime

        await create_user(
            session,
            email="bob@example.com",
            name="Robert",
            is_admin=False,
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
        await session.commit()
    with vendor_api("pagerduty", tls=tls) as api:
        run = await import_cli(*pd_args(api.base_url, tls, "--apply"))
    assert run.code == 0, run.err
    assert "matched user 'bob@example.com'" in run.out
    assert await count_rows(engine, "users") == 4
    async with sessions() as session:
        bob = (
            await session.execute(select(User).where(User.email == "bob@example.com"))
        ).scalar_one()
        assert bob.name == "Robert"  # their own account is linked, not rewritten


async def test_a_429_in_the_middle_is_waited_out(
    import_cli: ImportCli, engine: AsyncEngine, tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client's first pause is 1.5 s times a backoff factor; keep the test short.
    monkeypatch.setattr("pagerduty.api_client.ApiClient.sleep_timer", 0.05)
    with vendor_api("pagerduty", tls=tls) as api:
        api.rate_limit_at = {4}
        run = await import_cli(*pd_args(api.base_url, tls, "--apply"))
    assert run.code == 0, run.err
    assert api.statuses().count(429) == 1
    assert api.requests[3][0] == api.requests[4][0]  # the same request, again
    assert "429" in run.err  # the progress line says why it paused
    assert await count_rows(engine, "users") == 4
    assert await count_rows(engine, "schedules") == 3


@pytest.mark.parametrize(("schedule", "since"), WINDOWS)
async def test_imported_schedules_agree_with_pagerdutys_final_schedule(
    import_cli: ImportCli, tls: Tls, schedule: str, since: str
) -> None:
    with vendor_api("pagerduty", tls=tls) as api:
        applied = await import_cli(*pd_args(api.base_url, tls, "--apply"))
        assert applied.code == 0, applied.err
        run = await import_cli(
            *pd_args(
                api.base_url,
                tls,
                "--compare",
                "--since",
                since,
                "--days",
                "14",
                "--schedule",
                schedule,
            )
        )
    assert run.out == f"{schedule}: 336 hours compared, 0 disagreements\n"
    assert run.code == 0


async def test_compare_lists_every_hour_the_source_disagrees(
    import_cli: ImportCli, tmp_path: Path, tls: Tls
) -> None:
    saved = tmp_path / "pagerduty.json"
    with vendor_api("pagerduty", tls=tls) as api:
        await import_cli(*pd_args(api.base_url, tls, "--apply", "--save", saved))
    raw = json.loads(saved.read_text())
    island = next(s for s in raw["schedules"] if s["id"] == "PSLHI03")
    # What a fixed-length (UTC) reading of the rotation would render after Lord Howe's
    # clocks went back: Carol from 22:00Z instead of 22:30Z on 2026-04-04.
    entries = island["final_schedule"]["rendered_schedule_entries"]
    entries[5]["end"] = entries[6]["start"] = "2026-04-05T08:30:00+10:30"
    saved.write_text(json.dumps(raw))
    run = await import_cli(
        "pagerduty",
        "--from-file",
        saved,
        "--compare",
        "--since",
        "2026-03-30T00:00:00Z",
        "--schedule",
        "Support island",
    )
    assert run.code == 1
    assert run.out.splitlines() == [
        "Support island: 336 hours compared, 1 disagreements",
        "  2026-04-04 22:00Z to 2026-04-04 22:30Z: source says carol@example.com; "
        "Tocsin says dave@example.com",
    ]


async def test_a_broken_export_is_refused_and_nothing_is_written(
    import_cli: ImportCli, engine: AsyncEngine, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"source": "pagerduty", "users": [{"name": "no id"}]}')
    run = await import_cli("pagerduty", "--from-file", bad, "--apply")
    assert run.code == 2
    assert "missing or malformed field 'id'" in run.err
    assert await count_rows(engine, "users") == 0
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"source": "opsgenie"}')
    run = await import_cli("pagerduty", "--from-file", wrong)
    assert run.code == 2
    assert "comes from 'opsgenie'" in run.err


async def test_a_rerun_after_changes_at_the_source_updates_in_place(
    import_cli: ImportCli, engine: AsyncEngine, tmp_path: Path, tls: Tls
) -> None:
    saved = tmp_path / "pagerduty.json"
    with vendor_api("pagerduty", tls=tls) as api:
        first = await import_cli(*pd_args(api.base_url, tls, "--apply", "--save", saved))
    assert first.code == 0, first.err
    before = await counts(engine)
    raw = json.loads(saved.read_text())
    berlin = next(s for s in raw["schedules"] if s["id"] == "PSBERL1")
    berlin["schedule_layers"][0]["users"].reverse()  # Bob first now
    berlin["overrides"][0]["end"] = "2026-03-25T15:00:00+01:00"
    policy = next(p for p in raw["escalation_policies"] if p["id"] == "PEPPAYS")
    policy["escalation_rules"][0]["escalation_delay_in_minutes"] = 20
    saved.write_text(json.dumps(raw))
    run = await import_cli("pagerduty", "--from-file", saved, "--apply")
    assert run.code == 0, run.err
    assert "updated schedule 'Platform primary'" in run.out
    assert "updated override 'Platform primary: 2026-03-25 09:00-2026-03-25 14:00 UTC'" in run.out
    assert "updated escalation_policy 'Payments escalation'" in run.out
    assert "created" not in run.out
    assert await counts(engine) == before
    sessions = create_session_factory(engine)
    async with sessions() as session:
        policy_row = (
            await session.execute(
                select(EscalationPolicy).where(EscalationPolicy.name == "Payments escalation")
            )
        ).scalar_one()
        first_level = (
            await session.execute(
                select(EscalationLevel).where(
                    EscalationLevel.policy_id == policy_row.id, EscalationLevel.level_number == 1
                )
            )
        ).scalar_one()
        assert first_level.timeout_minutes == 20


async def test_the_report_is_available_as_json(
    import_cli: ImportCli, tmp_path: Path, tls: Tls
) -> None:
    saved = tmp_path / "pagerduty.json"
    with vendor_api("pagerduty", tls=tls) as api:
        await import_cli(*pd_args(api.base_url, tls, "--save", saved))
    run = await import_cli("pagerduty", "--from-file", saved, "--json")
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["applied"] is False
    assert report["summary"]["schedule"] == {"create": 3}
    assert {"kind": "escalation_policy", "name": "Platform escalation"}.items() <= next(
        item for item in report["lossy"] if item["kind"] == "escalation_policy"
    ).items()
