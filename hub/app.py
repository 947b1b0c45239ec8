"""The hub's HTTP API: a FastAPI app over one :class:`hub.store.HubStore`.

``create_app(data_dir)`` builds the app; the store opens in the lifespan and lives on
``app.state.store`` so other packages can mount routes on the same app (the sync layer adds
its websocket route ``/ws/gate``). Every error is JSON ``{"error": {"code", "message"}}``
with a stable code; bad input is a 4xx, never a 500.

Roles (bearer tokens): ``viewer`` reads, ``supervisor`` also revokes and resolves conflicts,
``admin`` also imports, enrols gates and manages keys and tokens. Gates authenticate with
their own token and may only post their own journal.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub import credentials
from hub.errors import BadInput, Conflict, Forbidden, HubError, NotFound, TooLarge, Unauthorized
from hub.importer import detect_format, import_tickets
from hub.manifest_routes import add_manifest_routes
from hub.store import HubStore, Principal
from tickets.entry import JournalEntry
from tickets.rotating import STEP_S

log = logging.getLogger(__name__)

API = "/api/v1"
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_IMPORT_BYTES = 512 * 1024 * 1024
MAX_BATCH = 5000
UI_DIR = Path(__file__).resolve().parent.parent / "ui"
_BACKUP_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")


# --- request bodies -----------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ZoneIn(_Body):
    name: str = Field(min_length=1, max_length=100)
    zone_id: int | None = Field(default=None, ge=1, le=65535)
    capacity: int | None = Field(default=None, ge=0)


class PolicyIn(_Body):
    policy_id: int = Field(ge=1, le=255)
    preset: str
    wait_s: float = Field(default=600.0, ge=0)
    max_entries: int | None = Field(default=None, ge=1)


class GateIn(_Body):
    name: str = Field(min_length=1, max_length=100)
    zones: list[int] = Field(default_factory=list)
    ttl_s: float = Field(default=24 * 3600.0, gt=0, le=30 * 86400)


class GatePatch(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    zones: list[int] | None = None


class EnrollIn(_Body):
    token: str = Field(min_length=1, max_length=200)


class UpgradeIn(_Body):
    zone_id: int | None = Field(default=None, ge=1, le=65535)
    seat: str | None = Field(default=None, max_length=64)
    policy_id: int | None = Field(default=None, ge=1, le=255)


class TransferIn(_Body):
    holder: str = Field(min_length=1, max_length=200)


class ResolveIn(_Body):
    resolution: str = Field(min_length=1, max_length=1000)


class TokenIn(_Body):
    name: str = Field(min_length=1, max_length=100)
    role: str


class EmergencyIn(_Body):
    active: bool
    reason: str = Field(min_length=1, max_length=500)
    gates: list[str] | None = None


class BackupIn(_Body):
    name: str | None = None


# --- body size limit (pure ASGI, so it also covers chunked uploads) -----------------------


class BodyLimit:
    """Refuse bodies over a limit with 413 before they are read into memory."""

    def __init__(self, app: ASGIApp, default: int, overrides: dict[str, int]) -> None:
        self.app = app
        self.default = default
        self.overrides = overrides

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.overrides.get(scope["path"], self.default)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
                if length < 0 or length > limit:
                    await _send_error(send, TooLarge(f"request body over {limit} bytes", code="body_too_large"))
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise TooLarge(f"request body over {limit} bytes", code="body_too_large")
            return message

        await self.app(scope, limited, send)


async def _send_error(send: Send, err: HubError) -> None:
    resp = JSONResponse(err.to_json(), status_code=err.status)
    await send({"type": "http.response.start", "status": resp.status_code, "headers": resp.raw_headers})
    await send({"type": "http.response.body", "body": resp.body})


# --- metrics --------------------------------------------------------------------------------


class HubMetrics:
    """Prometheus metrics on a registry of this app's own (several hubs may share a process in tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ingested = Counter("gatehouse_hub_ingested_entries", "journal entries newly stored", registry=r)
        self.duplicates = Counter("gatehouse_hub_duplicate_entries", "journal entries re-sent and ignored", registry=r)
        self.ingest_seconds = Histogram(
            "gatehouse_hub_ingest_batch_seconds", "time to store one journal batch", registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.ingest_queue = Gauge("gatehouse_hub_ingest_queue", "journal batches waiting or being stored", registry=r)
        self.gates_connected = Gauge("gatehouse_hub_gates_connected", "gates connected (or heard from in 60 s)", registry=r)
        self.conflicts_open = Gauge("gatehouse_hub_conflicts_open", "conflicts waiting for a supervisor", registry=r)
        self.change_seq = Gauge("gatehouse_hub_change_seq", "latest hub sequence number", registry=r)
        self.imported_rows = Counter("gatehouse_hub_imported_rows", "ticket rows read by imports", registry=r)
        self.errors = Counter("gatehouse_hub_http_errors", "error responses by code", ["code"], registry=r)


# --- the app ----------------------------------------------------------------------------------


def create_app(data_dir: Path, *, clock: Callable[[], float] = time.time,
               max_body_bytes: int = MAX_BODY_BYTES, max_import_bytes: int = MAX_IMPORT_BYTES,
               sync: bool = True, protocol: tuple[int, int] | None = None) -> FastAPI:
    """The hub app for the venue in ``data_dir`` (created by ``gatehouse hub init``).

    With ``sync`` (default) the gate websocket ``/ws/gate`` is mounted when the sync
    package is installed (:func:`hub.sync_adapter.attach_sync`).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = await HubStore.open(data_dir, clock=clock)
        for hook in app.state.on_store_open:
            await hook(app.state.store)
        try:
            yield
        finally:
            await app.state.store.close()

    app = FastAPI(title="gatehouse hub", version="1", lifespan=lifespan,
                  description="Tickets, gates, validations, conflicts and stats for one venue.")
    metrics = HubMetrics()
    app.state.metrics = metrics
    app.state.data_dir = data_dir
    #: gate ids with a live connection (HTTP-only hubs; the sync registry is asked too)
    app.state.connected_gates = set()
    #: coroutines called with the store once it is open (the sync adapter wires its listeners)
    app.state.on_store_open = []
    app.add_middleware(BodyLimit, default=max_body_bytes, overrides={f"{API}/tickets/import": max_import_bytes})

    def store_of(request: Request) -> HubStore:
        return request.app.state.store  # type: ignore[no-any-return]

    # --- errors ----------------------------------------------------------------------------

    @app.exception_handler(HubError)
    async def hub_error(_request: Request, exc: HubError) -> JSONResponse:
        metrics.errors.labels(exc.code).inc()
        if exc.status >= 500:
            log.error("%s: %s", exc.code, exc.message)
        else:
            log.info("refused: %s: %s", exc.code, exc.message)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors()[:20]:
            loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            problems.append({"field": loc, "message": e.get("msg", "")})
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems) or "invalid request"
        metrics.errors.labels("invalid_request").inc()
        return JSONResponse({"error": {"code": "invalid_request", "message": message, "problems": problems}},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, f"http_{exc.status_code}")
        return JSONResponse({"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code)

    @app.exception_handler(sqlite3.OperationalError)
    async def storage(_request: Request, exc: sqlite3.OperationalError) -> JSONResponse:
        log.error("storage error: %s", exc)
        metrics.errors.labels("storage_unavailable").inc()
        return JSONResponse({"error": {"code": "storage_unavailable", "message": f"database: {exc}"}},
                            status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        metrics.errors.labels("internal_error").inc()
        return JSONResponse({"error": {"code": "internal_error", "message": type(exc).__name__}}, status_code=500)

    # --- auth -------------------------------------------------------------------------------

    def bearer(request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing bearer token (Authorization: Bearer …)", code="missing_token")
        return token.strip()

    def require(role: str) -> Callable[[Request], Awaitable[Principal]]:
        async def dep(request: Request) -> Principal:
            principal = await store_of(request).authenticate(bearer(request))
            if principal is None:
                raise Unauthorized("unknown or revoked token", code="bad_token")
            if not principal.may(role):
                raise Forbidden(f"this needs the {role} role; the token has {principal.role}", code="role_required")
            return principal
        return dep

    viewer = Depends(require("viewer"))
    supervisor = Depends(require("supervisor"))
    admin = Depends(require("admin"))

    # --- health and metrics --------------------------------------------------------------------

    @app.get("/healthz", tags=["ops"])
    async def healthz(request: Request) -> dict[str, Any]:
        store = store_of(request)
        return {"status": "ok", "hub_epoch": await store.hub_epoch(), "current_seq": await store.current_seq()}

    @app.get("/metrics", tags=["ops"])
    async def metrics_route(request: Request) -> Response:
        store = store_of(request)
        now = clock()
        recent = {g["gate_id"] for g in await store.gates() if g["last_seen"] and now - g["last_seen"] < 60}
        live = set(request.app.state.connected_gates)
        registry = getattr(request.app.state, "sync_registry", None)
        if registry is not None:
            live.update(registry.connected())
        metrics.gates_connected.set(len(recent | live))
        metrics.conflicts_open.set(await store.open_conflict_count())
        metrics.change_seq.set(await store.current_seq())
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # --- event, zones, policies -----------------------------------------------------------------

    @app.get(f"{API}/event", tags=["event"])
    async def event(request: Request, _p: Principal = viewer) -> dict[str, Any]:
        return await store_of(request).event_info()

    @app.get(f"{API}/zones", tags=["event"])
    async def zones(request: Request, _p: Principal = viewer) -> list[dict[str, Any]]:
        return await store_of(request).zones()

    @app.post(f"{API}/zones", tags=["event"])
    async def upsert_zone(body: ZoneIn, request: Request, p: Principal = admin) -> dict[str, Any]:
        return await store_of(request).upsert_zone(p, body.name, zone_id=body.zone_id, capacity=body.capacity)

    @app.get(f"{API}/policies", tags=["event"])
    async def policies(request: Request, _p: Principal = viewer) -> list[dict[str, Any]]:
        return await store_of(request).policies()

    @app.post(f"{API}/policies", tags=["event"])
    async def upsert_policy(body: PolicyIn, request: Request, p: Principal = admin) -> dict[str, Any]:
        return await store_of(request).upsert_policy(p, body.policy_id, body.preset, wait_s=body.wait_s,
                                                     max_entries=body.max_entries)

    @app.post(f"{API}/keys/rotate", tags=["event"])
    async def rotate_key(request: Request, p: Principal = admin) -> dict[str, Any]:
        store = store_of(request)
        kid = await store.rotate_key(p)
        return {"signing_key_id": kid, "keys": store.keyring().to_list()}

    @app.post(f"{API}/tokens", tags=["auth"])
    async def create_token(body: TokenIn, request: Request, p: Principal = admin) -> dict[str, Any]:
        token = await store_of(request).create_token(p, body.name, body.role)
        return {"name": body.name, "role": body.role, "token": token}

    # --- tickets --------------------------------------------------------------------------------

    @app.post(f"{API}/tickets/import", tags=["tickets"])
    async def import_route(request: Request, p: Principal = admin, format: str | None = None) -> dict[str, Any]:
        store = store_of(request)
        ctype = request.headers.get("content-type", "")
        name = ""
        if ctype.startswith("multipart/form-data"):
            form = await request.form(max_part_size=max_import_bytes)
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
        # parsing and writing a large file is seconds of CPU: keep it off the event loop
        report = await asyncio.to_thread(import_tickets, store.path, data, fmt, clock=clock)
        metrics.imported_rows.inc(report.rows)
        await store.changed()
        await store.record_audit(p, "import", name or "body", {k: v for k, v in report.to_json().items()
                                                                 if k != "errors"})
        return report.to_json()

    @app.get(f"{API}/tickets", tags=["tickets"])
    async def search(request: Request, _p: Principal = viewer, number: str | None = None,
                     holder: str | None = None, seat: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        found = await store_of(request).search_tickets(number_prefix=number, holder=holder, seat=seat, limit=limit)
        return [_public(t) for t in found]

    @app.get(f"{API}/tickets/{{ticket_id}}", tags=["tickets"])
    async def ticket(ticket_id: int, request: Request, _p: Principal = viewer) -> dict[str, Any]:
        return _public(await store_of(request).ticket(ticket_id))

    async def credential_for(request: Request, ticket_id: int) -> tuple[str, dict[str, Any]]:
        store = store_of(request)
        t = await store.ticket(ticket_id)
        if t["status"] != "valid":
            raise Conflict(f"ticket {ticket_id} is {t['status']}; no credential is issued for it",
                           code="ticket_not_valid")
        key = await store.signing_key()
        event_id = int((await store.meta())["event_id"])
        return credentials.credential_text(key, event_id, t), t

    @app.get(f"{API}/tickets/{{ticket_id}}/credential", tags=["tickets"])
    async def credential(ticket_id: int, request: Request, _p: Principal = admin) -> dict[str, Any]:
        text, t = await credential_for(request, ticket_id)
        return {"ticket_id": ticket_id, "serial": t["serial"], "text": text,
                "rotating": t["rotating_secret"] is not None, "fan_page": f"/t/{t['opaque']}" if t["opaque"] else None}

    @app.get(f"{API}/tickets/{{ticket_id}}/qr.png", tags=["tickets"], response_class=Response)
    async def qr(ticket_id: int, request: Request, _p: Principal = admin) -> Response:
        text, _t = await credential_for(request, ticket_id)
        png = await asyncio.to_thread(credentials.qr_png, text)
        return Response(png, media_type="image/png")

    @app.get(f"{API}/tickets/{{ticket_id}}/ticket.pdf", tags=["tickets"], response_class=Response)
    async def pdf(ticket_id: int, request: Request, _p: Principal = admin) -> Response:
        store = store_of(request)
        text, t = await credential_for(request, ticket_id)
        meta = await store.meta()
        zone_name = next((z["name"] for z in await store.zones() if z["zone_id"] == t["zone_id"]), str(t["zone_id"]))
        body = await asyncio.to_thread(credentials.ticket_pdf, text, t, event_name=meta.get("event_name", ""),
                                       zone_name=zone_name)
        return Response(body, media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="ticket-{t["number"]}.pdf"'})

    @app.post(f"{API}/tickets/{{ticket_id}}/revoke", tags=["tickets"])
    async def revoke(ticket_id: int, request: Request, p: Principal = supervisor) -> dict[str, Any]:
        return _public(await store_of(request).revoke_ticket(p, ticket_id))

    @app.post(f"{API}/tickets/{{ticket_id}}/reinstate", tags=["tickets"])
    async def reinstate(ticket_id: int, request: Request, p: Principal = supervisor) -> dict[str, Any]:
        return _public(await store_of(request).reinstate_ticket(p, ticket_id))

    @app.post(f"{API}/tickets/{{ticket_id}}/upgrade", tags=["tickets"])
    async def upgrade(ticket_id: int, body: UpgradeIn, request: Request, p: Principal = supervisor) -> dict[str, Any]:
        return _public(await store_of(request).upgrade_ticket(p, ticket_id, zone_id=body.zone_id, seat=body.seat,
                                                              policy_id=body.policy_id))

    @app.post(f"{API}/tickets/{{ticket_id}}/transfer", tags=["tickets"])
    async def transfer(ticket_id: int, body: TransferIn, request: Request, p: Principal = supervisor) -> dict[str, Any]:
        return _public(await store_of(request).transfer_ticket(p, ticket_id, body.holder))

    @app.get(f"{API}/changes", tags=["sync"])
    async def changes(request: Request, _p: Principal = viewer, since: int = 0, limit: int = 1000) -> dict[str, Any]:
        store = store_of(request)
        got = await store.changes_since(since, limit)
        return {"current_seq": await store.current_seq(), "changes": [c.to_json() for c in got]}

    # --- gates --------------------------------------------------------------------------------

    @app.get(f"{API}/gates", tags=["gates"])
    async def gates(request: Request, _p: Principal = viewer) -> list[dict[str, Any]]:
        connected = set(request.app.state.connected_gates)
        registry = getattr(request.app.state, "sync_registry", None)
        if registry is not None:
            connected.update(registry.connected())
        return [{**g, "connected": g["gate_id"] in connected} for g in await store_of(request).gates()]

    @app.post(f"{API}/gates", tags=["gates"])
    async def create_gate(body: GateIn, request: Request, p: Principal = admin) -> dict[str, Any]:
        gate_id, token, expires = await store_of(request).create_gate(p, body.name, body.zones, ttl_s=body.ttl_s)
        return {"gate_id": gate_id, "enrolment_token": token, "expires_at": expires}

    @app.patch(f"{API}/gates/{{gate_id}}", tags=["gates"])
    async def update_gate(gate_id: str, body: GatePatch, request: Request, p: Principal = admin) -> dict[str, Any]:
        return await store_of(request).update_gate(p, gate_id, name=body.name, zones=body.zones)

    @app.post(f"{API}/gates/{{gate_id}}/revoke", tags=["gates"])
    async def revoke_gate(gate_id: str, request: Request, p: Principal = admin) -> dict[str, Any]:
        return await store_of(request).revoke_gate(p, gate_id)

    @app.post(f"{API}/gates/{{gate_id}}/enrolment", tags=["gates"])
    async def reissue(gate_id: str, request: Request, p: Principal = admin) -> dict[str, Any]:
        token, expires = await store_of(request).reissue_enrolment(p, gate_id)
        return {"gate_id": gate_id, "enrolment_token": token, "expires_at": expires}

    @app.post(f"{API}/enroll", tags=["gates"])
    async def enroll(body: EnrollIn, request: Request) -> dict[str, Any]:
        store = store_of(request)
        gate_id, token = await store.enroll_gate(body.token)
        return {"gate_id": gate_id, "token": token, "event": await store.event_info(),
                "gate": await store.gate(gate_id)}

    async def gate_auth(request: Request, gate_id: str) -> HubStore:
        store = store_of(request)
        authed = await store.authenticate_gate(bearer(request))
        if authed is None:
            raise Unauthorized("unknown or revoked gate token", code="bad_gate_token")
        if authed != gate_id:
            raise Forbidden(f"this token belongs to gate {authed!r}", code="wrong_gate")
        return store

    @app.post(f"{API}/gates/{{gate_id}}/journal", tags=["gates"])
    async def ingest(gate_id: str, request: Request) -> dict[str, Any]:
        metrics.ingest_queue.inc()
        try:
            store = await gate_auth(request, gate_id)
            try:
                doc = await request.json()
            except ValueError:
                raise BadInput("body is not JSON", code="bad_json") from None
            raw = doc.get("entries") if isinstance(doc, dict) else doc
            if not isinstance(raw, list):
                raise BadInput("body must be {\"entries\": [...]} or a list of entries", code="bad_batch")
            if len(raw) > MAX_BATCH:
                raise TooLarge(f"at most {MAX_BATCH} entries per batch", code="batch_too_large")
            entries = []
            for i, d in enumerate(raw):
                try:
                    if not isinstance(d, dict):
                        raise TypeError("not an object")
                    entries.append(JournalEntry.from_wire(d))
                except (KeyError, ValueError, TypeError) as exc:
                    raise BadInput(f"entry {i}: {type(exc).__name__}: {exc}", code="bad_entry", index=i) from None
            started = time.perf_counter()
            result = await store.ingest(gate_id, entries)
            metrics.ingest_seconds.observe(time.perf_counter() - started)
            metrics.ingested.inc(len(result.stored))
            metrics.duplicates.inc(result.duplicates)
            return {**result.to_json(), "hub_epoch": await store.hub_epoch()}
        finally:
            metrics.ingest_queue.dec()

    @app.get(f"{API}/gates/{{gate_id}}/journal/high-water", tags=["gates"])
    async def high_water(gate_id: str, request: Request) -> dict[str, Any]:
        store = await gate_auth(request, gate_id)
        return {"gate_id": gate_id, "high_water": await store.journal_high_water(gate_id),
                "hub_epoch": await store.hub_epoch(),
                "backed_up_high_water": await store.backed_up_high_water(gate_id)}

    # --- control room ----------------------------------------------------------------------------

    @app.get(f"{API}/emergency", tags=["control"])
    async def emergency(request: Request, _p: Principal = viewer) -> dict[str, Any]:
        return await store_of(request).emergency()

    @app.post(f"{API}/emergency", tags=["control"])
    async def set_emergency(body: EmergencyIn, request: Request, p: Principal = supervisor) -> dict[str, Any]:
        return await store_of(request).set_emergency(p, body.active, body.reason, body.gates)

    # --- validations, conflicts, stats, audit ------------------------------------------------------

    @app.get(f"{API}/validations", tags=["validations"])
    async def validations(request: Request, _p: Principal = viewer, ticket_id: int | None = None,
                          gate_id: str | None = None, since: float | None = None, until: float | None = None,
                          reason: str | None = None, kind: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        return await store_of(request).validations(ticket_id=ticket_id, gate_id=gate_id, since=since, until=until,
                                                   reason=reason, kind=kind, limit=limit)

    @app.get(f"{API}/conflicts", tags=["validations"])
    async def conflicts(request: Request, _p: Principal = viewer, open: bool = False,
                        limit: int = 500) -> list[dict[str, Any]]:
        return await store_of(request).conflicts(open_only=open, limit=limit)

    @app.post(f"{API}/conflicts/{{conflict_id}}/resolve", tags=["validations"])
    async def resolve(conflict_id: int, body: ResolveIn, request: Request, p: Principal = supervisor) -> dict[str, Any]:
        return await store_of(request).resolve_conflict(p, conflict_id, body.resolution)

    @app.get(f"{API}/stats", tags=["validations"])
    async def stats(request: Request, _p: Principal = viewer, since: float | None = None) -> dict[str, Any]:
        return await store_of(request).stats(since=since)

    @app.get(f"{API}/audit", tags=["ops"])
    async def audit(request: Request, _p: Principal = admin, limit: int = 200,
                    action: str | None = None) -> list[dict[str, Any]]:
        return await store_of(request).audit_log(limit=limit, action=action)

    @app.post(f"{API}/backup", tags=["ops"])
    async def backup(request: Request, body: BackupIn | None = None, p: Principal = admin) -> dict[str, Any]:
        name = (body.name if body else None) or time.strftime("hub-%Y%m%d-%H%M%S.db", time.gmtime(clock()))
        if not _BACKUP_NAME.fullmatch(name) or name.startswith("."):
            raise BadInput("backup name may hold only letters, digits and ._-", code="bad_name")
        return await store_of(request).backup(p, data_dir / "backups" / name)

    # --- the fan's ticket page ------------------------------------------------------------------------

    @app.get(f"{API}/fan/{{opaque}}", tags=["fan"])
    async def fan_data(opaque: str, request: Request) -> dict[str, Any]:
        return await _fan(request, opaque)

    async def _fan(request: Request, opaque: str) -> dict[str, Any]:
        store = store_of(request)
        t = await store.ticket_by_opaque(opaque)
        if t["status"] != "valid":
            raise Conflict(f"this ticket is {t['status']}", code="ticket_not_valid")
        key = await store.signing_key()
        meta = await store.meta()
        zone = next((z["name"] for z in await store.zones() if z["zone_id"] == t["zone_id"]), "")
        return {"static": credentials.credential_text(key, int(meta["event_id"]), t),
                "secret": t["rotating_secret"], "step_s": STEP_S, "event": meta.get("event_name", ""),
                "holder": t["holder"], "seat": t["seat"], "zone": zone, "number": t["number"],
                "serial": t["serial"]}

    @app.get("/t/{opaque}", response_class=HTMLResponse, include_in_schema=False)
    async def fan_page(opaque: str, request: Request) -> HTMLResponse:
        from hub.fanpage import render_fan_page

        try:
            data = await _fan(request, opaque)
        except (NotFound, Conflict) as exc:
            return HTMLResponse(render_fan_page(None, error=exc.message), status_code=exc.status)
        return HTMLResponse(render_fan_page(data))

    add_manifest_routes(app)
    from hub.dashboard import add_dashboard_routes

    add_dashboard_routes(app)
    app.mount("/static", StaticFiles(directory=UI_DIR / "static", check_dir=False), name="static")
    if sync:
        from hub.sync_adapter import attach_sync

        attach_sync(app, protocol=protocol)
    return app


def _public(t: dict[str, Any]) -> dict[str, Any]:
    """A ticket as the API shows it: the rotating secret stays on the hub (and the fan's phone)."""
    out = {k: v for k, v in t.items() if k != "rotating_secret"}
    out["rotating"] = t.get("rotating_secret") is not None
    return out
