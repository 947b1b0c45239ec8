"""Hub and gates over real websockets on 127.0.0.1: the sync promises, end to end."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gatehouse.venue import Venue
from tests.conftest import TIMEOUT_S, eventually
from tickets.model import TicketStatus

pytestmark = [pytest.mark.timed, pytest.mark.slow]


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[Venue]:
    v = await Venue.create(tmp_path, tickets_per_zone=40)
    try:
        yield v
    finally:
        await v.close()


async def test_ticket_used_at_one_gate_is_refused_at_another_within_a_second(venue: Venue) -> None:
    a = await venue.add_gate("North A", ["North"])
    b = await venue.add_gate("North B", ["North"])
    await venue.online(a, b)
    code = await venue.credential("N00001")
    assert await a.scan(code) == "ADMIT"
    t0 = time.monotonic()
    tid = venue.ticket("N00001")["ticket_id"]
    assert b.agent.reader is not None
    await eventually(lambda: b.agent.reader.entry_state(tid).entries == 1, timeout=1.0,  # type: ignore[union-attr]
                     what="the admit fanned out to gate B")
    assert time.monotonic() - t0 < 1.0
    assert await b.scan(code) == "ALREADY_USED"


async def test_revocation_at_the_hub_reaches_every_gate(venue: Venue) -> None:
    gates = [await venue.add_gate(f"North {i}", ["North"]) for i in range(3)]
    await venue.online()
    tid = venue.ticket("N00002")["ticket_id"]
    code = await venue.credential("N00002")
    async with venue.hub.admin_client() as c:
        (await c.post(f"/api/v1/tickets/{tid}/revoke", json={"reason": "chargeback"})).raise_for_status()
    for g in gates:
        await eventually(lambda g=g: (rec := g.agent.reader.ticket_by_id(tid)) is not None  # type: ignore[union-attr]
                         and rec.status is TicketStatus.REVOKED, timeout=TIMEOUT_S, what=f"revocation at {g.gate_id}")
    assert [await g.scan(code) for g in gates] == ["REVOKED"] * 3


async def test_hub_killed_mid_burst_gates_keep_admitting_then_drain_exactly(venue: Venue) -> None:
    a = await venue.add_gate("North A", ["North"])
    b = await venue.add_gate("South A", ["South"])
    await venue.online(a, b)
    north = [await venue.credential(f"N{i:05d}") for i in range(10, 22)]
    south = [await venue.credential(f"S{i:05d}") for i in range(10, 22)]
    for i in range(4):
        assert await a.scan(north[i]) == "ADMIT" and await b.scan(south[i]) == "ADMIT"
    venue.hub.kill()
    await eventually(lambda: a.agent.ladder.mode.value == "OFFLINE", what="gate A notices the hub is gone")
    for i in range(4, 12):
        assert await a.scan(north[i]) == "ADMIT"  # no stall: decisions never wait on the hub
        assert await b.scan(south[i]) == "ADMIT"
    assert await a.scan(north[0]) == "ALREADY_USED"
    await venue.hub.astart()
    await venue.online(a, b)
    for g in (a, b):
        assert g.agent.journal is not None
        await eventually(lambda g=g: g.agent.sync_status()["backlog"] == 0, what=f"{g.gate_id} drained")  # type: ignore[misc]
        assert await venue.hub_count(g.gate_id) == g.agent.journal.last_seq  # exactly once, nothing lost


async def test_hub_restored_from_an_old_backup_gets_every_validation_back_unasked(venue: Venue) -> None:
    a = await venue.add_gate("North A", ["North"])
    await venue.online(a)
    codes = [await venue.credential(f"N{i:05d}") for i in range(30, 38)]
    for code in codes[:3]:
        assert await a.scan(code) == "ADMIT"
    assert a.agent.journal is not None
    await eventually(lambda: a.agent.sync_status()["backlog"] == 0, what="first drain")  # type: ignore[misc]
    backup = venue.root / "backup.db"
    assert (await venue.hub.agatehouse("backup", str(backup))).returncode == 0
    for code in codes[3:]:
        assert await a.scan(code) == "ADMIT"
    await eventually(lambda: a.agent.sync_status()["backlog"] == 0, what="second drain")  # type: ignore[misc]
    held_before = await venue.hub_count(a.gate_id)
    venue.hub.kill()
    restored = await venue.hub.agatehouse("restore", str(backup), "--force")
    assert restored.returncode == 0, restored.stderr
    await venue.hub.astart()
    import sqlite3

    conn = sqlite3.connect(backup)
    in_backup = conn.execute("SELECT count(*) FROM journal WHERE gate_id = ?", (a.gate_id,)).fetchone()[0]
    conn.close()
    assert in_backup < held_before  # the restore really lost data…
    await eventually(lambda: a.agent.ladder.mode.value == "ONLINE", timeout=TIMEOUT_S * 2, what="reconnect")
    await eventually(lambda: a.agent.sync_status()["backlog"] == 0, what="re-send")  # type: ignore[misc]

    async def all_back() -> bool:
        return await venue.hub_count(a.gate_id) == a.agent.journal.last_seq  # type: ignore[union-attr]

    deadline = time.monotonic() + TIMEOUT_S
    while not await all_back():  # …and the gate put it all back with no manual step
        assert time.monotonic() < deadline, "validations did not reappear at the restored hub"
        await asyncio.sleep(0.1)


async def test_gate_restarted_resumes_sync_where_it_left_off(venue: Venue) -> None:
    a = await venue.add_gate("North A", ["North"])
    await venue.online(a)
    code = await venue.credential("N00005")
    assert await a.scan(code) == "ADMIT"
    a = await venue.restart_gate(a)
    await venue.online(a)
    assert await a.scan(code) == "ALREADY_USED"  # its own admit survives the restart
    assert a.agent.journal is not None
    await eventually(lambda: a.agent.sync_status()["backlog"] == 0, what="drain after restart")  # type: ignore[misc]
    assert await venue.hub_count(a.gate_id) == a.agent.journal.last_seq


async def test_gate_agent_killed_mid_burst_loses_no_admit_and_resumes_sync(venue: Venue) -> None:
    """The real daemon (`gatehouse gate run`) in its own process, scanned through its staff
    screen's keyed entry, killed with SIGKILL while scans are in flight."""
    import os
    import signal
    import subprocess
    import sys

    import httpx

    from gatehouse.venue import ROOT, free_port

    async with venue.hub.admin_client() as c:
        r = await c.post("/api/v1/gates", json={"name": "North K", "zones": [venue.zones["North"]]})
        token = r.json()["enrolment_token"]
    data = venue.root / "gate-k"
    enrolled = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "gatehouse", "gate", "enroll", "--hub", venue.hub.url,
                               "--token", token, "--data-dir", str(data)], cwd=ROOT, capture_output=True, text=True,
                              timeout=TIMEOUT_S * 3)
    assert enrolled.returncode == 0, enrolled.stderr
    port = free_port()
    import json as _json
    gate_id = _json.loads((data / "gate-credentials.json").read_text())["gate_id"]
    config = venue.root / "gate-k.toml"
    config.write_text(f'gate_id = "{gate_id}"\ndata_dir = "{data}"\nstatus_port = {port}\npassage_timeout_s = 0.5\n'
                      '[scanner]\nbackend = "sim"\n[turnstile]\nbackend = "sim"\n')

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "gatehouse", "gate", "run", "--config", str(config)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(venue.root / "gate-k.log", "ab"))

    numbers = [f"N{i:05d}" for i in range(20, 40)]
    admitted: list[str] = []
    proc = start()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT_S) as client:
        await _wait_http(client, online=True)
        client.headers["X-Gate-Session"] = (data / "staff-screen.token").read_text().strip()  # new at each start
        for n in numbers[:12]:
            r = await client.post("/api/keyed", json={"code": n})
            if r.json()["reason"] == "ADMIT":
                admitted.append(n)  # the agent answered: the admit is durable
        pending = [asyncio.create_task(client.post("/api/keyed", json={"code": n})) for n in numbers[12:]]
        await asyncio.sleep(0)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for t in pending:
            try:
                r = await t
                if r.json().get("reason") == "ADMIT":
                    admitted.append(r.json()["ticket"])
            except httpx.HTTPError:
                pass  # in flight when killed: never answered, never acted on
    assert len(admitted) >= 12

    proc = start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT_S) as client:
            await _wait_http(client)
            client.headers["X-Gate-Session"] = (data / "staff-screen.token").read_text().strip()
            for n in admitted:  # every admit the gate acted on is still in its journal
                r = await client.post("/api/keyed", json={"code": n})
                assert r.json()["reason"] in ("ALREADY_USED", "ADMIT"), r.json()
            status = (await client.get("/status")).json()

            async def drained() -> bool:
                s = (await client.get("/status")).json()
                return s["hub_connected"] and s["sync"]["backlog"] == 0

            deadline = time.monotonic() + TIMEOUT_S * 2
            while not await drained():
                assert time.monotonic() < deadline, "gate did not resume sync"
                await asyncio.sleep(0.1)
            last = (await client.get("/status")).json()["journal_last_seq"]
        assert status["journal_last_seq"] >= len(admitted)
        assert await venue.hub_count(gate_id) == last
    finally:
        proc.terminate()
        proc.wait(TIMEOUT_S)


