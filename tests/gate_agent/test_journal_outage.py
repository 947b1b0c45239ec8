"""A journal that cannot be written closes the gate at once, and nothing is acted on off the record.

The disk-full scenario (tests/faults) fills a real filesystem; which of the two ways in it
trips first — the failed write or the low-space check — depends on timing. Here the write
itself fails (SQLite's "database or disk is full", injected into the journal's connection),
so that path is proven on its own, with an in-process agent.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from firmware_bridge.sim import SimTurnstile
from gate_agent.agent import GateAgent
from gate_agent.config import GateConfig
from gate_agent.disk import RESERVE_NAME
from scanners.sim import SimScanner
from tests.conftest import eventually


class FullDisk:
    """Wraps the journal's write connection: every INSERT fails as on a full disk while ``full``."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.full = False

    async def execute(self, sql: str, *args: Any) -> Any:
        if self.full and sql.lstrip().upper().startswith("INSERT"):
            raise sqlite3.OperationalError("database or disk is full")
        return await self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


async def test_a_failed_journal_write_refuses_the_scan_closes_the_gate_and_reopens_on_record(tmp_path: Path) -> None:
    scanner, turnstile = SimScanner(), SimTurnstile()
    agent = GateAgent(GateConfig(gate_id="g1", data_dir=tmp_path, passage_timeout_s=0.2), scanner=scanner,
                      turnstile=turnstile, serve_status=False)
    await agent.start()
    try:
        assert agent.journal is not None and agent.lane is not None
        assert (tmp_path / RESERVE_NAME).exists()
        mode_before = agent.ladder.mode
        disk = FullDisk(agent.journal._tx.db)
        agent.journal._tx.db = disk  # type: ignore[assignment]
        before = agent.journal.last_seq
        disk.full = True

        await scanner.feed(b"NOT-A-TICKET")
        await eventually(lambda: agent.lane is not None and agent.lane.counters["unjournaled"] == 1,
                         what="the scan refused unrecorded")
        shown = agent.lane.recent[0]
        assert shown["reason"] == "GATE_CLOSED" and shown["journaled"] is False
        assert "journal cannot be written" in shown["detail"]
        await eventually(lambda: str(agent.ladder.mode) == "CLOSED", what="the gate closed")
        assert agent.ladder.cause.startswith("journal cannot be written: database or disk is full")
        assert "release" not in turnstile.action_names()
        assert not (tmp_path / RESERVE_NAME).exists()  # given up so the closing can be recorded
        assert agent.journal.last_seq == before  # nothing written while it failed
        status = await agent.status()
        assert status["mode"] == "CLOSED" and status["disk"]["journal_failures"] >= 1

        disk.full = False
        await agent.check_disk()  # what the watchdog does every second while closed
        assert agent.ladder.mode is mode_before
        assert (tmp_path / RESERVE_NAME).exists()
        written = [e for e in await agent.journal.all_entries() if e.seq > before]
        assert [e.kind.value for e in written] == ["mode", "event", "mode"]
        late, event, reopened = written
        assert late.mode == "CLOSED" and "recorded late" in late.detail and late.at < event.at
        assert event.detail.startswith("journal_writable_again:") and "1 scan(s) refused unrecorded" in event.detail
        assert reopened.detail.startswith(f"CLOSED->{mode_before}")
    finally:
        await agent.stop()


async def test_a_passage_outcome_the_journal_cannot_take_is_kept_and_recorded_late_once_it_can(tmp_path: Path) -> None:
    """An admit journaled, then the disk fills before the fan's passage times out: the outcome
    is kept (not lost, not silently dropped), written once the journal works, and reaches the hub."""
    from gatehouse.venue import Venue, fetch_all

    venue = await Venue.create(tmp_path, zones={"North": 100}, tickets_per_zone=3)
    try:
        gate = await venue.add_gate("north 1", ["North"], passage_timeout_s=1.0)
        await venue.online(gate)
        agent, lane = gate.agent, gate.agent.lane
        assert agent.journal is not None and lane is not None
        disk = FullDisk(agent.journal._tx.db)
        agent.journal._tx.db = disk  # type: ignore[assignment]
        code = await venue.credential("N00001")
        assert await gate.scan(code, walk=False) == "ADMIT"
        admit_seq = agent.journal.last_seq
        disk.full = True  # before the passage times out (1 s): its outcome cannot be written
        await eventually(lambda: lane.counters["passages_deferred"] == 1, what="the outcome kept for later")
        assert str(agent.ladder.mode) == "CLOSED"
        assert len(lane.deferred) == 1

        disk.full = False
        await agent.check_disk()
        assert lane.deferred == [] and str(agent.ladder.mode) == "ONLINE"
        outcome = next(e for e in await agent.journal.all_entries() if e.kind.value == "passage"
                       and e.ref_seq == admit_seq)
        assert outcome.passage.value == "not_passed" and "recorded late" in outcome.detail
        await eventually(lambda: agent.sync_status is not None and agent.sync_status()["backlog"] == 0,
                         what="the late outcome uploaded")
        async with venue.hub.admin_client() as c:
            held = await fetch_all(c, "/api/v1/validations", {"gate_id": gate.gate_id, "limit": 1000})
        assert any(v["kind"] == "passage" and v["ref_seq"] == admit_seq for v in held)
    finally:
        await venue.close()
