"""The hub's HTTP API: a FastAPI app over one :class:`hub.store.HubStore`.

``create_app(data_dir)`` builds the app; the store opens in the lifespan and lives on
``app.state.store`` so other packages can mount routes on the same app (the sync layer adds
its websocket route ``/ws/gate``). Routes live in :mod:`hub.routes` (one router per concern),
who may call them in :mod:`hub.auth`. Every error is JSON ``{"error": {"code", "message"}}``
with a stable code; bad input is a 4xx, never a 500; a database that cannot be reached is a
503 with ``Retry-After``.
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.db import StorageUnavailable
from hub.errors import HubError, TooLarge
from hub.routes import API
from hub.store import HubStore

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_IMPORT_BYTES = 512 * 1024 * 1024
UI_DIR = Path(__file__).resolve().parent.parent / "ui"


class BodyLimit:
    """Refuse bodies over a limit with 413 before they are read into memory (pure ASGI, so it
    also covers chunked uploads)."""

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
        self.feed_failures = Gauge("gatehouse_hub_feed_failures", "change-log reads that failed (retried)", registry=r)
        self.feed_rollbacks = Gauge("gatehouse_hub_feed_rollbacks", "times the change log went back", registry=r)
        self.task_failures = Gauge("gatehouse_hub_task_failures", "background tasks of this process that ended by"
                                   " an exception (each logged with its traceback)", registry=r)


def create_app(data_dir: Path, *, clock: Callable[[], float] = time.time,
               max_body_bytes: int = MAX_BODY_BYTES, max_import_bytes: int = MAX_IMPORT_BYTES,
               sync: bool = True, protocol: tuple[int, int] | None = None,
               pending_expiry_s: float | None = None) -> FastAPI:
    """The hub app for the venue in ``data_dir`` (created by ``gatehouse hub init``).

    With ``sync`` (default) the gate websocket ``/ws/gate`` is mounted and the change feed
    runs (:func:`hub.sync_adapter.attach_sync`).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = await HubStore.open(data_dir, clock=clock)
        for hook in app.state.on_store_open:
            await hook(app.state.store)
        try:
            yield
        finally:
            for hook in getattr(app.state, "on_store_close", []):
                await hook(app.state.store)
            await app.state.store.close()

    # /docs is served from the hub's own copy of Swagger UI (a control room may have no internet)
    app = FastAPI(title="gatehouse hub", version="2", lifespan=lifespan, docs_url=None,
                  description="Tickets, gates, validations, conflicts and stats for one venue.")
    metrics = HubMetrics()
    app.state.metrics = metrics
    app.state.data_dir = data_dir
    #: gate ids with a live connection (HTTP-only hubs; the sync registry is asked too)
    app.state.connected_gates = set()
    #: coroutines called with the store once it is open / before it closes
    app.state.on_store_open = []
    app.state.on_store_close = []
    app.add_middleware(BodyLimit, default=max_body_bytes, overrides={f"{API}/tickets/import": max_import_bytes,
                                                                     f"{API}/tickets/reseat": max_import_bytes})
    add_error_handlers(app, metrics)

    from hub.docs_assets import serve_docs_locally
    from hub.readiness import attach as attach_gate_reporter
    from hub.routes import (
        connectors,
        control,
        event,
        fan,
        forecast,
        gates,
        languages,
        readiness,
        reports,
        seats,
        settings,
        tickets,
    )

    for module in (event, settings, tickets, seats, gates, control, reports, forecast, fan, readiness, languages,
                   connectors):
        app.include_router(module.router)
    attach_gate_reporter(app)
    serve_docs_locally(app)
    from hub.dashboard import add_dashboard_routes
    from hub.manifest_routes import add_manifest_routes

    add_manifest_routes(app)
    add_dashboard_routes(app)
    app.mount("/static", StaticFiles(directory=UI_DIR / "static", check_dir=False), name="static")
    if sync:
        from hub.connectors.service import attach_connectors
        from hub.sync_adapter import attach_sync

        attach_connectors(app)

        attach_sync(app, protocol=protocol, pending_expiry_s=pending_expiry_s)
    return app


def app_from_env() -> FastAPI:
    """The app for ``gatehouse hub serve --workers N`` (uvicorn imports it in each worker process)."""
    import os

    spec = os.environ.get("GATEHOUSE_HUB_APP_PROTOCOL", "")
    protocol = tuple(int(v) for v in spec.split("-")) if spec else None
    expiry = os.environ.get("GATEHOUSE_HUB_APP_PENDING_EXPIRY_S", "")
    return create_app(Path(os.environ["GATEHOUSE_HUB_APP_DATA"]), protocol=protocol,  # type: ignore[arg-type]
                      pending_expiry_s=float(expiry) if expiry else None)


def _methods_at(request: Request) -> set[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def add_error_handlers(app: FastAPI, metrics: HubMetrics) -> None:
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
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, f"http_{exc.status_code}")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # every method some route takes at this path (RFC 9110), not only the first route's
            headers["Allow"] = ", ".join(sorted(_methods_at(request)))
        return JSONResponse({"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code,
                            headers=headers or None)

    @app.exception_handler(StorageUnavailable)
    async def storage(_request: Request, exc: StorageUnavailable) -> JSONResponse:
        log.error("storage unavailable: %s", exc)
        metrics.errors.labels("storage_unavailable").inc()
        return JSONResponse({"error": {"code": "storage_unavailable", "message": f"database: {exc}"}},
                            status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        metrics.errors.labels("internal_error").inc()
        return JSONResponse({"error": {"code": "internal_error", "message": type(exc).__name__}}, status_code=500)
