"""The store contract the sync layer relies on, tested directly (no HTTP)."""
from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.errors import BadInput, Conflict, Unauthorized
from hub.importer import import_tickets
from hub.records import record_from_row
from hub.store import HubStore, Principal, db_path, init_hub, restore_hub
from tickets.entry import EntryKind, JournalEntry
from tickets.keys import KeyRing

ADMIN = Principal("test", "admin")


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[HubStore]:
    clock = Clock()
    init_hub(tmp_path, event_id=9, name="League", clock=clock)
    rows = "number,zone,holder,rotating\n" + "".join(f"N-{i:04},{'North' if i % 2 else 'South'},H{i},{i % 3 == 0}\n"
                                                     for i in range(1, 121))
    report = import_tickets(db_path(tmp_path), rows.encode(), "csv", clock=clock)
    assert report.created == 120 and report.error_count == 0
    s = await HubStore.open(tmp_path, clock=clock)
    yield s
    await s.close()


async def test_an_enrolment_token_expires(store: HubStore) -> None:
    _gate_id, token, expires = await store.create_gate(ADMIN, "South 3", [1], ttl_s=60)
    store.clock.t = expires + 1  # type: ignore[attr-defined]
    with pytest.raises(Unauthorized) as exc:
        await store.enroll_gate(token)
    assert exc.value.code == "enrolment_expired"
    assert await store.authenticate_gate(token) is None


async def test_only_token_hashes_are_stored(store: HubStore) -> None:
    _gate_id, enrol, _ = await store.create_gate(ADMIN, "Hash check")
    gate_id, token = await store.enroll_gate(enrol)
    assert await store.authenticate_gate(token) == gate_id
    dump = "\n".join(sqlite3.connect(store.path).iterdump())
    assert token not in dump and enrol not in dump


async def test_changes_since_a_cursor_rebuild_every_ticket(store: HubStore) -> None:
    seen: dict[int, dict] = {}  # type: ignore[type-arg]
    cursor = 0
    while batch := await store.changes_since(cursor, 50):
        for c in batch:
            assert c.seq > cursor
            if c.kind == "ticket":
                seen[c.row["ticket_id"]] = c.row
        cursor = batch[-1].seq
    assert cursor == await store.current_seq()
    assert len(seen) == 120
    rotating = [record_from_row(r) for r in seen.values() if r["rotating_secret"]]
    assert len(rotating) == 40 and all(len(r.rotating_secret or b"") == 20 for r in rotating)


async def test_snapshot_pages_cover_the_table_at_a_seq(store: HubStore) -> None:
    after, pages, tickets = 0, 0, []
    first_seq = None
    while True:
        snap = await store.snapshot_rows(after, 50)
        first_seq = snap.seq if first_seq is None else first_seq
        pages += 1
        tickets += snap.tickets
        assert {z["name"] for z in snap.zones} == {"North", "South"}
        assert len(snap.policies) == 6
        if snap.next_after is None:
            break
        after = snap.next_after
    assert pages == 3 and len(tickets) == 120 and first_seq == await store.current_seq()


async def test_event_info_carries_what_a_gate_needs(store: HubStore) -> None:
    info = await store.event_info()
    assert info["event_id"] == 9 and info["allow_admit_on_signature"] is True
    assert len(KeyRing.from_list(info["keys"])) == 1
    assert [p["name"] for p in info["policies"]][:2] == ["single", "reentry"]


async def test_concurrent_batches_from_many_gates_all_land(store: HubStore) -> None:
    gates = []
    for i in range(10):
        _g, enrol, _ = await store.create_gate(ADMIN, f"G{i}")
        gates.append((await store.enroll_gate(enrol))[0])

    async def push(gate_id: str) -> int:
        hw = 0
        for start in range(1, 101, 25):
            batch = [JournalEntry(gate_id, s, 1_800_000_000.0 + s, EntryKind.SCAN, reason="UNKNOWN")
                     for s in range(start, start + 25)]
            hw = (await store.ingest(gate_id, batch)).high_water
        return hw

    assert await asyncio.gather(*(push(g) for g in gates)) == [100] * 10
    assert (await store.stats(since=0))["journal_entries"] == 1000


async def test_stats_count_entries_exits_occupancy_and_refusals(store: HubStore) -> None:
    zone = await store.upsert_zone(ADMIN, "North", capacity=10)
    _g, enrol, _ = await store.create_gate(ADMIN, "Stats", [zone["zone_id"]])
    gate_id, _t = await store.enroll_gate(enrol)
    t0 = store.clock()
    entries = [
        JournalEntry(gate_id, 1, t0 - 120, EntryKind.SCAN, reason="ADMIT", ticket_id=1, zone_id=zone["zone_id"]),
        JournalEntry(gate_id, 2, t0 - 110, EntryKind.SCAN, reason="ADMIT", ticket_id=3, zone_id=zone["zone_id"]),
        JournalEntry(gate_id, 3, t0 - 60, EntryKind.SCAN, reason="ADMIT", ticket_id=1, zone_id=zone["zone_id"],
                     direction="out"),
        JournalEntry(gate_id, 4, t0 - 50, EntryKind.SCAN, reason="FORGED"),
        JournalEntry(gate_id, 5, t0 - 40, EntryKind.SCAN, reason="FORGED"),
        JournalEntry(gate_id, 6, t0 - 30, EntryKind.SCAN, reason="REVOKED", ticket_id=5),
    ]
    await store.ingest(gate_id, entries)
    stats = await store.stats()
    north = next(o for o in stats["occupancy"] if o["name"] == "North")
    assert (north["inside"], north["capacity"], north["ratio"]) == (1, 10, 0.1)
    assert stats["refusals_by_reason"] == {"FORGED": 2, "REVOKED": 1}
    per_gate = [(m["entries"], m["exits"]) for m in stats["per_gate_minute"] if m["gate_id"] == gate_id]
    assert sum(e for e, _ in per_gate) == 2 and sum(x for _, x in per_gate) == 1
    assert len(await store.validations(reason="FORGED")) == 2
    assert [v["seq"] for v in await store.validations(ticket_id=1)] == [3, 1]
    assert [v["seq"] for v in await store.validations(since=t0 - 55, until=t0 - 35)] == [5, 4]


