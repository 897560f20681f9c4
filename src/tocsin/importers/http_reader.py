"""A small JSON-over-HTTPS reader for sources without a well-kept Python client.

Opsgenie's SDK (`opsgenie-sdk`) has had no release since 2021 and the product is being retired;
Grafana OnCall has no Python client at all. Both APIs are plain JSON with bearer-style tokens,
so this reader does the little they need: follow `next` links, and wait out 429 (and 502-504)
answers, using Retry-After when the source sends it and doubling pauses when it does not.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx

from tocsin.importers.convert import BadExport

Progress = Callable[[str], None]
_RETRIED = {429, 502, 503, 504}


class JsonApi:
    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        *,
        name: str,
        ca_file: str | None = None,
        progress: Progress = lambda message: None,
        backoff_seconds: float = 1.0,
        max_attempts: int = 8,
    ) -> None:
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_file) if ca_file else True
        )
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, verify=verify, timeout=30
        )
        self.name = name
        self.progress = progress
        self.backoff_seconds = backoff_seconds
        self.max_attempts = max_attempts
        self.rate_limited = 0

    def close(self) -> None:
        self.client.close()

    def get(self, url: str, params: dict[str, Any] | None = None) -> Any:
        """The decoded JSON answer to GET `url` (a path under the base URL, or a full URL)."""
        pause = self.backoff_seconds
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self.client.get(url, params=params)
            except httpx.TransportError as exc:
                if attempt == self.max_attempts:
                    raise BadExport(f"{self.name}: cannot reach {url}: {exc}") from exc
                self.progress(f"{self.name}: network error ({exc}); retrying in {pause:g} s")
                time.sleep(pause)
                pause *= 2
                continue
            if response.status_code in _RETRIED and attempt < self.max_attempts:
                if response.status_code == 429:
                    self.rate_limited += 1
                wait = _retry_after(response) or pause
                self.progress(
                    f"{self.name} answered {response.status_code}: backing off {wait:g} s"
                )
                time.sleep(wait)
                pause *= 2
                continue
            if response.status_code >= 400:
                raise BadExport(
                    f"{self.name} answered {response.status_code} to GET {response.url.path}: "
                    f"{_message(response)}"
                )
            return response.json()
        raise BadExport(f"{self.name}: gave up on {url} after {self.max_attempts} attempts")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            if key in body:
                return str(body[key])[:200]
    return str(body)[:200]
