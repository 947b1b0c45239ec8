"""The queue forecast for the control room (see :mod:`hub.forecast` for the model)."""
from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from hub.auth import store_of, viewer
from hub.forecast_data import current_forecast
from hub.routes import API, COMMON
from hub.store import Principal

router = APIRouter()


@router.get(f"{API}/forecast", tags=["control"], responses=COMMON)
async def forecast_route(request: Request, _p: Principal = viewer) -> dict[str, Any]:
    """Per zone and gate: arrivals, not yet arrived, scan rate, lanes, estimated queue and
    time to clear; alerts for zones that will not be inside by kick-off, with suggestions."""
    started = time.perf_counter()
    result = (await current_forecast(store_of(request))).to_json()
    result["computed_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result
