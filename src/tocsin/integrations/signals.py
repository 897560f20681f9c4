"""Acknowledge or resolve by dedup key, as PagerDuty and Opsgenie events do.

The scope is (integration, dedup key), and only open or acknowledged incidents count: a
signal for a key with nothing open changes nothing, which is what PagerDuty does too. The
ingest pipeline applies it, in the transaction of the payload that carried it.
"""

from __future__ import annotations

from tocsin.alerts.ingest import SignalIn
from tocsin.alerts.models import Severity
from tocsin.alerts.normalised import NormalisedAlert, fingerprint
from tocsin.incidents.lifecycle import Action
from tocsin.integrations.adapters.base import Signal, SignalAction

_ACTIONS = {SignalAction.ACKNOWLEDGE: Action.ACKNOWLEDGE, SignalAction.RESOLVE: Action.RESOLVE}


def dedup_fingerprint(dedup_key: str) -> str:
    """The fingerprint an alert with this dedup key was stored under."""
    return fingerprint(NormalisedAlert(title="", severity=Severity.INFO, dedup_key=dedup_key))


def signal_for_pipeline(signal: Signal, *, source: str) -> SignalIn:
    """The signal as the ingest pipeline applies it."""
    return SignalIn(
        action=_ACTIONS[signal.action],
        fingerprint=dedup_fingerprint(signal.dedup_key),
        note=f"{signal.action.value} event from {source}",
    )
