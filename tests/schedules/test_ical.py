"""iCalendar feeds: a per-user secret token in the URL, and RFC 5545 that parses back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient
from icalendar import Calendar
from tests.factories import Cast, Person

SCHEDULES = "/api/v1/schedules"


async def make_schedule(client: AsyncClient, cast: Cast) -> dict[str, Any]:
    response = await client.post(
        SCHEDULES,
        headers=cast.alice.headers,
        json={
            "team_id": str(cast.payments),
            "name": "Payments primary",
            "time_zone": "America/New_York",
            "layers": [
                {
                    "start": "2026-01-01T00:00:00Z",
                    "rotation": "weekly",
                    "handoff": "2026-02-23T09:00",
                    "participants": [
                        {"user_ids": [str(cast.alice.id)]},
                        {"user_ids": [str(cast.bob.id)]},
                        {"user_ids": [str(cast.olive.id)]},
                    ],
                }
            ],
        },
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def issue_token(client: AsyncClient, person: Person) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/users/{person.id}/calendar-token", headers=person.headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def parse(body: bytes) -> list[Any]:
    calendar = Calendar.from_ical(body)
    assert str(calendar["VERSION"]) == "2.0"
    assert "PRODID" in calendar
    return list(calendar.walk("VEVENT"))


async def test_a_schedule_feed_is_valid_icalendar_with_utc_times_and_unique_uids(
    client: AsyncClient, cast: Cast
) -> None:
    schedule = await make_schedule(client, cast)
    token = (await issue_token(client, cast.bob))["token"]

    response = await client.get(f"{SCHEDULES}/{schedule['id']}/ical", params={"token": token})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    events = parse(response.content)
    # Now is 2026-03-10 09:00Z; the feed covers 30 days back to 180 days ahead, weekly turns.
    assert 30 <= len(events) <= 32
    uids = [str(event["UID"]) for event in events]
    assert len(set(uids)) == len(uids)
    for event in events:
        start, end = event.decoded("DTSTART"), event.decoded("DTEND")
        assert start.utcoffset() == timedelta(0) and end.utcoffset() == timedelta(0)
        assert start < end
        assert event.decoded("DTSTAMP") == datetime(2026, 3, 10, 9, tzinfo=UTC)
    text = response.content.decode()
    assert "DTSTART:20260309T130000Z" in text  # Carol's (here Olive's) turn, 09:00 EDT
    assert "\r\n" in text  # RFC 5545 lines end in CRLF
    summaries = {str(event["SUMMARY"]) for event in events}
    assert summaries == {"On call: Alice", "On call: Bob", "On call: Olive"}


async def test_the_same_shift_keeps_its_uid_across_refreshes(
    client: AsyncClient, cast: Cast
) -> None:
    schedule = await make_schedule(client, cast)
    token = (await issue_token(client, cast.olive))["token"]
    url = f"{SCHEDULES}/{schedule['id']}/ical"

    first = parse((await client.get(url, params={"token": token})).content)
    second = parse((await client.get(url, params={"token": token})).content)

    assert [str(e["UID"]) for e in first] == [str(e["UID"]) for e in second]


async def test_a_user_feed_holds_only_that_users_shifts(client: AsyncClient, cast: Cast) -> None:
    await make_schedule(client, cast)
    issued = await issue_token(client, cast.bob)

    response = await client.get(issued["user_calendar_url"].removeprefix("http://test"))

    assert response.status_code == 200, response.text
    events = parse(response.content)
    assert 10 <= len(events) <= 11
    assert {str(event["SUMMARY"]) for event in events} == {"On call: Payments primary"}
    for event in events:
        assert "On call: Bob" in str(event["DESCRIPTION"])
        # Bob's turns run Monday 09:00 local to Monday 09:00 local, a week (give or take DST).
        length = event.decoded("DTEND") - event.decoded("DTSTART")
        assert timedelta(hours=167) <= length <= timedelta(hours=169)


async def test_calendar_tokens_are_shown_once_rotated_and_revoked(
    client: AsyncClient, cast: Cast
) -> None:
    schedule = await make_schedule(client, cast)
    url = f"{SCHEDULES}/{schedule['id']}/ical"
    status_url = f"/api/v1/users/{cast.bob.id}/calendar-token"

    none_yet = await client.get(status_url, headers=cast.bob.headers)
    assert none_yet.json() == {"exists": False, "prefix": None, "created_at": None}
    old = (await issue_token(client, cast.bob))["token"]
    status = (await client.get(status_url, headers=cast.bob.headers)).json()
    assert status["exists"] is True
    assert old.startswith(status["prefix"])
    assert old not in str(status)

    new = (await issue_token(client, cast.bob))["token"]
    assert new != old
    assert (await client.get(url, params={"token": old})).status_code == 401
    assert (await client.get(url, params={"token": new})).status_code == 200

    assert (await client.delete(status_url, headers=cast.bob.headers)).status_code == 204
    assert (await client.get(url, params={"token": new})).status_code == 401


async def test_a_token_unlocks_only_what_its_user_may_read(client: AsyncClient, cast: Cast) -> None:
    schedule = await make_schedule(client, cast)
    url = f"{SCHEDULES}/{schedule['id']}/ical"
    mallory = (await issue_token(client, cast.mallory))["token"]
    bob = (await issue_token(client, cast.bob))["token"]

    assert (await client.get(url, params={"token": "tcal_guessed"})).status_code == 401
    assert (await client.get(url)).status_code == 422
    assert (await client.get(url, params={"token": mallory})).status_code == 403
    alice_feed = await client.get(f"/api/v1/users/{cast.alice.id}/ical", params={"token": bob})
    assert alice_feed.status_code == 403
    missing = await client.get(f"{SCHEDULES}/{uuid.uuid4()}/ical", params={"token": bob})
    assert missing.status_code == 404
    # The token is not an API key.
    as_key = await client.get(url, headers={"Authorization": f"Bearer {bob}"})
    assert as_key.status_code == 422
    api = await client.get(
        f"{SCHEDULES}/{schedule['id']}", headers={"Authorization": f"Bearer {bob}"}
    )
    assert api.status_code == 401


async def test_only_the_user_or_an_admin_handles_their_calendar_token(
    client: AsyncClient, cast: Cast
) -> None:
    url = f"/api/v1/users/{cast.bob.id}/calendar-token"

    assert (await client.post(url, headers=cast.alice.headers)).status_code == 403
    assert (await client.get(url, headers=cast.alice.headers)).status_code == 403
    assert (await client.delete(url, headers=cast.alice.headers)).status_code == 403
    assert (await client.post(url, headers=cast.admin.headers)).status_code == 201
