"""Which adapter handles which integration type."""

from __future__ import annotations

from tocsin.integrations.adapters.alertmanager import AlertmanagerAdapter
from tocsin.integrations.adapters.base import Adapter
from tocsin.integrations.adapters.cloudwatch import CloudWatchAdapter
from tocsin.integrations.adapters.datadog import DatadogAdapter
from tocsin.integrations.adapters.generic import GenericAdapter
from tocsin.integrations.adapters.grafana import GrafanaAdapter
from tocsin.integrations.adapters.opsgenie import OpsgenieAdapter
from tocsin.integrations.adapters.pagerduty import PagerDutyAdapter
from tocsin.integrations.models import IntegrationType

_ADAPTERS: dict[IntegrationType, Adapter] = {}


def register(adapter: Adapter) -> Adapter:
    """Make `adapter` the one for its type (replacing any other)."""
    _ADAPTERS[adapter.integration_type] = adapter
    return adapter


def adapter_for(type: IntegrationType) -> Adapter:
    """The adapter for this integration type; KeyError if the type has none."""
    return _ADAPTERS[type]


for _adapter in (
    GenericAdapter(),
    PagerDutyAdapter(),
    AlertmanagerAdapter(),
    GrafanaAdapter(),
    DatadogAdapter(),
    CloudWatchAdapter(),
    OpsgenieAdapter(),
):
    register(_adapter)
