"""The gate side of the websocket: connect, authenticate, pump frames through a
:class:`~sync.session.GateSession`, reconnect with backoff. No protocol logic here.

The client never blocks the gate's decisions: the gate agent appends to its journal and
calls :meth:`GateClient.journal_appended`; the upload happens on this client's own tasks.
When the hub is unreachable the client keeps retrying with exponential backoff and full
jitter (``reconnect_delays``, injectable so tests do not sleep), reporting each state to
the owner (``connecting``, ``syncing``, ``online``, ``offline``, ``refused``,
``incompatible``, ``rolled_back``) so the gate's mode ladder can show it.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.protocol import State

from sync import messages as m
from sync import session as s
from sync.backend import GateOwner
from sync.errors import GateRefused, LocalProtocolError

log = logging.getLogger(__name__)


def backoff(initial: float = 0.5, factor: float = 2.0, max_delay: float = 30.0,
            rng: Callable[[], float] = random.random) -> Iterator[float]:
    """Exponential backoff with full jitter: the n-th delay is uniform in [0, min(max, initial·factorⁿ)].

    Full jitter spreads 200 gates that lost the hub at the same instant over the window, so a
    restarted hub is not hit by all of them at once.
    """
    ceiling = initial
    while True:
        yield rng() * ceiling
        ceiling = min(max_delay, ceiling * factor)


def ssl_context(url: str, ca_file: str | None) -> ssl.SSLContext | None:
    """A TLS context for ``wss://`` URLs, trusting ``ca_file`` (the venue's own CA) if given."""
    if not url.startswith("wss://"):
        return None
    return ssl.create_default_context(cafile=ca_file)


