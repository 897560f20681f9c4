from httpx import AsyncClient

from tests.factories import Cast


async def test_health_answers(client: AsyncClient, cast: Cast) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200


async def test_health_and_readiness_need_no_key_and_say_ok(client: AsyncClient, cast: Cast) -> None:
    ready = await client.get("/readyz")
    assert ready.json() == {"status": "ok"}


async def test_the_openapi_document_describes_the_api(client: AsyncClient, cast: Cast) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/webhooks/{integration_key}",
        "/api/v1/users",
        "/api/v1/teams",
        "/api/v1/teams/{team_id}/members",
        "/api/v1/teams/{team_id}/tags",
        "/api/v1/services",
        "/api/v1/integrations",
        "/api/v1/integrations/{integration_id}",
        "/api/v1/escalation-policies",
        "/api/v1/incidents",
        "/api/v1/incidents/{incident_id}/acknowledge",
        "/api/v1/alerts",
    ):
        assert path in paths, path


async def test_the_openapi_document_says_which_operations_need_an_api_key(
    client: AsyncClient, cast: Cast
) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    paths = document["paths"]
    # The role list of the requirement (OpenAPI 3.1) is the API key scope needed.
    assert paths["/api/v1/incidents"]["get"]["security"] == [{"apiKey": ["read"]}]
    assert paths["/api/v1/users"]["post"]["security"] == [{"apiKey": ["full"]}]
    acknowledge = paths["/api/v1/incidents/{incident_id}/acknowledge"]["post"]
    assert acknowledge["x-required-scope"] == "respond"
    # Monitoring tools authenticate with the key in the URL; health needs nothing.
    assert "security" not in paths["/webhooks/{integration_key}"]["post"]
    assert "security" not in paths["/healthz"]["get"]
