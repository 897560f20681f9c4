"""The generic webhook payload (alerts/schemas.py GenericAlertIn): one alert per request."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from tocsin.alerts.schemas import GenericAlertIn
from tocsin.config import Settings
from tocsin.integrations.adapters.base import (
    Inbound,
    Mapped,
    MappedAlert,
    NoOptions,
    json_object,
    validated,
)
from tocsin.integrations.models import IntegrationType


class GenericAdapter:
    integration_type: ClassVar[IntegrationType] = IntegrationType.GENERIC
    options_model: ClassVar[type[BaseModel]] = NoOptions

    async def map(self, inbound: Inbound, options: Any, settings: Settings) -> Mapped:
        data = json_object(inbound.body)
        alert = validated(GenericAlertIn, data).normalise()
        return Mapped(alerts=[MappedAlert(alert)])
