"""Seats: double-sold seats and zones over capacity, shared-seat zones, mass re-seating, the seats page."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from hub import credentials
from hub.auth import admin, store_of, supervisor, viewer
from hub.errors import BadInput
from hub.importer import detect_format
from hub.routes import API, COMMON, Body, errors
from hub.seats import mismatches, set_shared_seats
from hub.seats_reseat import reseat
from hub.store import Principal

router = APIRouter()


class SeatingIn(Body):
    shared_seats: bool = Field(description="true: seat labels in this zone are not unique places (standing)")


@router.get(f"{API}/seats/mismatches", tags=["seats"], responses=COMMON)
async def seat_mismatches(request: Request, _p: Principal = viewer,
                          zone_id: Annotated[int | None, Query(ge=1, le=65535)] = None,
                          limit: Annotated[int, Query(ge=0, le=10_000)] = 200) -> dict[str, Any]:
    """Double-sold seats (the first ``limit``; ``double_sold_count`` is always the whole count)
    and zones with more valid tickets than their capacity. Computed now: a resolved clash
    (one ticket revoked or re-seated, or the zone marked shared) is simply gone."""
    return await mismatches(store_of(request), listed=limit, zone_id=zone_id)


@router.post(f"{API}/zones/{{zone}}/seating", tags=["seats"], responses={**COMMON, **errors(404)})
async def zone_seating(zone: str, body: SeatingIn, request: Request, p: Principal = supervisor) -> dict[str, Any]:
    """Mark a zone's seats shared (standing, benches) or numbered; audited."""
    return await set_shared_seats(store_of(request), p, zone, body.shared_seats)


@router.post(f"{API}/tickets/reseat", tags=["seats"], responses={**COMMON, **errors(413)})
async def reseat_route(request: Request, p: Principal = admin,
                       format: Annotated[str | None, Query(pattern="^(csv|json|jsonl)$")] = None,
                       partial: bool = False, dry_run: bool = False,
                       with_credentials: Annotated[bool, Query(alias="credentials")] = False) -> dict[str, Any]:
    """Re-seat many tickets from a move file (the body, or a multipart ``file``).

    Validated whole first: with any bad line nothing changes and the answer is 400
    ``reseat_refused`` naming every bad line — unless ``partial=true``. ``dry_run=true``
    checks and reports without changing anything. ``credentials=true`` adds each moved
    ticket's new signed QR text to its move (admins print or send them; the PDF is at
    ``/api/v1/tickets/{id}/ticket.pdf``)."""
    store = store_of(request)
    ctype = request.headers.get("content-type", "")
    name = ""
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadInput("multipart re-seating needs a 'file' field", code="missing_file")
        name = upload.filename or ""
        data = await upload.read()
    else:
        data = await request.body()
    if not data.strip():
        raise BadInput("the move file is empty", code="empty_file")
    fmt = format or ("jsonl" if ("ndjson" in ctype or "jsonl" in ctype) else
                     "json" if "json" in ctype and not name else detect_format(name, data))
    report = await reseat(store, p, data, fmt, name=name or "api", partial=partial, dry_run=dry_run)
    if report.error_count and not partial:
        body = report.to_json(moves=False)
        raise BadInput(f"{report.error_count} of {report.lines} lines are wrong; nothing was applied"
                       + (" (dry run)" if dry_run else ""), code="reseat_refused",
                       errors=body["errors"], errors_truncated=body["errors_truncated"], refused=report.error_count,
                       lines=report.lines, warnings=report.warnings)
    out = report.to_json()
    if with_credentials and report.applied and out["moves"]:
        key = await store.signing_key()
        event_id = int((await store.meta())["event_id"])
        for move in out["moves"]:
            t = await store.ticket(move["ticket_id"])
            move["credential"] = credentials.credential_text(key, event_id, t) if t["status"] == "valid" else None
    return out


@router.get("/seats", response_class=HTMLResponse, include_in_schema=False)
async def seats_page() -> HTMLResponse:
    from hub.app import UI_DIR

    return HTMLResponse((UI_DIR / "templates" / "seats.html").read_text(encoding="utf-8"),
                        headers={"Cache-Control": "no-store"})
