"""What a serving hub runs for its connectors: sync loops and the check-in upload queue.

For each enabled connector in the database (picked up within :data:`REFRESH_S` of ``gatehouse
hub connect``, on any hub process):

* **sync** every ``poll_s`` seconds (the fallback), and at once when the shop's webhook
  arrives: pages from the connector are imported through the hub's importer (idempotent;
  every change goes to the change log, so a cancellation reaches the gates through the change
  feed within a second of the sync reading it), check-ins made at the shop become entry
  state, the cursor moves only after a page is stored, and the event info block for gates is
  refreshed. A failed sync is logged, counted, kept in the connector's status and retried
  with backoff; nothing read is dropped silently (left-out positions are counted by reason);
* **upload** every queued admit to the shop (``hub.store.uploads``): claimed in small batches,
  sent with our nonce, outcomes recorded; a shop that is down is retried with backoff up to
  ``retry_max_s`` for as long as it takes, and the queue survives a hub restart. A refusal
  becomes a hub conflict (``shop_refused``) for supervisors.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hub.connectors.base import ConnectorError, ShopBatch, ShopConnector, WebhookNotice
from hub.connectors.csvdrop import CsvDropConnector
from hub.connectors.pretix import PretixConnector
from hub.db import StorageUnavailable
from hub.importer import REPLACED_PREFIX, detect_format, import_tickets
from hub.store import HubStore, Principal
from hub.store.connectors import ConnectorRecord, ShopCheckin
from hub.store.uploads import ClaimedUpload, UploadResult, claim_uploads, finish_uploads
from sync.tasks import spawn

log = logging.getLogger(__name__)

KINDS: dict[str, type[ShopConnector]] = {"pretix": PretixConnector, "csvdrop": CsvDropConnector}
#: how often the connectors table is re-read (new or changed connectors)
REFRESH_S = 5.0
POLL_S = 10.0
UPLOAD_POLL_S = 0.5
UPLOAD_BATCH = 50
RETRY_MAX_S = 60.0
#: a queued admit of a ticket the shop has not sent yet is looked at again after this
WAIT_FOR_TICKET_S = 5.0


def build(rec: ConnectorRecord) -> ShopConnector:
    cls = KINDS.get(rec.kind)
    if cls is None:
        raise ConnectorError(f"unknown connector kind {rec.kind!r}; known: {', '.join(sorted(KINDS))}",
                             code="unknown_connector")
    return cls(rec.connector_id, rec.config, rec.secret, rec.mapping)


def _actor(connector_id: str) -> Principal:
    return Principal(f"connector:{connector_id}", "admin")


@dataclass
class SyncReport:
    """One sync's outcome (kept in the connector's status, shown by ``gatehouse hub connectors``)."""

    full: bool
    pages: int = 0
    records: int = 0
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    row_errors: int = 0
    errors: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    shop_checkins: int = 0
    conflicts: int = 0
    refs: set[str] = field(default_factory=set)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"full": self.full, "pages": self.pages, "records": self.records, "rows": self.rows,
                "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "row_errors": self.row_errors, "errors": self.errors[:20], "skipped": self.skipped,
                "shop_checkins": self.shop_checkins, "conflicts": self.conflicts, "seconds": round(self.seconds, 3)}


async def _import(store: HubStore, connector_id: str, data: bytes, fmt: str, name: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()

    def committed(_done: int, _total: int) -> None:
        # wake this process's change feed as soon as a chunk is committed (a cancellation is
        # on its way to the gates while the rest of the sync goes on)
        loop.call_soon_threadsafe(store._poke)
    report = await asyncio.to_thread(import_tickets, store.db, data, fmt, clock=store.clock, progress=committed)
    store._poke()
    out = report.to_json()
    if report.created or report.updated or report.error_count:
        await store.record_audit(_actor(connector_id), "import", name,
                                 {k: v for k, v in out.items() if k != "errors"})
    return out


async def apply_batch(store: HubStore, connector: ShopConnector, batch: ShopBatch, report: SyncReport) -> None:
    """Store one page: tickets through the importer, then the shop's check-ins, then the cursor."""
    cid = connector.connector_id
    parts: list[dict[str, Any]] = []
    if batch.tickets:
        data = json.dumps([t.import_row() for t in batch.tickets]).encode()
        parts.append(await _import(store, cid, data, "json", f"{cid} sync"))
    for name, data in batch.files:
        try:
            parts.append(await _import(store, cid, data, detect_format(name, data), name))
        except Exception as exc:  # a whole file refused (not CSV at all): reported with the file
            if isinstance(exc, StorageUnavailable):
                raise
            parts.append({"error": str(exc), "error_count": 1, "errors": [{"line": 0, "reason": str(exc)}]})
    for p in parts:
        report.rows += int(p.get("rows", 0))
        report.created += int(p.get("created", 0))
        report.updated += int(p.get("updated", 0))
        report.unchanged += int(p.get("unchanged", 0))
        report.row_errors += int(p.get("error_count", 0))
        report.errors += [f"line {e['line']}: {e['reason']}" for e in p.get("errors", [])][:20]
    for reason, n in batch.skipped.items():
        report.skipped[reason] = report.skipped.get(reason, 0) + n
    if batch.checkins:
        stored, conflicts = await store.record_shop_checkins(
            cid, [ShopCheckin(c.ref, c.external_id, c.at, c.direction, c.detail) for c in batch.checkins])
        report.shop_checkins += stored
        report.conflicts += len(conflicts)
    await connector.batch_stored(batch, parts)
    if batch.cursor is not None:
        await store.set_connector_state(cid, cursor=batch.cursor)
    report.pages += 1
    report.records += batch.records
    report.refs |= batch.refs


