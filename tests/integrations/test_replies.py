"""How the generic webhook's 202 is written: the same bytes FastAPI would send for its schema."""

from __future__ import annotations

import uuid

import pytest
from fastapi.responses import JSONResponse

from tocsin.alerts.models import AlertStatus
from tocsin.alerts.schemas import IngestAccepted
from tocsin.integrations.inbound import AlertResult
from tocsin.integrations.replies import generic_accepted, suppression_out
from tocsin.noise.decide import Suppression, SuppressionKind

ALERT = uuid.UUID("0b7c6a52-3f1e-4d55-9a0e-5f2d7c1b8e01")
INCIDENT = uuid.UUID("9d1f0e3c-8b2a-4c6d-a7e5-1f3b5d7c9e02")
SILENCE = uuid.UUID("4e6a8c0b-2d4f-4a1c-b3e5-7a9c1e3f5b03")


def _as_schema(result: AlertResult) -> bytes:
    """What the route answered before: the schema, dumped, without an empty `suppressed`."""
    body = IngestAccepted(
        alert_id=result.alert_id,
        incident_id=result.incident_id,
        deduplicated=result.deduplicated,
        suppressed=suppression_out(result.suppressed),
    ).model_dump(mode="json")
    if body["suppressed"] is None:
        del body["suppressed"]
    return bytes(JSONResponse(body, status_code=202).body)


@pytest.mark.parametrize(
    "result",
    [
        AlertResult(ALERT, INCIDENT, False, AlertStatus.FIRING, "db-1"),
        AlertResult(ALERT, INCIDENT, True, AlertStatus.FIRING, None),
        AlertResult(ALERT, None, False, AlertStatus.FIRING, None),
        AlertResult(
            ALERT,
            None,
            False,
            AlertStatus.FIRING,
            None,
            suppressed=Suppression(SuppressionKind.SILENCE, SILENCE, 'silenced: «deploy» "db"\n'),
        ),
    ],
)
def test_the_generic_answer_is_byte_for_byte_the_schemas(result: AlertResult) -> None:
    response = generic_accepted(result)
    assert response.status_code == 202
    assert response.body == _as_schema(result)
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.body))
