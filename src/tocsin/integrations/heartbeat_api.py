"""Heartbeat monitor routes: CRUD and the ping endpoint /heartbeats/{key}."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["heartbeats"])