async def sync_connector(store: HubStore, connector: ShopConnector, *, full: bool = False,
                         progress: Callable[[SyncReport], None] | None = None) -> SyncReport:
    """One sync (``full``: the initial import, from the start) — the CLI and the service both use it."""
    started = time.perf_counter()
    rec = await store.connector(connector.connector_id)
    report = SyncReport(full=full or rec.cursor is None)
    pages = connector.initial_import() if report.full else connector.changes_since(rec.cursor)
    try:
        async for batch in pages:
            await apply_batch(store, connector, batch, report)
            if progress is not None:
                progress(report)
        info = await connector.event_info()
    except (ConnectorError, StorageUnavailable) as exc:
        report.seconds = time.perf_counter() - started
        await _record_failure(store, connector.connector_id, str(exc), report)
        raise
    report.seconds = time.perf_counter() - started
    await store.set_connector_state(connector.connector_id, pretix_event=info, status={
        "last_sync_at": time.time(), "last_sync": report.to_json(), "last_error": None, "failing_since": None})
    if report.row_errors or report.skipped:
        log.warning("%s sync: %d rows refused, left out: %s", connector.connector_id, report.row_errors,
                    report.skipped or "nothing")
    return report


async def _record_failure(store: HubStore, connector_id: str, error: str, report: SyncReport) -> None:
    with contextlib.suppress(StorageUnavailable):
        rec = await store.connector(connector_id)
        await store.set_connector_state(connector_id, status={
            "last_error": error[:500], "last_error_at": time.time(), "last_sync_partial": report.to_json(),
            "failing_since": rec.status.get("failing_since") or time.time()})


