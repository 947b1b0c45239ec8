"""The thin adapter between the hub's store and the sync layer's websocket route.

:class:`StoreBackend` implements ``sync.backend.HubBackend`` over :class:`hub.store.HubStore`
(converting rows to the protocol's types), and :func:`attach_sync` mounts ``/ws/gate`` on a
hub app and wires the store's listeners to the gate registry: committed changes are pushed
live, a revoked gate is disconnected, control-room commands are sent. ``sync`` is imported
only here, so the hub runs (HTTP ingest only) on an install without it.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from hub.store import HubStore
from tickets.entry import JournalEntry

log = logging.getLogger(__name__)

#: how often the hub re-reads which gates admit which zone (for fan-out)
ZONE_REFRESH_S = 10.0


class StoreBackend:
    """``sync.backend.HubBackend`` over the hub store (looked up on the app once it has started)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    @property
    def store(self) -> HubStore:
        return self.app.state.store  # type: ignore[no-any-return]

    async def authenticate_gate(self, token: str) -> str | None:
        return await self.store.authenticate_gate(token)

    async def journal_high_water(self, gate_id: str) -> int:
        return await self.store.journal_high_water(gate_id)

    async def backup_high_water(self, gate_id: str) -> int:
        return await self.store.backed_up_high_water(gate_id)

    async def ingest(self, gate_id: str, entries: Sequence[JournalEntry]) -> Any:
        from sync.backend import IngestResult

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
        from sync.backend import change_from_row

        return [change_from_row(c.seq, c.kind, c.row) for c in await self.store.changes_since(cursor, limit)]

    async def snapshot_rows(self, after_ticket_id: int, limit: int) -> Any:
        from sync.backend import snapshot_page_from_rows

        snap = await self.store.snapshot_rows(after_ticket_id, limit)
        total = await self.store.ticket_count() if after_ticket_id == 0 else 0
        return snapshot_page_from_rows(snap.seq, snap.zones, snap.policies, snap.tickets, snap.next_after, total)

    async def event_info(self) -> dict[str, Any]:
        return await self.store.event_info()

    async def hub_epoch(self) -> str:
        return await self.store.hub_epoch()


def attach_sync(app: FastAPI, *, protocol: tuple[int, int] | None = None) -> Any:
    """Mount the gate websocket on ``app`` if the sync package is installed; returns the registry.

    ``protocol`` narrows the sync protocol versions this hub speaks (default: all it knows),
    e.g. ``(1, 1)`` to behave as a hub from before protocol v2.

    Call before the app starts; the listeners are wired when the store opens (lifespan).
    """
    try:
        from sync import messages as m
        from sync.hub_route import add_gate_route
    except ImportError as exc:
        log.warning("sync layer not available (%s): gates can ingest over HTTP only", exc)
        return None
    from sync.session import SessionConfig

    config = SessionConfig(min_version=protocol[0], max_version=protocol[1]) if protocol else None
    registry = add_gate_route(app, StoreBackend(app), config=config)
    app.state.sync_registry = registry

    async def wire(store: HubStore) -> None:
        pushed = await store.current_seq()
        zone_gates: dict[int, frozenset[str]] = {}

        async def load_zones() -> None:
            zone_gates.clear()
            for z in await store.zones():
                zone_gates[int(z["zone_id"])] = frozenset(z.get("gates") or ())

        await load_zones()
        # Fan-out goes only to the gates of the ticket's zone; an unknown zone goes everywhere.
        registry.zone_gates = zone_gates.get

        async def refresh_zones() -> None:
            # Changes made by another process (the CLI) reach this one's listeners only
            # through the database: re-read the zone map now and then.
            while True:
                await asyncio.sleep(ZONE_REFRESH_S)
                try:
                    await load_zones()
                except Exception:
                    log.exception("zone map refresh failed; keeping the last one")

        app.state.zone_refresh_task = asyncio.get_running_loop().create_task(refresh_zones())

        async def push(_seq: int) -> None:
            nonlocal pushed
            while changes := await store.changes_since(pushed, 1000):
                registry.push_changes([m.change_from_wire({"kind": c.kind, "seq": c.seq, c.kind: c.row})
                                       for c in changes])
                pushed = changes[-1].seq
                if any(c.kind == "zone" for c in changes):
                    await load_zones()

        async def disconnect(gate_id: str) -> None:
            await registry.disconnect(gate_id, "gate revoked")

        def command(cmd: dict[str, Any]) -> None:
            message = m.Command(cmd["name"], cmd["reason"], cmd.get("args", {}), cmd["command_id"])
            for gate in cmd["gates"] or [None]:
                registry.send_command(message, gate)

        store.change_listeners.append(push)
        store.gate_revoked_listeners.append(disconnect)
        store.command_listeners.append(command)

    app.state.on_store_open.append(wire)
    return registry