async def _wait_http(client, online: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Until the agent answers (and, with ``online``, has its replica from the hub)."""
    import httpx

    deadline = time.monotonic() + TIMEOUT_S * 2
    while True:
        try:
            r = await client.get("/status")
            if r.status_code == 200 and (not online or r.json()["mode"] == "ONLINE"):
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "gate agent did not start"
        await asyncio.sleep(0.05)


async def test_control_room_emergency_frees_every_gate_within_a_second_and_resets(venue: Venue) -> None:
    gates = [await venue.add_gate(f"North {i}", ["North"]) for i in range(2)]
    await venue.online()
    async with venue.hub.admin_client() as c:
        r = await c.post("/api/v1/emergency", json={"active": True, "reason": "smoke in the north stand"})
        r.raise_for_status()
    t0 = time.monotonic()
    for g in gates:
        await eventually(lambda g=g: g.agent.ladder.mode.value == "EMERGENCY", timeout=1.0,
                         what=f"EMERGENCY at {g.gate_id}")
        assert g.turnstile.emergency
    assert time.monotonic() - t0 < 1.0
    async with venue.hub.admin_client() as c:
        (await c.post("/api/v1/emergency", json={"active": False, "reason": "all clear"})).raise_for_status()
    await venue.online(*gates)
    assert not any(g.turnstile.emergency for g in gates)
