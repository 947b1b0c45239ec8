"""The control room: emergency, commands to gates, backups, the audit log, event settings."""
from __future__ import annotations

import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from hub.auth import admin, store_of, supervisor, viewer
from hub.errors import BadInput
from hub.routes import API, COMMON, MAX_ID, Body, Limit, errors, set_next
from hub.store import Principal

router = APIRouter()

_BACKUP_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
GateList = list[Annotated[str, Field(min_length=1, max_length=64)]]


class EmergencyIn(Body):
    active: bool
    reason: str = Field(min_length=1, max_length=500)
    gates: GateList | None = Field(default=None, max_length=1000)


class CommandIn(Body):
    name: str = Field(pattern="^(close|open|refresh_manifest)$")
    reason: str = Field(default="", max_length=500)
    gates: GateList | None = Field(default=None, max_length=1000)


class BackupIn(Body):
    name: str | None = Field(default=None, max_length=100)


@router.get(f"{API}/emergency", tags=["control"], responses=COMMON)
async def emergency(request: Request, _p: Principal = viewer) -> dict[str, Any]:
    return await store_of(request).emergency()


@router.post(f"{API}/emergency", tags=["control"], responses=COMMON)
async def set_emergency(body: EmergencyIn, request: Request, p: Principal = supervisor) -> dict[str, Any]:
    return await store_of(request).set_emergency(p, body.active, body.reason, body.gates)


@router.post(f"{API}/commands", tags=["control"], responses=COMMON)
async def command(body: CommandIn, request: Request, p: Principal = supervisor) -> dict[str, Any]:
    """Close or open gates, or make them fetch their manifest now; reaches every hub process's gates."""
    return await store_of(request).send_command(p, body.name, body.reason, body.gates)


@router.get(f"{API}/audit", tags=["ops"], responses=COMMON)
async def audit(request: Request, response: Response, _p: Principal = admin, limit: Limit = 200,
                action: Annotated[str | None, Query(max_length=40)] = None,
                before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> list[dict[str, Any]]:
    got = await store_of(request).audit_log(limit=limit, action=action, before=before)
    if len(got) == limit:
        set_next(request, response, before=got[-1]["id"])
    return got


@router.post(f"{API}/backup", tags=["ops"], responses={**COMMON, **errors(409)})
async def backup(request: Request, body: BackupIn | None = None, p: Principal = admin) -> dict[str, Any]:
    store = store_of(request)
    name = (body.name if body else None) or time.strftime("hub-%Y%m%d-%H%M%S.db", time.gmtime(store.clock()))
    if not _BACKUP_NAME.fullmatch(name) or name.startswith("."):
        raise BadInput("backup name may hold only letters, digits and ._-", code="bad_name")
    return await store.backup(p, request.app.state.data_dir / "backups" / name)
