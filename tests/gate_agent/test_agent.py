"""The gate agent end to end on one machine: simulated scanner and turnstile, real SQLite files,
the real status server over HTTP."""
from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from firmware_bridge.sim import SimTurnstile
from gate_agent.agent import GateAgent
from gate_agent.config import GateConfig
from gate_agent.modes import Mode
from gate_agent.replica import SCHEMA_VERSION, Replica
from gatehouse.bench.testdata import GeneratedEvent, make_event
from scanners.sim import SimScanner
from tests.conftest import eventually
from tickets.entry import EntryKind, Passage
from tickets.model import Direction


class RecordingTurnstile(SimTurnstile):
    """Notes how many journal entries existed at each release: the decision must come first."""

    journal_seq_at_release: list[int]
    agent: GateAgent | None = None

    async def _hw_release(self, direction: Direction) -> bool:
        assert self.agent is not None and self.agent.journal is not None
        self.journal_seq_at_release.append(self.agent.journal.last_seq)
        return await super()._hw_release(direction)


@dataclass
class Gate:
    agent: GateAgent
    scanner: SimScanner
    turnstile: RecordingTurnstile
    event: GeneratedEvent

    async def scan(self, payload: bytes) -> tuple[str, int]:
        """Present a code and wait for its decision; returns (reason, seq)."""
        assert self.agent.journal is not None
        before = self.agent.journal.last_seq
        await self.scanner.feed(payload)
        await eventually(lambda: self._scan_after(before) is not None, what="the scan's journal entry")
        entry = self._scan_after(before)
        assert entry is not None
        return entry["reason"], entry["seq"]

    def _scan_after(self, seq: int):  # type: ignore[no-untyped-def]
        assert self.agent.lane is not None
        for r in self.agent.lane.recent:
            if r["seq"] > seq:
                return r
        return None


async def build_gate(tmp_path: Path, *, passage_timeout_s: float = 0.3, schema: int | None = None,
                     synced: bool = True) -> Gate:
    event = make_event(400, time.time())
    cfg = GateConfig(gate_id="G1", data_dir=tmp_path, passage_timeout_s=passage_timeout_s, status_port=0)
    replica = await Replica.open(cfg.replica_path)
    await replica.set_event(event_id=event.event_id, keyring=event.keyring, zones=event.zones, policies=event.policies)
    await replica.bulk_load(event.rows())
    if synced:
        await replica.apply_tickets([], cursor=1)  # as if the hub's snapshot had arrived
    await replica.close()
    if schema is not None:
        conn = sqlite3.connect(cfg.replica_path)
        conn.execute(f"PRAGMA user_version={schema}")
        conn.close()
    scanner = SimScanner()
    turnstile = RecordingTurnstile()
    turnstile.journal_seq_at_release = []
    agent = GateAgent(cfg, scanner=scanner, turnstile=turnstile)
    turnstile.agent = agent
    await agent.start()
    return Gate(agent, scanner, turnstile, event)


@pytest.fixture
async def gate(tmp_path: Path) -> AsyncIterator[Gate]:
    g = await build_gate(tmp_path)
    yield g
    await g.agent.stop()


async def entries(gate: Gate, kind: EntryKind):  # type: ignore[no-untyped-def]
    assert gate.agent.journal is not None
    return [e for e in await gate.agent.journal.all_entries() if e.kind is kind]


async def test_admit_is_journaled_before_the_turnstile_unlocks(gate: Gate) -> None:
    reason, seq = await gate.scan(gate.event.credential_for(24).encode())
    assert reason == "ADMIT"
    await eventually(lambda: gate.turnstile.journal_seq_at_release, what="the unlock")
    assert gate.turnstile.journal_seq_at_release[0] >= seq


async def test_passage_consumes_the_ticket_and_a_second_scan_is_already_used(gate: Gate) -> None:
    code = gate.event.credential_for(24).encode()
    await gate.scan(code)
    await eventually(lambda: gate.turnstile.journal_seq_at_release, what="the unlock")
    gate.turnstile.walk_through(Direction.IN)
    await eventually(lambda: gate.agent.lane.counters["passed"] == 1, what="the passage")  # type: ignore[union-attr]
    passages = await entries(gate, EntryKind.PASSAGE)
    assert [p.passage for p in passages] == [Passage.PASSED]
    reason, _ = await gate.scan(code)
    assert reason == "ALREADY_USED"


async def test_no_passage_within_the_timeout_leaves_the_ticket_valid(gate: Gate) -> None:
    code = gate.event.credential_for(4).encode()
    await gate.scan(code)
    await eventually(lambda: gate.agent.lane.counters["not_passed"] == 1, what="the timeout")  # type: ignore[union-attr]
    assert [p.passage for p in await entries(gate, EntryKind.PASSAGE)] == [Passage.NOT_PASSED]
    reason, _ = await gate.scan(code)
    assert reason == "ADMIT"


async def test_ticket_handed_back_while_its_admit_is_pending_is_refused(gate: Gate) -> None:
    code = gate.event.credential_for(8).encode()
    first, _ = await gate.scan(code)
    second, _ = await gate.scan(code)
    assert (first, second) == ("ADMIT", "ALREADY_USED")


async def test_garbage_from_the_scanner_is_refused_and_the_lane_keeps_going(gate: Gate) -> None:
    assert (await gate.scan(b"\x00\xff\xfe garbage"))[0] == "MALFORMED"
    assert (await gate.scan(b"x" * 5000))[0] == "MALFORMED"
    assert (await gate.scan(gate.event.credential_for(12).encode()))[0] == "ADMIT"


