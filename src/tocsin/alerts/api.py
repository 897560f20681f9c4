"""Alert routes: the generic webhook, and the alert list (with its unrouted filter)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import select

from tocsin.alerts.ingest import prepare
from tocsin.alerts.models import Alert
from tocsin.alerts.schemas import AlertOut, GenericAlertIn, IngestAccepted
from tocsin.auth.permissions import visible_team_ids
from tocsin.errors import NotFound
from tocsin.incidents.models import Incident
from tocsin.integrations.lookup import find_active_integration
from tocsin.web import (
    CurrentUser,
    Cursor,
    DbSession,
    Limit,
    Page,
    State,
    cut_page,
    newest_first_page,
)

router = APIRouter(tags=["alerts"])


class IntegrationKeyNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("no active integration has this key")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 422 saying what is wrong with it."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body",),
                    "msg": f"malformed JSON: {exc}",
                    "input": None,
                }
            ]
        ) from exc
    if not isinstance(data, dict):
        raise RequestValidationError(
            [
                {
                    "type": "dict_type",
                    "loc": ("body",),
                    "msg": "the body must be a JSON object",
                    "input": None,
                }
            ]
        )
    return data


def validation_error(exc: ValidationError) -> RequestValidationError:
    """A pydantic error on the body, reported the way FastAPI reports its own."""
    return RequestValidationError(
        [
            {**err, "loc": ("body", *err["loc"])}
            for err in exc.errors(include_url=False, include_context=False)
        ]
    )


@router.post(
    "/webhooks/{integration_key}",
    status_code=202,
    response_model=IngestAccepted,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": GenericAlertIn.model_json_schema(
                        ref_template="#/components/schemas/{model}"
                    )
                }
            },
        }
    },
    responses={404: {"description": "Unknown or inactive integration key"}},
)
async def receive_webhook(integration_key: str, request: Request, state: State) -> IngestAccepted:
    """Accept one alert. The 202 is sent only once the alert and its incident are committed."""
    async with state.read_engine.connect() as conn:
        integration = await find_active_integration(conn, integration_key)
        if integration is None:
            raise IntegrationKeyNotFound()
        data = parse_json_object(await request.body())
        try:
            alert = GenericAlertIn.model_validate(data).normalise()
        except ValidationError as exc:
            raise validation_error(exc) from exc
        prepared = await prepare(conn, integration, alert)
    outcome = await state.batcher.submit(prepared)
    return IngestAccepted(
        alert_id=outcome.alert_id,
        incident_id=outcome.incident_id,
        deduplicated=outcome.deduplicated,
    )


@router.get("/api/v1/alerts", response_model=Page[AlertOut])
async def list_alerts(
    session: DbSession,
    user: CurrentUser,
    unrouted: bool | None = None,
    integration_id: uuid.UUID | None = None,
    incident_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AlertOut]:
    """Alerts newest first. Unrouted alerts belong to no team, so only admins see them."""
    stmt = select(Alert)
    visible = await visible_team_ids(session, user)
    if visible is not None:
        stmt = stmt.join(Incident, Incident.id == Alert.incident_id).where(
            Incident.team_id.in_(visible)
        )
    if unrouted is not None:
        stmt = stmt.where(Alert.routed.is_(not unrouted))
    if integration_id is not None:
        stmt = stmt.where(Alert.integration_id == integration_id)
    if incident_id is not None:
        stmt = stmt.where(Alert.incident_id == incident_id)
    stmt = newest_first_page(
        stmt, created=Alert.received_at, row_id=Alert.id, limit=limit, cursor=cursor
    )
    rows = list((await session.execute(stmt)).scalars())
    rows, next_cursor = cut_page(rows, limit, lambda r: (r.received_at, r.id))
    return Page[AlertOut](items=[AlertOut.model_validate(r) for r in rows], next_cursor=next_cursor)
