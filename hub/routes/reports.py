"""What supervisors read: validations (journal entries), conflicts and stats, all paged."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from hub.auth import store_of, supervisor, viewer
from hub.routes import API, COMMON, MAX_ID, Body, Id, Limit, errors, set_next
from hub.store import Principal

router = APIRouter()

TIME = Query(ge=0, le=2**33)


class ResolveIn(Body):
    resolution: str = Field(min_length=1, max_length=1000)


def redact_raw(entry: dict[str, Any], p: Principal) -> dict[str, Any]:
    """A viewer sees that a code was scanned, not the code itself (a signed credential can be
    re-printed from it); supervisors and admins see it whole."""
    if p.may("supervisor") or not entry.get("raw"):
        return entry
    return {**entry, "raw": "", "raw_redacted": True}


@router.get(f"{API}/validations", tags=["validations"], responses=COMMON)
async def validations(request: Request, response: Response, p: Principal = viewer,
                      ticket_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                      gate_id: Annotated[str | None, Query(max_length=64)] = None,
                      since: Annotated[float | None, TIME] = None, until: Annotated[float | None, TIME] = None,
                      reason: Annotated[str | None, Query(max_length=40)] = None,
                      kind: Annotated[str | None, Query(max_length=20)] = None, limit: Limit = 200,
                      before_at: Annotated[float | None, TIME] = None,
                      before_gate: Annotated[str | None, Query(max_length=64)] = None,
                      before_seq: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None) -> list[dict[str, Any]]:
    """Journal entries, newest first; a full page names the next one in a ``Link`` header."""
    before = (before_at, before_gate or "", before_seq or 0) if before_at is not None else None
    got = await store_of(request).validations(ticket_id=ticket_id, gate_id=gate_id, since=since, until=until,
                                              reason=reason, kind=kind, limit=limit, before=before)
    if len(got) == limit:
        last = got[-1]
        set_next(request, response, before_at=last["at"], before_gate=last["gate_id"], before_seq=last["seq"])
    return [redact_raw(e, p) for e in got]


@router.get(f"{API}/conflicts", tags=["validations"], responses=COMMON)
async def conflicts(request: Request, response: Response, _p: Principal = viewer, open: bool = False,
                    limit: Limit = 500, before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                    ) -> list[dict[str, Any]]:
    got = await store_of(request).conflicts(open_only=open, limit=limit, before=before)
    if len(got) == limit:
        set_next(request, response, before=got[-1]["conflict_id"])
    return got


@router.post(f"{API}/conflicts/{{conflict_id}}/resolve", tags=["validations"], responses={**COMMON, **errors(404, 409)})
async def resolve(conflict_id: Id, body: ResolveIn, request: Request, p: Principal = supervisor) -> dict[str, Any]:
    return await store_of(request).resolve_conflict(p, conflict_id, body.resolution)


@router.get(f"{API}/stats", tags=["validations"], responses=COMMON)
async def stats(request: Request, _p: Principal = viewer, since: Annotated[float | None, TIME] = None) -> dict[str, Any]:
    return await store_of(request).stats(since=since)
