"""The gate's replica: builds, migrates, refuses what it cannot read, never un-revokes."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from gate_agent.replica import (
    SCHEMA_VERSION,
    Replica,
    ReplicaError,
    ReplicaReader,
    ReplicaSchemaError,
)
from gatehouse.bench.testdata import make_event
from tickets.barcode import barcode_key
from tickets.model import EntryState, TicketRecord, TicketStatus


def rec(tid: int, **kw: object) -> TicketRecord:
    base: dict[str, object] = dict(ticket_id=tid, number=f"N{tid}", zone_id=1, policy_id=1,
                                   valid_from=0.0, valid_until=2e9)
    base.update(kw)
    return TicketRecord(**base)  # type: ignore[arg-type]


async def test_new_replica_is_at_the_current_schema_version(tmp_path: Path) -> None:
    replica = await Replica.open(tmp_path / "r.sqlite3")
    assert (await replica.info()).schema_version == SCHEMA_VERSION
    await replica.integrity_check()
    await replica.close()


async def test_replica_from_an_older_version_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    conn = sqlite3.connect(path)
    from gate_agent.replica import MIGRATIONS
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version=1")
    conn.execute("INSERT INTO tickets(ticket_id, number, zone_id, policy_id, valid_from, valid_until) VALUES (1,'N1',1,1,0,2e9)")
    conn.commit()
    conn.close()
    replica = await Replica.open(path)
    assert (await replica.info()).schema_version == SCHEMA_VERSION
    await replica.close()
    reader = ReplicaReader(path)
    assert reader.ticket_by_id(1) is not None  # data kept across the migration
    reader.close()


async def test_replica_newer_than_the_software_is_refused_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ReplicaSchemaError) as info:
        await Replica.open(path)
    assert info.value.cause == "schema_mismatch" and info.value.found == SCHEMA_VERSION + 1


async def test_corrupt_replica_fails_the_integrity_check(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    replica = await Replica.open(path)
    await replica.bulk_load((rec(i).ticket_id, f"N{i}", 1, 1, 0.0, 2e9, 0, "valid", None, "x" * 200, "") for i in range(1, 3000))
    await replica.close()
    data = bytearray(path.read_bytes())
    for off in range(8192, min(len(data), 60_000), 97):
        data[off] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises((ReplicaError, sqlite3.DatabaseError)):
        replica = await Replica.open(path)
        try:
            await replica.integrity_check()
        finally:
            await replica.close()


async def test_reader_sees_each_applied_batch_with_its_cursor(tmp_path: Path) -> None:
    replica = await Replica.open(tmp_path / "r.sqlite3")
    reader = ReplicaReader(replica.path)
    await replica.apply_tickets([rec(1), rec(2)], cursor=10, now=100.0)
    assert reader.ticket_by_id(2) is not None and reader.ticket_by_number("N1") is not None
    info = await replica.info()
    assert (info.cursor, info.synced_at, info.tickets) == (10, 100.0, 2)
    reader.close()
    await replica.close()


async def test_a_resync_from_a_restored_hub_never_unrevokes_a_ticket(tmp_path: Path) -> None:
    replica = await Replica.open(tmp_path / "r.sqlite3")
    reader = ReplicaReader(replica.path)
    await replica.apply_tickets([rec(1), rec(2)], cursor=5)
    await replica.apply_tickets([rec(1, status=TicketStatus.REVOKED)], cursor=6)
    # The hub restored from a backup taken before the revocation sends the old row again.
    await replica.apply_tickets([rec(1), rec(2)], cursor=5)
    got = reader.ticket_by_id(1)
    assert got is not None and got.status is TicketStatus.REVOKED
    reader.close()
    await replica.close()


async def test_a_reinstatement_with_a_new_serial_clears_the_revocation(tmp_path: Path) -> None:
    replica = await Replica.open(tmp_path / "r.sqlite3")
    reader = ReplicaReader(replica.path)
    await replica.apply_tickets([rec(1, status=TicketStatus.REVOKED)], cursor=6)
    await replica.apply_tickets([rec(1, serial=1)], cursor=7)
    got = reader.ticket_by_id(1)
    assert got is not None and got.status is TicketStatus.VALID
    reader.close()
    await replica.close()


async def test_entry_states_are_stored_with_the_journal_position(tmp_path: Path) -> None:
    replica = await Replica.open(tmp_path / "r.sqlite3")
    reader = ReplicaReader(replica.path)
    await replica.put_entry_states({1: EntryState(1, True, 50.0)}, journal_seq=12)
    assert reader.entry_state(1) == EntryState(1, True, 50.0, None)
    assert reader.entry_state(2) == EntryState()
    assert reader.meta()["journal_applied_seq"] == "12"
    reader.close()
    await replica.close()


async def test_event_setup_round_trips_keys_zones_and_policies(tmp_path: Path) -> None:
    event = make_event(10, time.time())
    replica = await Replica.open(tmp_path / "r.sqlite3")
    await replica.set_event(event_id=event.event_id, keyring=event.keyring, zones=event.zones, policies=event.policies)
    reader = ReplicaReader(replica.path)
    assert [k.raw() for k in reader.keyring()] == [event.key.verify_key.raw()]
    assert reader.zones() == {z.zone_id: z for z in event.zones}
    assert reader.policies() == {p.policy_id: p for p in event.policies}
    reader.close()
    await replica.close()


async def test_a_hundred_thousand_ticket_replica_builds_in_seconds(tmp_path: Path) -> None:
    event = make_event(100_000, time.time())
    replica = await Replica.open(tmp_path / "r.sqlite3")
    t0 = time.perf_counter()
    assert await replica.bulk_load(event.rows()) == 100_000
    assert time.perf_counter() - t0 < 20  # 1,000,000 takes ~4 s here: see docs/benchmarks.md
    await replica.close()


async def test_concurrent_writers_never_interleave_transactions(tmp_path: Path) -> None:
    import asyncio

    replica = await Replica.open(tmp_path / "r.sqlite3")
    reader = ReplicaReader(replica.path)
    await asyncio.gather(
        *(replica.put_entry_states({i: EntryState(1, True, float(i))}) for i in range(50)),
        *(replica.apply_tickets([rec(1000 + i)], cursor=i) for i in range(50)),
    )
    assert all(reader.entry_state(i).entries == 1 for i in range(50))
    assert all(reader.ticket_by_id(1000 + i) is not None for i in range(50))
    reader.close()
    await replica.close()


async def test_a_writer_cancelled_mid_transaction_leaves_the_replica_usable(tmp_path: Path) -> None:
    import asyncio

    replica = await Replica.open(tmp_path / "r.sqlite3")
    for _ in range(30):  # cancel at every point: before, during and after BEGIN/COMMIT
        task = asyncio.create_task(replica.set_meta({"hub_epoch": "E"}))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await replica.put_entry_states({1: EntryState(1, True, 1.0)})  # would fail "within a transaction"
    await replica.close()


# --------------------------------------------------------------------------- barcode keys
async def test_a_v2_replica_gains_barcode_keys_and_keeps_its_tickets(tmp_path: Path) -> None:
    from gate_agent.replica import MIGRATIONS
    path = tmp_path / "r.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0] + ";" + MIGRATIONS[1])
    conn.execute("PRAGMA user_version=2")
    conn.execute("INSERT INTO tickets(ticket_id, number, zone_id, policy_id, valid_from, valid_until) VALUES (1,'N1',1,1,0,2e9)")
    conn.commit()
    conn.close()
    replica = await Replica.open(path)
    assert (await replica.info()).schema_version == SCHEMA_VERSION == 4
    await replica.apply_tickets([rec(2, barcode_key=barcode_key("k7dhnx2v9q"))])
    await replica.close()
    reader = ReplicaReader(path)
    assert reader.ticket_by_id(1) == rec(1)  # the old row, with no key
    assert reader.ticket_by_barcode_key(barcode_key("K7DHNX2V9Q")) == rec(2, barcode_key=barcode_key("k7dhnx2v9q"))
    assert reader.ticket_by_barcode_key(barcode_key("nothing")) is None
    reader.close()


async def test_barcode_lookup_uses_its_index(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    replica = await Replica.open(path)
    await replica.close()
    conn = sqlite3.connect(path)
    plan = conn.execute("EXPLAIN QUERY PLAN SELECT * FROM tickets WHERE barcode_key = ? "
                        "ORDER BY status = 'valid' LIMIT 1", (b"x" * 16,)).fetchall()
    conn.close()
    assert any("tickets_barcode_key" in str(row) for row in plan), plan


async def test_a_revoked_row_wins_over_a_valid_row_with_the_same_barcode_key(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    replica = await Replica.open(path)
    key = barcode_key("shared")
    await replica.apply_tickets([rec(1, barcode_key=key), rec(2, barcode_key=key, status=TicketStatus.REVOKED),
                                 rec(3, barcode_key=key)])
    await replica.close()
    reader = ReplicaReader(path)
    got = reader.ticket_by_barcode_key(key)
    reader.close()
    assert got is not None and got.ticket_id == 2


async def test_barcode_keys_survive_the_wire_form_and_the_old_row_shape(tmp_path: Path) -> None:
    from gate_agent.replica import record_from_wire, record_to_wire
    r = rec(7, barcode_key=barcode_key("abc"))
    assert record_from_wire(record_to_wire(r)) == r
    assert record_from_wire(record_to_wire(rec(8))) == rec(8)
    path = tmp_path / "r.sqlite3"
    replica = await Replica.open(path)
    await replica.bulk_load([(9, "N9", 1, 1, 0.0, 2e9, 0, "valid", None, "", "")])  # 11 columns
    await replica.close()
    reader = ReplicaReader(path)
    assert reader.ticket_by_id(9) == rec(9)
    reader.close()


async def test_pretix_event_info_is_stored_and_read_back(tmp_path: Path) -> None:
    from tests.tickets.pretix_signing import event
    from tickets.keys import KeyRing
    path = tmp_path / "r.sqlite3"
    replica = await Replica.open(path)
    info = event(subevent=2)
    await replica.set_event(event_id=1, keyring=KeyRing(), zones=[], policies=[], pretix=info)
    reader = ReplicaReader(path)
    got = reader.pretix()
    assert got is not None and got.to_wire() == info.to_wire()
    await replica.set_event(event_id=1, keyring=KeyRing(), zones=[], policies=[], pretix=None)
    assert reader.pretix() is None
    await replica.set_meta({"pretix": "{not json"})
    assert reader.pretix() is None  # a damaged value: logged, and signatures are not accepted
    reader.close()
    await replica.close()
