"""Answering inbound requests the way each sender expects: the generic webhook's own answer,
PagerDuty's status/message/errors bodies, Opsgenie's request receipts, and a 429 with
Retry-After for every one of them."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.responses import Response

from tocsin.clock import Clock
from tocsin.integrations.adapters.base import Inbound, PayloadForbidden, PayloadRejected
from tocsin.integrations.adapters.cloudwatch.sns import SubscriptionNotConfirmed
from tocsin.integrations.inbound import AlertResult, Received, receive
from tocsin.integrations.intake import Intake
from tocsin.integrations.lookup import IntegrationInfo
from tocsin.integrations.models import IntegrationType
from tocsin.integrations.ratelimit import RateLimited
from tocsin.integrations.schemas import InboundAccepted, InboundAlert
from tocsin.noise.decide import Suppression
from tocsin.noise.schemas import SuppressionOut


async def inbound_request(request: Request, clock: Clock) -> Inbound:
    return Inbound(
        body=await request.body(),
        headers=request.headers,
        query=request.query_params,
        now=clock.now(),
    )


def throttled(exc: RateLimited, body: dict[str, Any], *, status: int = 429) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"Retry-After": str(exc.retry_after)})


def _problem_lines(exc: PayloadRejected) -> list[str]:
    return [f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in exc.problems]


def is_unparseable(exc: PayloadRejected) -> bool:
    return len(exc.problems) == 1 and exc.problems[0].loc == ("body",)


# PagerDuty -------------------------------------------------------------------------------

PD_UNRECOGNISED = {
    "status": "Unrecognized object",
    "message": "Event object format is unrecognized",
    "errors": ["JSON parse error"],
}


def pd_invalid(errors: list[str]) -> JSONResponse:
    return JSONResponse(
        {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
        status_code=400,
    )


def pd_rejected(exc: PayloadRejected) -> JSONResponse:
    if is_unparseable(exc):
        return JSONResponse(PD_UNRECOGNISED, status_code=400)
    return pd_invalid(_problem_lines(exc))


def pd_throttled(exc: RateLimited, *, status: int = 429) -> JSONResponse:
    return throttled(
        exc,
        {"status": "throttled", "message": "Rate limit exceeded", "errors": [exc.detail]},
        status=status,
    )


def pd_accepted(received: Received, *, v1: bool = False) -> JSONResponse:
    body: dict[str, Any] = {"status": "success", "message": "Event processed"}
    body.update(received.reply)
    # Events API v1 answers 200, v2 202.
    return JSONResponse(body, status_code=200 if v1 else 202)


# Opsgenie --------------------------------------------------------------------------------


def opsgenie_body(**values: Any) -> dict[str, Any]:
    return {**values, "took": 0.0, "requestId": str(uuid.uuid4())}


def opsgenie_rejected(exc: PayloadRejected) -> JSONResponse:
    return JSONResponse(
        opsgenie_body(
            message="Request body is not processable. Please check the errors.",
            errors={".".join(map(str, p.loc)): p.msg for p in exc.problems},
        ),
        status_code=422,
    )


def opsgenie_accepted() -> JSONResponse:
    return JSONResponse(opsgenie_body(result="Request will be processed"), status_code=202)


# Everything else -------------------------------------------------------------------------


def as_validation_error(exc: PayloadRejected) -> RequestValidationError:
    """The problems reported the way FastAPI reports its own: 422, loc starting at body."""
    return RequestValidationError(
        [
            {
                "type": "value_error",
                "loc": p.loc if p.loc[:1] == ("body",) else ("body", *p.loc),
                "msg": p.msg,
                "input": None,
            }
            for p in exc.problems
        ]
    )


def accepted(received: Received) -> InboundAccepted:
    return InboundAccepted(
        alerts=[
            InboundAlert(
                alert_id=a.alert_id,
                incident_id=a.incident_id,
                deduplicated=a.deduplicated,
                status=a.status,
                repeat=a.repeat,
                suppressed=suppression_out(a.suppressed),
            )
            for a in received.alerts
        ],
        acknowledged=sorted(
            {
                i
                for s in received.signals
                if s.signal.action == "acknowledge"
                for i in s.incident_ids
            }
        ),
        resolved=sorted(
            {i for s in received.signals if s.signal.action == "resolve" for i in s.incident_ids}
        ),
        ignored=received.ignored,
        duplicate_delivery=received.duplicate_delivery,
        **({"reply": received.reply} if received.reply else {}),
    )


async def answer_webhook(
    intake: Intake, integration: IntegrationInfo, request: Request, key: str
) -> Response:
    """POST /webhooks/{key} for an integration of any type."""
    inbound = await inbound_request(request, intake.clock)
    kind = integration.type
    try:
        received = await receive(
            intake,
            integration,
            inbound,
            secret=key,
            rejected_status=400 if kind == IntegrationType.PAGERDUTY else 422,
        )
    except RateLimited as exc:
        if kind == IntegrationType.PAGERDUTY:
            return pd_throttled(exc)
        if kind == IntegrationType.OPSGENIE:
            return throttled(exc, opsgenie_body(message=exc.detail))
        return throttled(exc, {"detail": exc.detail})
    except PayloadRejected as exc:
        if kind == IntegrationType.PAGERDUTY:
            return pd_rejected(exc)
        if kind == IntegrationType.OPSGENIE:
            return opsgenie_rejected(exc)
        raise as_validation_error(exc) from exc
    except PayloadForbidden as exc:
        return JSONResponse({"detail": str(exc)}, status_code=403)
    except SubscriptionNotConfirmed as exc:
        # 5xx: the sender may retry, and nothing was stored.
        return JSONResponse(
            {"detail": f"confirming the SNS subscription failed: {exc}"}, status_code=502
        )
    if kind == IntegrationType.PAGERDUTY:
        return pd_accepted(received, v1="incident_key" in received.reply)
    if kind == IntegrationType.OPSGENIE:
        return opsgenie_accepted()
    if kind == IntegrationType.GENERIC and len(received.alerts) == 1:
        return generic_accepted(received.alerts[0])
    answer = accepted(received).model_dump(mode="json")
    for alert in answer["alerts"]:
        _without_empty_suppression(alert)
    return JSONResponse(answer, status_code=202)


def generic_accepted(result: AlertResult) -> Response:
    """The generic webhook's 202 for one alert: `IngestAccepted`, written out by hand.

    Every alert of a storm gets this answer; building the pydantic model, dumping it and
    encoding it with the standard json module cost about as much as the integration lookup.
    orjson writes the same compact UTF-8 that JSONResponse does (tests compare the bytes)."""
    body: dict[str, Any] = {
        "alert_id": str(result.alert_id),
        "incident_id": None if result.incident_id is None else str(result.incident_id),
        "deduplicated": result.deduplicated,
    }
    suppressed = result.suppressed
    if suppressed is not None:
        body["suppressed"] = {
            "kind": suppressed.kind.value,
            "id": str(suppressed.id),
            "reason": suppressed.reason,
        }
    return Response(orjson.dumps(body), 202, media_type="application/json")


def suppression_out(suppressed: Suppression | None) -> SuppressionOut | None:
    if suppressed is None:
        return None
    return SuppressionOut(kind=suppressed.kind.value, id=suppressed.id, reason=suppressed.reason)


def _without_empty_suppression(body: dict[str, Any]) -> dict[str, Any]:
    """`suppressed` is said only when there is something to say."""
    if body.get("suppressed", 0) is None:
        del body["suppressed"]
    return body
