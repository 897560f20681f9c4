"""OpenTelemetry traces, sent over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

The SDK is an optional extra (`pip install 'tocsin[otel]'`). Without it, or without the
variable, every function here is a no-op costing one attribute check, so the hot paths call
them unconditionally. The exporter reads the standard OTEL_* variables itself (endpoint,
headers, timeout); OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are honoured too.

Spans: one per HTTP request or WebSocket (the route template as its name, never a path that
may hold a key), one per ingest commit, one per escalation timer fired and one per delivery
attempt. An incoming W3C `traceparent` header continues the caller's trace.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from starlette.types import Scope

from tocsin import __version__

log = logging.getLogger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

_lock = threading.Lock()
_users = 0  # apps and workers of this process that asked for tracing and have not stopped
_provider: Any = None
_tracer: Any = None
_warned = False

Attribute = str | int | float | bool | None
Finish = Callable[[str, int | None], None]


def tracing_wanted() -> bool:
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def _load_sdk() -> tuple[Any, Any, Any, Any]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return TracerProvider, BatchSpanProcessor, OTLPSpanExporter, Resource


def start_tracing(*, process_id: str, kind: str) -> bool:
    """Start exporting spans if the environment asks for it; True if tracing is on. Each
    call that returned True is matched by one `stop_tracing()`."""
    global _users, _provider, _tracer, _warned
    if not tracing_wanted():
        return False
    with _lock:
        if _tracer is not None:
            _users += 1
            return True
        try:
            tracer_provider, batch_processor, exporter, resource = _load_sdk()
        except ImportError:
            if not _warned:
                _warned = True
                log.warning(
                    "OTEL_EXPORTER_OTLP_ENDPOINT is set, but the OpenTelemetry SDK is not"
                    " installed (pip install 'tocsin[otel]'): no traces are sent"
                )
            return False
        attributes: dict[str, str] = {
            "service.version": __version__,
            "service.instance.id": process_id,
            "tocsin.process.kind": kind,
        }
        if not os.environ.get("OTEL_SERVICE_NAME"):
            attributes["service.name"] = "tocsin"
        provider = tracer_provider(resource=resource.create(attributes))
        provider.add_span_processor(batch_processor(exporter()))
        _provider, _tracer, _users = provider, provider.get_tracer("tocsin", __version__), 1
        log.info("sending traces over OTLP/HTTP")
        return True


def stop_tracing() -> None:
    """Flush the spans not yet sent and stop, once the last user of tracing has stopped."""
    global _users, _provider, _tracer
    with _lock:
        _users -= 1
        if _users > 0 or _provider is None:
            return
        provider, _provider, _tracer = _provider, None, None
    provider.shutdown()


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, Attribute] | None = None) -> Iterator[None]:
    """A span around the block when tracing; nothing otherwise. An exception escaping the
    block is recorded on the span."""
    tracer = _tracer
    if tracer is None:
        yield
        return
    kept = {key: value for key, value in (attributes or {}).items() if value is not None}
    with tracer.start_as_current_span(name, attributes=kept):
        yield


def _ignore(_route: str, _status: int | None) -> None:
    return None


@contextlib.contextmanager
def server_span(scope: Scope, *, request_id: str) -> Iterator[Finish]:
    """The span of one HTTP request or WebSocket. Yields `finish(route, status)`, which
    names the span once routing has told which route answered."""
    tracer = _tracer
    if tracer is None:
        yield _ignore
        return
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind, Status, StatusCode

    carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    method = scope.get("method", "WEBSOCKET")
    with tracer.start_as_current_span(
        method,
        context=extract(carrier),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "tocsin.request_id": request_id},
    ) as current:

        def finish(route: str, status: int | None) -> None:
            current.update_name(f"{method} {route}")
            current.set_attribute("http.route", route)
            if status is not None:
                current.set_attribute("http.response.status_code", status)
                if status >= 500:
                    current.set_status(Status(StatusCode.ERROR))

        yield finish


def current_trace_ids() -> dict[str, str]:
    """The trace and span ids of the span in progress, for log lines; {} when not tracing."""
    if _tracer is None:
        return {}
    from opentelemetry.trace import get_current_span

    context = get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
