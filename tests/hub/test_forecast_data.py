"""The forecast's and the dashboard's figures, read from the hub's own tables on SQLite and
on a real PostgreSQL server (the same SQL runs on both)."""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gatehouse.pgcluster import PgCluster, PgUnavailable
from gatehouse.venue import ROOT
from hub.event_settings import read_settings, write_settings
from hub.forecast_data import current_forecast, entry_figures, forecast_readings
from hub.importer import import_tickets
from hub.store import HubStore, Principal, init_hub
from hub.store.base import rows
from tests.conftest import TIMEOUT_S
from tickets.entry import EntryKind, JournalEntry, Passage

ADMIN = Principal("test", "admin")
T0 = 1_800_000_000.0


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster | None]:
    # not under pytest's tmp dir: the server runs as the postgres user, who cannot enter root's
    root = Path(tempfile.mkdtemp(prefix="gatehouse-pg-"))
    try:
        cluster = PgCluster(root).init().start()
    except PgUnavailable:
        shutil.rmtree(root, ignore_errors=True)
        yield None
        return
    try:
        yield cluster
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, pg: PgCluster | None) -> AsyncIterator[HubStore]:
    database = None
    if request.param == "postgresql":
        if pg is None:
            pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
        database = pg.create_database(f"h{uuid.uuid4().hex[:12]}")
    clock = Clock()
    init_hub(tmp_path, event_id=9, name="Cup", clock=clock, database=database)
    s = await HubStore.open(tmp_path, clock=clock)
    csv = "number,zone,holder\n" + "".join(f"N-{i:03},{'North' if i <= 40 else 'South'},H{i}\n" for i in range(1, 61))
    report = await asyncio.to_thread(import_tickets, s.db, csv.encode(), "csv", clock=clock)
    assert report.created == 60 and report.error_count == 0
    yield s
    await s.close()


async def _gate(store: HubStore, name: str, zone: int) -> str:
    _gid, enrol, _exp = await store.create_gate(ADMIN, name, [zone])
    gate_id, _token = await store.enroll_gate(enrol)
    return gate_id


def admit(gate: str, seq: int, at: float, ticket: int, zone: int, direction: str = "in") -> JournalEntry:
    return JournalEntry(gate, seq, at, EntryKind.SCAN, reason="ADMIT", ticket_id=ticket, zone_id=zone,
                        direction=direction)


def passage(gate: str, seq: int, at: float, admit_seq: int, ticket: int, zone: int, passed: bool,
            direction: str = "in") -> JournalEntry:
    return JournalEntry(gate, seq, at, EntryKind.PASSAGE, reason="ADMIT", ticket_id=ticket, zone_id=zone,
                        direction=direction, passage=Passage.PASSED if passed else Passage.NOT_PASSED,
                        ref_seq=admit_seq)


async def test_admits_are_told_apart_by_what_became_of_them_and_reconcile_with_stats(store: HubStore) -> None:
    tickets = dict(await store.db.read(lambda c: rows(c, "SELECT number, ticket_id FROM tickets")))
    zones = {z["name"]: z["zone_id"] for z in await store.zones()}
    north, south = zones["North"], zones["South"]
    n1 = await _gate(store, "North 1", north)
    s1 = await _gate(store, "South 1", south)
    t = [tickets[f"N-{i:03}"] for i in range(1, 61)]
    await store.ingest(n1, [
        admit(n1, 1, T0 - 600, t[0], north), passage(n1, 2, T0 - 598, 1, t[0], north, True),   # in, passed
        admit(n1, 3, T0 - 500, t[1], north), passage(n1, 4, T0 - 490, 3, t[1], north, False),  # did not pass
        admit(n1, 5, T0 - 400, t[0], north, "out"), passage(n1, 6, T0 - 398, 5, t[0], north, True, "out"),  # out
        admit(n1, 7, T0 - 300, t[2], north),                                                   # passage never came
        JournalEntry(n1, 8, T0 - 200, EntryKind.SCAN, reason="ALREADY_USED", ticket_id=t[0]),  # refusal
        admit(n1, 9, T0 - 5, t[3], north),                                                     # still at the turnstile
    ])
    await store.ingest(s1, [admit(s1, 1, T0 - 100, t[45], south), passage(s1, 2, T0 - 98, 1, t[45], south, True)])
    expired = await store.expire_pending(older_than_s=60)  # the admit at T0 - 300 is now a conflict
    assert [c["kind"] for c in expired] == ["passage_unknown"]

    figures = await entry_figures(store)
    assert figures == {"pending_by_gate": {n1: 1}, "not_passed": 1, "exits": 1}
    stats = await store.stats()
    assert (stats["pending_total"], stats["unconfirmed_total"]) == (1, 1)
    by_zone = {o["name"]: o for o in stats["occupancy"]}
    assert (by_zone["North"]["inside"], by_zone["North"]["pending"], by_zone["North"]["unconfirmed"]) == (1, 1, 1)
    # the dashboard's reconciliation: entries = inside + went out + did not pass + never reported
    inside = sum(o["inside"] for o in stats["occupancy"])
    assert stats["entries_total"] == inside + figures["exits"] + figures["not_passed"] + stats["unconfirmed_total"]


