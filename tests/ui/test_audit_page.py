"""The audit log page: administrators see who changed what; a change made through a page
is recorded as made in a session; everyone else is refused."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import World
from tests.ui.support import PASSWORD, csrf_of, give_password, sign_in


async def test_a_change_made_in_the_browser_is_listed_for_admins_only(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    cast = world.cast
    await give_password(engine, cast.admin.id, cast.bob.id)
    await sign_in(client, "bob@example.com")
    form = await client.get("/profile/password")
    changed = await client.post(
        "/profile/password",
        data={
            "old_password": PASSWORD,
            "new_password": "a much longer passphrase",
            "csrf_token": csrf_of(form),
        },
    )
    assert changed.status_code == 303
    refused = await client.get("/admin/audit")
    assert refused.status_code == 403
    assert "Audit log" not in refused.text

    entries = (
        await client.get(
            "/api/v1/audit", headers=cast.admin.headers, params={"actor": str(cast.bob.id)}
        )
    ).json()["items"]
    [entry] = entries
    assert (entry["via"], entry["object_type"], entry["object_id"]) == (
        "session",
        "users",
        str(cast.bob.id),
    )
    assert entry["changes"] == {"password_hash": {"before": "(secret)", "after": "(secret)"}}

    await sign_in(client, "admin@example.com")
    page = await client.get("/admin/audit", params={"actor": "bob@example.com"})
    assert page.status_code == 200
    assert 'href="/admin/audit"' in page.text  # in the navigation, for admins
    assert "bob@example.com" in page.text
    assert "password_hash" in page.text and "(secret)" in page.text
    assert "a much longer passphrase" not in page.text
    nobody = await client.get("/admin/audit", params={"actor": "nobody@example.com"})
    assert "No user has the email" in nobody.text
    bad_day = await client.get("/admin/audit", params={"since": "last week"})
    assert bad_day.status_code == 422
