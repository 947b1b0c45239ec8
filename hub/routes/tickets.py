"""Tickets: import, search (paged), one ticket, its credential, QR and PDF, and changes to it."""
from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import Field

from hub import credentials
from hub.auth import admin, store_of, supervisor, viewer
from hub.errors import BadInput, Conflict
from hub.importer import detect_format
from hub.routes import API, COMMON, MAX_ID, Body, Seq, errors, set_next
from hub.store import GATE_KINDS, Principal

router = APIRouter()

#: a ticket in a path: its id or its number
TicketRef = Annotated[str, Path(min_length=1, max_length=64, description="ticket id or ticket number")]
MAX_IMPORT_BYTES = 512 * 1024 * 1024


class UpgradeIn(Body):
    zone_id: int | None = Field(default=None, ge=1, le=65535)
    seat: str | None = Field(default=None, max_length=64)
    policy_id: int | None = Field(default=None, ge=1, le=255)


class TransferIn(Body):
    holder: str = Field(min_length=1, max_length=200)


def public(t: dict[str, Any]) -> dict[str, Any]:
    """A ticket as the API shows it: the rotating secret and the barcode stay on the hub."""
    out = {k: v for k, v in t.items() if k not in ("rotating_secret", "barcode")}
    out["rotating"] = t.get("rotating_secret") is not None
    return out


@router.post(f"{API}/tickets/import", tags=["tickets"], responses={**COMMON, **errors(413)})
async def import_route(request: Request, p: Principal = admin,
                       format: Annotated[str | None, Query(pattern="^(csv|json|jsonl)$")] = None) -> dict[str, Any]:
    store = store_of(request)
    ctype = request.headers.get("content-type", "")
    name = ""
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_part_size=MAX_IMPORT_BYTES)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadInput("multipart import needs a 'file' field", code="missing_file")
        name = upload.filename or ""
        data = await upload.read()
    else:
        data = await request.body()
    if not data.strip():
        raise BadInput("the import is empty", code="empty_file")
    fmt = format or ("json" if "json" in ctype and not name else "") or detect_format(name, data)
    if "ndjson" in ctype or "jsonl" in ctype:
        fmt = format or "jsonl"
    report = await store.import_tickets(p, data, fmt, name=name)
    request.app.state.metrics.imported_rows.inc(report.rows)
    return report.to_json()


