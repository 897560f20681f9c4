"""Inbound protocol routes that are not /webhooks/{key}: PagerDuty Events API v2 and v1 and
Opsgenie's alert API, at the paths those clients use, so pointing a tool at Tocsin takes a
base URL and a key; and the change events a service has received."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from tocsin.catalog.models import Service
from tocsin.errors import NotFound
from tocsin.integrations.adapters.base import (
    Inbound,
    Mapped,
    PayloadRejected,
    SignalAction,
)
from tocsin.integrations.adapters.opsgenie import map_action, map_create
from tocsin.integrations.adapters.pagerduty import (
    map_alert_event,
    map_change_event,
    map_v1_event,
)
from tocsin.integrations.inbound import MapPayload, receive
from tocsin.integrations.intake import Intake
from tocsin.integrations.lookup import IntegrationInfo, find_active_integration
from tocsin.integrations.models import ChangeEvent, IntegrationType
from tocsin.integrations.ratelimit import RateLimited
from tocsin.integrations.replies import (
    PD_UNRECOGNISED,
    inbound_request,
    opsgenie_accepted,
    opsgenie_body,
    opsgenie_rejected,
    pd_accepted,
    pd_invalid,
    pd_rejected,
    pd_throttled,
    throttled,
)
from tocsin.integrations.schemas import ChangeEventOut
from tocsin.store.pages import newest_first
from tocsin.web import (
    CurrentUser,
    Cursor,
    DbSession,
    Limit,
    Page,
    State,
)

router = APIRouter(tags=["integrations"])

_PD_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid event, unparseable JSON or unknown key (PagerDuty's shape)"},
    429: {"description": "The integration's rate limit is exceeded; see Retry-After"},
}
_PD_V1_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _PD_ERRORS[400],
    403: {"description": "Rate limited (the v1 API's code for it); see Retry-After"},
}
_OPSGENIE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown GenieKey"},
    422: {"description": "Invalid body (Opsgenie's shape)"},
    429: {"description": "The integration's rate limit is exceeded; see Retry-After"},
}


async def _find(intake: Intake, key: str, type: IntegrationType) -> IntegrationInfo | None:
    async with intake.quick_reads.connect() as conn:
        integration = await find_active_integration(conn, key)
    return integration if integration is not None and integration.type == type else None


def _body_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


async def _pagerduty(
    request: Request,
    intake: Intake,
    *,
    key_field: str,
    mapper: Any,
    v1: bool = False,
) -> JSONResponse:
    inbound = await inbound_request(request, intake.clock)
    data = _body_object(inbound.body)
    if data is None:
        return JSONResponse(PD_UNRECOGNISED, status_code=400)
    key = data.get(key_field)
    if not isinstance(key, str) or not key:
        return pd_invalid([f"{key_field}: Field required"])
    integration = await _find(intake, key, IntegrationType.PAGERDUTY)
    if integration is None:
        return pd_invalid(["Invalid routing key" if not v1 else "Invalid service key"])

    async def map_payload(_inbound: Inbound) -> Mapped:
        result: Mapped = mapper(data)
        return result

    try:
        received = await receive(
            intake,
            integration,
            inbound,
            map_payload=map_payload,
            secret=key,
            rejected_status=400,
        )
    except RateLimited as exc:
        # v1 says "403: rate limited"; v2 uses 429.
        return pd_throttled(exc, status=403 if v1 else 429)
    except PayloadRejected as exc:
        return pd_rejected(exc)
    return pd_accepted(received, v1=v1)


@router.post(
    "/v2/enqueue",
    status_code=202,
    summary="PagerDuty Events API v2: alert event",
    responses=_PD_ERRORS,
)
async def pagerduty_enqueue(request: Request, state: State) -> JSONResponse:
    """trigger / acknowledge / resolve; the integration key is the body's routing_key."""
    return await _pagerduty(request, state.intake, key_field="routing_key", mapper=map_alert_event)


@router.post("/v2/change/enqueue", status_code=202, summary="PagerDuty Events API v2: change event")
async def pagerduty_change(request: Request, state: State) -> JSONResponse:
    """Recorded on the integration's service and its active incidents; never pages."""
    return await _pagerduty(request, state.intake, key_field="routing_key", mapper=map_change_event)


@router.post(
    "/generic/2010-04-15/create_event.json",
    status_code=200,
    summary="PagerDuty Events API v1 (generic events)",
    responses=_PD_V1_ERRORS,
)
async def pagerduty_v1(request: Request, state: State) -> JSONResponse:
    """The v1 API: service_key, event_type, incident_key; answers 200."""
    return await _pagerduty(
        request, state.intake, key_field="service_key", mapper=map_v1_event, v1=True
    )


