"""Event settings: kick-off, the event's language and the forecast's planning figures
(stored and validated by :mod:`hub.event_settings`)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from hub.auth import admin, store_of, viewer
from hub.event_settings import read_settings, write_settings
from hub.routes import API, COMMON, Body
from hub.store import Principal

router = APIRouter()


class SettingsIn(Body):
    """Settings to change; a field left out or sent as null is left alone."""

    kickoff_at: float | str | None = Field(default=None, description="ISO 8601 with UTC offset, or epoch seconds")
    language: str | None = Field(default=None, min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8}){0,3}$",
                                 description="en, zh-Hans, ru or kk (or a tag that names one: zh-CN, ru-RU)")
    show_ratio: float | None = Field(default=None, ge=0.05, le=1.0,
                                     description="share of ticket holders expected to come")
    lane_rate_per_min: float | None = Field(default=None, ge=1.0, le=60.0,
                                            description="persons per minute one lane takes")


@router.get(f"{API}/event/settings", tags=["event"], responses=COMMON)
async def settings_get(request: Request, _p: Principal = viewer) -> dict[str, Any]:
    return (await read_settings(store_of(request))).to_json()


@router.put(f"{API}/event/settings", tags=["event"], responses=COMMON)
async def settings_put(body: SettingsIn, request: Request, p: Principal = admin) -> dict[str, Any]:
    """Set kick-off, the event's language (manifests) or the forecast's planning figures.
    A bad value is refused (400 with a reason code) and nothing is changed."""
    changes = {k: v for k, v in body.model_dump().items() if v is not None}
    return (await write_settings(store_of(request), p, changes)).to_json()
