"""Gates: registration, zones, revocation, enrolment, and the HTTP journal upload."""
from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import Field

from hub.auth import admin, gate_auth, store_of, viewer
from hub.errors import BadInput, TooLarge
from hub.feed import SEEN_CONNECTED_S
from hub.routes import API, COMMON, SMALL_PAGE, Body, SmallLimit, errors, keyset_page
from hub.store import Principal
from tickets.entry import JournalEntry

router = APIRouter()

MAX_BATCH = 5000
GateId = Annotated[str, Path(min_length=1, max_length=64)]


class GateIn(Body):
    name: str = Field(min_length=1, max_length=100)
    zones: list[Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=list, max_length=1000)
    ttl_s: float = Field(default=24 * 3600.0, gt=0, le=30 * 86400)


class GatePatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    zones: list[Annotated[int, Field(ge=1, le=65535)]] | None = Field(default=None, max_length=1000)


class EnrollIn(Body):
    token: str = Field(min_length=1, max_length=200)


def connected_gates(request: Request) -> set[str]:
    live = set(request.app.state.connected_gates)
    registry = getattr(request.app.state, "sync_registry", None)
    if registry is not None:
        live.update(registry.connected())
    return live


@router.get(f"{API}/gates", tags=["gates"], responses=COMMON)
async def gates(request: Request, response: Response, _p: Principal = viewer,
                after: Annotated[str | None, Query(max_length=64, description="last gate id of the previous page")]
                = None, limit: SmallLimit = SMALL_PAGE) -> list[dict[str, Any]]:
    """Gates by id; ``connected``: to this hub process, or seen by any process within 15 s. A
    ``Link: rel="next"`` header when more follow."""
    now = store_of(request).clock()
    page = keyset_page(request, response, await store_of(request).gates(), "gate_id", after, limit)
    return [{**g, "connected": gate_connected(request.app, g, now)} for g in page]


def gate_connected(app: Any, g: dict[str, Any], now: float) -> bool:
    """Connected to this hub process, or to another one (which refreshes ``last_seen``)."""
    if g["gate_id"] in app.state.connected_gates:
        return True
    registry = getattr(app.state, "sync_registry", None)
    if registry is None:
        return False
    return bool(registry.connected_anywhere(g["gate_id"], (g.get("info") or {}).get("linked_at"), now,
                                            SEEN_CONNECTED_S))


@router.post(f"{API}/gates", tags=["gates"], responses={**COMMON, **errors(404)})
async def create_gate(body: GateIn, request: Request, p: Principal = admin) -> dict[str, Any]:
    gate_id, token, expires = await store_of(request).create_gate(p, body.name, body.zones, ttl_s=body.ttl_s)
    return {"gate_id": gate_id, "enrolment_token": token, "expires_at": expires}


@router.patch(f"{API}/gates/{{gate_id}}", tags=["gates"], responses={**COMMON, **errors(404)})
async def update_gate(gate_id: GateId, body: GatePatch, request: Request, p: Principal = admin) -> dict[str, Any]:
    return await store_of(request).update_gate(p, gate_id, name=body.name, zones=body.zones)


@router.post(f"{API}/gates/{{gate_id}}/revoke", tags=["gates"], responses={**COMMON, **errors(404, 409)})
async def revoke_gate(gate_id: GateId, request: Request, p: Principal = admin) -> dict[str, Any]:
    return await store_of(request).revoke_gate(p, gate_id)


@router.post(f"{API}/gates/{{gate_id}}/enrolment", tags=["gates"], responses={**COMMON, **errors(404)})
async def reissue(gate_id: GateId, request: Request, p: Principal = admin) -> dict[str, Any]:
    token, expires = await store_of(request).reissue_enrolment(p, gate_id)
    return {"gate_id": gate_id, "enrolment_token": token, "expires_at": expires}


@router.post(f"{API}/enroll", tags=["gates"], responses=errors(400, 401, 422, 503))
async def enroll(body: EnrollIn, request: Request) -> dict[str, Any]:
    store = store_of(request)
    gate_id, token = await store.enroll_gate(body.token)
    return {"gate_id": gate_id, "token": token, "event": await store.event_info(), "gate": await store.gate(gate_id)}


@router.post(f"{API}/gates/{{gate_id}}/journal", tags=["gates"], responses={**COMMON, **errors(404, 413)})
async def ingest(gate_id: GateId, request: Request) -> dict[str, Any]:
    """A batch of the gate's journal (``{"entries": [...]}``), stored idempotently."""
    metrics = request.app.state.metrics
    store = await gate_auth(request, gate_id)
    body = await request.body()
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise BadInput("body is not JSON (or nested too deeply)", code="bad_json") from None
    raw = doc.get("entries") if isinstance(doc, dict) else doc
    if not isinstance(raw, list):
        raise BadInput("body must be {\"entries\": [...]} or a list of entries", code="bad_batch")
    if len(raw) > MAX_BATCH:
        raise TooLarge(f"at most {MAX_BATCH} entries per batch", code="batch_too_large")
    entries = []
    for i, d in enumerate(raw):
        try:
            entries.append(JournalEntry.from_wire(d))
        except (KeyError, ValueError, TypeError) as exc:
            raise BadInput(f"entry {i}: {type(exc).__name__}: {exc}", code="bad_entry", index=i) from None
    started = time.perf_counter()
    result = await store.ingest(gate_id, entries)
    metrics.ingest_seconds.observe(time.perf_counter() - started)
    metrics.ingested.inc(len(result.stored))
    metrics.duplicates.inc(result.duplicates)
    return {**result.to_json(), "hub_epoch": await store.hub_epoch()}


@router.get(f"{API}/gates/{{gate_id}}/journal/high-water", tags=["gates"], responses={**COMMON, **errors(404)})
async def high_water(gate_id: GateId, request: Request) -> dict[str, Any]:
    store = await gate_auth(request, gate_id)
    return {"gate_id": gate_id, "high_water": await store.journal_high_water(gate_id),
            "hub_epoch": await store.hub_epoch(), "backed_up_high_water": await store.backed_up_high_water(gate_id)}


