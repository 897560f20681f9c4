"""What every adapter takes in and gives back: one inbound request in, normalised alerts and
acknowledge/resolve signals out. Adapters are pure apart from the few that must talk to the
sender (SNS subscription confirmation), so they can be tested on payloads alone."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from tocsin.alerts.normalised import NormalisedAlert
from tocsin.config import Settings
from tocsin.integrations.models import IntegrationType

Model = TypeVar("Model", bound=BaseModel)


class SignalAction(enum.StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


@dataclass(frozen=True)
class Signal:
    """Acknowledge or resolve whatever is open under this dedup key; nothing if none is."""

    action: SignalAction
    dedup_key: str


class Repeat(enum.StrEnum):
    """What to do with an alert for something Tocsin already has."""

    # Store it and count it on the open incident (the generic webhook, PagerDuty triggers).
    RECORD = "record"
    # A resend identical to an alert already stored for the same open incident (or, for a
    # resolve, for the same resolved one) is dropped: Alertmanager repeats, SNS retries.
    IDENTICAL_IS_DUPLICATE = "identical_is_duplicate"
    # A re-notification (Datadog "Renotify", "Re-Triggered") adds nothing while an
    # incident for it is open.
    DUPLICATE_WHILE_OPEN = "duplicate_while_open"


@dataclass(frozen=True)
class MappedAlert:
    alert: NormalisedAlert
    repeat: Repeat = Repeat.RECORD


@dataclass(frozen=True)
class ChangeNotice:
    """An informational change (a deploy): shown on the service, never paging."""

    summary: str
    source: str = ""
    happened_at: datetime | None = None
    custom_details: dict[str, Any] = field(default_factory=dict)
    links: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Mapped:
    """Everything one payload turned into."""

    alerts: list[MappedAlert] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    changes: list[ChangeNotice] = field(default_factory=list)
    # Parts deliberately dropped and why (a no_data state, a subscription handshake...).
    ignored: list[str] = field(default_factory=list)
    # An id the sender reuses when it retries (SNS MessageId): seen once, processed once.
    delivery_id: str | None = None
    # What the sender should be told, when its protocol expects more than our usual answer.
    reply: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Inbound:
    """One request as an adapter sees it."""

    body: bytes
    headers: Mapping[str, str]
    query: Mapping[str, str]
    now: datetime
    # A simulation (POST /api/v1/simulate): map it, but contact nobody (no SNS certificate
    # fetched, no subscription confirmed).
    dry_run: bool = False


@dataclass(frozen=True)
class FieldProblem:
    loc: tuple[str | int, ...]
    msg: str


class PayloadRejected(Exception):
    """The payload is not one this adapter accepts; nothing is stored. `problems` name the
    fields, in the body, that are wrong."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in problems))
        self.problems = problems

    @classmethod
    def one(cls, loc: tuple[str | int, ...], msg: str) -> PayloadRejected:
        return cls([FieldProblem(loc, msg)])

    @classmethod
    def from_validation(
        cls, exc: ValidationError, *, prefix: tuple[str, ...] = ()
    ) -> PayloadRejected:
        return cls(
            [
                FieldProblem((*prefix, *err["loc"]), err["msg"])
                for err in exc.errors(include_url=False, include_context=False)
            ]
        )


def validated(model: type[Model], data: object) -> Model:
    """The payload read as `model`; PayloadRejected naming each wrong field when it is not."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PayloadRejected.from_validation(exc) from exc


class PayloadForbidden(Exception):
    """The payload is well formed but must not be acted on (a bad SNS signature)."""


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Adapter(Protocol):
    """One payload format. `options_model` validates the integration's `options`."""

    integration_type: ClassVar[IntegrationType]
    options_model: ClassVar[type[BaseModel]]

    async def map(self, inbound: Inbound, options: Any, settings: Settings) -> Mapped:
        """The alerts and signals in this payload; PayloadRejected when it is malformed."""
        ...


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type said (SNS sends text/plain)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadRejected.one(("body",), f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PayloadRejected.one(("body",), "the body must be a JSON object")
    return data


def clip(text: str, limit: int) -> str:
    """Cut text to `limit` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
