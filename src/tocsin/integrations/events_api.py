"""Inbound protocol routes that are not /webhooks/{key}: PagerDuty Events API v2 and v1."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["integrations"])
