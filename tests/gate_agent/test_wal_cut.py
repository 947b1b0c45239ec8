"""Power cut on an SD card: the journal's and the replica's write-ahead logs cut at random points.

A card that loses power mid-write can leave a WAL shorter than what was written. SQLite keeps
every transaction whose frames and commit record survived and drops the rest, so the gate must
start on whatever is left and decide consistently with it: the replica's cursor and its tickets
roll back together (the hub re-sends from the older cursor), so every ticket the surviving data
says is valid is admitted and every revocation that survived is still refused; the journal
keeps a gap-free prefix and carries on after it. A replica the gate cannot trust sends it to
MANIFEST with the cause, never to a crash.
"""
from __future__ import annotations

import os
import random
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from firmware_bridge.sim import SimTurnstile
from gate_agent.agent import GateAgent
from gate_agent.config import GateConfig
from gate_agent.journal import Journal
from gate_agent.modes import Mode
from gate_agent.replica import Replica, ReplicaReader
from gatehouse.bench.testdata import GeneratedEvent, make_event
from scanners.sim import SimScanner
from tests.conftest import eventually
from tickets.entry import EntryKind
from tickets.model import TicketStatus

#: zone-1 tickets (admitted at gate G1; not the rotating-code ones, every 20th) revoked one
#: per delta, deltas 2..9
REVOKED = [8, 12, 16, 24, 28, 32, 36, 44]
NEVER_REVOKED = [4, 396, 204]
JOURNAL_ENTRIES = 30
CUTS = 10


def wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


async def make_source(root: Path) -> tuple[GeneratedEvent, GateConfig]:
    """A synced replica whose last eight deltas (each a revocation with its cursor) and a journal
    whose entries are still in the WAL, copied while open, as a power cut would leave them."""
    event = make_event(400, time.time())
    cfg = GateConfig(gate_id="G1", data_dir=root / "live", passage_timeout_s=0.2, status_port=0)
    cfg.data_dir.mkdir(parents=True)
    replica = await Replica.open(cfg.replica_path)
    await replica.set_event(event_id=event.event_id, keyring=event.keyring, zones=event.zones, policies=event.policies)
    await replica.bulk_load(event.rows())
    await replica.apply_tickets([], cursor=1)  # the hub's snapshot: checkpointed into the file on close
    await replica.close()
    replica = await Replica.open(cfg.replica_path)
    reader = ReplicaReader(cfg.replica_path)
    for k, index in enumerate(REVOKED, start=2):
        rec = reader.ticket_by_id(index + 1)
        assert rec is not None
        await replica.apply_tickets([replace(rec, status=TicketStatus.REVOKED)], cursor=k, from_snapshot=False)
    journal = await Journal.open(cfg.journal_path, cfg.gate_id)
    for i in range(JOURNAL_ENTRIES):
        await journal.append(EntryKind.EVENT, detail=f"before the cut {i}")
    source = root / "source"
    source.mkdir()
    for path in (cfg.replica_path, cfg.journal_path):
        assert wal(path).stat().st_size > 0, "the test needs data still in the WAL"
        shutil.copy2(path, source / path.name)
        shutil.copy2(wal(path), source / wal(path).name)
    reader.close()
    await replica.close()
    await journal.close()
    return event, cfg


def cut_points(source: Path) -> list[tuple[int, int]]:
    rsize = (source / "replica.sqlite3-wal").stat().st_size
    jsize = (source / "journal.sqlite3-wal").stat().st_size
    rng = random.Random(16)  # fixed: a failure is reproducible
    points = [(0, 0), (rsize, jsize), (rsize - 1, jsize - 1), (32, 32)]  # none, whole, a byte short, header only
    points += [(rng.randrange(rsize + 1), rng.randrange(jsize + 1)) for _ in range(CUTS)]
    return points


