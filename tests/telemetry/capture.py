"""Reading what the JSON log format writes, in-process."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

from tocsin.telemetry.logs import JsonFormatter


class JsonLines:
    def __init__(self, buffer: io.StringIO) -> None:
        self._buffer = buffer

    @property
    def entries(self) -> list[dict[str, Any]]:
        """Every line written so far, parsed (a line that is not one JSON object fails)."""
        parsed = [json.loads(line) for line in self._buffer.getvalue().splitlines()]
        assert all(isinstance(entry, dict) for entry in parsed)
        return parsed

    def containing(self, text: str) -> list[dict[str, Any]]:
        return [entry for entry in self.entries if text in entry["message"]]


@contextlib.contextmanager
def json_log_lines(level: int = logging.DEBUG) -> Iterator[JsonLines]:
    """Log lines of every logger, formatted as TOCSIN_LOG_FORMAT=json formats them."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield JsonLines(buffer)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
