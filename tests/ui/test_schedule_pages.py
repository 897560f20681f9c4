"""The schedule pages, in-process: creating a schedule, its layers and overrides through the
forms is what the API then shows; the timeline marks overrides and gaps in words; bad input
gets the API's message beside the field with nothing saved; outsiders get 404 pages."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World
from tests.ui.support import csrf_of, give_password, sign_in


@pytest.fixture
async def people(engine: AsyncEngine, world: World) -> World:
    cast = world.cast
    await give_password(
        engine, cast.admin.id, cast.alice.id, cast.bob.id, cast.olive.id, cast.mallory.id
    )
    return world


def field_error(page: Response | str, field_id: str) -> str:
    """The message shown beside the control with this id ('' when none)."""
    text = page if isinstance(page, str) else page.text
    found = re.search(
        rf'<p class="field-error" id="{re.escape(field_id)}-error"[^>]*>([^<]*)<', text
    )
    return html.unescape(found.group(1)) if found else ""


async def make_schedule(client: AsyncClient, world: World, **extra: Any) -> dict[str, Any]:
    body = {"team_id": str(world.cast.payments), "name": "Primary", "time_zone": "UTC", **extra}
    made = await client.post("/api/v1/schedules", json=body, headers=world.cast.alice.headers)
    assert made.status_code == 201, made.text
    schedule: dict[str, Any] = made.json()
    return schedule


def weekly(world: World, *names: str, **extra: Any) -> dict[str, Any]:
    ids = {"alice": world.cast.alice.id, "bob": world.cast.bob.id}
    return {
        "rotation": "weekly",
        "handoff": "2026-03-09T09:00",
        "start": "2026-03-01T00:00:00Z",
        "participants": [{"user_ids": [str(ids[n])]} for n in names],
        **extra,
    }


async def api_schedule(client: AsyncClient, world: World, schedule_id: str) -> dict[str, Any]:
    got = await client.get(f"/api/v1/schedules/{schedule_id}", headers=world.cast.alice.headers)
    assert got.status_code == 200
    found: dict[str, Any] = got.json()
    return found


async def test_a_manager_creates_a_schedule_with_the_form(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "alice@example.com")
    page = await client.get("/schedules")
    assert page.status_code == 200
    assert 'id="new-schedule"' in page.text
    made = await client.post(
        "/schedules",
        data={
            "csrf_token": csrf_of(page),
            "team_id": str(people.cast.payments),
            "name": "Payments primary",
            "time_zone": "Europe/Paris",
            "description": "",
        },
    )
    assert made.status_code == 303
    schedule_id = made.headers["location"].split("/")[2].split("?")[0]
    stored = await api_schedule(client, people, schedule_id)
    assert (stored["name"], stored["time_zone"], stored["layers"]) == (
        "Payments primary",
        "Europe/Paris",
        [],
    )
    shown = await client.get(made.headers["location"])
    assert "Schedule zone: <strong>Europe/Paris</strong>" in shown.text
    assert "No layers yet" in shown.text
    listed = await client.get("/schedules")
    assert "Payments primary" in listed.text


async def test_an_unknown_zone_is_shown_beside_the_field_and_nothing_is_saved(
    client: AsyncClient, people: World
) -> None:
    await sign_in(client, "alice@example.com")
    page = await client.get("/schedules")
    refused = await client.post(
        "/schedules",
        data={
            "csrf_token": csrf_of(page),
            "team_id": str(people.cast.payments),
            "name": "Primary",
            "time_zone": "Mars/Olympus",
        },
    )
    assert refused.status_code == 422
    assert "unknown time zone 'Mars/Olympus'" in field_error(refused, "new-time_zone")
    assert 'value="Mars/Olympus"' in refused.text
    listed = await client.get("/api/v1/schedules", headers=people.cast.alice.headers)
    assert listed.json()["items"] == []


async def test_a_taken_name_is_shown_beside_the_name(client: AsyncClient, people: World) -> None:
    await make_schedule(client, people)
    await sign_in(client, "alice@example.com")
    page = await client.get("/schedules")
    refused = await client.post(
        "/schedules",
        data={
            "csrf_token": csrf_of(page),
            "team_id": str(people.cast.payments),
            "name": "Primary",
            "time_zone": "UTC",
        },
    )
    assert refused.status_code == 409
    assert "already has a schedule named 'Primary'" in field_error(refused, "new-name")


def layer_form(token: str, **values: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "csrf_token": token,
        "name": "",
        "rotation": "weekly",
        "turn_length": "1",
        "handoff": "2026-03-09T09:00",
        "start": "2026-03-01T00:00",
        "end": "",
        "participant": [],
        "restriction_rows": "1",
    }
    form.update(values)
    return form


async def test_layers_added_with_the_form_are_what_the_api_shows(
    client: AsyncClient, people: World
) -> None:
    schedule = await make_schedule(client, people)
    cast = people.cast
    await sign_in(client, "alice@example.com")
    url = f"/schedules/{schedule['id']}"
    page = await client.get(url)
    added = await client.post(
        f"{url}/layers",
        data=layer_form(
            csrf_of(page), name="Weekly", participant=[str(cast.alice.id), str(cast.bob.id), ""]
        ),
    )
    assert added.status_code == 303
    added = await client.post(
        f"{url}/layers",
        data=layer_form(
            csrf_of(page),
            name="Office hours",
            rotation="daily",
            participant=[str(cast.bob.id)],
            r0_days=["mon", "tue", "wed", "thu", "fri"],
            r0_start="09:00",
            r0_end="17:00",
        ),
    )
    assert added.status_code == 303
    stored = await api_schedule(client, people, schedule["id"])
    first, second = stored["layers"]
    assert first["name"] == "Weekly" and first["handoff"] == "2026-03-09T09:00"
    assert [p["user_ids"] for p in first["participants"]] == [
        [str(cast.alice.id)],
        [str(cast.bob.id)],
    ]
    assert second["restrictions"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
    ]
    shown = (await client.get(url)).text
    assert "Weekly" in shown and "Office hours" in shown
    # Tuesday 10 March, 09:00 UTC: Bob's office hours beat Alice's week.
    assert "Only mon, tue, wed, thu, fri 09:00\u201317:00" in shown


async def test_a_layer_can_be_edited_and_removed(client: AsyncClient, people: World) -> None:
    cast = people.cast
    schedule = await make_schedule(client, people, layers=[weekly(people, "alice", "bob")])
    layer_id = schedule["layers"][0]["id"]
    await sign_in(client, "alice@example.com")
    url = f"/schedules/{schedule['id']}"
    page = await client.get(url)
    assert f'action="{url}/layers/{layer_id}"' in page.text
    saved = await client.post(
        f"{url}/layers/{layer_id}",
        data=layer_form(
            csrf_of(page),
            name="Renamed",
            rotation="daily",
            participant=[str(cast.bob.id), str(cast.alice.id)],
        ),
    )
    assert saved.status_code == 303
    [layer] = (await api_schedule(client, people, schedule["id"]))["layers"]
    assert (layer["id"], layer["name"], layer["rotation"]) == (layer_id, "Renamed", "daily")
    assert layer["participants"][0]["user_ids"] == [str(cast.bob.id)]
    removed = await client.post(
        f"{url}/layers/{layer_id}/delete", data={"csrf_token": csrf_of(page)}
    )
    assert removed.status_code == 303
    assert (await api_schedule(client, people, schedule["id"]))["layers"] == []


async def test_bad_layer_input_is_shown_beside_each_field_and_nothing_is_saved(
    client: AsyncClient, people: World
) -> None:
    schedule = await make_schedule(client, people)
    await sign_in(client, "alice@example.com")
    url = f"/schedules/{schedule['id']}"
    page = await client.get(url)
    refused = await client.post(
        f"{url}/layers", data=layer_form(csrf_of(page), name="Broken", handoff="", turn_length="0")
    )
    assert refused.status_code == 422
    assert field_error(refused, "new-layer-handoff")
    assert "greater than or equal to 1" in field_error(refused, "new-layer-turn_length")
    assert "at least 1 item" in field_error(refused, "new-layer-participants")
    assert 'value="Broken"' in refused.text  # what was typed comes back
    outsider = await client.post(
        f"{url}/layers",
        data=layer_form(csrf_of(page), participant=[str(people.cast.mallory.id)]),
    )
    assert outsider.status_code == 422
    assert "is not a member of the schedule's team" in field_error(
        outsider, "new-layer-participants"
    )
    window = await client.post(
        f"{url}/layers",
        data=layer_form(
            csrf_of(page),
            participant=[str(people.cast.bob.id)],
            r0_start="09:00",
            r0_end="09:00",
        ),
    )
    assert window.status_code == 422
    assert "window 1: must differ from start" in field_error(window, "new-layer-restrictions")
    assert (await api_schedule(client, people, schedule["id"]))["layers"] == []


async def test_an_override_picked_from_a_shift_shows_in_the_final_timeline(
    client: AsyncClient, people: World
) -> None:
    cast = people.cast
    schedule = await make_schedule(client, people, layers=[weekly(people, "alice", "bob")])
    await sign_in(client, "alice@example.com")
    url = f"/schedules/{schedule['id']}"
    page = await client.get(url)
    # Alice's week runs from Mon 9 March 09:00 to Mon 16 March 09:00 (UTC); it is now Tue 10
    # March 09:00, so the shift to pick starts now.
    shift = "2026-03-10T09:00:00+00:00/2026-03-16T09:00:00+00:00"
    assert f'value="{shift}"' in page.text
    added = await client.post(
        f"{url}/overrides",
        data={"csrf_token": csrf_of(page), "shift": shift, "user": str(cast.olive.id)},
    )
    assert added.status_code == 303
    overrides = await client.get(
        f"{url.replace('/schedules', '/api/v1/schedules')}/overrides", headers=cast.alice.headers
    )
    [override] = overrides.json()
    assert override["user_ids"] == [str(cast.olive.id)]
    assert (override["start"], override["end"]) == ("2026-03-10T09:00:00Z", "2026-03-16T09:00:00Z")
    shown = (await client.get(url)).text
    assert "⇄ Override" in shown
    assert "⇄ Olive" in shown  # the bar in the final row


async def test_an_override_without_a_shift_or_person_says_so_beside_each(
    client: AsyncClient, people: World
) -> None:
    schedule = await make_schedule(client, people, layers=[weekly(people, "alice")])
    await sign_in(client, "alice@example.com")
    url = f"/schedules/{schedule['id']}"
    page = await client.get(url)
    refused = await client.post(f"{url}/overrides", data={"csrf_token": csrf_of(page)})
    assert refused.status_code == 422
    assert "pick a shift" in field_error(refused, "override-shift")
    assert field_error(refused, "override-user")
    backwards = await client.post(
        f"{url}/overrides",
        data={
            "csrf_token": csrf_of(page),
            "user": str(people.cast.bob.id),
            "start": "2026-03-12T10:00",
            "end": "2026-03-12T09:00",
        },
    )
    assert backwards.status_code == 422
    assert "must be after start" in field_error(backwards, "override-end")
    listed = await client.get(
        f"/api/v1/schedules/{schedule['id']}/overrides", headers=people.cast.alice.headers
    )
    assert listed.json() == []


async def test_gaps_in_coverage_are_marked_in_words(client: AsyncClient, people: World) -> None:
    office = weekly(
        people,
        "bob",
        restrictions=[
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
        ],
    )
    schedule = await make_schedule(client, people, layers=[office])
    await sign_in(client, "bob@example.com")
    shown = (await client.get(f"/schedules/{schedule['id']}")).text
    assert "gaps in coverage: no one is on call then" in shown
    assert "⚠ No one" in shown and "⚠ Gap" in shown


async def test_someone_outside_the_team_gets_404_and_changes_nothing(
    client: AsyncClient, people: World
) -> None:
    schedule = await make_schedule(client, people, layers=[weekly(people, "alice")])
    url = f"/schedules/{schedule['id']}"
    await sign_in(client, "mallory@example.com")
    listed = await client.get("/schedules")
    assert "Primary" not in listed.text
    page = await client.get(url)
    assert page.status_code == 404
    assert "Primary" not in page.text
    token = csrf_of(listed)
    layer_id = schedule["layers"][0]["id"]
    for path in (f"{url}/delete", f"{url}/layers/{layer_id}/delete", f"{url}/overrides"):
        refused = await client.post(path, data={"csrf_token": token})
        assert refused.status_code == 404, path
    assert len((await api_schedule(client, people, schedule["id"]))["layers"]) == 1


async def test_an_observer_reads_the_schedule_but_may_not_change_it(
    client: AsyncClient, people: World
) -> None:
    schedule = await make_schedule(client, people, layers=[weekly(people, "alice")])
    url = f"/schedules/{schedule['id']}"
    await sign_in(client, "olive@example.com")
    page = await client.get(url)
    assert page.status_code == 200
    assert "Add override" not in page.text and "Delete schedule" not in page.text
    refused = await client.post(f"{url}/delete", data={"csrf_token": csrf_of(page)})
    assert refused.status_code == 403
    assert "only a manager of this team" in refused.text
    assert (await api_schedule(client, people, schedule["id"]))["name"] == "Primary"


async def test_a_form_without_its_csrf_token_changes_nothing(
    client: AsyncClient, people: World
) -> None:
    schedule = await make_schedule(client, people)
    await sign_in(client, "alice@example.com")
    refused = await client.post(f"/schedules/{schedule['id']}/delete", data={})
    assert refused.status_code == 403
    assert (await api_schedule(client, people, schedule["id"]))["name"] == "Primary"


async def test_deleting_a_schedule_a_policy_pages_through_says_why(
    client: AsyncClient, people: World
) -> None:
    schedule = await make_schedule(client, people, layers=[weekly(people, "alice")])
    policy = await client.patch(
        f"/api/v1/escalation-policies/{people.policy}",
        json={
            "levels": [{"level_number": 1, "target_type": "schedule", "target_id": schedule["id"]}]
        },
        headers=people.cast.alice.headers,
    )
    assert policy.status_code == 200
    await sign_in(client, "alice@example.com")
    page = await client.get(f"/schedules/{schedule['id']}")
    refused = await client.post(
        f"/schedules/{schedule['id']}/delete", data={"csrf_token": csrf_of(page)}
    )
    assert refused.status_code == 409
    assert "is a target of escalation policies" in refused.text
