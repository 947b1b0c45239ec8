"""The readiness report: JSON, the printable one-page PDF, waivers, and the readiness page."""
from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import Field

from hub.auth import store_of, supervisor, viewer
from hub.readiness import readiness, waive, withdraw
from hub.routes import API, COMMON, Body, Id, errors
from hub.routes.gates import connected_gates
from hub.store import Principal

router = APIRouter()


class WaiverIn(Body):
    check: str = Field(min_length=1, max_length=200, description="the key of the ✖ line, e.g. gate:north-1:clock")
    supervisor: str = Field(min_length=1, max_length=100, description="who takes responsibility (a person's name)")
    reason: str = Field(min_length=1, max_length=1000)


@router.get(f"{API}/readiness", tags=["readiness"], responses=COMMON)
async def report(request: Request, _p: Principal = viewer) -> dict[str, Any]:
    """Every check with ✔/✖, what to do, waivers, and the verdict (READY or NOT READY)."""
    return (await readiness(store_of(request), connected=connected_gates(request))).to_json()


@router.get(f"{API}/readiness.pdf", tags=["readiness"], response_class=Response,
            responses={**COMMON, 200: {"content": {"application/pdf": {}}}})
async def report_pdf(request: Request, _p: Principal = viewer) -> Response:
    """The report on one A4 page to print and sign."""
    from hub.readiness_pdf import render_readiness_pdf

    r = await readiness(store_of(request), connected=connected_gates(request))
    body = await asyncio.to_thread(render_readiness_pdf, r)
    stamp = time.strftime("%Y%m%d-%H%M", time.gmtime(r.at))
    return Response(body, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="readiness-{stamp}.pdf"',
        "X-Readiness": "READY" if r.ready else "NOT READY"})


@router.post(f"{API}/readiness/waivers", tags=["readiness"], responses={**COMMON, **errors(404, 409)})
async def add_waiver(body: WaiverIn, request: Request, p: Principal = supervisor) -> dict[str, Any]:
    return await waive(store_of(request), p, body.check, body.supervisor, body.reason)


@router.post(f"{API}/readiness/waivers/{{waiver_id}}/withdraw", tags=["readiness"],
             responses={**COMMON, **errors(404, 409)})
async def withdraw_waiver(waiver_id: Id, request: Request, p: Principal = supervisor) -> dict[str, Any]:
    return await withdraw(store_of(request), p, waiver_id)


@router.get("/readiness", response_class=HTMLResponse, include_in_schema=False)
async def readiness_page() -> HTMLResponse:
    from hub.app import UI_DIR

    return HTMLResponse((UI_DIR / "templates" / "readiness.html").read_text(encoding="utf-8"),
                        headers={"Cache-Control": "no-store"})
