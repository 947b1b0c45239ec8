"""An admit whose passage a crash left open is resolved when the gate starts again.

Real processes only: a hub (``gatehouse hub serve``), the reference turnstile controller behind
a pty (``python -m firmware_bridge.firmware.main``) and the gate agent (``gatehouse gate run``),
enrolled with ``gatehouse gate enroll --token-file``. The gate is killed with SIGKILL right
after an admit; the restarted gate must journal the admit's outcome — from the controller's
passage counter, or "gate restarted" / not passed where there is none — as a normal passage
entry that reaches the hub.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatehouse.venue import ROOT, Venue, free_port
from tests.conftest import TIMEOUT_S
from tests.firmware_bridge.controller_process import ControllerProcess

pytestmark = pytest.mark.slow


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[Venue]:
    v = await Venue.create(tmp_path, zones={"North": 100}, tickets_per_zone=10)
    try:
        yield v
    finally:
        await v.close()


@dataclass
class GateProcess:
    config: Path
    data: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "gatehouse", "gate", "run", "--config", str(self.config)],
                                     cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill9()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def status(self, *, online: bool = True) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S * 3
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as c:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    r = await c.get(self.url + "/status")
                    if r.status_code == 200 and (not online or r.json()["mode"] == "ONLINE"):
                        return dict(r.json())
                assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
                assert time.monotonic() < deadline, f"gate not up: {self.log.read_text()[-3000:]}"
                await asyncio.sleep(0.05)

    async def keyed(self, code: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as c:
            session = (self.data / "staff-screen.token").read_text().strip()
            r = await c.post(self.url + "/api/keyed", json={"code": code}, headers={"X-Gate-Session": session})
            r.raise_for_status()
            return dict(r.json())

    def journal(self) -> list[dict[str, Any]]:
        with contextlib.closing(sqlite3.connect(self.data / "journal.sqlite3")) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM journal ORDER BY seq")]


async def enrolled_gate(venue: Venue, root: Path, turnstile: str) -> GateProcess:
    """Register a gate on the hub and enrol it from the CLI, the token read from a file."""
    async with venue.hub.admin_client() as c:
        r = await c.post("/api/v1/gates", json={"name": "North P", "zones": [venue.zones["North"]]})
        r.raise_for_status()
        token_file = root / "token"
        token_file.write_text(r.json()["enrolment_token"] + "\n")
    data = root / "gate"
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "gatehouse", "gate", "enroll", "--hub", venue.hub.url,
                         "--token-file", str(token_file), "--data-dir", str(data)],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S * 3)
    assert done.returncode == 0, done.stderr
    gate_id = json.loads((data / "gate-credentials.json").read_text())["gate_id"]
    port = free_port()
    config = root / "gate.toml"
    config.write_text(f'gate_id = "{gate_id}"\ndata_dir = "{data}"\nstatus_port = {port}\n'
                      f'passage_timeout_s = 30\n[scanner]\nbackend = "sim"\n{turnstile}', encoding="utf-8")
    return GateProcess(config, data, port, root / "gate.log")


def outcome_of(journal: list[dict[str, Any]], seq: int) -> dict[str, Any]:
    found = [e for e in journal if e["kind"] == "passage" and e["ref_seq"] == seq]
    assert len(found) == 1, f"admit {seq} must have exactly one outcome, has {found}"
    return found[0]


async def hub_has(venue: Venue, gate_id: str, seq: int) -> None:
    deadline = time.monotonic() + TIMEOUT_S * 2
    async with venue.hub.admin_client() as c:
        while True:
            r = await c.get("/api/v1/validations", params={"gate_id": gate_id, "limit": 10_000})
            r.raise_for_status()
            body = r.json()
            rows = body["validations"] if isinstance(body, dict) else body
            if any(int(v.get("seq", v.get("gate_seq", -1))) == seq for v in rows):
                return
            assert time.monotonic() < deadline, f"the hub never received {gate_id} seq {seq}"
            await asyncio.sleep(0.1)


async def test_a_crash_after_an_admit_is_resolved_from_the_controller_counter(venue: Venue, tmp_path: Path) -> None:
    controller = await ControllerProcess().start("--host-timeout-ms", "5000")
    gate = await enrolled_gate(venue, tmp_path, '[turnstile]\nbackend = "serial"\nport = "PORT"\n')
    gate.config.write_text(gate.config.read_text().replace("PORT", controller.port))
    gate.start()
    try:
        gate_id = (await gate.status())["gate_id"]
        # 1. Nobody walks: the gate is killed within 0.3 s of the admit.
        a = await gate.keyed("N00001")
        t_admit = time.monotonic()
        assert a["reason"] == "ADMIT"
        await controller.mechanism("release")
        gate.kill9()
        assert time.monotonic() - t_admit < 0.3 + TIMEOUT_S / 10
        gate.start()
        status = await gate.status()
        first = outcome_of(gate.journal(), a["seq"])
        assert first["passage"] == "not_passed"
        assert first["detail"] == "gate restarted: the turnstile controller counted no passage"
        assert status["resolved_at_start"] == [{"seq": a["seq"], "ticket": "N00001", "passed": False,
                                                "detail": first["detail"]}]
        readmit = await gate.keyed("N00001")
        assert readmit["reason"] == "ADMIT", "the fan never went in: the ticket stays valid"
        await hub_has(venue, gate_id, first["seq"])
        await controller.send("rotate in")  # this time the fan walks through, gate running
        deadline = time.monotonic() + TIMEOUT_S
        while not any(e["kind"] == "passage" and e["ref_seq"] == readmit["seq"] for e in gate.journal()):
            assert time.monotonic() < deadline, "the passage of the re-admit was not journaled"
            await asyncio.sleep(0.05)
        assert outcome_of(gate.journal(), readmit["seq"])["passage"] == "passed"
        mark = controller.mark()
        b = await gate.keyed("N00002")
        assert b["reason"] == "ADMIT"
        await controller.mechanism("release", after=mark)

        # 2. The fan walks through while the gate is down: the controller counted the turn.
        gate.kill9()
        mark = controller.mark()
        await controller.send("rotate in")
        await controller.expect(lambda m: m.get("event") == "mechanism" and m.get("action") == "lock", after=mark)
        gate.start()
        await gate.status()
        journal = gate.journal()
        second = outcome_of(journal, b["seq"])
        assert second["passage"] == "passed"
        assert second["detail"] == "gate restarted: the turnstile controller counted the passage"
        again = await gate.keyed("N00002")
        assert again["reason"] in ("ALREADY_INSIDE", "ALREADY_USED"), again
        await hub_has(venue, gate_id, second["seq"])
    finally:
        gate.stop()
        await controller.stop()


async def test_without_a_passage_counter_an_open_admit_becomes_not_passed_gate_restarted(
        venue: Venue, tmp_path: Path) -> None:
    gate = await enrolled_gate(venue, tmp_path, '[turnstile]\nbackend = "sim"\n')
    gate.start()
    try:
        gate_id = (await gate.status())["gate_id"]
        a = await gate.keyed("N00003")
        assert a["reason"] == "ADMIT"
        gate.kill9()
        gate.start()
        await gate.status()
        entry = outcome_of(gate.journal(), a["seq"])
        assert (entry["passage"], entry["kind"], entry["ticket_number"]) == ("not_passed", "passage", "N00003")
        assert entry["detail"] == "gate restarted: no passage recorded before the restart"
        events = [e["detail"] for e in gate.journal() if e["kind"] == "event"]
        assert any(d.startswith("pending_admits_resolved: 1 admit(s)") for d in events)
        await hub_has(venue, gate_id, entry["seq"])
        # A second restart finds nothing left open: no second outcome for the same admit.
        gate.stop()
        gate.start()
        await gate.status()
        outcome_of(gate.journal(), a["seq"])
    finally:
        gate.stop()
