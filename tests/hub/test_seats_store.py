"""Re-seating and the seat checks at the store, on SQLite and on a real PostgreSQL server."""
from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hub.errors import BadInput
from hub.readiness import readiness
from hub.seats import mismatches
from hub.seats_reseat import reseat
from hub.store import CLI, HubStore, init_hub
from hub.store.changes import changes_since

TICKETS = b"number,zone,seat\n" + b"".join(f"T{i:04d},{'AB'[i % 2]},R{i // 2}\n".encode() for i in range(400)) \
    + b"X1,A,R0\n"  # sold twice with T0000


@contextlib.contextmanager
def pg_url() -> Iterator[str]:
    from gatehouse.pgcluster import PgUnavailable, temporary_cluster

    try:
        cluster = temporary_cluster(prefix="gatehouse-seats-pg-")
        pg = cluster.__enter__()
    except (PgUnavailable, subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        pytest.skip(f"PostgreSQL cannot start here: {exc}")
    try:
        yield pg.create_database("seats")
    finally:
        cluster.__exit__(None, None, None)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HubStore]:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(pg_url()) if request.param == "postgresql" else None
        init_hub(tmp_path / "hub", event_id=12, name="Store cup", database=url)
        s = await HubStore.open(tmp_path / "hub")
        try:
            report = await s.import_tickets(CLI, TICKETS, "csv")
            assert report.error_count == 0
            assert report.mismatches is not None and report.mismatches["double_sold_count"] == 1
            yield s
        finally:
            await s.close()


async def test_a_move_file_is_applied_in_one_transaction_and_logged_once_per_ticket(store: HubStore) -> None:
    seq0 = await store.current_seq()
    moves = b"number,zone,seat\n" + b"".join(f"T{i:04d},{'BA'[i % 2]},M{i}\n".encode() for i in range(300))
    report = await reseat(store, CLI, moves, "csv", name="moves.csv")
    assert report.applied and report.moved == 300 and report.error_count == 0
    assert (report.first_seq, report.last_seq) == (seq0 + 1, seq0 + 300)
    changes = await store.db.read(changes_since, seq0, 1000)
    assert len(changes) == 300 and all(c.kind == "ticket" and c.row["serial"] == 1 for c in changes)
    t = await store.ticket("T0007")
    assert (t["seat"], t["serial"]) == ("M7", 1)
    assert len(await store.audit_log(action="reseat", limit=1000)) == 300
    again = await reseat(store, CLI, moves, "csv", name="moves.csv")
    assert again.moved == 0 and again.unchanged == 300 and await store.current_seq() == seq0 + 300
    assert [b["batch_id"] for b in again.previously_applied] == [report.batch_id]
    # the double sale of T0000/X1 was resolved by moving T0000 away
    assert (await mismatches(store))["double_sold_count"] == 0


async def test_a_bad_line_leaves_every_ticket_as_it_was(store: HubStore) -> None:
    seq0 = await store.current_seq()
    moves = b"number,seat\nT0001,Z1\nT0007,R4\nT0005,Z2\n"  # T0007 onto R4 of zone B, where T0009 stays
    report = await reseat(store, CLI, moves, "csv")
    assert not report.applied and [e.line for e in report.errors] == [3]
    assert "T0009 (stays there)" in report.errors[0].reason
    assert await store.current_seq() == seq0 and (await store.ticket("T0005"))["seat"] == "R2"


async def test_an_unreadable_file_is_refused_with_its_reason(store: HubStore) -> None:
    with pytest.raises(BadInput, match="holds no moves"):
        await reseat(store, CLI, b"number,seat\n", "csv")


async def test_the_readiness_report_reads_on_both_engines(store: HubStore) -> None:
    report = await readiness(store)
    assert not report.ready
    keys = {ln.key for ln in report.lines if ln.status == "fail"}
    assert "zone:1:seats" in keys and "zone:1:gates" in keys and "zone:1:capacity" in keys
