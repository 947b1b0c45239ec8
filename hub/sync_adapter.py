"""The thin adapter between the hub's store and the sync layer's websocket route.

:class:`StoreBackend` implements ``sync.backend.HubBackend`` over :class:`hub.store.HubStore`
(converting rows to the protocol's types), and :func:`attach_sync` mounts ``/ws/gate`` on a
hub app and starts the process's :class:`hub.feed.ChangeFeed`, which pushes every committed
change — whoever made it — to the connected gates. Nothing is pushed from request handlers.
"""
from __future__ import annotations

import collections
import logging
import time
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from hub.feed import ChangeFeed
from hub.store import GATE_KINDS, HubStore
from sync.backend import ChangePage, IngestResult, change_from_row, snapshot_page_from_rows
from sync.hub_route import add_gate_route
from sync.session import SessionConfig
from tickets.entry import JournalEntry

log = logging.getLogger(__name__)

#: refused gate connections remembered per process for the dashboard
REFUSALS_KEPT = 50


class StoreBackend:
    """``sync.backend.HubBackend`` over the hub store (looked up on the app once it has started)."""

    #: admits reach other gates through the change feed (``entry`` changes), not from the route
    feed_driven = True

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.refusals: collections.deque[dict[str, Any]] = collections.deque(maxlen=REFUSALS_KEPT)

    @property
    def store(self) -> HubStore:
        return self.app.state.store  # type: ignore[no-any-return]

    async def authenticate_gate(self, token: str) -> str | None:
        return await self.store.authenticate_gate(token)

    async def gate_token_status(self, token: str, claimed: str | None) -> str:
        return await self.store.gate_token_status(token, claimed)

    def gate_refused(self, claimed: str | None, reason: str, peer: str) -> None:
        """Remember a refused gate for the dashboard (a gate the hub does not know cannot say so itself)."""
        self.refusals.append({"gate_id": claimed, "reason": reason, "peer": peer, "at": time.time()})
        metrics = getattr(self.app.state, "metrics", None)
        if metrics is not None:
            metrics.errors.labels("gate_refused").inc()
        feed = getattr(self.app.state, "dashboard_feed", None)
        if feed is not None:
            feed.broadcast({"type": "alert", "alert": {
                "source": "sync", "gate_id": claimed, "at": time.time(), "severity": "alarm",
                "title": "Gate refused by the hub", "text": reason}})

    async def journal_high_water(self, gate_id: str) -> int:
        return await self.store.journal_high_water(gate_id)

    async def backup_high_water(self, gate_id: str) -> int:
        return await self.store.backed_up_high_water(gate_id)

    async def gate_zones(self, gate_id: str) -> frozenset[int] | None:
        g = await self.store.gate(gate_id)
        return frozenset(int(z) for z in g["zones"]) or None

    async def ingest(self, gate_id: str, entries: Sequence[JournalEntry]) -> Any:
        r = await self.store.ingest(gate_id, entries)
        metrics = getattr(self.app.state, "metrics", None)
        if metrics is not None:
            metrics.ingested.inc(len(r.stored))
            metrics.duplicates.inc(r.duplicates)
        return IngestResult(high_water=r.high_water, admits=(*r.admits, *r.not_passed),
                            conflicts=len(r.conflicts), backed_up=r.backed_up_high_water)

    async def current_seq(self) -> int:
        return await self.store.current_seq()

    async def changes_since(self, cursor: int, limit: int) -> list[Any]:
        got, _end = await self.store.changes_page(cursor, limit, GATE_KINDS)
        return [change_from_row(c.seq, c.kind, c.row) for c in got]

    async def changes_page(self, cursor: int, limit: int) -> ChangePage:
        got, end = await self.store.changes_page(cursor, limit)
        changes = tuple(change_from_row(c.seq, c.kind, c.row) for c in got if c.kind in GATE_KINDS)
        token = got[-1].token if got else None
        return ChangePage(changes, end, token)

    async def cursor_holds(self, seq: int, token: str | None) -> bool:
        return await self.store.cursor_holds(seq, token)

    async def change_token(self, seq: int) -> str | None:
        return await self.store.change_token(seq)

    async def snapshot_rows(self, after_ticket_id: int, limit: int) -> Any:
        snap = await self.store.snapshot_rows(after_ticket_id, limit)
        total = await self.store.ticket_count() if after_ticket_id == 0 else 0
        return snapshot_page_from_rows(snap.seq, snap.zones, snap.policies, snap.tickets, snap.next_after, total)

    async def event_info(self) -> dict[str, Any]:
        return await self.store.event_info()

    async def hub_epoch(self) -> str:
        return await self.store.hub_epoch()


def attach_sync(app: FastAPI, *, protocol: tuple[int, int] | None = None,
                pending_expiry_s: float | None = None) -> Any:
    """Mount the gate websocket on ``app`` and run the change feed while the store is open;
    returns the gate registry.

    ``protocol`` narrows the sync protocol versions this hub speaks (default: all it knows),
    e.g. ``(1, 1)`` to behave as a hub from before protocol v2.
    """
    config = SessionConfig(min_version=protocol[0], max_version=protocol[1]) if protocol else None
    backend = StoreBackend(app)
    registry = add_gate_route(app, backend, config=config)
    app.state.sync_registry = registry
    app.state.sync_backend = backend

    async def wire(store: HubStore) -> None:
        feed = ChangeFeed(store, registry, pending_expiry_s=pending_expiry_s)
        app.state.change_feed = feed
        await feed.reload_zones()
        await feed.start()
        for hook in getattr(app.state, "on_feed_start", []):
            hook(feed)

    async def unwire(_store: HubStore) -> None:
        feed = getattr(app.state, "change_feed", None)
        if feed is not None:
            await feed.stop()

    app.state.on_store_open.append(wire)
    app.state.on_store_close = [*getattr(app.state, "on_store_close", []), unwire]
    return registry