# Opsgenie --------------------------------------------------------------------------------


def _genie_key(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, key = authorization.partition(" ")
    return key.strip() or None if scheme.lower() == "geniekey" else None


async def _opsgenie(
    request: Request, intake: Intake, authorization: str | None, mapper: MapPayload
) -> JSONResponse:
    key = _genie_key(authorization)
    integration = await _find(intake, key, IntegrationType.OPSGENIE) if key else None
    if integration is None:
        return JSONResponse(
            opsgenie_body(message="Could not authenticate: send 'Authorization: GenieKey <key>'"),
            status_code=401,
        )
    inbound = await inbound_request(request, intake.clock)
    try:
        await receive(intake, integration, inbound, map_payload=mapper)
    except RateLimited as exc:
        return throttled(exc, opsgenie_body(message=exc.detail))
    except PayloadRejected as exc:
        return opsgenie_rejected(exc)
    return opsgenie_accepted()


GenieAuth = Annotated[str | None, Header(alias="Authorization")]
IdentifierType = Annotated[Literal["id", "alias", "tiny"], Query(alias="identifierType")]


def _json_or_reject(body: bytes, *, optional: bool) -> dict[str, Any]:
    if optional and not body.strip():
        return {}
    data = _body_object(body)
    if data is None:
        raise PayloadRejected.one(("body",), "the body must be a JSON object")
    return data


@router.post(
    "/v2/alerts",
    status_code=202,
    summary="Opsgenie Alert API: create alert",
    responses=_OPSGENIE_ERRORS,
)
async def opsgenie_create(
    request: Request, state: State, authorization: GenieAuth = None
) -> JSONResponse:
    """Opens an incident, or joins the one open for the same alias."""

    async def mapper(inbound: Inbound) -> Mapped:
        return map_create(_json_or_reject(inbound.body, optional=False))

    return await _opsgenie(request, state.intake, authorization, mapper)


async def _opsgenie_action(
    request: Request,
    intake: Intake,
    authorization: str | None,
    identifier: str,
    identifier_type: str,
    action: SignalAction,
) -> JSONResponse:
    async def mapper(inbound: Inbound) -> Mapped:
        if identifier_type != "alias":
            raise PayloadRejected.one(
                ("identifierType",), "only alias is supported: use ?identifierType=alias"
            )
        return map_action(identifier, action, _json_or_reject(inbound.body, optional=True))

    return await _opsgenie(request, intake, authorization, mapper)


def _opsgenie_action_route(
    action: SignalAction, doc: str
) -> Callable[..., Awaitable[JSONResponse]]:
    """The route of one Opsgenie alert action: the same handler for each, named after it."""

    async def route(
        identifier: str,
        request: Request,
        state: State,
        authorization: GenieAuth = None,
        identifier_type: IdentifierType = "id",
    ) -> JSONResponse:
        return await _opsgenie_action(
            request, state.intake, authorization, identifier, identifier_type, action
        )

    route.__doc__ = doc
    return route


# (path word, action, doc): the route is named opsgenie_<word>, as Opsgenie names the action.
_OPSGENIE_ACTIONS = [
    (
        "close",
        SignalAction.RESOLVE,
        "Resolves the incident open for this alias; nothing if none is.",
    ),
    (
        "acknowledge",
        SignalAction.ACKNOWLEDGE,
        "Acknowledges the incident open for this alias; nothing if none is.",
    ),
]
for _word, _action, _doc in _OPSGENIE_ACTIONS:
    router.add_api_route(
        f"/v2/alerts/{{identifier}}/{_word}",
        _opsgenie_action_route(_action, _doc),
        methods=["POST"],
        status_code=202,
        summary=f"Opsgenie Alert API: {_word} alert",
        responses=_OPSGENIE_ERRORS,
        name=f"opsgenie_{_word}",
    )


# Change events ---------------------------------------------------------------------------


class ServiceNotFound(NotFound):
    def __init__(self, service_id: uuid.UUID) -> None:
        super().__init__(f"service {service_id} not found")


@router.get("/api/v1/services/{service_id}/change-events", response_model=Page[ChangeEventOut])
async def list_change_events(
    service_id: uuid.UUID,
    session: DbSession,
    _principal: CurrentUser,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ChangeEventOut]:
    """The service's change events (deploys and the like), newest first."""
    if await session.get(Service, service_id) is None:
        raise ServiceNotFound(service_id)
    page, next_cursor = await newest_first(
        session,
        select(ChangeEvent).where(ChangeEvent.service_id == service_id),
        created=ChangeEvent.received_at,
        row_id=ChangeEvent.id,
        limit=limit,
        cursor=cursor,
    )
    return Page[ChangeEventOut].of(page, next_cursor)
