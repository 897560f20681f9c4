"""The settings reference (docs/settings.md), written from the Settings class itself, and the
values a process would run with, secrets masked (`tocsin settings`)."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic.fields import FieldInfo
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from tocsin.config import Settings

ENV_PREFIX = "TOCSIN_"
# Settings whose value is never printed: secrets, and a gateway URL that often holds a key.
_SECRET_WORDS = ("secret", "password", "token", "http_sms_url")

# Variables Tocsin reads that are not Settings fields (OpenTelemetry's own).
OTHER_VARIABLES = """\
## Read from the environment as well

| Variable | What it does |
| --- | --- |
| `OTEL_EXPORTER_OTLP_ENDPOINT` | Send OpenTelemetry traces over OTLP/HTTP to this collector \
(`http://collector:4318`); needs `pip install 'tocsin[otel]'`, else one warning is logged \
and nothing is sent. `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` works too. |
| `OTEL_SERVICE_NAME` | The service name on the spans (default `tocsin`). |
| `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`, other `OTEL_*` | Read by the \
OpenTelemetry SDK itself, as documented there. |
"""


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def describe_type(annotation: Any) -> str:
    """A type as an operator writes it in the environment."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (types.UnionType, typing.Union):
        kept = [a for a in args if a is not type(None)]
        if len(kept) == 1:
            return f"{describe_type(kept[0])}, optional"
    if origin is list:
        return f"JSON list of {describe_type(args[0])}s" if args else "JSON list"
    if origin is tuple:
        return "[" + ", ".join(describe_type(a) for a in args) + "] pair"
    names = {str: "string", int: "integer", float: "number", bool: "`true` or `false`"}
    if annotation in names:
        return names[annotation]
    raise ValueError(f"no description for the type {annotation!r}: teach describe_type")


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        made: Any = info.default_factory()  # type: ignore[call-arg]
        return "a new random value per process" if isinstance(made, str) else _shown(made)
    return _shown(info.default)


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list | tuple):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def _prose(description: str | None, name: str) -> str:
    if not description:
        raise ValueError(f"setting {name} has no docstring: say what it does")
    return " ".join(line.strip() for line in description.splitlines())


def settings_markdown() -> str:
    """docs/settings.md: an index, then each setting with its type, default and meaning."""
    fields = Settings.model_fields
    lines = [
        "# Settings reference",
        "",
        "Generated from `tocsin.config.Settings` by `tocsin settings --markdown >"
        " docs/settings.md`; do not edit by hand (a test fails when this file and the class"
        " disagree).",
        "",
        "Every setting is an environment variable. Lists and pairs are written as JSON, booleans"
        " as `true`/`false`. `tocsin settings` prints the values a process would run with"
        " (secrets masked). Settings that must be the same on every process of a cluster:"
        f" `{env_name('database_url')}`, `{env_name('secret_key')}`,"
        f" `{env_name('public_url')}`.",
        "",
        "| Variable | Default |",
        "| --- | --- |",
    ]
    for name, info in fields.items():
        lines.append(f"| [`{env_name(name)}`](#{env_name(name).lower()}) | {_default(info)} |")
    for name, info in fields.items():
        lines += [
            "",
            f"## `{env_name(name)}`",
            "",
            f"Type: {describe_type(info.annotation)}. Default: {_default(info)}.",
            "",
            _prose(info.description, name),
        ]
    lines += ["", OTHER_VARIABLES.rstrip("\n")]
    return "\n".join(lines) + "\n"


def _masked(name: str, value: Any) -> str:
    if any(word in name for word in _SECRET_WORDS):
        return "(set)" if value else "(empty)"
    if name == "database_url":
        try:
            return make_url(value).render_as_string(hide_password=True)
        except ArgumentError:
            return "(not a valid URL)"
    if isinstance(value, list | tuple):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def current_values(settings: Settings) -> list[tuple[str, str]]:
    """(variable, value) for every setting, secrets masked: what `tocsin settings` prints."""
    return [
        (env_name(name), _masked(name, getattr(settings, name))) for name in Settings.model_fields
    ]
