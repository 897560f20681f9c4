"""insert_ignoring skips rows a unique index already holds, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tocsin.errors import InvalidInput
from tocsin.retention.models import RetentionCount
from tocsin.store.inserts import insert_ignoring
from tocsin.store.pages import decode_cursor


async def test_a_repeated_row_is_skipped_and_says_so(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await insert_ignoring(conn, RetentionCount, {"kind": "test-kind", "purged": 3})
        again = await insert_ignoring(conn, RetentionCount, {"kind": "test-kind", "purged": 9})
        both = await insert_ignoring(
            conn,
            RetentionCount,
            [{"kind": "test-kind", "purged": 5}, {"kind": "other-kind", "purged": 1}],
            unique=["kind"],
            returning=[RetentionCount.kind],
        )
        assert (first.rowcount, again.rowcount) == (1, 0)
        assert list(both.scalars()) == ["other-kind"]
        kept = (
            await conn.execute(
                select(RetentionCount.purged).where(RetentionCount.kind == "test-kind")
            )
        ).scalar_one()
    assert kept == 3


@pytest.mark.parametrize("cursor", ["", "not-a-cursor", "MjAyNHxub3Bl"])
def test_a_cursor_we_did_not_hand_out_is_refused_by_name(cursor: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        decode_cursor(cursor)
    assert refused.value.field == "cursor"
