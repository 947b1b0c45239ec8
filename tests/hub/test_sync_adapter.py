"""The hub store behind the sync layer's real websocket route (runs when ``sync`` is installed).

A gate enrolled over HTTP connects to ``/ws/gate`` with its token, receives the replica,
has its journal acked, sees a revocation made through the API live, and is disconnected
when the gate is revoked.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from tests.hub.conftest import TIMEOUT_S, Hub
from tickets.entry import EntryKind, JournalEntry
from tickets.model import TicketRecord, TicketStatus, Zone
from tickets.policy import EntryPolicy

pytest.importorskip("sync.hub_route")
from sync.backend import HelloFacts
from sync.gate_client import GateClient


class Owner:
    """A gate owner over dicts, with events the test awaits instead of sleeping."""

    def __init__(self, journal: list[JournalEntry]) -> None:
        self.journal = journal
        self.tickets: dict[int, TicketRecord] = {}
        self.cursor = 0
        self.acked = 0
        self.epoch: str | None = None
        self.states: list[str] = []
        self.changed = asyncio.Event()

    async def hello_facts(self) -> HelloFacts:
        return HelloFacts(self.cursor, self.acked, len(self.journal), self.epoch)

    async def journal_after(self, seq: int, limit: int) -> list[JournalEntry]:
        return [e for e in self.journal if e.seq > seq][:limit]

    async def snapshot_started(self, seq: int, total_rows: int, reason: str) -> None: ...

    async def apply_snapshot_batch(self, rows: Sequence[TicketRecord], zones: Sequence[Zone],
                                   policies: Sequence[EntryPolicy], done_rows: int, total_rows: int,
                                   states: Sequence[Any] = ()) -> None:
        self.tickets.update({r.ticket_id: r for r in rows})

    async def snapshot_finished(self, cursor: int, token: str | None = None) -> None:
        self.cursor = cursor
        self.changed.set()

    async def apply_deltas(self, changes: Sequence[Any], cursor: int, token: str | None = None) -> None:
        for c in changes:
            if getattr(c, "kind", "") == "ticket":
                self.tickets[c.ticket.ticket_id] = c.ticket
        self.cursor = cursor
        self.changed.set()

    async def on_remote_admit(self, ticket_id: int, gate_id: str, at: float, direction: str) -> None: ...

    async def on_ack(self, high_water: int, backed_up: int) -> None:
        self.acked = high_water
        self.changed.set()

    async def on_hub_epoch(self, epoch: str) -> None:
        self.epoch = epoch

    async def on_command(self, name: str, reason: str, args: dict[str, Any]) -> None: ...

    async def on_state(self, state: str, detail: str) -> None:
        self.states.append(state)
        self.changed.set()


async def _until(owner: Owner, check: Any) -> None:
    async def wait() -> None:
        while not check():
            owner.changed.clear()
            await owner.changed.wait()
    await asyncio.wait_for(wait(), TIMEOUT_S)


async def test_a_gate_syncs_over_the_websocket_and_is_cut_off_when_revoked(hub: Hub) -> None:
    async with httpx.AsyncClient(base_url=hub.url, headers={"Authorization": f"Bearer {hub.admin}"}) as c:
        await c.post("/api/v1/tickets/import", content=b"number,zone\nWS-1,North\nWS-2,North\n")
        tid = (await c.get("/api/v1/tickets", params={"number": "WS-1"})).json()[0]["ticket_id"]
        gate = (await c.post("/api/v1/gates", json={"name": "Socket gate"})).json()
        token = (await c.post("/api/v1/enroll", json={"token": gate["enrolment_token"]})).json()["token"]
    gate_id = gate["gate_id"]
    owner = Owner([JournalEntry(gate_id, 1, 1.0, EntryKind.SCAN, reason="ADMIT", ticket_id=tid)])
    client = GateClient(hub.url.replace("http", "ws") + "/ws/gate", token, gate_id, owner)
    task = asyncio.create_task(client.run())
    try:
        await _until(owner, lambda: tid in owner.tickets and owner.acked == 1)
        async with httpx.AsyncClient(base_url=hub.url, headers={"Authorization": f"Bearer {hub.admin}"}) as c:
            assert (await c.post(f"/api/v1/tickets/{tid}/revoke")).status_code == 200
            await _until(owner, lambda: owner.tickets[tid].status is TicketStatus.REVOKED)
            gates = (await c.get("/api/v1/gates")).json()
            assert next(g for g in gates if g["gate_id"] == gate_id)["connected"] is True
            assert (await c.post(f"/api/v1/gates/{gate_id}/revoke")).status_code == 200
        await _until(owner, lambda: owner.states[-1] != "online" and client.last_refusal is not None)
    finally:
        await client.stop()
        await asyncio.wait_for(task, TIMEOUT_S)