@router.get(f"{API}/tickets", tags=["tickets"], responses=COMMON)
async def search(request: Request, response: Response, _p: Principal = viewer,
                 number: Annotated[str | None, Query(max_length=64)] = None,
                 holder: Annotated[str | None, Query(max_length=200)] = None,
                 seat: Annotated[str | None, Query(max_length=64)] = None,
                 zone_id: Annotated[int | None, Query(ge=1, le=65535)] = None,
                 after: Annotated[str | None, Query(max_length=64, description="last number of the previous page")] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
    """Tickets ordered by number; when the page is full a ``Link: rel="next"`` header names the next one."""
    found = await store_of(request).search_tickets(number_prefix=number, holder=holder, seat=seat, zone_id=zone_id,
                                                   limit=limit, after=after)
    if len(found) == limit:
        set_next(request, response, after=found[-1]["number"])
    return [public(t) for t in found]


@router.get(f"{API}/tickets/{{ref}}", tags=["tickets"], responses={**COMMON, **errors(404, 409)})
async def ticket(ref: TicketRef, request: Request, _p: Principal = viewer) -> dict[str, Any]:
    return public(await store_of(request).ticket(ref))


async def credential_for(request: Request, ref: str) -> tuple[str, dict[str, Any]]:
    store = store_of(request)
    t = await store.ticket(ref)
    if t["status"] != "valid":
        raise Conflict(f"ticket {t['number']} is {t['status']}; no credential is issued for it",
                       code="ticket_not_valid")
    key = await store.signing_key()
    event_id = int((await store.meta())["event_id"])
    return credentials.credential_text(key, event_id, t), t


@router.get(f"{API}/tickets/{{ref}}/credential", tags=["tickets"], responses={**COMMON, **errors(404, 409)})
async def credential(ref: TicketRef, request: Request, _p: Principal = admin) -> dict[str, Any]:
    text, t = await credential_for(request, ref)
    return {"ticket_id": t["ticket_id"], "serial": t["serial"], "text": text,
            "rotating": t["rotating_secret"] is not None, "fan_page": f"/t/{t['opaque']}" if t["opaque"] else None}


@router.get(f"{API}/tickets/{{ref}}/qr.png", tags=["tickets"], response_class=Response,
            responses={**COMMON, **errors(404, 409), 200: {"content": {"image/png": {}}}})
async def qr(ref: TicketRef, request: Request, _p: Principal = admin) -> Response:
    text, _t = await credential_for(request, ref)
    png = await asyncio.to_thread(credentials.qr_png, text)
    return Response(png, media_type="image/png")


@router.get(f"{API}/tickets/{{ref}}/ticket.pdf", tags=["tickets"], response_class=Response,
            responses={**COMMON, **errors(404, 409), 200: {"content": {"application/pdf": {}}}})
async def pdf(ref: TicketRef, request: Request, _p: Principal = admin) -> Response:
    store = store_of(request)
    text, t = await credential_for(request, ref)
    meta = await store.meta()
    zone_name = next((z["name"] for z in await store.zones() if z["zone_id"] == t["zone_id"]), str(t["zone_id"]))
    body = await asyncio.to_thread(credentials.ticket_pdf, text, t, event_name=meta.get("event_name", ""),
                                   zone_name=zone_name)
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="ticket-{t["ticket_id"]}.pdf"'})


@router.post(f"{API}/tickets/{{ref}}/revoke", tags=["tickets"], responses={**COMMON, **errors(404, 409)})
async def revoke(ref: TicketRef, request: Request, p: Principal = supervisor) -> dict[str, Any]:
    return public(await store_of(request).revoke_ticket(p, ref))


@router.post(f"{API}/tickets/{{ref}}/reinstate", tags=["tickets"], responses={**COMMON, **errors(404, 409)})
async def reinstate(ref: TicketRef, request: Request, p: Principal = supervisor) -> dict[str, Any]:
    return public(await store_of(request).reinstate_ticket(p, ref))


@router.post(f"{API}/tickets/{{ref}}/upgrade", tags=["tickets"], responses={**COMMON, **errors(404, 409)})
async def upgrade(ref: TicketRef, body: UpgradeIn, request: Request, p: Principal = supervisor) -> dict[str, Any]:
    return public(await store_of(request).upgrade_ticket(p, ref, zone_id=body.zone_id, seat=body.seat,
                                                         policy_id=body.policy_id))


@router.post(f"{API}/tickets/{{ref}}/transfer", tags=["tickets"], responses={**COMMON, **errors(404, 409)})
async def transfer(ref: TicketRef, body: TransferIn, request: Request, p: Principal = supervisor) -> dict[str, Any]:
    return public(await store_of(request).transfer_ticket(p, ref, body.holder))


@router.get(f"{API}/changes", tags=["sync"], responses=COMMON)
async def changes(request: Request, response: Response, _p: Principal = viewer, since: Seq = 0,
                  limit: Annotated[int, Query(ge=1, le=MAX_ID)] = 1000) -> dict[str, Any]:
    """The change log after ``since`` (gates' own changes: ticket, zone, policy, entry); paged."""
    store = store_of(request)
    got = await store.changes_since(since, min(limit, 10_000), GATE_KINDS)
    if len(got) == min(limit, 10_000):
        set_next(request, response, since=got[-1].seq)
    return {"current_seq": await store.current_seq(), "changes": [c.to_json() for c in got]}

