"""Worker routes: Prometheus metrics at /metrics."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["worker"])
