"""Per-integration overrides of title, severity, dedup key and routing key: Jinja2 templates
rendered in an immutable sandbox against the payload and the adapter's alert.

A template sees `payload` (the request body as parsed JSON, or its text) and `alert` (title,
severity, status, description, source, dedup_key, routing_key, tags, details as the adapter
produced them). An empty result, or one that fails to render, keeps the adapter's value, so a
template written for one shape of payload does no harm to another.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tocsin.alerts.models import Severity
from tocsin.alerts.normalised import NormalisedAlert
from tocsin.integrations.adapters.severity import find_severity

log = logging.getLogger(__name__)

TEMPLATE_FIELDS = ("title", "severity", "dedup_key", "routing_key")
MAX_TEMPLATE = 4096
# Caps on what one rendering may produce, so a template cannot build huge strings.
_LIMITS = {"title": 1024, "severity": 40, "dedup_key": 512, "routing_key": 200}

_ENV = ImmutableSandboxedEnvironment(autoescape=False)


class InvalidTemplate(ValueError):
    pass


def check_template(source: str) -> None:
    """Return if `source` compiles; InvalidTemplate with Jinja's message otherwise."""
    try:
        _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise InvalidTemplate(f"line {exc.lineno}: {exc.message}") from exc


@lru_cache(maxsize=512)
def _compiled(source: str) -> Any:
    return _ENV.from_string(source)


@dataclass(frozen=True)
class Rendered:
    alert: NormalisedAlert
    # Templates that failed or gave an unusable value, with why: shown in the payload log.
    problems: dict[str, str]


def _alert_context(alert: NormalisedAlert) -> dict[str, Any]:
    values = dataclasses.asdict(alert)
    values["severity"] = alert.severity.value
    values["status"] = alert.status.value
    return values


def apply_templates(templates: dict[str, str], alert: NormalisedAlert, payload: Any) -> Rendered:
    """The alert with each templated field replaced by its rendering."""
    if not templates:
        return Rendered(alert, {})
    context = {"payload": payload, "alert": _alert_context(alert)}
    changes: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name in TEMPLATE_FIELDS:
        source = templates.get(name)
        if not source:
            continue
        try:
            value = str(_compiled(source).render(context)).strip()
        except (TemplateError, ArithmeticError, TypeError, ValueError) as exc:
            problems[name] = f"{type(exc).__name__}: {exc}"
            continue
        if not value:
            continue
        value = value[: _LIMITS[name]]
        if name == "severity":
            severity = find_severity(value)
            if severity is None:
                problems[name] = f"{value!r} is not a severity ({', '.join(Severity)})"
                continue
            changes[name] = severity
        else:
            changes[name] = value
    return Rendered(dataclasses.replace(alert, **changes), problems)
