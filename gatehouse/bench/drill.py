"""The upgrade drill: upgrades and a network cut under a steady stream of fans.

A hub and six gates (two zones), simulated fans arriving at every gate, and while they
keep coming:

1. the hub is upgraded: stopped, then started as a version that speaks sync protocol v2
   beside v1 (half the gates speak v1 only, half v1–v2);
2. one gate is upgraded to software whose replica schema is newer (its old file is
   migrated at start), and one gate comes back with a replica it cannot use (written by a
   newer version) and so works from the paper manifest, a steward admitting fans by hand;
3. the network to half the gates is cut for a while. Meanwhile some tickets are used at a
   cut-off gate *and* a connected one (a double entry the hub must report once the link
   is back), and some tickets are cancelled at the hub and shown at the connected gates
   (which hold the revocation and must refuse them).

Pass criteria (``passed``): every fan gets a decision within 2 s at every moment, every
journal entry of every gate ends at the hub exactly once, every planted double entry is
reported as a conflict, and no gate admits a revoked ticket it had been told about.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate_agent.config import GateConfig
from gate_agent.modes import Mode
from gate_agent.replica import SCHEMA_VERSION
from gatehouse.bench import percentile
from gatehouse.netsim import LinkCutter
from gatehouse.venue import TIMEOUT_S, Gate, Venue, eventually, fetch_all
from tickets.model import TicketStatus

STALL_LIMIT_S = 2.0
STEWARD = ("st-drill", "Drill Steward", "4711")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--phase-s", type=float, default=8.0, help="seconds of fans between drill steps")
    parser.add_argument("--partition-s", type=float, default=8.0, help="how long half the gates are cut off")
    parser.add_argument("--fan-interval-s", type=float, default=0.25, help="a fan arrives at each gate this often")
    parser.add_argument("--doubles", type=int, default=6, help="double entries planted during the cut")
    parser.add_argument("--revocations", type=int, default=4, help="tickets cancelled during the cut")
    parser.add_argument("--tickets-per-zone", type=int, default=600)
    parser.add_argument("--dir", type=Path, default=None, help="keep the drill's files here")


def run(args: argparse.Namespace) -> dict[str, Any]:
    params = DrillParams(phase_s=args.phase_s, partition_s=args.partition_s, fan_interval_s=args.fan_interval_s,
                         doubles=args.doubles, revocations=args.revocations, tickets_per_zone=args.tickets_per_zone)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(drill(args.dir, params))
    with tempfile.TemporaryDirectory(prefix="gatehouse-drill-") as tmp:
        return asyncio.run(drill(Path(tmp), params))


@dataclass(frozen=True)
class DrillParams:
    phase_s: float = 8.0
    partition_s: float = 8.0
    fan_interval_s: float = 0.25
    doubles: int = 6
    revocations: int = 4
    tickets_per_zone: int = 600


@dataclass
class Lane:
    """One gate as the drill sees it: its fans, and a way to wait while it restarts."""

    gate: Gate
    zone: str
    cutter: LinkCutter
    tickets: list[dict[str, Any]]
    available: asyncio.Event = field(default_factory=asyncio.Event)
    manual: bool = False  # the steward admits from the manifest


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    by_reason: dict[str, int] = field(default_factory=dict)
    worst: tuple[float, str] = (0.0, "")
    revoked_admitted: int = 0

    def note(self, gate_id: str, reason: str, latency: float) -> None:
        self.latencies.append(latency)
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if latency > self.worst[0]:
            self.worst = (latency, f"{gate_id}: {reason}")


async def drill(root: Path, p: DrillParams = DrillParams(), say: Callable[[str], None] | None = None) -> dict[str, Any]:
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    say("drill: hub (protocol v1 only) and six gates")
    venue = await Venue.create(root, zones={"North": 20_000, "South": 20_000}, tickets_per_zone=p.tickets_per_zone,
                               hub_args=["--protocol", "1-1"], event_name="Upgrade drill")
    lanes: dict[str, Lane] = {}
    tally = Tally()
    stop = asyncio.Event()
    fans: list[asyncio.Task[None]] = []
    try:
        async with venue.hub.admin_client() as c:
            (await c.post("/api/v1/stewards", json=dict(zip(("steward_id", "name", "pin"), STEWARD, strict=True))
                          )).raise_for_status()
        for zone in venue.zones:
            zone_tickets = [t for t in venue.tickets if t["number"].startswith(zone[:1])]
            for i in range(3):
                cutter = await LinkCutter("127.0.0.1", venue.hub.port).start()
                gate = await venue.add_gate(f"{zone} {i + 1}", [zone], passage_timeout_s=2.0, hub_url=cutter.url,
                                            protocol=(1, 1) if i == 0 else None)
                lane = Lane(gate, zone, cutter, zone_tickets[i::3])
                lane.available.set()
                lanes[gate.gate_id] = lane
        await venue.online()
        for lane in lanes.values():  # every gate holds a manifest before anything breaks
            await eventually(lambda lane=lane: _manifest_rows(lane) > 0, timeout=TIMEOUT_S * 2,
                             what=f"manifest at {lane.gate.gate_id}")
        credentials = {t["number"]: await venue.credential(t["number"])
                       for lane in lanes.values() for t in lane.tickets}
        for lane in lanes.values():
            fans.append(asyncio.create_task(_fans(lane, credentials, tally, p.fan_interval_s, stop)))
        await asyncio.sleep(p.phase_s)

        say("drill: 1. upgrading the hub to protocol v1+v2")
        venue.hub.stop()
        venue.hub.extra_args = ["--protocol", "1-2"]
        await venue.hub.astart()
        await venue.online()
        await asyncio.sleep(p.phase_s)

        north2, south2 = lanes["north-2"], lanes["south-2"]
        say("drill: 2. north-2 upgraded (replica migrated), south-2 back with an unusable replica")
        north2.available.clear()
        north2.gate = await venue.restart_gate(north2.gate, while_stopped=_as_old_schema)
        north2.available.set()
        south2.available.clear()
        south2.gate = await venue.restart_gate(south2.gate, while_stopped=_as_newer_schema)
        south2.manual = south2.gate.agent.ladder.mode is Mode.MANIFEST
        south2.available.set()
        await asyncio.sleep(p.phase_s)

        say("drill: 3. cutting the network to half the gates")
        cut = [lanes[g] for g in ("north-1", "north-3", "south-1")]
        for lane in cut:
            lane.cutter.cut()
        for lane in cut:
            await eventually(lambda lane=lane: lane.gate.agent.ladder.mode is not Mode.ONLINE, what="cut noticed")
        planted = await _plant_doubles(lanes, cut, credentials, p.doubles, tally)
        await _revoke_and_present(venue, lanes, cut, credentials, p.revocations, tally)
        await asyncio.sleep(p.partition_s)
        for lane in cut:
            lane.cutter.heal()
        say("drill: link back; draining")
        await venue.online(*[lane.gate for lane in lanes.values() if not lane.manual])
        await asyncio.sleep(p.phase_s / 2)
    finally:
        stop.set()
        for lane in lanes.values():
            lane.available.set()  # a fan waiting for a gate that failed to restart must not hang
        for task in fans:
            task.cancel()
        await asyncio.gather(*fans, return_exceptions=True)
    try:
        lost, double = await _audit(venue, lanes)
        conflicts = await _conflicts(venue)
        reported = len(planted & conflicts)
        result = {
            "gates": len(lanes),
            "phase_s": p.phase_s,
            "partition_s": p.partition_s,
            "decisions_count": len(tally.latencies),
            "max_stall_s": round(max(tally.latencies, default=0.0), 3),
            "decision_p99_s": round(percentile(tally.latencies, 99), 3),
            "lost_count": lost,
            "double_counted_count": double,
            "conflicts_expected_count": len(planted),
            "conflicts_reported_count": reported,
            "conflicts_other_count": len(conflicts - planted),
            "revoked_admitted_count": tally.revoked_admitted,
            "manifest_mode_gate_count": sum(lane.manual for lane in lanes.values()),
        }
        result["passed"] = (result["max_stall_s"] <= STALL_LIMIT_S and lost == 0 and double == 0
                            and reported == len(planted) and tally.revoked_admitted == 0)
        say(f"drill: longest stall {result['max_stall_s']} s ({tally.worst[1]}); "
            f"{result['decisions_count']} decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.by_reason.items())))
        return result
    finally:
        for lane in lanes.values():
            await lane.cutter.close()
        await venue.close()


def _manifest_rows(lane: Lane) -> int:
    path = lane.gate.agent.config.data_dir / "manifest.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM rows").fetchone()[0])
        except sqlite3.Error:
            return 0


async def _fans(lane: Lane, credentials: dict[str, str], tally: Tally, every: float, stop: asyncio.Event) -> None:
    queue = list(lane.tickets[: len(lane.tickets) // 2])  # the rest is kept for planted doubles
    lane.tickets = lane.tickets[len(lane.tickets) // 2:]
    while not stop.is_set() and queue:
        ticket = queue.pop()
        arrived = time.monotonic()
        await asyncio.wait_for(lane.available.wait(), TIMEOUT_S * 3)
        gate = lane.gate
        if lane.manual:
            result = await gate.agent.manual_admit(typed=ticket["number"], steward_id=STEWARD[0], pin=STEWARD[2])
            reason = result.reason
        else:
            reason = await gate.scan(credentials[ticket["number"]])
        tally.note(gate.gate_id, reason, time.monotonic() - arrived)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def _plant_doubles(lanes: dict[str, Lane], cut: list[Lane], credentials: dict[str, str], n: int,
                         tally: Tally) -> set[int]:
    """Use ``n`` tickets at a connected gate, then again at a cut-off gate of the same zone."""
    planted: set[int] = set()
    for i in range(n):
        far = cut[i % len(cut)]
        near = next(lane for lane in lanes.values()
                    if lane.zone == far.zone and lane not in cut and not lane.manual)
        ticket = far.tickets.pop()
        code = credentials[ticket["number"]]
        for lane in (near, far):
            t0 = time.monotonic()
            reason = await lane.gate.scan(code)
            tally.note(lane.gate.gate_id, reason, time.monotonic() - t0)
        planted.add(int(ticket["ticket_id"]))
    return planted


async def _revoke_and_present(venue: Venue, lanes: dict[str, Lane], cut: list[Lane], credentials: dict[str, str],
                              n: int, tally: Tally) -> None:
    """Cancel tickets at the hub; the connected gates must refuse them once they hold it."""
    connected = [lane for lane in lanes.values() if lane not in cut and not lane.manual]
    for i in range(n):
        lane = connected[i % len(connected)]
        ticket = lane.tickets.pop()
        tid = int(ticket["ticket_id"])
        async with venue.hub.admin_client() as c:
            (await c.post(f"/api/v1/tickets/{tid}/revoke", json={"reason": "drill: refunded"})).raise_for_status()
        reader = lane.gate.agent.reader
        assert reader is not None
        await eventually(lambda reader=reader, tid=tid: (r := reader.ticket_by_id(tid)) is not None
                         and r.status is TicketStatus.REVOKED, what="revocation at a connected gate")
        t0 = time.monotonic()
        reason = await lane.gate.scan(credentials[ticket["number"]])
        tally.note(lane.gate.gate_id, reason, time.monotonic() - t0)
        if reason.startswith("ADMIT"):
            tally.revoked_admitted += 1


async def _audit(venue: Venue, lanes: dict[str, Lane]) -> tuple[int, int]:
    """(lost, double counted): every journal entry of every gate against what the hub holds."""
    lost = double = 0
    for lane in lanes.values():
        agent = lane.gate.agent
        assert agent.journal is not None
        await eventually(lambda agent=agent: agent.sync_status is not None and agent.sync_status()["backlog"] == 0,
                         timeout=TIMEOUT_S * 3, what=f"{lane.gate.gate_id} drained")
        mine = {(e.seq, e.nonce) for e in await agent.journal.all_entries()}
        async with venue.hub.admin_client() as c:
            held = [(v["seq"], v["nonce"]) for v in await fetch_all(
                c, "/api/v1/validations", {"gate_id": lane.gate.gate_id, "limit": 10_000})]
        lost += len(mine - set(held))
        double += len(held) - len(set(held)) + len(set(held) - mine)
    return lost, double


async def _conflicts(venue: Venue) -> set[int]:
    async with venue.hub.admin_client() as c:
        r = await c.get("/api/v1/conflicts")
        r.raise_for_status()
        return {int(x["ticket_id"]) for x in r.json() if x.get("ticket_id") is not None}


def _as_old_schema(cfg: GateConfig) -> None:
    """The replica as the previous software version left it (schema 1): the new one migrates it."""
    with contextlib.closing(sqlite3.connect(cfg.replica_path)) as conn:
        conn.execute("DROP TABLE IF EXISTS revoked")
        for table, column in (("entry_state", "state_seq"), ("tickets", "barcode_key")):  # added after schema 1
            if column in {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}:
                conn.execute(f"DROP INDEX IF EXISTS {table}_{column}")
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute("PRAGMA user_version=1")
        conn.commit()


def _as_newer_schema(cfg: GateConfig) -> None:
    """A replica written by a newer software version (a botched roll-back): unusable here."""
    with contextlib.closing(sqlite3.connect(cfg.replica_path)) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
        conn.commit()
