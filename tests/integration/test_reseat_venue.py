"""A 5,000-move re-seating file applied while fans are scanned: real hub process, real gate agents."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gatehouse.venue import Gate, Venue
from tests.conftest import TIMEOUT_S, eventually

pytestmark = [pytest.mark.timed, pytest.mark.slow]

PER_ZONE = 2600
MOVED_PER_ZONE = 2500  # 5,000 moves in all: half of each zone's tickets cross to the other zone


def moved_serials_applied(gate: Gate, expected: dict[int, int]) -> int:
    """How many of ``expected`` (ticket id → serial) the gate's replica holds at that serial."""
    reader = gate.agent.reader
    assert reader is not None
    return sum(1 for tid, serial in expected.items()
               if (rec := reader.ticket_by_id(tid)) is not None and rec.serial == serial)


async def test_5000_moves_under_live_scanning_supersede_old_codes_and_admit_new_ones(tmp_path: Path) -> None:
    venue = await Venue.create(tmp_path, zones={"North": 10_000, "South": 10_000}, tickets_per_zone=PER_ZONE)
    try:
        north = await venue.add_gate("North A", ["North"])
        south = await venue.add_gate("South A", ["South"])
        both = await venue.add_gate("Main", ["North", "South"])
        await venue.online()
        gate_of = {"N": north, "S": south}
        moved = [f"N{i:05d}" for i in range(MOVED_PER_ZONE)] + [f"S{i:05d}" for i in range(MOVED_PER_ZONE)]
        sample = [f"N{i:05d}" for i in range(0, MOVED_PER_ZONE, 125)] + [f"S{i:05d}" for i in range(7, MOVED_PER_ZONE, 125)]
        old_codes = {n: await venue.credential(n) for n in sample}
        bystanders = [f"{z}{i:05d}" for z in "NS" for i in range(MOVED_PER_ZONE, PER_ZONE, 4)]
        bystander_codes = {n: await venue.credential(n) for n in bystanders}

        lines = ["number,zone,seat,policy"]
        for n in moved:
            to = "South" if n[0] == "N" else "North"
            lines.append(f"{n},{to},X-{n},{'reentry' if int(n[1:]) % 2 else ''}")
        body = ("\n".join(lines) + "\n").encode()

        results: list[tuple[str, str]] = []

        async def scan_bystanders() -> None:
            # fans of unmoved tickets keep arriving at their own zone's gate the whole time
            for n, code in bystander_codes.items():
                results.append((n, await gate_of[n[0]].scan(code)))

        scanning = asyncio.create_task(scan_bystanders())
        async with venue.hub.admin_client() as c:
            c.timeout = TIMEOUT_S * 3
            r = await c.post("/api/v1/tickets/reseat", content=body, headers={"Content-Type": "text/csv"})
        assert r.status_code == 200, r.text[:2000]
        applied_at = time.monotonic()
        report = r.json()
        assert report["moved"] == 5000 and report["refused"] == 0 and report["applied"]
        expected = {m["ticket_id"]: m["to"]["serial"] for m in report["moves"]}
        assert len(expected) == 5000

        for g in (north, south, both):
            deadline = time.monotonic() + TIMEOUT_S * 2
            while moved_serials_applied(g, expected) < len(expected):
                assert time.monotonic() < deadline, f"{g.gate_id} has {moved_serials_applied(g, expected)} of 5000"
                await asyncio.sleep(0.05)
        reached_s = time.monotonic() - applied_at
        print(f"5,000 moves applied at every gate {reached_s:.2f} s after the hub answered")

        await scanning
        assert results and all(reason == "ADMIT" for _n, reason in results), \
            [x for x in results if x[1] != "ADMIT"]

        for n in sample:
            new_gate, old_gate = (south, north) if n[0] == "N" else (north, south)
            assert await old_gate.scan(old_codes[n]) == "SUPERSEDED"
            assert await new_gate.scan(old_codes[n]) == "SUPERSEDED"
            assert await both.scan(old_codes[n]) == "SUPERSEDED"
            new_code = await venue.credential(n)
            assert await old_gate.scan(new_code, walk=False) == "WRONG_GATE"
            assert await new_gate.scan(new_code) == "ADMIT"

        # nothing else disturbed: unmoved tickets keep their serial and seat; every scan reached the hub
        async with venue.hub.admin_client() as c:
            for n in bystanders[:20]:
                t = (await c.get(f"/api/v1/tickets/{n}")).json()
                assert t["serial"] == 0 and t["seat"] == venue.ticket(n)["seat"]
        for g in (north, south, both):
            assert g.agent.journal is not None
            await eventually(lambda g=g: g.agent.sync_status()["backlog"] == 0, timeout=TIMEOUT_S * 2,  # type: ignore[misc]
                             what=f"{g.gate_id} drained")
            assert await venue.hub_count(g.gate_id) == g.agent.journal.last_seq
    finally:
        await venue.close()

