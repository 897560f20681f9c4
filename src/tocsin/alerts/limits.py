"""How deep and how large an alert's `details` and `tags` may be.

Deep JSON is cheap to send and expensive to handle: every reader that walks it (JSON
encoders, templates, the web UI) recurses once per level, and past a few hundred levels
they fail. So ingest refuses it, whatever the payload format (the check runs on the
normalised alert every adapter produces), and every read cuts what was stored before
the limit existed instead of failing on it.
"""

from __future__ import annotations

from typing import Any

import orjson

from tocsin.alerts.normalised import NormalisedAlert

MAX_DEPTH = 32
MAX_DETAILS_BYTES = 64 * 1024
MAX_TAGS_BYTES = 16 * 1024
CUT = "… (cut: nested deeper than 32 levels)"


def depth_beyond(value: Any, limit: int) -> bool:
    """Whether `value` nests containers more than `limit` levels deep (a walk that stops as
    soon as it knows, without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def problems_of(alert: NormalisedAlert) -> list[tuple[str, str]]:
    """(field, message) for each limit the alert's `details` or `tags` break."""
    problems = []
    for field, value, max_bytes in (
        ("details", alert.details, MAX_DETAILS_BYTES),
        ("tags", alert.tags, MAX_TAGS_BYTES),
    ):
        if depth_beyond(value, MAX_DEPTH):
            problems.append((field, f"nested deeper than {MAX_DEPTH} levels"))
            continue
        size = len(orjson.dumps(value, default=str))
        if size > max_bytes:
            problems.append((field, f"{size} bytes as JSON; at most {max_bytes}"))
    return problems


def clip(value: Any, limit: int = MAX_DEPTH) -> Any:
    """`value` with whatever lies deeper than `limit` levels replaced by a note; for reading
    rows stored before the limit (recursion is bounded by `limit`)."""
    if limit <= 0:
        return CUT if isinstance(value, dict | list | tuple) else value
    if isinstance(value, dict):
        return {key: clip(item, limit - 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clip(item, limit - 1) for item in value]
    return value
