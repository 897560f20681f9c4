"""/admin/import, in-process: an administrator previews an export or a token read (nothing
written), then applies it; the report is the CLI's. Non-administrators are refused, forms
without the CSRF token are refused, and bad input is named beside its field."""

from __future__ import annotations

import asyncio
import html
import json
import re
from datetime import UTC, datetime

import pytest
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.factories import Cast
from tests.importers.vendor_server import vendor_api
from tests.ui.support import csrf_of, give_password, sign_in
from tocsin.importers import opsgenie


@pytest.fixture
async def people(engine: AsyncEngine, cast: Cast) -> Cast:
    await give_password(engine, cast.admin.id, cast.alice.id)
    return cast


@pytest.fixture(scope="module")
def opsgenie_export() -> bytes:
    """An Opsgenie export as `tocsin import opsgenie --save` writes it."""
    with vendor_api("opsgenie") as api:
        raw = opsgenie.fetch(
            "og-test-key",
            base_url=api.base_url,
            since=datetime(2026, 10, 19, tzinfo=UTC),
            until=datetime(2026, 11, 2, tzinfo=UTC),
        )
    return json.dumps(raw).encode()


def field_error(page: Response, field_id: str) -> str:
    found = re.search(
        rf'<p class="field-error" id="{re.escape(field_id)}-error"[^>]*>([^<]*)<', page.text
    )
    return html.unescape(found.group(1)) if found else ""


async def preview(client: AsyncClient, export: bytes, source: str = "opsgenie") -> Response:
    page = await client.get("/admin/import")
    return await client.post(
        "/admin/import",
        data={"csrf_token": csrf_of(page), "source": source, "read_from": "file"},
        files={"export": ("opsgenie.json", export, "application/json")},
    )


async def test_an_admin_previews_an_export_then_applies_it(
    client: AsyncClient, engine: AsyncEngine, people: Cast, opsgenie_export: bytes
) -> None:
    await sign_in(client, "admin@example.com")
    page = await client.get("/admin/import")
    assert page.status_code == 200
    assert '<label for="token">API token</label>' in page.text
    shown = await preview(client, opsgenie_export)
    assert shown.status_code == 200, shown.text
    assert "A dry run: nothing has been written yet." in shown.text
    assert (
        "Not exact" in shown.text
        and "the Opsgenie mobile app has no Tocsin equivalent" in shown.text
    )
    assert "its new URL is shown once applied" in shown.text
    assert await count_rows(engine, "schedules") == 0
    sealed = re.search(r'name="sealed" value="([^"]+)"', shown.text)
    assert sealed is not None
    applied = await client.post(
        "/admin/import/apply", data={"csrf_token": csrf_of(shown), "sealed": sealed.group(1)}
    )
    assert applied.status_code == 200, applied.text
    assert "Imported from Opsgenie" in applied.text
    assert "http://test/webhooks/" in applied.text
    assert await count_rows(engine, "schedules") == 3
    assert await count_rows(engine, "integrations") == 3
    # Alice and Bob were Tocsin users already: linked by email, not duplicated.
    assert await count_rows(engine, "users") == 5 + 2
    assert "matched" in applied.text


async def test_a_token_read_goes_through_the_outbound_guard(
    client: AsyncClient, engine: AsyncEngine, people: Cast
) -> None:
    await sign_in(client, "admin@example.com")
    page = await client.get("/admin/import")
    refused = await client.post(
        "/admin/import",
        data={
            "csrf_token": csrf_of(page),
            "source": "opsgenie",
            "read_from": "api",
            "token": "og-test-key",
            "base_url": "https://10.1.2.3",
        },
    )
    assert refused.status_code == 422
    assert "private address" in field_error(refused, "base_url")
    assert "og-test-key" not in refused.text  # the token is never sent back
    with vendor_api("opsgenie") as api:  # loopback is allowed in the tests' settings
        shown = await client.post(
            "/admin/import",
            data={
                "csrf_token": csrf_of(page),
                "source": "opsgenie",
                "read_from": "api",
                "token": "og-test-key",
                "base_url": api.base_url,
            },
        )
    assert shown.status_code == 200, shown.text
    assert "would create" not in shown.text  # the page words it as a table
    assert "schedule" in shown.text and "3 create" in shown.text
    assert "og-test-key" not in shown.text
    assert await count_rows(engine, "schedules") == 0


async def test_bad_input_is_named_beside_its_field_and_nothing_is_written(
    client: AsyncClient, engine: AsyncEngine, people: Cast
) -> None:
    await sign_in(client, "admin@example.com")
    page = await client.get("/admin/import")
    missing = await client.post(
        "/admin/import", data={"csrf_token": csrf_of(page), "source": "opsgenie"}
    )
    assert missing.status_code == 422
    assert field_error(missing, "export") == "choose an export file"
    broken = await preview(client, b"{not json")
    assert broken.status_code == 422
    assert field_error(broken, "export").startswith("not a JSON export")
    wrong = await preview(client, b'{"source": "pagerduty"}')
    assert "comes from 'pagerduty'" in field_error(wrong, "export")
    tampered = await client.post(
        "/admin/import/apply", data={"csrf_token": csrf_of(page), "sealed": "forged"}
    )
    assert tampered.status_code == 422
    assert "expired or was changed" in tampered.text
    assert await count_rows(engine, "import_records") == 0


async def test_only_administrators_may_import(
    client: AsyncClient, engine: AsyncEngine, people: Cast, opsgenie_export: bytes
) -> None:
    await sign_in(client, "alice@example.com")
    assert (await client.get("/admin/import")).status_code == 403
    page = await client.get("/incidents")
    attempt = await preview(client, opsgenie_export)
    assert attempt.status_code == 403
    forged = await client.post(
        "/admin/import/apply", data={"csrf_token": csrf_of(page), "sealed": "x"}
    )
    assert forged.status_code == 403
    assert await count_rows(engine, "import_records") == 0
    assert "/admin/import" not in page.text  # no Import link in her navigation


async def test_a_form_without_the_csrf_token_is_refused(
    client: AsyncClient, engine: AsyncEngine, people: Cast, opsgenie_export: bytes
) -> None:
    await sign_in(client, "admin@example.com")
    refused = await client.post(
        "/admin/import",
        data={"source": "opsgenie", "read_from": "file"},
        files={"export": ("opsgenie.json", opsgenie_export, "application/json")},
    )
    assert refused.status_code == 403
    assert await count_rows(engine, "import_records") == 0
    await asyncio.sleep(0)
