"""Notification routes: contact methods, notification rules, one-click actions."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["notifications"])