async def test_fire_alarm_frees_the_lane_and_the_gate_shows_emergency(gate: Gate) -> None:
    gate.turnstile.fire_alarm(True)
    await eventually(lambda: gate.agent.ladder.mode is Mode.EMERGENCY, what="EMERGENCY")
    assert gate.turnstile.emergency
    assert (await gate.scan(gate.event.credential_for(24).encode()))[0] == "GATE_CLOSED"
    assert not await gate.agent.emergency(False, "reset")  # contact still open: refused
    gate.turnstile.fire_alarm(False)
    assert gate.agent.ladder.mode is Mode.EMERGENCY  # latched: the contact closing is not a reset
    assert await gate.agent.emergency(False, "supervisor reset")
    assert not gate.turnstile.emergency
    assert gate.agent.ladder.mode is Mode.OFFLINE
    modes = [e.detail for e in await entries(gate, EntryKind.MODE)]
    assert any("->EMERGENCY: fire alarm" in d for d in modes) and any(d.startswith("EMERGENCY->") for d in modes)


async def test_scanner_down_puts_the_gate_in_manifest_mode_until_it_recovers(gate: Gate) -> None:
    gate.scanner.fault("camera unplugged")
    await eventually(lambda: gate.agent.ladder.mode is Mode.MANIFEST, what="MANIFEST")
    gate.scanner.recover()
    await eventually(lambda: gate.agent.ladder.mode is Mode.OFFLINE, what="back to OFFLINE")


async def test_replica_from_newer_software_puts_the_gate_in_manifest_not_down(tmp_path: Path) -> None:
    g = await build_gate(tmp_path, schema=SCHEMA_VERSION + 1)
    try:
        assert g.agent.ladder.mode is Mode.MANIFEST and "schema" in g.agent.ladder.cause
        reason, _ = await g.scan(g.event.credential_for(24).encode())
        assert reason == "MANIFEST_MODE"  # journaled, staff told to use the manifest; never admitted blind
        assert (await entries(g, EntryKind.SCAN))[0].mode == "MANIFEST"
    finally:
        await g.agent.stop()


def screen_client(gate: Gate) -> httpx.AsyncClient:
    """A client of the staff screen's API, with the session the kiosk's page carries."""
    assert gate.agent.status_url is not None and gate.agent.screen is not None
    return httpx.AsyncClient(base_url=gate.agent.status_url, headers={"X-Gate-Session": gate.agent.screen.session})


async def test_status_endpoint_and_staff_screen_are_served_locally(gate: Gate) -> None:
    await gate.scan(gate.event.credential_for(24).encode())
    async with screen_client(gate) as client:
        status = (await client.get("/status")).json()
        assert status["gate_id"] == "G1" and status["mode"] == "OFFLINE"
        assert status["journal_last_seq"] >= 2 and status["lane"]["admitted"] == 1
        assert status["backlog"] == status["journal_last_seq"]
        page = await client.get("/")
        assert page.status_code == 200 and "gate.js" in page.text
        keyed = (await client.post("/api/keyed", json={"code": gate.event.number(28)})).json()
        assert keyed["reason"] == "ADMIT"
        bad = await client.post("/api/keyed", json={"code": 5})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"


async def test_manual_admit_from_the_manifest_releases_the_turnstile_and_is_journaled(gate: Gate) -> None:
    from tickets.manifest import ManifestRow, TicketState, check_code, hash_pin

    store = gate.agent.manifest
    assert store is not None
    number = gate.event.number(32)
    row = ManifestRow(33, number, check_code(gate.event.event_id, number), "Ada Lovelace", 1, "Zone 1", "N-1-1",
                      TicketState.VALID)
    await store.replace_all([row], hub_seq=7, generated_at=1.0)
    await store.put_steward("st1", "Sam Steward", hash_pin("2468"))
    gate.scanner.fault("camera unplugged")
    await eventually(lambda: gate.agent.ladder.mode is Mode.MANIFEST, what="MANIFEST")

    async with screen_client(gate) as client:
        found = (await client.get("/api/manifest/search", params={"q": number})).json()
        assert [m["holder"] for m in found["matches"]] == ["Ada Lovelace"]
        wrong = (await client.post("/api/manual-admit", json={"typed": number, "steward_id": "st1", "pin": "0000"})).json()
        assert not wrong["admitted"] and wrong["reason"] == "PIN_REFUSED"
        ok = (await client.post("/api/manual-admit", json={"typed": number, "steward_id": "st1", "pin": "2468"})).json()
        assert ok["admitted"] and ok["reason"] == "ADMIT"
        again = (await client.post("/api/manual-admit", json={"typed": number, "steward_id": "st1", "pin": "2468"})).json()
        assert not again["admitted"] and again["reason"] == "ALREADY_USED"

    await eventually(lambda: gate.turnstile.journal_seq_at_release, what="the release for the manual admit")
    manual = await entries(gate, EntryKind.MANUAL)
    admitted = [e for e in manual if e.reason == "ADMIT"]
    assert len(admitted) == 1 and admitted[0].staff_id == "st1" and admitted[0].raw == number.encode()
    assert "camera unplugged" in admitted[0].detail and admitted[0].mode == "MANIFEST"
    assert all(b"2468" not in e.raw and "2468" not in e.detail for e in manual)  # never the PIN


async def test_gate_whose_replica_never_synced_works_from_the_manifest(tmp_path: Path) -> None:
    g = await build_gate(tmp_path, synced=False)
    try:
        assert g.agent.ladder.mode is Mode.MANIFEST and "never synced" in g.agent.ladder.cause
        await g.agent.synced()  # the hub's snapshot arrived
        assert g.agent.ladder.mode is Mode.OFFLINE
    finally:
        await g.agent.stop()