async def test_the_forecast_reads_who_came_per_zone_and_gate_and_sees_a_revocation(store: HubStore) -> None:
    tickets = dict(await store.db.read(lambda c: rows(c, "SELECT number, ticket_id FROM tickets")))
    zones = {z["name"]: z["zone_id"] for z in await store.zones()}
    north = zones["North"]
    n1, n2 = await _gate(store, "North 1", north), await _gate(store, "North 2", north)
    t = [tickets[f"N-{i:03}"] for i in range(1, 41)]
    # North 1 admits one fan a minute for 20 minutes (4 of them in the last 5); North 2 three;
    # one fan goes out and in again
    await store.ingest(n1, [admit(n1, i + 1, T0 - 1200 + 60 * i, t[i], north) for i in range(20)])
    await store.ingest(n2, [admit(n2, 1, T0 - 900, t[20], north), admit(n2, 2, T0 - 800, t[21], north),
                            admit(n2, 3, T0 - 120, t[0], north, "out"), admit(n2, 4, T0 - 60, t[0], north)])
    await write_settings(store, ADMIN, {"kickoff_at": T0 + 1800})
    gates = await store.gates()
    inp = await forecast_readings(store, now=T0, gates=gates, modes={}, settings=await read_settings(store))
    zone = next(z for z in inp.zones if z.zone_id == north)
    assert (zone.tickets, zone.arrived) == (40, 22)  # fans, not admits: the re-entry is one fan
    by_gate = {g.gate_id: g for g in inp.gates}
    assert by_gate[n1].arrivals == 19 and by_gate[n2].arrivals == 3  # where each fan last came in
    assert by_gate[n1].recent_admits == 4 and by_gate[n1].best_rate_per_min == pytest.approx(1.0)
    assert by_gate[n2].recent_admits == 1

    await store.revoke_ticket(ADMIN, t[39])  # a ticket change: the cached count follows
    inp = await forecast_readings(store, now=T0, gates=gates, modes={}, settings=await read_settings(store))
    assert next(z for z in inp.zones if z.zone_id == north).tickets == 39
    forecast = await current_forecast(store, now=T0)
    assert forecast.kickoff_at == T0 + 1800 and {z.name for z in forecast.zones} == {"North", "South"}


async def test_event_settings_are_one_audited_change_that_every_hub_process_hears_of(store: HubStore) -> None:
    before = await store.current_seq()
    await write_settings(store, ADMIN, {"kickoff_at": "2026-05-28T20:00:00+05:00", "language": "kk"})
    changes = await store.changes_since(before, 10)
    assert [(c.kind, c.row) for c in changes] == [("event", {"keys": ["event_language", "kickoff_at"]})]
    audit = await store.audit_log(action="event_settings")
    assert audit[0]["detail"] == {"event_language": "kk", "kickoff_at": "1779980400.0"}
    # a value of None deletes the key, in the same kind of transaction
    await store.set_meta(ADMIN, {"event_language": None})
    assert "event_language" not in await store.meta()
    assert (await read_settings(store)).language == "en"


@pytest.mark.slow
def test_the_dashboard_bench_times_a_summary_on_a_stored_matchday_and_prints_one_flat_object() -> None:
    done = subprocess.run([sys.executable, "-m", "gatehouse", "bench", "dashboard", "--json", "--tickets", "2000",
                           "--gates", "4", "--repeat", "3"], cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S * 10)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = done.stdout.strip().splitlines()
    r = json.loads(line)
    assert (r["tickets"], r["gates"], r["repeat"], r["database"]) == (2000, 4, 3, "sqlite")
    # about 93 % come: an admit and a passage each, a few refusals and exits on top
    assert 2 * 0.85 * 2000 < r["journal_entries_count"] < 2 * 2000 * 1.2
    for key in ("summary_p50_ms", "summary_p99_ms", "stats_p50_ms", "entry_figures_p50_ms", "forecast_p50_ms",
                "ingest_per_s"):
        assert isinstance(r[key], float) and r[key] > 0, key
    assert r["summary_p99_ms"] >= r["summary_p50_ms"]
