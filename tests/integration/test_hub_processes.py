"""Several hub processes on one PostgreSQL, driven from outside: real ``gatehouse hub serve``
processes on two ports, real gate agents over real websockets, the HTTP API and the CLI.

What must hold whichever process a gate, a supervisor or the CLI talks to: an admit reaches
the gates of its zone on the other process within a second; a revocation reaches every gate
within a second; a journal entry re-sent to the other process is stored once; two admits of
one ticket stored by two processes at once make exactly one conflict; both dashboards show
every gate connected; and a gate that knows both addresses fails over when its process dies,
losing and doubling nothing.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatehouse.venue import HubProcess, Venue, fetch_all
from tests.conftest import TIMEOUT_S, eventually
from tickets.entry import EntryKind, JournalEntry
from tickets.model import TicketStatus

pytestmark = [pytest.mark.timed, pytest.mark.slow]

#: "within a second", on the one timeout scale (GATEHOUSE_TEST_TIMEOUT=30 allows 3 s)
ONE_S = max(1.0, TIMEOUT_S / 10)


@pytest.fixture
async def venue(tmp_path: Path, pg_url: str) -> AsyncIterator[tuple[Venue, HubProcess]]:
    """A venue whose hub runs as two processes, A (``venue.hub``) and B, on one PostgreSQL."""
    v = await Venue.create(tmp_path, tickets_per_zone=60, database=pg_url)
    b = v.hub.sibling("hub-b")
    try:
        await b.astart()
        yield v, b
    finally:
        await v.close()
        b.stop()


def _client(hub: HubProcess, token: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=hub.url, timeout=TIMEOUT_S,
                             headers={"Authorization": f"Bearer {token or hub.admin}"})


async def _http_gate(hub: HubProcess, name: str, zones: list[int]) -> tuple[str, str]:
    """A gate enrolled through the API that the test drives by hand (gate id, token)."""
    async with _client(hub) as c:
        r = await c.post("/api/v1/gates", json={"name": name, "zones": zones})
        r.raise_for_status()
        r = await c.post("/api/v1/enroll", json={"token": r.json()["enrolment_token"]})
        r.raise_for_status()
        return str(r.json()["gate_id"]), str(r.json()["token"])


def _post(client: httpx.AsyncClient, gate_id: str, entries: list[JournalEntry]) -> Any:
    return client.post(f"/api/v1/gates/{gate_id}/journal", json={"entries": [e.to_wire() for e in entries]})


async def test_admits_and_revocations_cross_hub_processes_within_a_second(
        venue: tuple[Venue, HubProcess]) -> None:
    v, b = venue
    north_a = await v.add_gate("North on A", ["North"])
    north_b = await v.add_gate("North on B", ["North"], hub_url=b.url)
    south_b = await v.add_gate("South on B", ["South"], hub_url=b.url)
    await v.online()

    # an admit at a gate on process A reaches the gate of its zone on process B
    code = await v.credential("N00001")
    tid = v.ticket("N00001")["ticket_id"]
    assert await north_a.scan(code) == "ADMIT"
    t0 = time.monotonic()
    reader_b = north_b.agent.reader
    assert reader_b is not None
    await eventually(lambda: reader_b.entry_state(tid).entries == 1, timeout=TIMEOUT_S,
                     what="the admit on process A reaching the gate on process B")
    assert time.monotonic() - t0 < ONE_S
    assert await north_b.scan(code) == "ALREADY_USED"

    # a revocation through process B's API, and one through the CLI, reach every gate (timed
    # from the moment each was committed: the API call or the command returned)
    async def reaches_every_gate(ticket_id: int, committed: float) -> None:
        for g in (north_a, north_b, south_b):
            reader = g.agent.reader
            assert reader is not None
            await eventually(lambda r=reader: (rec := r.ticket_by_id(ticket_id)) is not None
                             and rec.status is TicketStatus.REVOKED, timeout=TIMEOUT_S,
                             what=f"revocation of {ticket_id} at {g.gate_id}")
        assert time.monotonic() - committed < ONE_S, f"revocation of {ticket_id} took over a second"

    code2 = await v.credential("N00002")
    async with _client(b) as c:
        tid2 = v.ticket("N00002")["ticket_id"]
        (await c.post(f"/api/v1/tickets/{tid2}/revoke", json={"reason": "chargeback"})).raise_for_status()
    await reaches_every_gate(tid2, time.monotonic())
    done = await v.hub.agatehouse("ticket", "revoke", "S00003")
    assert done.returncode == 0, done.stderr
    await reaches_every_gate(v.ticket("S00003")["ticket_id"], time.monotonic())
    assert await north_a.scan(code2) == "REVOKED"

    # both processes' dashboards show all three gates connected
    for hub in (v.hub, b):
        async with _client(hub) as c:
            async def all_connected(c: httpx.AsyncClient = c) -> bool:
                body = (await c.get("/api/v1/dashboard")).json()
                return all(g["connected"] for g in body["gates"]) and len(body["gates"]) == 3
            deadline = time.monotonic() + TIMEOUT_S * 2
            while not await all_connected():
                assert time.monotonic() < deadline, f"{hub.url}'s dashboard does not show every gate connected"
                await asyncio.sleep(0.2)


async def test_ingest_is_idempotent_and_conflicts_exact_across_hub_processes(
        venue: tuple[Venue, HubProcess]) -> None:
    v, b = venue
    north = v.zones["North"]
    gate_x, token_x = await _http_gate(v.hub, "Hand X", [north])
    gate_y, token_y = await _http_gate(b, "Hand Y", [north])
    now = time.time()

    # a gate re-sending its batch to the other process: stored once, the duplicate acknowledged
    batch = [JournalEntry(gate_x, s, now, EntryKind.SCAN, reason="UNKNOWN", raw=b"X") for s in (1, 2, 3)]
    async with _client(v.hub, token_x) as on_a, _client(b, token_x) as on_b:
        first = (await _post(on_a, gate_x, batch)).json()
        again = (await _post(on_b, gate_x, batch)).json()
        assert (first["stored"], first["high_water"]) == (3, 3)
        assert (again["stored"], again["duplicates"], again["high_water"]) == (0, 3, 3)
        # the same seq with another nonce, through the other process: a conflict, never an overwrite
        reused = JournalEntry(gate_x, 2, now, EntryKind.SCAN, reason="UNKNOWN", raw=b"Y")
        body = (await _post(on_b, gate_x, [reused])).json()
        assert [c["kind"] for c in body["conflicts"]] == ["seq_reuse"]
    async with _client(b) as c:
        stored = await fetch_all(c, "/api/v1/validations", {"gate_id": gate_x, "limit": 1000})
    assert sorted(r["seq"] for r in stored) == [1, 2, 3]

    # 30 single-entry tickets, each admitted at X (through A) and at Y (through B) at once:
    # exactly one conflict each, whichever process commits first
    tickets = [t for t in v.tickets if t["zone_id"] == north][10:40]
    async with _client(v.hub, token_x) as on_a, _client(b, token_y) as on_b:
        async def admit_both(i: int, t: dict[str, Any]) -> None:
            ex = JournalEntry(gate_x, 10 + i, now + i, EntryKind.SCAN, reason="ADMIT", ticket_id=t["ticket_id"],
                              zone_id=north, raw=b"QR")
            ey = JournalEntry(gate_y, 1 + i, now + i + 0.5, EntryKind.SCAN, reason="ADMIT",
                              ticket_id=t["ticket_id"], zone_id=north, raw=b"QR")
            ra, rb = await asyncio.gather(_post(on_a, gate_x, [ex]), _post(on_b, gate_y, [ey]))
            assert ra.status_code == 200 and rb.status_code == 200, (ra.text, rb.text)
        await asyncio.gather(*(admit_both(i, t) for i, t in enumerate(tickets)))
    async with _client(v.hub) as c:
        conflicts = await fetch_all(c, "/api/v1/conflicts", {"limit": 1000})
    doubles = [c for c in conflicts if c["kind"] != "seq_reuse"]
    assert sorted(c["ticket_id"] for c in doubles) == sorted(t["ticket_id"] for t in tickets), \
        json.dumps(doubles[:3])


async def test_a_gate_fails_over_to_the_other_hub_process_and_loses_nothing(
        venue: tuple[Venue, HubProcess]) -> None:
    v, b = venue
    gate = await v.add_gate("North both", ["North"], hub_urls=[v.hub.url, b.url])
    watcher = await v.add_gate("North on B", ["North"], hub_url=b.url)
    await v.online(gate, watcher)
    assert gate.link is not None and gate.link.client.url.startswith(v.hub.url.replace("http", "ws"))
    codes = [await v.credential(f"N{i:05d}") for i in range(20, 40)]
    reasons = [await gate.scan(c) for c in codes[:10]]
    v.hub.kill()  # kill -9 hub process A mid-burst; the gate keeps deciding
    reasons += [await gate.scan(c) for c in codes[10:]]
    assert reasons == ["ADMIT"] * 20
    await v.online(gate)
    assert gate.link.client.url.startswith(b.url.replace("http", "ws"))
    assert gate.link.client.failovers >= 1
    journal = gate.agent.journal
    assert journal is not None
    await eventually(lambda: gate.link is not None and gate.link.client.session.acked >= journal.last_seq,
                     timeout=TIMEOUT_S * 2, what="the journal acknowledged by process B")
    async with _client(b) as c:
        stored = await fetch_all(c, "/api/v1/validations", {"gate_id": gate.gate_id, "limit": 10_000})
    seqs = [r["seq"] for r in stored]
    assert sorted(seqs) == list(range(1, journal.last_seq + 1)), "an entry was lost or stored twice"
    # the admits made while failing over reached the other gate of the zone
    reader = watcher.agent.reader
    assert reader is not None
    for n in range(20, 40):
        tid = v.ticket(f"N{n:05d}")["ticket_id"]
        await eventually(lambda t=tid: reader.entry_state(t).entries == 1, timeout=TIMEOUT_S,
                         what=f"admit of N{n:05d} at the watcher")
