"""Logging: plain text by default, one JSON object a line with TOCSIN_LOG_FORMAT=json.

Every line written while a request, an alert or a worker's unit of work is being handled
carries the ids it concerns (request id, incident id, integration id). They live in context
variables: the request middleware and the ingest and worker code set them, and because
asyncio copies the context into each task, every task they start inherits them.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

import orjson

from tocsin.telemetry.tracing import current_trace_ids

REQUEST_ID: ContextVar[str | None] = ContextVar("tocsin_request_id", default=None)
INCIDENT_ID: ContextVar[str | None] = ContextVar("tocsin_incident_id", default=None)
INTEGRATION_ID: ContextVar[str | None] = ContextVar("tocsin_integration_id", default=None)

# The name each id has in a JSON line.
CONTEXT_FIELDS: dict[str, ContextVar[str | None]] = {
    "request_id": REQUEST_ID,
    "incident_id": INCIDENT_ID,
    "integration_id": INTEGRATION_ID,
}

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def log_context(
    *, incident_id: uuid.UUID | None = None, integration_id: uuid.UUID | None = None
) -> Iterator[None]:
    """Within the block, log lines carry these ids (those given; the others are kept)."""
    tokens: list[tuple[ContextVar[str | None], Token[str | None]]] = []
    for var, value in ((INCIDENT_ID, incident_id), (INTEGRATION_ID, integration_id)):
        if value is not None:
            tokens.append((var, var.set(str(value))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def bind_integration_id(integration_id: uuid.UUID) -> None:
    """From here to the end of the current request (or task), log lines name this
    integration. The request middleware resets it when the request ends."""
    INTEGRATION_ID.set(str(integration_id))


def current_ids() -> dict[str, str]:
    """The ids set in this context, by their JSON names."""
    return {name: value for name, var in CONTEXT_FIELDS.items() if (value := var.get())}


# What never reaches a log line, wherever it turns up (a message, a request line of uvicorn's
# access log, a WebSocket handshake, an exception's text): our tokens by their prefixes
# (API key, session key, integration key, heartbeat key, calendar token), path segments that
# are keys (webhook ingest, heartbeat pings, one-click links), credentials in a query string,
# and Bearer credentials, in a header or a WebSocket subprotocol. A value ends at a
# backslash too: in a JSON line, the quote after it is written `\"`.
_SECRETS = (
    (re.compile(r"\b(tk|ts|ik|hb|tcal)_[A-Za-z0-9_-]{8,}"), r"\1_[redacted]"),
    (re.compile(r"(/(?:webhooks|heartbeats|a)/)[^/\s?#\"'\\]+"), r"\1[redacted]"),
    (
        re.compile(
            r"([?&;](?:token|key|api_key|apikey|access_token|secret|signature|password|code)=)"
            r"[^&;\s\"'#\\]+",
            re.IGNORECASE,
        ),
        r"\1[redacted]",
    ),
    (re.compile(r"\b([Bb]earer[ .])[^\s\"',;\\]+"), r"\1[redacted]"),
)


def redact(text: str) -> str:
    """`text` with every key, token and secret path segment replaced by `[redacted]`."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message with its secrets redacted. On our handler, and on
    uvicorn's loggers themselves (for a server run with uvicorn's own logging setup)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # a broken format string: logging reports it as usual
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT, with secrets redacted from the whole line (the exception's text too)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the context's ids, the trace
    and span ids when tracing, and the exception if any; secrets redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(self._format(record))

    def _format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(current_ids())
        entry.update(current_trace_ids())
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(*, level: str, log_format: str) -> None:
    """Send every logger's lines (uvicorn's and Alembic's included) to stderr, as text or
    JSON. Replaces whatever handlers the root logger had, so calling it twice is harmless."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's loggers hand their lines to the root's handler instead of printing their own.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    install_redaction()
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


# Libraries whose routine lines would leak or flood: httpx logs every request's full URL at
# info (a chat or webhook URL is often its own secret), aiosqlite every driver call at debug.
QUIET_LOGGERS = ("httpx", "httpcore", "aiosqlite")


def install_redaction() -> None:
    """Redact secrets in uvicorn's own lines (request lines, WebSocket handshakes) at the
    source, whatever handlers print them; calling it again adds nothing."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in named.filters):
            named.addFilter(RedactSecrets())