class ConnectorService:
    """The connectors of one hub process (see the module docstring)."""

    def __init__(self, store: HubStore, *, refresh_s: float = REFRESH_S, upload_poll_s: float = UPLOAD_POLL_S) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self.upload_poll_s = upload_poll_s
        self.who = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.counters: dict[str, int] = {"syncs": 0, "sync_failures": 0, "webhooks": 0, "uploaded": 0,
                                         "refused": 0, "skipped": 0, "retried": 0, "upload_failures": 0}
        self._running: dict[str, tuple[str, ShopConnector, list[asyncio.Task[None]]]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._notices: dict[str, list[WebhookNotice]] = {}
        self._task: asyncio.Task[None] | None = None
        self._refresh = asyncio.Event()

    async def start(self) -> None:
        self._task = spawn(self.run(), "hub-connectors")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for cid in list(self._running):
            await self._stop_one(cid)

    def trigger(self, connector_id: str, notice: WebhookNotice | None = None) -> None:
        """Sync ``connector_id`` now (a webhook arrived, or an operator asked)."""
        if notice is not None:
            self.counters["webhooks"] += 1
            self._notices.setdefault(connector_id, []).append(notice)
        ev = self._wake.get(connector_id)
        if ev is None:
            self._refresh.set()  # a connector this process has not started yet
            ev = self._wake.setdefault(connector_id, asyncio.Event())
        ev.set()

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("connectors: reading their settings failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._refresh.wait(), self.refresh_s)
            self._refresh.clear()

    async def refresh(self) -> None:
        """Start connectors that appeared, restart changed ones, stop removed or disabled ones."""
        recs = {r.connector_id: r for r in await self.store.connectors() if r.enabled}
        for cid in list(self._running):
            if cid not in recs:
                await self._stop_one(cid)
        for cid, rec in recs.items():
            fingerprint = json.dumps([rec.kind, rec.config, rec.mapping, rec.secret, rec.uploads], sort_keys=True)
            running = self._running.get(cid)
            if running is not None and running[0] == fingerprint:
                continue
            if running is not None:
                await self._stop_one(cid)
            try:
                connector = build(rec)
            except (ConnectorError, KeyError, ValueError) as exc:
                log.error("connector %s cannot start: %s", cid, exc)
                continue
            wake = self._wake.setdefault(cid, asyncio.Event())
            wake.set()  # sync at once when (re)started
            tasks = [spawn(self._sync_loop(connector, wake), f"connector-{cid}-sync")]
            if rec.uploads and connector.uploads:
                tasks.append(spawn(self._upload_loop(connector), f"connector-{cid}-upload"))
            self._running[cid] = (fingerprint, connector, tasks)
            log.info("connector %s (%s) running: sync every %.0f s, uploads %s", cid, rec.kind,
                     float(rec.config.get("poll_s", POLL_S)), "on" if len(tasks) > 1 else "off")

    async def _stop_one(self, cid: str) -> None:
        _fp, connector, tasks = self._running.pop(cid)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await connector.close()

    # --- sync ----------------------------------------------------------------------------------

    async def _sync_loop(self, connector: ShopConnector, wake: asyncio.Event) -> None:
        cid = connector.connector_id
        poll_s = float(connector.config.get("poll_s", POLL_S))
        retry_max_s = float(connector.config.get("retry_max_s", RETRY_MAX_S))
        delay = poll_s
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), delay)
            wake.clear()
            notices = self._notices.pop(cid, [])
            try:
                report = await sync_connector(self.store, connector)
                self.counters["syncs"] += 1
                failures, delay = 0, poll_s
                wanted = {n.ref for n in notices if n.ref}
                if wanted - report.refs:
                    # the shop may notify before its own transaction is visible: look once more soon
                    self._notices.setdefault(cid, []).extend(n for n in notices if n.ref not in report.refs
                                                             and time.time() - n.received_at < 30)
                    delay = min(delay, 1.0)
            except asyncio.CancelledError:
                raise
            except (ConnectorError, StorageUnavailable) as exc:
                failures += 1
                self.counters["sync_failures"] += 1
                delay = min(retry_max_s, max(1.0, 2.0 ** failures))
                log.error("connector %s: sync failed (%s); next try in %.0f s", cid, exc, delay)
            except Exception:
                failures += 1
                self.counters["sync_failures"] += 1
                delay = min(retry_max_s, max(1.0, 2.0 ** failures))
                log.exception("connector %s: sync failed; next try in %.0f s", cid, delay)

    # --- uploads -------------------------------------------------------------------------------

    async def _upload_loop(self, connector: ShopConnector) -> None:
        cid = connector.connector_id
        retry_max_s = float(connector.config.get("retry_max_s", RETRY_MAX_S))
        batch = int(connector.config.get("upload_batch", UPLOAD_BATCH))
        concurrency = max(1, int(connector.config.get("upload_concurrency", 2)))
        idle = self.upload_poll_s
        while True:
            try:
                n, down = await self.upload_round(connector, batch=batch, concurrency=concurrency,
                                                  retry_max_s=retry_max_s)
                idle = min(retry_max_s, max(self.upload_poll_s, idle * 2)) if down else (
                    0.0 if n >= batch else self.upload_poll_s)
            except asyncio.CancelledError:
                raise
            except StorageUnavailable as exc:
                idle = min(retry_max_s, max(1.0, idle * 2))
                log.error("connector %s: upload queue unavailable (%s); retrying in %.0f s", cid, exc, idle)
            except Exception:
                idle = min(retry_max_s, max(1.0, idle * 2))
                log.exception("connector %s: upload round failed; retrying in %.0f s", cid, idle)
            await asyncio.sleep(idle)

    async def upload_round(self, connector: ShopConnector, *, batch: int = UPLOAD_BATCH, concurrency: int = 2,
                           retry_max_s: float = RETRY_MAX_S) -> tuple[int, bool]:
        """Claim, upload and record one batch; returns (rows handled, whether the shop was down)."""
        cid = connector.connector_id
        now = time.time()
        claimed = await self.store.db.write(claim_uploads, self.store.db, cid, self.who, now, batch)
        if not claimed:
            return 0, False
        results: dict[int, UploadResult] = {}
        down: list[str] = []
        sem = asyncio.Semaphore(concurrency)

        async def one(c: ClaimedUpload) -> None:
            backoff = now + min(retry_max_s, 2.0 ** min(c.attempts, 16))
            if c.barcode is None:
                if c.ticket_id is None:
                    results[c.upload_id] = UploadResult(
                        c.upload_id, "retry", retry_at=now + WAIT_FOR_TICKET_S,
                        error=f"waiting for the ticket from {cid} (admitted on its signature before the hub had it)")
                else:
                    results[c.upload_id] = UploadResult(c.upload_id, "skipped",
                                                        error=f"not a {connector.kind} ticket (it has no barcode)")
                return
            if (c.external_id or "").startswith(REPLACED_PREFIX):
                results[c.upload_id] = UploadResult(c.upload_id, "refused",
                                                    error=f"a secret {connector.kind} revoked was admitted")
                return
            if not (c.external_id or "").startswith(f"{cid}:"):
                results[c.upload_id] = UploadResult(c.upload_id, "skipped", error=f"not a {connector.kind} ticket")
                return
            if down:
                results[c.upload_id] = UploadResult(c.upload_id, "retry", error=down[0], retry_at=backoff)
                return
            async with sem:
                try:
                    results[c.upload_id] = await connector.upload_checkin(c, now)
                except ConnectorError as exc:
                    down.append(exc.message)
                    results[c.upload_id] = UploadResult(c.upload_id, "retry", error=exc.message, retry_at=backoff)

        await asyncio.gather(*(one(c) for c in claimed))
        ordered = [results[c.upload_id] for c in claimed]
        conflicts = await self.store.db.write(finish_uploads, self.who, claimed, ordered, time.time())
        for r in ordered:
            key = {"done": "uploaded", "refused": "refused", "skipped": "skipped", "retry": "retried"}[r.status]
            self.counters[key] += 1
        if down:
            self.counters["upload_failures"] += 1
            log.error("connector %s: %d check-ins not uploaded, kept in the queue: %s", cid,
                      sum(r.status == "retry" for r in ordered), down[0])
        if conflicts:
            self.store._poke()
            log.warning("connector %s refused %d check-ins; raised as conflicts for supervisors", cid, len(conflicts))
        return len(claimed), bool(down)


def attach_connectors(app: Any) -> None:
    """Run this process's connectors while the hub app's store is open."""
    async def start(store: HubStore) -> None:
        service = ConnectorService(store)
        app.state.connector_service = service
        await service.start()

    async def stop(_store: HubStore) -> None:
        service = getattr(app.state, "connector_service", None)
        if service is not None:
            await service.stop()

    app.state.on_store_open.append(start)
    app.state.on_store_close = [stop, *getattr(app.state, "on_store_close", [])]
