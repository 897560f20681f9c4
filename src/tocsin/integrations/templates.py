"""Per-integration overrides of title, severity, dedup key and routing key: Jinja2 templates
rendered in an immutable sandbox against the payload and the adapter's alert.

A template sees `payload` (the request body as parsed JSON, or its text) and `alert` (title,
severity, status, description, source, dedup_key, routing_key, tags, details as the adapter
produced them). An empty result, or one that fails to render, keeps the adapter's value, so a
template written for one shape of payload does no harm to another.

Templates are set by people, rendered on the ingest path, and must not be able to stall it:
each rendering has a budget of time (checked at every attribute, item, call and output
chunk), of `range` items across all its loops, and of output; `*` and `**` may not build
huge values. A template past its budget fails like any other (the adapter's value stays, the
problem is shown in the payload log), so the alert is stored and its page goes out.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tocsin.alerts.models import Severity
from tocsin.alerts.normalised import NormalisedAlert
from tocsin.integrations.adapters.severity import find_severity

log = logging.getLogger(__name__)

TEMPLATE_FIELDS = ("title", "severity", "dedup_key", "routing_key")
MAX_TEMPLATE = 4096
# Caps on what one rendering may produce, so a template cannot build huge strings.
_LIMITS = {"title": 1024, "severity": 40, "dedup_key": 512, "routing_key": 200}

# One rendering's budget: wall time, items all its range() calls may produce, output size.
RENDER_SECONDS = 0.2
RANGE_ITEMS = 10_000
MAX_OUTPUT = 16 * 1024


class OverBudget(SecurityError):
    """A template ran past its time, range or output budget."""


@dataclass
class _Budget:
    deadline: float
    range_items: int


_BUDGET: ContextVar[_Budget | None] = ContextVar("tocsin_template_budget", default=None)


def _tick() -> None:
    budget = _BUDGET.get()
    if budget is not None and time.monotonic() > budget.deadline:
        raise OverBudget(f"took longer than {RENDER_SECONDS} s")


def _budgeted_range(*args: int) -> range:
    items = range(*args)
    budget = _BUDGET.get()
    if budget is not None:
        budget.range_items -= len(items)
        if budget.range_items < 0:
            raise OverBudget(f"loops over more than {RANGE_ITEMS} items in all")
    return items


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


class _LimitedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every step of a rendering checked against its budget."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise OverBudget("exponent over 64")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                size = _size(seq)
                if size is not None and isinstance(times, int) and size * times > MAX_OUTPUT:
                    raise OverBudget(f"builds a value longer than {MAX_OUTPUT}")
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return super().getitem(obj, argument)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        return super().call(__context, __obj, *args, **kwargs)


_ENV = _LimitedEnvironment(autoescape=False)
_ENV.globals["range"] = _budgeted_range


def render_limited(template: Any, context: dict[str, Any]) -> str:
    """The template's output, or OverBudget once it runs past its time, range or output
    budget (it is stopped there, not left to finish)."""
    token = _BUDGET.set(_Budget(time.monotonic() + RENDER_SECONDS, RANGE_ITEMS))
    try:
        chunks: list[str] = []
        size = 0
        for chunk in template.generate(context):
            _tick()
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise OverBudget(f"output longer than {MAX_OUTPUT} characters")
            chunks.append(chunk)
        return "".join(chunks)
    finally:
        _BUDGET.reset(token)


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
            value = render_limited(_compiled(source), context).strip()
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