@pytest.mark.slow
async def test_a_gate_starts_on_wals_cut_anywhere_and_decides_consistently_with_what_survived(tmp_path: Path) -> None:
    event, _ = await make_source(tmp_path)
    source = tmp_path / "source"
    cursors: set[int] = set()
    journals: set[int] = set()
    for n, (rcut, jcut) in enumerate(cut_points(source)):
        data = tmp_path / f"cut-{n}"
        shutil.copytree(source, data)
        os.truncate(data / "replica.sqlite3-wal", rcut)
        os.truncate(data / "journal.sqlite3-wal", jcut)
        cfg = GateConfig(gate_id="G1", data_dir=data, passage_timeout_s=0.2, status_port=0)
        scanner, turnstile = SimScanner(), SimTurnstile()
        agent = GateAgent(cfg, scanner=scanner, turnstile=turnstile, serve_status=False)
        await agent.start()  # must not raise, whatever the cut
        where = f"cut {n}: replica WAL at {rcut}, journal WAL at {jcut}"
        try:
            assert agent.journal is not None
            kept = [e.seq for e in await agent.journal.all_entries()]
            assert kept == list(range(1, len(kept) + 1)), f"{where}: journal has a gap: {kept}"
            survived = sum(1 for e in await agent.journal.all_entries() if e.detail.startswith("before the cut"))
            assert survived <= JOURNAL_ENTRIES
            journals.add(survived)
            if agent.ladder.mode is Mode.MANIFEST:
                assert agent.ladder.cause, f"{where}: MANIFEST without a cause"
                continue
            cursor = agent.cursor()
            cursors.add(cursor)
            assert 1 <= cursor <= 1 + len(REVOKED), where
            for k, index in enumerate(REVOKED, start=2):
                want_refused = k <= cursor  # the revocation survived iff its cursor did
                reason = await decide(agent, scanner, event.credential_for(index).encode())
                if want_refused:
                    assert reason == "REVOKED", f"{where}: revoked ticket {index} (delta {k} ≤ cursor {cursor}) → {reason}"
                else:
                    assert reason.startswith("ADMIT"), f"{where}: ticket {index} valid at cursor {cursor} → {reason}"
            for index in NEVER_REVOKED:
                reason = await decide(agent, scanner, event.credential_for(index).encode())
                assert reason.startswith("ADMIT"), f"{where}: valid ticket {index} refused ({reason})"
        finally:
            await agent.stop()
    # The cuts must really land in different places (else this test proves little).
    assert len(cursors) >= 3 and {1, 1 + len(REVOKED)} <= cursors, cursors
    assert len(journals) >= 3 and {0, JOURNAL_ENTRIES} <= journals, journals


async def decide(agent: GateAgent, scanner: SimScanner, code: bytes) -> str:
    lane = agent.lane
    assert lane is not None and agent.journal is not None
    before = agent.journal.last_seq
    await scanner.feed(code)
    await eventually(lambda: any(r["seq"] > before for r in lane.recent), what="a decision")
    return str(next(r["reason"] for r in lane.recent if r["seq"] > before))


@pytest.mark.slow
async def test_gatehouse_gate_run_starts_on_a_cut_wal_and_admits_what_survived(tmp_path: Path) -> None:
    """The same from outside: the real ``gatehouse gate run`` on files cut mid-WAL."""
    import asyncio
    import sys

    import httpx

    from gatehouse.venue import ROOT, free_port
    from tests.conftest import TIMEOUT_S

    event, _ = await make_source(tmp_path)
    data = tmp_path / "cut"
    shutil.copytree(tmp_path / "source", data)
    for name in ("replica.sqlite3-wal", "journal.sqlite3-wal"):
        os.truncate(data / name, (data / name).stat().st_size // 2)
    port = free_port()
    config = tmp_path / "gate.toml"
    config.write_text(f'gate_id = "G1"\ndata_dir = "{data}"\nstatus_port = {port}\npassage_timeout_s = 0.5\n')
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gatehouse", "gate", "run", "--config",
                                                str(config), cwd=ROOT, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT_S) as c:
            deadline = time.monotonic() + TIMEOUT_S * 3
            while True:
                try:
                    status = (await c.get("/status")).json()
                    break
                except httpx.HTTPError:
                    assert proc.returncode is None, "the gate exited on the cut files"
                    assert time.monotonic() < deadline, "the gate did not start on the cut files"
                    await asyncio.sleep(0.05)
            assert status["mode"] == "OFFLINE", status  # not enrolled; the replica is trusted
            cursor = status["cursor"]
            c.headers["X-Gate-Session"] = (data / "staff-screen.token").read_text().strip()
            for k, index in enumerate(REVOKED, start=2):
                r = (await c.post("/api/keyed", json={"code": event.number(index)})).json()
                assert (r["reason"] == "REVOKED") == (k <= cursor), (k, cursor, r)
            r = (await c.post("/api/keyed", json={"code": event.number(NEVER_REVOKED[0])})).json()
            assert r["reason"] == "ADMIT", r
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), TIMEOUT_S)
