"""The event: health, metrics, event info, zones, entry policies, signing keys, API tokens."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import Field

from hub.auth import admin, store_of, viewer
from hub.routes import API, COMMON, Body, errors
from hub.store import Principal

router = APIRouter()


class ZoneIn(Body):
    name: str = Field(min_length=1, max_length=100)
    zone_id: int | None = Field(default=None, ge=1, le=65535)
    capacity: int | None = Field(default=None, ge=0, le=10_000_000)


class PolicyIn(Body):
    policy_id: int = Field(ge=1, le=255)
    preset: str = Field(min_length=1, max_length=40)
    wait_s: float = Field(default=600.0, ge=0, le=7 * 86400)
    max_entries: int | None = Field(default=None, ge=1, le=1_000_000)


class TokenIn(Body):
    name: str = Field(min_length=1, max_length=100)
    role: str = Field(min_length=1, max_length=20)


@router.get("/healthz", tags=["ops"], responses=errors(503))
async def healthz(request: Request) -> dict[str, Any]:
    store = store_of(request)
    return {"status": "ok", "hub_epoch": await store.hub_epoch(), "current_seq": await store.current_seq(),
            "database": store.db.backend}


@router.get("/metrics", tags=["ops"], responses=errors(503))
async def metrics_route(request: Request) -> Response:
    store = store_of(request)
    metrics = request.app.state.metrics
    now = store.clock()
    recent = {g["gate_id"] for g in await store.gates() if g["last_seen"] and now - g["last_seen"] < 60}
    live = set(request.app.state.connected_gates)
    registry = getattr(request.app.state, "sync_registry", None)
    if registry is not None:
        live.update(registry.connected())
    metrics.gates_connected.set(len(recent | live))
    metrics.conflicts_open.set(await store.open_conflict_count())
    metrics.change_seq.set(await store.current_seq())
    metrics.ingest_queue.set(store.ingest_queue_length)
    feed = getattr(request.app.state, "change_feed", None)
    if feed is not None:
        metrics.feed_failures.set(feed.failures)
        metrics.feed_rollbacks.set(feed.rollbacks)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get(f"{API}/event", tags=["event"], responses=COMMON)
async def event(request: Request, _p: Principal = viewer) -> dict[str, Any]:
    return await store_of(request).event_info()


@router.get(f"{API}/zones", tags=["event"], responses=COMMON)
async def zones(request: Request, _p: Principal = viewer) -> list[dict[str, Any]]:
    return await store_of(request).zones()


@router.post(f"{API}/zones", tags=["event"], responses={**COMMON, **errors(409)})
async def upsert_zone(body: ZoneIn, request: Request, p: Principal = admin) -> dict[str, Any]:
    return await store_of(request).upsert_zone(p, body.name, zone_id=body.zone_id, capacity=body.capacity)


@router.get(f"{API}/policies", tags=["event"], responses=COMMON)
async def policies(request: Request, _p: Principal = viewer) -> list[dict[str, Any]]:
    return await store_of(request).policies()


@router.post(f"{API}/policies", tags=["event"], responses=COMMON)
async def upsert_policy(body: PolicyIn, request: Request, p: Principal = admin) -> dict[str, Any]:
    return await store_of(request).upsert_policy(p, body.policy_id, body.preset, wait_s=body.wait_s,
                                                 max_entries=body.max_entries)


@router.post(f"{API}/keys/rotate", tags=["event"], responses=COMMON)
async def rotate_key(request: Request, p: Principal = admin) -> dict[str, Any]:
    store = store_of(request)
    kid = await store.rotate_key(p)
    return {"signing_key_id": kid, "keys": store.keyring().to_list()}


@router.post(f"{API}/tokens", tags=["auth"], responses=COMMON)
async def create_token(body: TokenIn, request: Request, p: Principal = admin) -> dict[str, Any]:
    token = await store_of(request).create_token(p, body.name, body.role)
    return {"name": body.name, "role": body.role, "token": token}
