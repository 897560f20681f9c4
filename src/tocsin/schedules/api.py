"""Schedule routes: CRUD for schedules, layers and overrides; who is on call; shifts; iCal."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["schedules"])