async def test_restore_rolls_back_high_water_and_changes_the_epoch(store: HubStore, tmp_path: Path) -> None:
    _g, enrol, _ = await store.create_gate(ADMIN, "Restore")
    gate_id, _t = await store.enroll_gate(enrol)
    await store.ingest(gate_id, [JournalEntry(gate_id, s, 1.0 * s, EntryKind.SCAN, reason="UNKNOWN") for s in (1, 2)])
    backup = tmp_path / "backups" / "b1.db"
    info = await store.backup(ADMIN, backup)
    assert info["high_waters"][gate_id] == 2 and await store.backed_up_high_water(gate_id) == 2
    with pytest.raises(Conflict):
        await store.backup(ADMIN, backup)
    await store.ingest(gate_id, [JournalEntry(gate_id, 3, 3.0, EntryKind.SCAN, reason="UNKNOWN")])
    epoch = await store.hub_epoch()
    await store.close()
    restored = restore_hub(store.data_dir, backup)
    again = await HubStore.open(store.data_dir)
    try:
        assert await again.hub_epoch() == restored["hub_epoch"] != epoch
        assert await again.journal_high_water(gate_id) == 2
        assert (await again.ingest(gate_id, [JournalEntry(gate_id, 3, 3.0, EntryKind.SCAN, reason="UNKNOWN")])
                ).high_water == 3
    finally:
        await again.close()


async def test_init_refuses_an_initialised_directory(store: HubStore) -> None:
    with pytest.raises(Conflict):
        init_hub(store.data_dir, event_id=9)


async def test_revoking_a_gate_is_a_change_every_hub_process_reads(store: HubStore) -> None:
    _g, enrol, _ = await store.create_gate(ADMIN, "Listener")
    gate_id, token = await store.enroll_gate(enrol)
    before = await store.current_seq()
    await store.revoke_gate(ADMIN, gate_id)
    changes, _end = await store.changes_page(before, 100)
    assert ("gate", {"gate_id": gate_id, "status": "revoked"}) in [(c.kind, c.row) for c in changes]
    assert await store.authenticate_gate(token) is None
    assert await store.gate_token_status(token, gate_id) == "revoked"


async def test_an_emergency_is_recorded_and_is_a_command_in_the_change_log(store: HubStore) -> None:
    chief = Principal("chief", "supervisor")
    before = await store.current_seq()
    state = await store.set_emergency(chief, True, "fire alarm, north stand")
    assert state["active"] and state["gates"] is None
    assert (await store.event_info())["emergency"]["active"] is True
    await store.set_emergency(chief, False, "all clear")
    commands = [c.row for c in (await store.changes_page(before, 100))[0] if c.kind == "command"]
    assert [(c["name"], c["gates"]) for c in commands] == [("emergency_on", None), ("emergency_off", None)]
    assert not (await store.emergency())["active"]
    assert [a["action"] for a in await store.audit_log(limit=2)] == ["emergency_off", "emergency_on"]


async def test_one_gates_unstorable_batch_does_not_fail_the_others_in_its_group(store: HubStore) -> None:
    ids = []
    for name in ("Good", "Bad"):
        _g, enrol, _ = await store.create_gate(ADMIN, name)
        ids.append((await store.enroll_gate(enrol))[0])
    good, bad = ids
    results = await asyncio.gather(
        store.ingest(good, [JournalEntry(good, 1, 1.0, EntryKind.SCAN, reason="UNKNOWN")]),
        store.ingest(bad, [JournalEntry(bad, 2**70, 1.0, EntryKind.SCAN, reason="UNKNOWN")]),
        return_exceptions=True,
    )
    assert results[0].high_water == 1  # type: ignore[union-attr]
    assert isinstance(results[1], BadInput) and results[1].code == "bad_entry"
    assert await store.journal_high_water(bad) == 0


async def test_a_write_cancelled_mid_transaction_does_not_wedge_the_writer(store: HubStore) -> None:
    for i in range(30):  # cancel at every point: before, during and after BEGIN/COMMIT
        task = asyncio.create_task(store.create_token(ADMIN, f"cancelled {i}", "viewer"))
        for _ in range(i % 4):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert await store.create_token(ADMIN, "after", "viewer")  # would fail "within a transaction"
