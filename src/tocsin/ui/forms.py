"""What the configuration pages (teams, services, integrations, heartbeats, profile, admin)
share about forms: turning the API's refusal into messages beside the fields (and the page
that shows them), knowing
whether the viewer may change something, and reading optional values from a form."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from pydantic import ValidationError

from tocsin.errors import Forbidden, InvalidInput, TocsinError
from tocsin.ui.pages import describe_errors, render


@dataclass(frozen=True)
class Refusal:
    """Why a form was not saved: the status to answer with and {field: message} (`form`
    for a message about the whole form)."""

    status_code: int
    errors: dict[str, str]


def refusal(exc: ValidationError | TocsinError, renames: dict[str, str] | None = None) -> Refusal:
    """The API's refusal as a form's: a schema's messages per field (422), a domain check's
    message beside the field it names, anything else (403, 404, 409, 429) for the form."""
    renames = renames or {}
    if isinstance(exc, ValidationError):
        errors = describe_errors(exc.errors())
        return Refusal(422, {renames.get(k, k): v for k, v in errors.items()})
    if isinstance(exc, InvalidInput):
        field = exc.field or "form"
        return Refusal(exc.status_code, {renames.get(field, field): exc.detail})
    return Refusal(exc.status_code, {"form": exc.detail})


def render_form(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    refused: Refusal | None,
    *,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A page with a form: when the form was refused, its messages beside the fields and the
    refusal's status; otherwise no messages and 200."""
    return render(
        request,
        template,
        {**context, "errors": refused.errors if refused else {}},
        status_code=refused.status_code if refused else 200,
        headers=headers,
    )


async def allowed(check: Awaitable[None]) -> bool:
    """Whether a permission check (require_team_manager(...) and the like) passes: pages
    offer only the forms the API would accept from this viewer."""
    try:
        await check
    except Forbidden:
        return False
    return True


def optional(value: str) -> str | None:
    """A form's empty text box or "none" choice as a JSON null."""
    value = value.strip()
    return value or None


def checked(value: str) -> bool:
    """A checkbox: sent (with any value) when ticked, absent when not."""
    return value.lower() in ("1", "on", "true", "yes")
