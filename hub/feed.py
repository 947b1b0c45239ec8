"""The change feed: every serving hub process watches the change log and acts on what it finds.

Whoever commits a change — an API call on this process, the CLI, another hub process on the
same PostgreSQL, a ticket shop's connector — it lands in the ``changes`` table with a hub
seq (:func:`hub.store.base.append_changes`). Each serving process reads the log from where
it last read, woken at once by its own commits (``store.changed_event``) and otherwise by a
cheap poll of the highest seq every :data:`POLL_S`, and then:

* pushes ticket, zone, policy and entry changes to its connected gates (each session keeps
  what its gate needs: entry events only for the gate's zones);
* reloads which zones each gate admits on ``zone`` and ``gate`` changes, and closes the
  socket of a gate that was revoked;
* sends control-room commands (``command``) and "refresh your manifest" (``stewards``) to
  its gates;
* tells its listeners (the dashboard).

It also keeps house every :data:`MAINTENANCE_S`: admits whose passage never came are
expired (with a conflict for a supervisor), its connected gates' ``last_seen`` is refreshed
(so every process's dashboard knows who is connected somewhere), and a database that went
*back* — the log's highest seq below what was already pushed, after a restore or a failover
to a standby that lacked the last commits — makes it close every gate's socket, so each
reconnects, is found to hold a cursor the log no longer has, resyncs and re-sends its journal.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from hub.db import StorageUnavailable
from hub.store import GATE_KINDS, Change, HubStore
from sync import messages as m
from sync.backend import change_from_row
from sync.errors import RemoteProtocolError

log = logging.getLogger(__name__)

#: how often the log is polled for changes made by other processes (seconds)
POLL_S = 0.1
#: how often the feed keeps house (pending expiry, last_seen, rollback checks)
MAINTENANCE_S = 5.0
#: changes read per page
PAGE = 1000


class ChangeFeed:
    """One process's reader of the change log (see the module docstring)."""

    def __init__(self, store: HubStore, registry: Any, *, poll_s: float = POLL_S,
                 maintenance_s: float = MAINTENANCE_S, pending_expiry_s: float | None = None) -> None:
        self.store = store
        self.registry = registry
        self.poll_s = poll_s
        self.maintenance_s = maintenance_s
        self.pending_expiry_s = pending_expiry_s
        self.pushed = 0
        #: called with each page of changes read (the dashboard)
        self.listeners: list[Callable[[list[Change]], Any]] = []
        self.rollbacks = 0
        self.failures = 0
        self.pages = 0
        self._task: asyncio.Task[None] | None = None
        self._last_maintenance = 0.0

    async def start(self) -> None:
        self.pushed = await self.store.current_seq()
        self._task = asyncio.get_running_loop().create_task(self.run(), name="hub-change-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        event = self.store.changed_event
        delay = self.poll_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), delay)
            event.clear()
            try:
                await self.drain()
                if time.monotonic() - self._last_maintenance >= self.maintenance_s:
                    self._last_maintenance = time.monotonic()
                    await self.maintenance()
                delay = self.poll_s
            except asyncio.CancelledError:
                raise
            except StorageUnavailable as exc:
                self.failures += 1
                delay = min(2.0, max(self.poll_s, delay * 2))
                log.error("change feed: database unavailable (%s); retrying in %.1f s", exc, delay)
            except Exception:  # the feed must outlive any one bad change; it is logged and counted
                self.failures += 1
                delay = min(2.0, max(self.poll_s, delay * 2))
                log.exception("change feed: reading the change log failed; retrying in %.1f s", delay)

    async def drain(self) -> None:
        """Read and act on everything committed since the last read."""
        current = await self.store.current_seq()
        if current < self.pushed:
            await self._rolled_back(current)
        while True:
            changes, end = await self.store.changes_page(self.pushed, PAGE)
            if end <= self.pushed:
                return
            self.pages += 1
            await self._act(changes, end)
            self.pushed = end

    async def _act(self, changes: list[Change], end: int) -> None:
        wire: list[m.Change] = []
        zones_moved = False
        for c in changes:
            if c.kind in GATE_KINDS:
                try:
                    wire.append(change_from_row(c.seq, c.kind, c.row))
                except RemoteProtocolError as exc:
                    log.error("change %d (%s) cannot be sent to gates: %s", c.seq, c.kind, exc.detail)
                    self.failures += 1
                if c.kind == "zone":
                    zones_moved = True
            elif c.kind == "gate":
                zones_moved = True
                if c.row.get("status") in ("revoked", "pending"):
                    why = "gate revoked" if c.row["status"] == "revoked" else "gate token replaced (re-enrolment)"
                    await self.registry.disconnect(str(c.row.get("gate_id")), why)
            elif c.kind == "command":
                self._send_command(c.row)
            elif c.kind == "stewards":
                self._send_command({"name": "refresh_manifest", "reason": "stewards changed", "args": {},
                                    "gates": None, "command_id": f"stewards-{c.seq}"})
        if zones_moved:
            await self.reload_zones()
        token = changes[-1].token if changes and changes[-1].seq == end else await self.store.change_token(end)
        self.registry.push_changes(wire, end, token)
        for listener in list(self.listeners):
            try:
                listener(changes)
            except Exception:
                log.exception("change feed listener failed")

    def _send_command(self, cmd: dict[str, Any]) -> None:
        message = m.Command(str(cmd.get("name", "")), str(cmd.get("reason", "")), dict(cmd.get("args") or {}),
                            str(cmd.get("command_id", "")))
        for gate in cmd.get("gates") or [None]:
            self.registry.send_command(message, gate)

    async def reload_zones(self) -> None:
        """Which zones each gate admits (entry events go only to the gates of their zone)."""
        zone_gates: dict[int, set[str]] = {}
        for g in await self.store.gates():
            zones = frozenset(int(z) for z in g["zones"])
            self.registry.set_gate_zones(g["gate_id"], zones or None)
            for z in zones:
                zone_gates.setdefault(z, set()).add(g["gate_id"])
        frozen = {z: frozenset(gs) for z, gs in zone_gates.items()}
        self.registry.zone_gates = frozen.get

    async def maintenance(self) -> None:
        """Expire admits that never got their passage; tell the database who is connected here;
        close sessions whose gate's journal the database no longer holds."""
        kwargs = {} if self.pending_expiry_s is None else {"older_than_s": self.pending_expiry_s}
        expired = await self.store.expire_pending(**kwargs)
        if expired:
            for listener in list(self.listeners):
                with contextlib.suppress(Exception):
                    listener([])
        connected = self.registry.connected()
        if connected:
            await self.store.touch_gates(connected)
            held = await self.store.high_waters()
            for gate_id in connected:
                conn = self.registry.connections.get(gate_id)
                if conn is None:
                    continue
                hw = held.get(gate_id)
                if hw is not None and hw < conn.session.acked:
                    log.error("gate %s: the database holds its journal to %d, %d was acked: it lost data; closing so"
                              " the gate re-sends", gate_id, hw, conn.session.acked)
                    await self.registry.disconnect(gate_id, "the hub lost journal entries: reconnect to re-send")

    async def _rolled_back(self, current: int) -> None:
        self.rollbacks += 1
        log.error("the change log went back from seq %d to %d (database restored or failed over): every gate"
                  " reconnects and resyncs", self.pushed, current)
        self.pushed = current
        for gate_id in list(self.registry.connected()):
            await self.registry.disconnect(gate_id, "the hub's database went back: reconnect and resync")
