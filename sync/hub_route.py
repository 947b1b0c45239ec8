"""The hub side of the websocket: a FastAPI route ``/ws/gate`` that pumps frames between a
gate and its :class:`~sync.session.HubSession`, and a registry of connected gates.

No protocol logic lives here: the session decides, this module authenticates the bearer
token, feeds frames in, runs the backend calls the session's events ask for, and writes the
session's frames out. Per connection there are three tasks: the reader (frames in, journal
ingest), the replica task (a snapshot or catch-up, restartable), and the heartbeat ticker.
Sends are serialised by one lock so frames leave in the order the session queued them.

Use::

    registry = add_gate_route(app, backend)
    registry.push_changes([change])      # after the hub commits a revocation
    await registry.disconnect("gate-7", "gate revoked")
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.responses import JSONResponse
from starlette.websockets import WebSocketState

from sync import messages as m
from sync import session as s
from sync.backend import HubBackend
from sync.errors import BackendUnavailable, LocalProtocolError
from sync.tasks import spawn

log = logging.getLogger(__name__)

#: Close codes. 1008: policy violation (auth); 4000+: application codes.
CLOSE_REFUSED = 1008
CLOSE_PROTOCOL = 4002
CLOSE_DISCONNECTED = 4003


def bearer_token(headers: Any) -> str | None:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class GateConnection:
    """One connected gate: its websocket, its session, and the tasks that pump them."""

    #: a snapshot request while one younger than this is still streaming is ignored (a gate
    #: asking again and again can cost only its own session, never the hub)
    SNAPSHOT_MIN_INTERVAL_S = 5.0

    def __init__(self, ws: WebSocket, gate_id: str, backend: HubBackend, registry: GateRegistry,
                 config: s.SessionConfig, clock: Callable[[], float], snapshot_page: int, changes_page: int) -> None:
        self.ws = ws
        self.gate_id = gate_id
        self.backend = backend
        self.registry = registry
        self.clock = clock
        self.session = s.HubSession(gate_id, config, clock())
        self.snapshot_page = snapshot_page
        self.changes_page = changes_page
        self._send_lock = asyncio.Lock()
        self._replica_task: asyncio.Task[None] | None = None
        self._replica_started = 0.0
        self.snapshot_requests_ignored = 0
        #: journal batches the backend could not store (answered ``storage_unavailable``, not acked)
        self.batches_refused = 0
        self._flush_task: asyncio.Task[None] | None = None
        self.closing = False
        self.close_reason = ""

    # ---- output
    async def flush(self) -> None:
        """Send everything queued, including what is queued while we send: a push that finds
        a flush under way relies on it to pick its frame up."""
        async with self._send_lock:
            while frames := self.session.frames_to_send():
                for frame in frames:
                    if isinstance(frame, bytes):
                        await self.ws.send_bytes(frame)
                    else:
                        await self.ws.send_text(frame)

    def flush_soon(self, delay: float = 0.0) -> None:
        """Schedule a flush from synchronous code (a push from another gate's task).

        ``delay`` lets fan-out pile up for a moment so a v2 gate gets it in one frame; a
        flush already scheduled takes everything queued by then.
        """
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._safe_flush(delay))

    async def _safe_flush(self, delay: float = 0.0) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            await self.flush()
        except Exception as exc:  # the reader notices the dead socket and cleans up
            log.debug("gate %s: flush failed: %r", self.gate_id, exc)

    async def close(self, reason: str, code: int = CLOSE_PROTOCOL) -> None:
        self.closing, self.close_reason = True, reason
        with contextlib.suppress(Exception):
            await self.flush()
        if self.ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.ws.close(code=code, reason=reason[:120])

    # ---- input
    async def run(self) -> None:
        ticker = spawn(self._ticker(), f"heartbeat-{self.gate_id}")
        try:
            while not self.closing:
                msg = await self.ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                frame = msg.get("text")
                if frame is None:
                    frame = msg.get("bytes") or b""
                await self.handle(self.session.receive_frame(frame, self.clock()))
                await self.flush()
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            log.info("gate %s: connection lost: %r", self.gate_id, exc)
        except Exception as exc:  # a backend failure: drop this link, the gate re-sends later
            log.exception("gate %s: closing after a hub-side failure", self.gate_id)
            await self.close(f"hub error: {type(exc).__name__}", 1011)
        finally:
            ticker.cancel()
            if self._replica_task is not None:
                self._replica_task.cancel()

    async def _ticker(self) -> None:
        interval = max(0.05, self.session.config.heartbeat_interval_s / 2)
        while not self.closing:
            await asyncio.sleep(interval)
            await self.handle(self.session.tick(self.clock()))
            self.flush_soon()

    async def handle(self, events: Sequence[Any]) -> None:
        for ev in events:
            if isinstance(ev, s.StoreEntries):
                try:
                    result = await self.backend.ingest(self.gate_id, ev.entries)
                except BackendUnavailable as exc:
                    # Refused, not lost: nothing is acked, the gate keeps the entries and re-sends
                    # after its ack timeout. The link stays up, so revocations still reach it.
                    self.batches_refused += 1
                    log.error("gate %s: %d journal entries not stored (%s); the gate keeps them (%d batches "
                              "refused on this link)", self.gate_id, len(ev.entries), exc.reason, self.batches_refused)
                    self.session.entries_refused("storage_unavailable", f"the hub cannot store now: {exc.reason}")
                    continue
                if result.high_water < self.session.acked:
                    # The store holds less of this gate's journal than we acked on this very
                    # connection: the database went back (a failover to a standby that lacked
                    # the last commits). A new hello makes the gate re-send from what is held.
                    log.error("gate %s: the hub now holds its journal only to %d but acked %d; the database lost"
                              " data: closing so the gate re-sends", self.gate_id, result.high_water,
                              self.session.acked)
                    await self.close("the hub lost journal entries (database rolled back): reconnect to re-send")
                    return
                self.session.entries_stored(result.high_water, result.backed_up, result.conflicts)
                if not getattr(self.backend, "feed_driven", False):
                    for e in result.admits:
                        if (admit := s.remote_admit_for(self.gate_id, e)) is not None:
                            self.registry.broadcast_admit(admit, e.zone_id)
            elif isinstance(ev, s.HelloReceived):
                backup_hw = getattr(self.backend, "backup_high_water", None)
                holds = getattr(self.backend, "cursor_holds", None)
                zones_of = getattr(self.backend, "gate_zones", None)
                if zones_of is not None:
                    self.session.zones = await zones_of(self.gate_id)
                clock_of = getattr(self.backend, "gate_clock", None)
                if clock_of is not None and ev.hello.clock is not None:
                    await clock_of(self.gate_id, ev.hello.clock, time.time())
                facts = s.HubFacts(
                    hub_held=await self.backend.journal_high_water(self.gate_id),
                    hub_epoch=await self.backend.hub_epoch(),
                    hub_seq=await self.backend.current_seq(),
                    backed_up=await backup_hw(self.gate_id) if backup_hw is not None else 0,
                    event=await self.backend.event_info(),
                    cursor_holds=(await holds(ev.hello.cursor, ev.hello.cursor_token)
                                  if holds is not None else True),
                    hub_time=time.time(),
                )
                await self.handle(self.session.answer_hello(facts))
            elif isinstance(ev, s.SnapshotNeeded | s.CatchUpNeeded):
                if (isinstance(ev, s.SnapshotNeeded) and ev.reason.startswith("requested")
                        and self._replica_task is not None and not self._replica_task.done()
                        and self.clock() - self._replica_started < self.SNAPSHOT_MIN_INTERVAL_S):
                    self.snapshot_requests_ignored += 1
                    log.warning("gate %s: snapshot request ignored, one is still streaming (%d ignored)",
                                self.gate_id, self.snapshot_requests_ignored)
                    continue
                self._restart_replica_task(ev)
            elif isinstance(ev, s.CloseWanted):
                log.warning("gate %s: closing: %s", self.gate_id, ev.reason)
                await self.close(ev.reason)
            elif isinstance(ev, s.ProtocolViolation):
                log.warning("gate %s: protocol violation %s: %s", self.gate_id, ev.code, ev.detail)
            elif isinstance(ev, s.PeerError):
                log.warning("gate %s reports %s: %s", self.gate_id, ev.code, ev.detail)

    def _restart_replica_task(self, ev: s.SnapshotNeeded | s.CatchUpNeeded) -> None:
        if self._replica_task is not None:
            self._replica_task.cancel()
        self._replica_started = self.clock()
        self._replica_task = spawn(self._replica(ev), f"replica-{self.gate_id}")

    async def _replica(self, ev: s.SnapshotNeeded | s.CatchUpNeeded) -> None:
        sess, b = self.session, self.backend
        try:
            if isinstance(ev, s.SnapshotNeeded):
                page = await b.snapshot_rows(0, self.snapshot_page)
                sess.begin_snapshot(page.seq, page.total_rows, ev.reason)  # the first page's seq
                first = True
                snap_seq = page.seq
                while True:
                    sess.snapshot_batch(page.tickets, page.zones if first else (), page.policies if first else (),
                                        page.total_rows, page.states)
                    await self.flush()  # backpressure: one page in memory at a time
                    if page.next_after is None:
                        break
                    page, first = await b.snapshot_rows(page.next_after, self.snapshot_page), False
                token_of = getattr(b, "change_token", None)
                sess.end_snapshot(await token_of(snap_seq) if token_of is not None else None)
                await self.flush()
            paged = getattr(b, "changes_page", None)
            while True:
                if paged is not None:
                    got = await paged(sess.read_seq, self.changes_page)
                    if got.end_seq <= sess.read_seq:
                        break
                    sess.send_changes(got.changes, got.end_seq, got.end_token)
                else:
                    changes = await b.changes_since(sess.read_seq, self.changes_page)
                    if not changes:
                        break
                    sess.send_changes(changes)
                await self.flush()
            sess.caught_up()  # no await since the empty read: pushes from here on are live
            await self.flush()
        except asyncio.CancelledError:
            raise
        except LocalProtocolError as exc:
            log.debug("gate %s: replica task superseded: %s", self.gate_id, exc)
        except Exception as exc:
            log.exception("gate %s: replica sync failed", self.gate_id)
            await self.close(f"replica sync failed: {exc!r}")


class GateRegistry:
    """The gates connected to this hub process, for fan-out and control."""

    #: fan-out waits this long to gather admits into one frame (v2); well inside the 1 s promise
    FANOUT_DELAY_S = 0.02

    def __init__(self) -> None:
        self.connections: dict[str, GateConnection] = {}
        #: gate id -> wall-clock time its last connection to this process ended
        self.left_at: dict[str, float] = {}
        #: zone id -> the gates that admit it (set by the hub); None: send admits to every gate
        self.zone_gates: Callable[[int], Collection[str] | None] | None = None

    def connected(self) -> list[str]:
        return sorted(self.connections)

    def connected_anywhere(self, gate_id: str, linked_at: float | None, now: float, seen_within_s: float) -> bool:
        """Connected here, or (several hub processes) to another process that noted the gate's
        live link at ``linked_at``, within ``seen_within_s`` — unless that note is older than
        the gate leaving this process (then it is this process's own note: not connected)."""
        if gate_id in self.connections:
            return True
        if not linked_at or now - linked_at >= seen_within_s:
            return False
        return linked_at > self.left_at.get(gate_id, 0.0)

    def broadcast_admit(self, admit: m.RemoteAdmit, zone_id: int | None = None) -> int:
        """Send an admit to every other synced gate that could see the ticket; returns how many got it.

        A gate outside the ticket's zone refuses it as WRONG_GATE whatever its entry state,
        so when the hub knows the zone's gates only those are told.
        """
        targets = None
        if zone_id is not None and self.zone_gates is not None:
            targets = self.zone_gates(zone_id)
        conns = (self.connections.items() if targets is None
                 else [(g, c) for g in targets if (c := self.connections.get(g)) is not None])
        n = 0
        for gid, conn in list(conns):
            if gid != admit.gate_id and conn.session.send_remote_admit(admit):
                conn.flush_soon(self.FANOUT_DELAY_S)
                n += 1
        return n

    def push_changes(self, changes: Sequence[m.Change], end_seq: int | None = None,
                     end_token: str | None = None) -> int:
        """Push committed changes (revocations, upgrades, entry events) to every live gate;
        each session keeps what its gate needs. Returns how many gates were sent something."""
        n = 0
        entries_only = bool(changes) and all(isinstance(c, m.EntryEvent) for c in changes)
        shared: dict[Any, m.Deltas] = {}  # gates that get the same changes share one message (encoded once)
        for conn in list(self.connections.values()):
            if conn.session.push_changes(changes, end_seq, end_token, shared):
                # entry events wait a moment so several go in one frame; ticket changes go at once
                conn.flush_soon(self.FANOUT_DELAY_S if entries_only else 0.0)
                n += 1
        return n

    def set_gate_zones(self, gate_id: str, zones: frozenset[int] | None) -> None:
        conn = self.connections.get(gate_id)
        if conn is not None:
            conn.session.zones = zones

    def send_command(self, command: m.Command, gate_id: str | None = None) -> int:
        """Send a control-room command to one gate, or to all when ``gate_id`` is None."""
        targets = [self.connections[gate_id]] if gate_id in self.connections else (
            [] if gate_id is not None else list(self.connections.values()))
        for conn in targets:
            conn.session.send_command(command)
            conn.flush_soon()
        return len(targets)

    async def disconnect(self, gate_id: str, reason: str = "disconnected by the hub") -> bool:
        """Close a gate's connection (e.g. its token was revoked: it will be refused on reconnect)."""
        conn = self.connections.get(gate_id)
        if conn is None:
            return False
        await conn.close(reason, CLOSE_DISCONNECTED)
        return True


def add_gate_route(app: FastAPI, backend: HubBackend, *, path: str = "/ws/gate",
                   config: s.SessionConfig | None = None, registry: GateRegistry | None = None,
                   clock: Callable[[], float] = time.monotonic, snapshot_page: int = 2000,
                   changes_page: int = 1000) -> GateRegistry:
    """Add the gate websocket route to ``app``; returns the registry of connected gates."""
    reg = registry or GateRegistry()
    cfg = config or s.SessionConfig()

    @app.websocket(path)
    async def gate_socket(ws: WebSocket) -> None:
        token = bearer_token(ws.headers)
        gate_id = await backend.authenticate_gate(token) if token else None
        if gate_id is None:
            claimed = (ws.headers.get("x-gatehouse-gate") or "")[:64] or None
            reason = "missing bearer token" if token is None else "unknown or revoked gate token"
            status_of = getattr(backend, "gate_token_status", None)
            if token is not None and status_of is not None:
                reason = REFUSALS.get(await status_of(token, claimed), reason)
            log.warning("gate connection refused from %s (says it is %s): %s", ws.client, claimed or "?", reason)
            refused = getattr(backend, "gate_refused", None)
            if refused is not None:
                refused(claimed, reason, str(ws.client))
            await _refuse(ws, reason)
            return
        await ws.accept()
        conn = GateConnection(ws, gate_id, backend, reg, cfg, clock, snapshot_page, changes_page)
        old = reg.connections.get(gate_id)
        reg.connections[gate_id] = conn
        if old is not None:  # the same gate reconnected: the old socket is dead or stale
            await old.close("replaced by a new connection of the same gate", CLOSE_DISCONNECTED)
        log.info("gate %s connected", gate_id)
        try:
            await conn.run()
        finally:
            if reg.connections.get(gate_id) is conn:
                del reg.connections[gate_id]
                reg.left_at[gate_id] = clock()
            await conn.close(conn.close_reason or "connection ended")
            log.info("gate %s disconnected", gate_id)

    return reg


#: why a gate token was refused, in words for the gate's screen (keys: HubBackend.gate_token_status)
REFUSALS = {
    "unknown": "the hub does not know this gate (restored from an older backup?) — re-enrol this gate",
    "re_enrol": "this gate's token was replaced — re-enrol this gate with its new enrolment token",
    "revoked": "this gate has been revoked at the hub",
    "pending": "this gate waits for its enrolment — run gatehouse gate enroll",
}


async def _refuse(ws: WebSocket, reason: str) -> None:
    """Refuse before accepting: an HTTP 401 with the reason when the server supports denial
    responses, else accept and close with 1008 and the reason."""
    try:
        await ws.send_denial_response(JSONResponse({"error": "refused", "reason": reason}, status_code=401))
    except RuntimeError:
        await ws.accept()
        await ws.close(code=CLOSE_REFUSED, reason=reason)