class GateClient:
    """Keeps one gate connected to the hub. ``await run()`` until :meth:`stop`."""

    def __init__(self, url: str, token: str, gate_id: str, owner: GateOwner, *,
                 ca_file: str | None = None, config: s.SessionConfig | None = None,
                 reconnect_delays: Callable[[], Iterator[float]] = backoff,
                 incompatible_delay_s: float = 60.0, open_timeout_s: float = 10.0, close_timeout_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.token = token
        self.owner = owner
        self.session = s.GateSession(gate_id, config)
        self.ssl = ssl_context(url, ca_file)
        self.reconnect_delays = reconnect_delays
        self.incompatible_delay_s = incompatible_delay_s
        self.open_timeout_s = open_timeout_s
        self.close_timeout_s = close_timeout_s
        self.clock = clock
        self.wall_clock = wall_clock
        self.last_message_at: float | None = None
        self.state_since: float = wall_clock()
        self.state = "offline"
        self.last_refusal: str | None = None
        self.connections = 0
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._synced = False

    # ---- owner API
    def journal_appended(self, seq: int) -> None:
        """The gate committed journal entry ``seq``: upload it soon (never waits)."""
        self.session.journal_appended(seq)
        self._wake.set()

    def status(self) -> dict[str, Any]:
        """The sync facts for the gate's ``/status`` endpoint and the staff screen."""
        sess = self.session
        return {
            "state": self.state, "state_since": self.state_since, "hub_url": self.url,
            "protocol_version": sess.version, "hub_epoch": sess.hub_epoch, "cursor": sess.cursor,
            "journal_seq": sess.journal_seq, "acked": sess.acked, "backed_up": sess.backed_up,
            "backlog": max(0, sess.journal_seq - sess.acked), "last_message_at": self.last_message_at,
            "connections": self.connections, "protocol_errors": sess.errors, "retransmits": sess.retransmits,
            "last_refusal": self.last_refusal,
        }

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._ws is not None:
            await self._ws.close()

    async def run(self) -> None:
        """Connect, serve, and reconnect with backoff until stopped. Never raises for network trouble."""
        delays: Iterator[float] | None = None
        while not self._stop.is_set():
            await self._set_state("connecting", self.url)
            wait: float | None = None
            try:
                headers = {"Authorization": f"Bearer {self.token}", "X-Gatehouse-Gate": self.session.gate_id}
                async with connect(self.url, additional_headers=headers,
                                   ssl=self.ssl, open_timeout=self.open_timeout_s, max_size=m.MAX_FRAME_BYTES,
                                   ping_interval=None, compression=None, proxy=None,
                                   close_timeout=self.close_timeout_s) as ws:
                    self._ws = ws
                    self.connections += 1
                    self.last_refusal = None
                    if await self._serve(ws):
                        delays = None  # a good connection resets the backoff
            except InvalidStatus as exc:
                reason = _refusal_reason(exc)
                self.last_refusal = reason
                log.error("hub refused gate %s: %s", self.session.gate_id, reason)
                await self._set_state("refused", reason)
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                log.info("gate %s: hub unreachable: %r", self.session.gate_id, exc)
            except Exception:
                log.exception("gate %s: sync connection failed", self.session.gate_id)
            finally:
                self._ws = None
                if self.session.state is s.GateState.INCOMPATIBLE:
                    wait = self.incompatible_delay_s  # not the fast backoff: nothing changes soon
                self.session.connection_lost()
            if self.state not in ("refused", "incompatible"):
                await self._set_state("offline", "")
            if self._stop.is_set():
                break
            if wait is None:
                if delays is None:
                    delays = self.reconnect_delays()
                wait = next(delays)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), wait)

    # ---- pumping
    async def _serve(self, ws: ClientConnection) -> bool:
        """One connection: a reader task and a pump task; the first to end ends both."""
        facts = await self.owner.hello_facts()
        self.session.connect(s.GateFacts(facts.cursor, facts.acked_high_water, facts.journal_seq, facts.hub_epoch,
                                         facts.cursor_token), self.clock())
        await self._flush(ws)
        self._synced = False
        reader = asyncio.create_task(self._read(ws))
        pump = asyncio.create_task(self._pump(ws))
        try:
            done, _ = await asyncio.wait({reader, pump}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, pump):
                task.cancel()
            await asyncio.gather(reader, pump, return_exceptions=True)
        for task in done:
            if not task.cancelled() and (exc := task.exception()) is not None:
                raise exc
        return self._synced

    async def _read(self, ws: ClientConnection) -> None:
        async for frame in ws:
            self.last_message_at = self.wall_clock()
            if await self._handle(self.session.receive_frame(frame, self.clock()), ws):
                self._synced = True
            self._wake.set()

    async def _pump(self, ws: ClientConnection) -> None:
        """Timers, journal upload and sending, woken by new journal entries or every tick."""
        tick = max(0.05, min(self.session.config.heartbeat_interval_s, self.session.config.ack_timeout_s) / 4)
        # Checked every turn: on Python 3.11, wait_for may swallow our cancel when the wake
        # event fires at the same moment.
        while ws.state is State.OPEN:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), tick)
            self._wake.clear()
            await self._handle(self.session.tick(self.clock()), ws)
            while (want := self.session.upload_wanted()) is not None:
                entries = await self.owner.journal_after(*want)
                if not entries:
                    break
                try:
                    self.session.send_journal(entries, self.clock())
                except LocalProtocolError as exc:
                    log.error("gate %s: journal_after returned a bad page: %s", self.session.gate_id, exc)
                    break
                await self._flush(ws)
            await self._flush(ws)

    async def _flush(self, ws: ClientConnection) -> None:
        for frame in self.session.frames_to_send():
            await ws.send(frame)

    async def _handle(self, events: list[Any], ws: ClientConnection) -> bool:
        """Run the owner's side of each event; True once the replica is in sync."""
        synced = False
        o = self.owner
        for ev in events:
            if isinstance(ev, s.HelloAccepted):
                if ev.replica_sync == "deltas":
                    await o.on_hub_epoch(ev.hub_epoch)  # after a snapshot: once it is complete
                if ev.event and (on_info := getattr(o, "on_event_info", None)) is not None:
                    await on_info(ev.event)
                if ev.replica_sync == "deltas":
                    synced = True
                    await self._set_state("online", f"v{ev.version}")
                else:
                    await self._set_state("syncing", "snapshot")
            elif isinstance(ev, s.JournalAcked):
                await o.on_ack(ev.high_water, ev.backed_up)
            elif isinstance(ev, s.HubRolledBack):
                await self._set_state("rolled_back", f"hub holds {ev.hub_held}, had acked {ev.acked_before}; "
                                                     f"epoch {ev.epoch_before} -> {ev.epoch_now}; re-sending")
            elif isinstance(ev, s.SnapshotStarted):
                await o.snapshot_started(ev.seq, ev.total_rows, ev.reason)
            elif isinstance(ev, s.ApplySnapshotBatch):
                if ev.states:
                    await o.apply_snapshot_batch(ev.rows, ev.zones, ev.policies, ev.done_rows, ev.total_rows,
                                                 states=ev.states)
                else:
                    await o.apply_snapshot_batch(ev.rows, ev.zones, ev.policies, ev.done_rows, ev.total_rows)
            elif isinstance(ev, s.SnapshotFinished):
                if ev.token is not None:
                    await o.snapshot_finished(ev.cursor, token=ev.token)
                else:
                    await o.snapshot_finished(ev.cursor)
                if ev.hub_epoch is not None:
                    await o.on_hub_epoch(ev.hub_epoch)
                synced = True
                await self._set_state("online", "snapshot applied")
            elif isinstance(ev, s.ApplyDeltas):
                if ev.token is not None:
                    await o.apply_deltas(ev.changes, ev.cursor, token=ev.token)
                else:
                    await o.apply_deltas(ev.changes, ev.cursor)
            elif isinstance(ev, s.RemoteAdmitted):
                if not ev.not_passed:
                    await o.on_remote_admit(ev.ticket_id, ev.gate_id, ev.at, ev.direction)
                elif (undo := getattr(o, "on_remote_not_passed", None)) is not None:
                    await undo(ev.ticket_id, ev.gate_id, ev.gate_seq)
            elif isinstance(ev, s.CommandReceived):
                if ev.known:
                    await o.on_command(ev.command.name, ev.command.reason, dict(ev.command.args))
                else:
                    log.warning("gate %s: unknown command %r refused", self.session.gate_id, ev.command.name)
            elif isinstance(ev, s.Incompatible):
                await self._set_state("incompatible", ev.reason)
            elif isinstance(ev, s.CloseWanted):
                log.warning("gate %s: closing link: %s", self.session.gate_id, ev.reason)
                await self._flush(ws)
                await ws.close(reason=ev.reason[:120])
            elif isinstance(ev, s.ProtocolViolation | s.PeerError):
                log.warning("gate %s: %s %s: %s", self.session.gate_id, type(ev).__name__, ev.code, ev.detail)
        return synced

    async def _set_state(self, state: str, detail: str) -> None:
        if state == self.state and state != "rolled_back":
            return
        self.state = state
        self.state_since = self.wall_clock()
        try:
            await self.owner.on_state(state, detail)
        except Exception:
            log.exception("gate owner failed on state %s", state)


def _refusal_reason(exc: InvalidStatus) -> str:
    body = exc.response.body or b""
    try:
        import json

        return str(json.loads(body).get("reason") or body.decode("utf-8", "replace"))
    except (ValueError, AttributeError):
        return f"HTTP {exc.response.status_code}: {body[:200].decode('utf-8', 'replace')}"


__all__ = ["GateClient", "GateRefused", "backoff", "ssl_context"]
