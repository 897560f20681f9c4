"""Domain errors: one base, mapped to HTTP status codes in one place (app.py)."""

from __future__ import annotations


class TocsinError(Exception):
    """Base of every error a caller of the domain layer is expected to handle."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(TocsinError):
    status_code = 404


class Conflict(TocsinError):
    """The request is valid but clashes with the current state (illegal transition, duplicate)."""

    status_code = 409


class InvalidInput(TocsinError):
    """Input that passed the schema but fails a check needing the database (a target that
    does not exist, a service of another team)."""

    status_code = 422

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


class Forbidden(TocsinError):
    status_code = 403


class Unauthorized(TocsinError):
    status_code = 401


class TooManyRequests(TocsinError):
    """A limit was reached; `retry_after` seconds from now it will not be (Retry-After)."""

    status_code = 429

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = max(1, retry_after)
