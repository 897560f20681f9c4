"""create_app(settings) -> FastAPI: mounts every domain's router, and runs the process's
runtime (the ingest batcher and, unless told not to, the worker) for the app's lifetime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tocsin import __version__, ui
from tocsin.alerts import api as alerts_api
from tocsin.alerts import lane as webhook_lane
from tocsin.alerts.lane import WebhookLane
from tocsin.audit import api as audit_api
from tocsin.auth import api as auth_api
from tocsin.auth.scopes import describe_scopes
from tocsin.catalog import api as catalog_api
from tocsin.clock import Clock
from tocsin.config import Settings
from tocsin.errors import InvalidInput, TocsinError, TooManyRequests
from tocsin.escalation import api as escalation_api
from tocsin.heartbeats import api as heartbeat_api
from tocsin.incidents import api as incidents_api
from tocsin.incidents.dedup import DedupRaceLost
from tocsin.integrations import api as integrations_api
from tocsin.integrations import events_api as integration_events_api
from tocsin.noise import api as noise_api
from tocsin.notifications import api as notifications_api
from tocsin.realtime import api as realtime_api
from tocsin.realtime.access import AnnounceAccessChanges
from tocsin.runtime import Runtime, WorkerOptions
from tocsin.schedules import api as schedules_api
from tocsin.teams import api as teams_api
from tocsin.telemetry.logs import install_redaction
from tocsin.telemetry.requests import RequestIdMiddleware, route_of
from tocsin.web import ERROR_RESPONSES, FOREIGN_ERROR_RESPONSES, State
from tocsin.worker import api as worker_api

log = logging.getLogger(__name__)


class BodySizeLimit:
    """Refuse request bodies over `limit` bytes with 413 before reading them into memory."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(send)
                    return
        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = True
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            if refused:
                await self._refuse(send)
        except ClientDisconnect:
            # Gone before its whole body arrived: nothing was parsed, so nothing was stored,
            # and nobody is left to answer. Routine under load; not an error.
            log.info(
                "client disconnected while sending the request body of %s %s; nothing stored",
                scope["method"],
                route_of(scope),
            )

    async def _refuse(self, send: Send) -> None:
        body = (
            b'{"detail":"request body is larger than the limit of '
            + str(self.limit).encode()
            + b' bytes"}'
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


class TocsinApp(FastAPI):
    """FastAPI, with webhook posts sent down a short stack of their own.

    Under an alert storm nearly every request is `POST /webhooks/{key}`, and each layer of
    the general stack costs it a coroutine frame and a closure or two: FastAPI's telemetry
    check and exception telemetry, its own body limit, Starlette's error middleware, ours.
    Together they were a fifth of the webhook's CPU in the app. The webhook stack keeps
    every layer that does something for a webhook, in the same order: the error middleware
    (a 500 for an unhandled error), the request id, the body size limit, and the lane.
    AnnounceAccessChanges watches other paths, and routing is what the lane exists to skip.
    """

    # Set by create_app: the body size limit around the lane. The outer layers are added at
    # the first webhook, as Starlette builds its stack at the first request, so that they
    # see the app's final exception handlers and debug flag.
    webhook_inner: ASGIApp | None = None
    _webhook_stack: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.webhook_inner is not None and not self.root_path and webhook_lane.takes(scope):
            stack = self._webhook_stack
            if stack is None:
                stack = self._webhook_stack = self._build_webhook_stack(self.webhook_inner)
            scope["app"] = self  # as Starlette sets it: the lane finds the error handlers
            await stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _build_webhook_stack(self, inner: ASGIApp) -> ASGIApp:
        handlers = self.exception_handlers
        error_handler = handlers.get(500) or handlers.get(Exception)
        return ServerErrorMiddleware(
            RequestIdMiddleware(inner), handler=error_handler, debug=self.debug
        )


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TocsinError)
    async def _domain_error(_request: Request, exc: TocsinError) -> JSONResponse:
        detail: Any = exc.detail
        if isinstance(exc, InvalidInput) and exc.field is not None:
            detail = [
                {"loc": ["body", *exc.field.split(".")], "msg": exc.detail, "type": "value_error"}
            ]
        headers = None
        if isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(IntegrityError)
    async def _integrity_error(_request: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity error answered as 409: %s", exc.orig)
        return JSONResponse({"detail": "this change conflicts with existing data"}, status_code=409)

    @app.exception_handler(DedupRaceLost)
    async def _race_lost(_request: Request, exc: DedupRaceLost) -> JSONResponse:
        return JSONResponse(
            {"detail": "too many concurrent changes; retry"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(PoolTimeout)
    async def _no_connection(_request: Request, exc: PoolTimeout) -> JSONResponse:
        # Overload: every pooled connection stayed busy for the pool timeout. Nothing of the
        # request was stored, so the client may simply send it again.
        log.warning("no database connection free in time: %s", exc)
        return JSONResponse(
            {"detail": "the server is busy (no database connection free); retry"},
            status_code=503,
            headers={"Retry-After": "1"},
        )


health_router = APIRouter(tags=["health"])


@health_router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Alive: the process answers."""
    return {"status": "ok"}


@health_router.get("/readyz", responses={503: {"description": "Database unreachable"}})
async def readyz(state: State) -> JSONResponse:
    """Ready: the database answers."""
    try:
        async with state.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("readiness check failed: %s", exc)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, run_worker: bool = True
) -> FastAPI:
    """The Tocsin app: the routes, and a serving runtime (tocsin.runtime) that its lifespan
    starts and stops; with `run_worker`, the worker loop runs in this process too."""
    settings = settings or Settings()
    install_redaction()  # uvicorn's lines too, however the server was started
    runtime = Runtime(settings, clock=clock, worker=WorkerOptions() if run_worker else None)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = TocsinApp(
        title="Tocsin",
        version=__version__,
        description="On-call and incident alerting: alerts in, the right person paged.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.tocsin = runtime
    # The lane sits inside the size limit: webhook bodies are limited like any other.
    app.add_middleware(WebhookLane, intake=runtime.intake)
    # Stream sockets re-check their access after changes to users, keys and teams.
    app.add_middleware(AnnounceAccessChanges, access_changed=runtime.hub.access_changed)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)  # outermost: every answer carries the id
    _error_handlers(app)

    app.include_router(health_router)
    for module in (
        auth_api,
        teams_api,
        catalog_api,
        integrations_api,
        escalation_api,
        incidents_api,
        alerts_api,
        realtime_api,
        schedules_api,
        notifications_api,
        integration_events_api,
        heartbeat_api,
        worker_api,
        noise_api,
        audit_api,
    ):
        foreign = module is integration_events_api
        app.include_router(
            module.router, responses=FOREIGN_ERROR_RESPONSES if foreign else ERROR_RESPONSES
        )
    app.include_router(escalation_api.simulate_router, responses=ERROR_RESPONSES)
    ui.install(app)
    _document_scopes(app)
    app.webhook_inner = BodySizeLimit(
        WebhookLane(app.router, intake=runtime.intake), limit=settings.max_body_bytes
    )
    return app


def _document_scopes(app: FastAPI) -> None:
    """The OpenAPI document says which API key scope each operation needs."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            describe_scopes(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
