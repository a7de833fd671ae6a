"""Events, actors and the model's answers (attribute, chain, warn), through the library API."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["events"])
