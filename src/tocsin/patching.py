"""What every PATCH body shares: a field may be left out (nothing changes) but not sent as null."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator


def _refuse_null(cls: type, value: object) -> object:
    if value is None:
        raise ValueError("may be left out but not set to null")
    return value


def not_null(*fields: str) -> Any:
    """A validator for a body's class: these fields may be left out, but null is refused
    (422 with the field's name). Use: `_not_null = not_null("name", "description")`."""
    return field_validator(*fields)(classmethod(_refuse_null))
