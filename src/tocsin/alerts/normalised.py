"""The normalised alert every adapter produces, and its fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from tocsin.alerts.models import AlertStatus, Severity

MAX_FINGERPRINT = 128


@dataclass(frozen=True)
class NormalisedAlert:
    """One alert as Tocsin understands it, whatever format it arrived in."""

    title: str
    severity: Severity
    status: AlertStatus = AlertStatus.FIRING
    description: str = ""
    source: str = ""
    dedup_key: str | None = None
    routing_key: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def fingerprint(alert: NormalisedAlert) -> str:
    """The dedup key when given (hashed if too long to index), else a stable hash of title
    and source. It is scoped to the integration by the incident's unique index."""
    if alert.dedup_key:
        if len(alert.dedup_key) <= MAX_FINGERPRINT:
            return alert.dedup_key
        return "sha256:" + hashlib.sha256(alert.dedup_key.encode()).hexdigest()
    # The NUL separator keeps ("ab", "c") and ("a", "bc") apart.
    digest = hashlib.sha256(f"{alert.title}\x00{alert.source}".encode()).hexdigest()
    return "auto:" + digest[:40]
