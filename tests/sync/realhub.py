"""A real hub for transport tests: uvicorn on 127.0.0.1 serving a small FastAPI app with the
gate route over the in-memory backend, plus async gate owners. Waiting is event-driven
(a shared condition notified on every change), bounded by one timeout constant."""
from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI

from sync import messages as m
from sync import session as s
from sync.backend import HelloFacts, IngestResult
from sync.gate_client import GateClient
from sync.hub_route import GateRegistry, add_gate_route
from sync.memory import MemoryHubBackend
from sync.merge import merge_ticket
from tests.sync.harness import MemoryGate
from tickets.entry import JournalEntry
from tickets.model import TicketRecord, Zone
from tickets.policy import EntryPolicy

#: Every wait in the transport tests scales from this.
TIMEOUT_S = 10.0


class Changes:
    """Something changed somewhere: wake the waiters, who re-check their condition."""

    def __init__(self) -> None:
        self.cond = asyncio.Condition()

    def notify(self) -> None:
        async def _n() -> None:
            async with self.cond:
                self.cond.notify_all()

        asyncio.get_running_loop().create_task(_n())

    async def until(self, pred: Callable[[], bool], within: float = TIMEOUT_S, what: str = "") -> None:
        async def _wait() -> None:
            async with self.cond:
                await self.cond.wait_for(pred)

        try:
            await asyncio.wait_for(_wait(), within)
        except TimeoutError:
            raise AssertionError(f"timed out after {within} s waiting for {what or pred}") from None


class NotifyingBackend(MemoryHubBackend):
    def __init__(self, changes: Changes) -> None:
        super().__init__()
        self.changes = changes

    async def ingest(self, gate_id: str, entries: Sequence[JournalEntry]) -> IngestResult:
        r = self.ingest_now(gate_id, entries)
        self.changes.notify()
        return r


def fast_delays() -> Iterator[float]:
    while True:
        yield 0.05


class AsyncGate:
    """A gate owner (the GateOwner protocol) over a MemoryGate's dicts, plus its client."""

    def __init__(self, gate_id: str, url: str, token: str, changes: Changes, *,
                 config: s.SessionConfig | None = None, ca_file: str | None = None,
                 delays: Callable[[], Iterator[float]] = fast_delays) -> None:
        self.mg = MemoryGate(gate_id)
        self.changes = changes
        self.states: list[tuple[str, str]] = []
        self.remote_admit_at: dict[int, float] = {}
        self.commands: list[str] = []
        self.client = GateClient(url, token, gate_id, self, ca_file=ca_file, config=config, reconnect_delays=delays)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.client.run())

    async def stop(self) -> None:
        await self.client.stop()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self.task, TIMEOUT_S)

    def scan(self, ticket_id: int) -> JournalEntry:
        e = self.mg.scan(ticket_id, time.time())
        self.client.journal_appended(e.seq)
        return e

    @property
    def state(self) -> str:
        return self.client.state

    # ---- GateOwner
    async def hello_facts(self) -> HelloFacts:
        g = self.mg
        return HelloFacts(g.cursor, g.acked, len(g.journal), g.hub_epoch)

    async def journal_after(self, seq: int, limit: int) -> list[JournalEntry]:
        return self.mg.journal[seq:seq + limit]

    async def snapshot_started(self, seq: int, total_rows: int, reason: str) -> None:
        self.mg.staging = {}

    async def apply_snapshot_batch(self, rows: Sequence[TicketRecord], zones: Sequence[Zone],
                                   policies: Sequence[EntryPolicy], done_rows: int, total_rows: int,
                                   states: Sequence[Any] = ()) -> None:
        assert self.mg.staging is not None
        for r in rows:
            self.mg.staging[r.ticket_id] = merge_ticket(self.mg.replica.get(r.ticket_id), r)

    async def snapshot_finished(self, cursor: int, token: str | None = None) -> None:
        self.mg.handle([s.SnapshotFinished(cursor, 0)])
        self.changes.notify()

    async def apply_deltas(self, changes: Sequence[m.Change], cursor: int, token: str | None = None) -> None:
        self.mg.handle([s.ApplyDeltas(tuple(changes), cursor)])
        self.changes.notify()

    async def on_remote_admit(self, ticket_id: int, gate_id: str, at: float, direction: str) -> None:
        self.mg.entries[ticket_id] = self.mg.entries.get(ticket_id, 0) + 1
        self.remote_admit_at[ticket_id] = time.time()
        self.changes.notify()

    async def on_remote_not_passed(self, ticket_id: int, gate_id: str, gate_seq: int) -> None:
        self.mg.entries[ticket_id] = max(0, self.mg.entries.get(ticket_id, 0) - 1)
        self.changes.notify()

    async def on_ack(self, high_water: int, backed_up: int) -> None:
        self.mg.acked, self.mg.backed_up = high_water, backed_up
        self.changes.notify()

    async def on_hub_epoch(self, epoch: str) -> None:
        self.mg.hub_epoch = epoch

    async def on_command(self, name: str, reason: str, args: dict[str, Any]) -> None:
        self.commands.append(name)
        self.changes.notify()

    async def on_state(self, state: str, detail: str) -> None:
        self.states.append((state, detail))
        self.changes.notify()


class RealHub:
    """uvicorn serving the gate route on a fixed 127.0.0.1 port that survives restarts."""

    def __init__(self, backend: MemoryHubBackend, config: s.SessionConfig | None = None,
                 ssl_files: tuple[str, str] | None = None, snapshot_page: int = 2000) -> None:
        self.backend = backend
        self.app = FastAPI()
        self.registry: GateRegistry = add_gate_route(self.app, backend, config=config, snapshot_page=snapshot_page)
        self.ssl_files = ssl_files
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"{'wss' if self.ssl_files else 'ws'}://127.0.0.1:{self.port}/ws/gate"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        kw: dict[str, Any] = {}
        if self.ssl_files:
            kw = {"ssl_certfile": self.ssl_files[0], "ssl_keyfile": self.ssl_files[1]}
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", ws="websockets-sansio",
                                ws_ping_interval=None, **kw)
        self.server = uvicorn.Server(config)
        self.task = asyncio.get_running_loop().create_task(self.server.serve(sockets=[sock]))
        deadline = time.monotonic() + TIMEOUT_S
        while not self.server.started:
            if self.task.done():
                self.task.result()
            if time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start")
            await asyncio.sleep(0.01)

    async def kill(self) -> None:
        """Stop abruptly: open connections are dropped, in-flight work is lost."""
        assert self.server is not None and self.task is not None
        self.server.should_exit = True
        self.server.force_exit = True
        for conn in list(self.registry.connections.values()):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1012)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self.task, TIMEOUT_S)
        self.registry.connections.clear()
