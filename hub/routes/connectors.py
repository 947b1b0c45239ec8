"""Ticket-shop connectors: their state, the check-in upload queue, syncs, and the shop's webhook.

The webhook is the one route here without a bearer token: the shop cannot hold one. It is
authenticated by the connector's webhook secret, sent as the password of HTTP Basic auth
(see :mod:`hub.connectors.pretix`), compared in constant time against its stored hash. A
wrong or missing secret is 401 and logged with the caller's address; the body is read only
after that, and only as a trigger to sync (never as data).
"""
from __future__ import annotations

import base64
import binascii
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from hub.auth import admin, store_of, supervisor
from hub.connectors.base import ConnectorError, WebhookRefused
from hub.errors import BadInput, HubError, TooLarge
from hub.routes import (
    API,
    COMMON,
    MAX_ID,
    SMALL_PAGE,
    Limit,
    SmallLimit,
    errors,
    keyset_page,
    set_next,
)
from hub.store import Principal
from hub.store.uploads import STATUSES

log = logging.getLogger(__name__)
router = APIRouter()

ConnectorId = Annotated[str, Path(pattern="^[a-z][a-z0-9_-]{0,31}$")]
#: a webhook body larger than this is refused unread (pretix's are ~200 bytes)
MAX_WEBHOOK_BYTES = 64 * 1024


class NotRunning(HubError):
    status = 503


def _service(request: Request) -> Any:
    return getattr(request.app.state, "connector_service", None)


@router.get(f"{API}/connectors", tags=["connectors"], responses=COMMON)
async def connectors(request: Request, response: Response, _p: Principal = supervisor,
                     after: Annotated[str | None, Query(max_length=32, description="last connector id of the previous"
                                                        " page")] = None,
                     limit: SmallLimit = SMALL_PAGE) -> list[dict[str, Any]]:
    """Connectors by id, each with its last sync, last error and upload queue counts (never its
    token). A ``Link: rel="next"`` header when more follow."""
    store = store_of(request)
    counts = await store.upload_counts()
    service = _service(request)
    out = []
    for rec in await store.connectors():
        d = rec.public()
        d["uploads_queue"] = counts.get(rec.connector_id, dict.fromkeys(STATUSES, 0))
        d["process"] = dict(service.counters) if service is not None else None
        out.append(d)
    return keyset_page(request, response, out, "connector_id", after, limit)


@router.get(f"{API}/connectors/{{connector_id}}/uploads", tags=["connectors"], responses=errors(400, 401, 403, 404, 422, 503))
async def uploads(connector_id: ConnectorId, request: Request, response: Response, _p: Principal = supervisor,
                  status: Annotated[str | None, Query(pattern="^(pending|claimed|done|refused|skipped)$")] = None,
                  after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0, limit: Limit = 100) -> list[dict[str, Any]]:
    """The upload queue, oldest first; ``status=refused`` lists what the shop refused, with its reason."""
    store = store_of(request)
    await store.connector(connector_id)
    got = await store.uploads(connector_id, status=status, after=after, limit=limit)
    if len(got) == limit:
        set_next(request, response, after=got[-1]["upload_id"])
    return got


@router.post(f"{API}/connectors/{{connector_id}}/sync", tags=["connectors"], status_code=202,
             responses=errors(400, 401, 403, 404, 422, 503))
async def sync_now(connector_id: ConnectorId, request: Request, _p: Principal = admin) -> dict[str, Any]:
    """Ask this hub process to sync the connector now (the serving loop does it)."""
    await store_of(request).connector(connector_id)
    service = _service(request)
    if service is None:
        raise NotRunning("this hub process runs no connectors", code="connectors_not_running")
    service.trigger(connector_id)
    return {"connector_id": connector_id, "sync": "started"}


def _basic_password(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, sep, password = decoded.partition(":")
    return password if sep else None


@router.post(f"{API}/connectors/{{connector_id}}/webhook", tags=["connectors"], status_code=202,
             responses=errors(400, 401, 404, 413, 422, 503))
async def webhook(connector_id: ConnectorId, request: Request) -> Any:
    """The shop's notification (authenticated by the webhook secret in HTTP Basic auth): sync now."""
    store = store_of(request)
    peer = request.client.host if request.client else "?"
    password = _basic_password(request)
    if password is None or not await store.webhook_secret_ok(connector_id, password):
        log.warning("webhook for %s refused from %s: %s", connector_id, peer,
                    "no Basic credentials" if password is None else "wrong secret")
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.errors.labels("webhook_refused").inc()
        return JSONResponse({"error": {"code": "bad_webhook_secret",
                                       "message": "webhook secret missing or wrong (HTTP Basic password)"}},
                            status_code=401, headers={"WWW-Authenticate": 'Basic realm="gatehouse webhook"'})
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise TooLarge(f"webhook body over {MAX_WEBHOOK_BYTES} bytes", code="body_too_large")
    rec = await store.connector(connector_id)
    from hub.connectors.service import build

    try:
        notice = build(rec).parse_webhook(request.headers, body)
    except (WebhookRefused, ConnectorError) as exc:
        log.warning("webhook for %s from %s refused: %s", connector_id, peer, exc.message)
        raise BadInput(exc.message, code=exc.code) from None
    service = _service(request)
    if service is not None:
        service.trigger(connector_id, notice)
    log.info("webhook for %s: %s %s; syncing", connector_id, notice.action, notice.ref)
    return {"accepted": True, "action": notice.action, "ref": notice.ref}

