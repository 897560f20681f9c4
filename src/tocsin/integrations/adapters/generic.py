"""The generic webhook payload (alerts/schemas.py GenericAlertIn): one alert per request."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from tocsin.alerts.schemas import GenericAlertIn
from tocsin.config import Settings
from tocsin.integrations.adapters.base import (
    Inbound,
    Mapped,
    MappedAlert,
    NoOptions,
    PayloadRejected,
    json_object,
)
from tocsin.integrations.models import IntegrationType


class GenericAdapter:
    integration_type: ClassVar[IntegrationType] = IntegrationType.GENERIC
    options_model: ClassVar[type[BaseModel]] = NoOptions

    async def map(self, inbound: Inbound, options: Any, settings: Settings) -> Mapped:
        data = json_object(inbound.body)
        try:
            alert = GenericAlertIn.model_validate(data).normalise()
        except ValidationError as exc:
            raise PayloadRejected.from_validation(exc) from exc
        return Mapped(alerts=[MappedAlert(alert)])
