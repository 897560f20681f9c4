"""OpenTelemetry: with OTEL_EXPORTER_OTLP_ENDPOINT set, spans reach an OTLP/HTTP receiver (a
real one on loopback, decoding the protobuf it is sent); without the SDK, one warning."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import Escalate
from tests.factories import World
from tests.telemetry.capture import json_log_lines
from tocsin.app import create_app
from tocsin.clock import FrozenClock
from tocsin.config import Settings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass
class OtlpReceiver:
    url: str
    spans: list[ReceivedSpan] = field(default_factory=list)
    posts: list[tuple[str, str]] = field(default_factory=list)  # (path, content type)

    def named(self, name: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name == name]


def _value(any_value: Any) -> Any:
    return getattr(any_value, any_value.WhichOneof("value"))


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    """An OTLP/HTTP trace receiver on a loopback port, keeping every span it is sent."""
    receiver = OtlpReceiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            with lock:
                receiver.posts.append((self.path, self.headers["Content-Type"]))
                for resource_spans in request.resource_spans:
                    resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            receiver.spans.append(
                                ReceivedSpan(
                                    name=span.name,
                                    trace_id=span.trace_id.hex(),
                                    attributes={a.key: _value(a.value) for a in span.attributes},
                                    resource=resource,
                                )
                            )
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


async def test_spans_of_requests_ingest_and_the_worker_reach_the_receiver(
    otlp: OtlpReceiver,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    clock: FrozenClock,
    world: World,
    escalate: Escalate,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.url)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    app = create_app(settings, clock=clock, run_worker=False)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        with json_log_lines() as log:
            opened = await client.post(
                world.integration.url,
                json={"title": "Disk full", "routing_key": "payments-api"},
                headers={"X-Request-ID": "req-otel", "traceparent": TRACEPARENT},
            )
        assert opened.status_code == 202, opened.text
        incident_id = opened.json()["incident_id"]
        await escalate()
        shown = await client.get(f"/api/v1/incidents/{incident_id}", headers=world.cast.bob.headers)
        assert shown.status_code == 200
    # Leaving the lifespan flushed what was not sent yet.

    assert otlp.posts and {p for p, _ in otlp.posts} == {"/v1/traces"}
    assert {t for _, t in otlp.posts} == {"application/x-protobuf"}
    [webhook] = otlp.named("POST /webhooks/{integration_key}")
    assert webhook.trace_id == TRACE_ID, "the caller's trace goes on"
    assert webhook.attributes["tocsin.request_id"] == "req-otel"
    assert webhook.attributes["http.response.status_code"] == 202
    assert webhook.resource["service.name"] == "tocsin"
    assert webhook.resource["tocsin.process.kind"] == "api"
    [commit] = otlp.named("ingest.commit")
    assert commit.attributes["tocsin.batch_size"] == 1
    fired = otlp.named("escalation.fire_timer")
    assert [s.attributes["tocsin.incident_id"] for s in fired] == [incident_id]
    assert otlp.named("GET /api/v1/incidents/{incident_id}")
    everything = repr([(s.name, s.attributes) for s in otlp.spans])
    assert world.integration.key not in everything, "a key never leaves in a trace"

    [opened_line] = log.containing("opened incident")
    assert opened_line["trace_id"] == TRACE_ID
    assert len(opened_line["span_id"]) == 16


async def test_without_the_sdk_the_endpoint_costs_one_warning_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    # As if `tocsin[otel]` were not installed: importing the SDK fails.
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    monkeypatch.setattr("tocsin.telemetry.tracing._warned", False)
    with json_log_lines(logging.WARNING) as log:
        for _ in range(2):
            app = create_app(settings, clock=clock, run_worker=False)
            async with (
                app.router.lifespan_context(app),
                AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
            ):
                assert (await client.get("/readyz")).status_code == 200
    warnings = [e["message"] for e in log.entries if e["logger"] == "tocsin.telemetry.tracing"]
    assert len(warnings) == 1
    assert "pip install 'tocsin[otel]'" in warnings[0]
