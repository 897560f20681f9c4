"""Assertions the CRUD API tests share: field-naming 422s and walking cursor pages."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient, Response


def assert_rejected(response: Response, *field: str) -> None:
    """A 422 whose detail names the field (some error's loc ends with it)."""
    assert response.status_code == 422, response.text
    locs = [tuple(str(part) for part in err["loc"]) for err in response.json()["detail"]]
    assert any(loc[-len(field) :] == field for loc in locs), locs


async def all_pages(
    client: AsyncClient,
    url: str,
    headers: dict[str, str],
    *,
    limit: int,
    params: dict[str, Any] | None = None,
) -> list[Any]:
    """Every item of a list endpoint, following next_cursor; no page is larger than limit."""
    query: dict[str, Any] = {**(params or {}), "limit": limit}
    items: list[Any] = []
    while True:
        response = await client.get(url, headers=headers, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        if body["next_cursor"] is None:
            return items
        query["cursor"] = body["next_cursor"]
