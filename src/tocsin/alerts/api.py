"""Alert routes: the generic webhook, and the alert list (with its unrouted filter)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from tocsin.alerts.models import Alert
from tocsin.alerts.schemas import AlertOut, GenericAlertIn, IngestAccepted
from tocsin.auth.permissions import visible_team_ids
from tocsin.errors import NotFound
from tocsin.incidents.models import Incident
from tocsin.integrations.intake import Intake
from tocsin.integrations.lookup import find_active_integration
from tocsin.integrations.replies import answer_webhook
from tocsin.store.pages import newest_first
from tocsin.web import (
    CurrentUser,
    Cursor,
    DbSession,
    Limit,
    Page,
    State,
)

router = APIRouter(tags=["alerts"])


class IntegrationKeyNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("no active integration has this key")


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
    responses={
        400: {"description": "Invalid PagerDuty event (pagerduty integrations)"},
        403: {"description": "Signature check failed or topic refused (cloudwatch)"},
        404: {"description": "Unknown or inactive integration key"},
        429: {"description": "The integration's rate limit is exceeded; see Retry-After"},
        502: {"description": "Confirming an SNS subscription failed; nothing was stored"},
    },
)
async def receive_webhook(integration_key: str, request: Request, state: State) -> Response:
    """Accept a payload in the integration's format (the generic one is shown here; see
    docs/integrations.md for the others). The 202 is sent only once what it caused is
    committed."""
    return await webhook_response(state.intake, integration_key, request)


async def webhook_response(intake: Intake, key: str, request: Request) -> Response:
    """What `POST /webhooks/{key}` answers (alerts/lane.py calls it directly)."""
    async with intake.quick_reads.connect() as conn:
        integration = await find_active_integration(conn, key)
    if integration is None:
        raise IntegrationKeyNotFound()
    return await answer_webhook(intake, integration, request, key)


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
    rows, next_cursor = await newest_first(
        session, stmt, created=Alert.received_at, row_id=Alert.id, limit=limit, cursor=cursor
    )
    return Page[AlertOut].of(rows, next_cursor)
