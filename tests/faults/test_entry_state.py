"""Issue 10, defect 3: a new or rebuilt gate knows who is already in.

Before: snapshots carried tickets but no entry state, so a ticket admitted (and walked
through) at north-1 was admitted again at a newly enrolled north-2 and at north-1 after
``gatehouse gate rebuild-replica`` — the hub reported the conflict afterwards, the fan was in
twice. Here the fan really walks through a real turnstile (the reference controller behind
a pty, ``rotate in``) at gate A.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.faults.harness import (
    TIMEOUT_S,
    cli,
    enrol_gate,
    halt,
    hub_api,
    keyed,
    new_hub,
    online,
    scan,
    serial_turnstile,
    wait_for,
)
from tests.firmware_bridge.controller_process import ControllerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REFUSED = ("ALREADY_USED", "ALREADY_INSIDE")


async def test_a_ticket_used_before_a_gate_joined_or_rebuilt_its_replica_is_refused_there(tmp_path: Path) -> None:
    hub = await asyncio.to_thread(new_hub, tmp_path, zones={"North": 10})
    controller = await ControllerProcess().start("--host-timeout-ms", "5000")
    gate_a = gate_b = None
    try:
        gate_a = await asyncio.to_thread(enrol_gate, hub, tmp_path, "North 1",
                                         turnstile=serial_turnstile(controller.port), passage_timeout_s=TIMEOUT_S)
        await asyncio.to_thread(online, gate_a)
        mark = controller.mark()
        admit = await asyncio.to_thread(keyed, gate_a, "N0001")
        assert admit["reason"] == "ADMIT"
        await controller.mechanism("release", after=mark)
        await controller.send("rotate in")  # the fan walks through
        await asyncio.to_thread(wait_for, lambda: gate_a.status()["lane"]["passed"] >= 1, "the passage at A")
        with hub_api(hub) as c:
            await asyncio.to_thread(
                wait_for, lambda: any(v["kind"] == "passage" and v["ref_seq"] == admit["seq"] for v in c.get(
                    "/api/v1/validations", params={"gate_id": gate_a.gate_id}).json()), "the passage at the hub")

        # a gate enrolled now takes the hub's snapshot: it must carry "N0001 is inside"
        gate_b = await asyncio.to_thread(enrol_gate, hub, tmp_path, "North 2")
        await asyncio.to_thread(online, gate_b)
        assert (await asyncio.to_thread(scan, gate_b, "N0001"))["reason"] in REFUSED

        # gate A's replica is rebuilt from the hub: same answer
        await asyncio.to_thread(halt, gate_a)
        out = await asyncio.to_thread(cli, "gate", "rebuild-replica", "--config", gate_a.config)
        assert "moved aside" in out.stdout
        await asyncio.to_thread(gate_a.start)
        started = time.monotonic()
        await asyncio.to_thread(online, gate_a)
        print(f"rebuilt gate ONLINE after {time.monotonic() - started:.1f} s")
        assert (await asyncio.to_thread(scan, gate_a, "N0001"))["reason"] in REFUSED
        assert (await asyncio.to_thread(scan, gate_a, "N0002"))["reason"] == "ADMIT"  # the rest still get in
        with hub_api(hub) as c:
            assert c.get("/api/v1/conflicts").json() == [], "no double entry, so nothing to reconcile"
    finally:
        for g in (gate_a, gate_b):
            if g is not None:
                await asyncio.to_thread(g.stop)
        await controller.stop()
        await asyncio.to_thread(hub.stop)
