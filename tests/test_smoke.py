from httpx import AsyncClient

from tests.factories import Cast


async def test_health_answers(client: AsyncClient, cast: Cast) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200
