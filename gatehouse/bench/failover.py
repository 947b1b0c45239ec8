"""The failover drill: a hub process killed and the database failed over, under a stream of fans.

Set-up, all on this machine: a PostgreSQL primary with an asynchronous streaming-replication
standby (Debian's server, :mod:`gatehouse.pgcluster`), the hub's database URL naming both servers
(libpq picks the one that accepts writes), two hub processes (A and B) serving that hub, 20
lightweight gates (:class:`gatehouse.bench.kit.LightGate`: real websockets and sessions, journal in
memory) streaming admits and passages, and 2 real gate agents deciding a stream of fans. Every
gate knows both hub addresses; half prefer A, half B. Then, while everything streams:

1. hub process A is killed (SIGKILL): its gates fail over to B; A is started again later (as its
   service manager would);
2. replication to the standby is cut (``--lag-s`` before the end: the standby misses the last
   commits, as an asynchronous standby does when its primary dies), the primary is stopped
   ``immediate`` and the standby promoted (``pg_ctl promote``). The hub processes reconnect to it
   (the URL names both servers). The standby lacks what the primary committed last, so the hub now
   holds less of some gates' journals than it had acknowledged, and its change log went back: each
   hub process closes its gates' links, each gate is told the hub holds less than it had acked
   (the rollback) and re-sends from there, and resyncs its replica;
3. revocations are issued after the failover and timed to every gate.

Throughout, double entries are planted (a ticket admitted at two light gates). Pass: every fan gets
a decision within 2 s at every moment (the agents decide locally), no journal entry is lost or
stored twice, every planted double entry is reported as a conflict, and a revocation issued after
the failover reaches every gate within a second (p99).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gatehouse.bench import percentile
from gatehouse.bench.kit import LightGate, quick_delays
from gatehouse.pgcluster import PgCluster, multi_host_url
from gatehouse.venue import TIMEOUT_S, Gate, HubProcess, Venue, eventually, fetch_all
from sync import session as s
from tickets.entry import EntryKind, JournalEntry, Passage
from tickets.model import TicketStatus

STALL_LIMIT_S = 2.0
REVOCATION_LIMIT_MS = 1000.0
#: the light gates' session: heartbeats quick enough that a dead hub process is noticed within
#: seconds, not so quick that a busy shared machine makes links flap
SESSION = s.SessionConfig(heartbeat_interval_s=2.0, heartbeat_timeout_s=10.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--phase-s", type=float, default=6.0, help="seconds of streaming between drill steps")
    parser.add_argument("--lag-s", type=float, default=2.0,
                        help="replication is cut this long before the primary dies (commits the standby lacks)")
    parser.add_argument("--light-gates", type=int, default=20, help="lightweight gates streaming journal entries")
    parser.add_argument("--light-rate", type=float, default=2.0, help="admits per second at each light gate")
    parser.add_argument("--fan-interval-s", type=float, default=0.25, help="a fan arrives at each agent this often")
    parser.add_argument("--doubles", type=int, default=9, help="double entries planted over the drill")
    parser.add_argument("--revocations", type=int, default=10, help="revocations issued after the failover")
    parser.add_argument("--tickets-per-zone", type=int, default=1500)
    parser.add_argument("--dir", type=Path, default=None, help="keep the drill's files here")


@dataclass(frozen=True)
class FailoverParams:
    phase_s: float = 6.0
    lag_s: float = 2.0
    light_gates: int = 20
    light_rate: float = 2.0
    fan_interval_s: float = 0.25
    doubles: int = 9
    revocations: int = 10
    tickets_per_zone: int = 1500


def run(args: argparse.Namespace) -> dict[str, Any]:
    params = FailoverParams(phase_s=args.phase_s, lag_s=args.lag_s, light_gates=args.light_gates,
                            light_rate=args.light_rate, fan_interval_s=args.fan_interval_s, doubles=args.doubles,
                            revocations=args.revocations, tickets_per_zone=args.tickets_per_zone)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(failover_drill(args.dir, params))
    with tempfile.TemporaryDirectory(prefix="gatehouse-failover-") as tmp:
        return asyncio.run(failover_drill(Path(tmp), params))


@dataclass
class Stream:
    """What the drill saw: decision latencies at the agents, planted doubles, timings."""

    latencies: list[float] = field(default_factory=list)
    worst: tuple[float, str] = (0.0, "")
    by_reason: dict[str, int] = field(default_factory=dict)
    planted: set[int] = field(default_factory=set)
    #: the drill's steps as (monotonic time, what), to place the worst stall
    steps: list[tuple[float, str]] = field(default_factory=list)
    #: how late this process's event loop woke (the agents and light gates share it)
    loop_lag_max_s: float = 0.0

    def note(self, gate_id: str, reason: str, latency: float) -> None:
        self.latencies.append(latency)
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if latency > self.worst[0]:
            now = time.monotonic()
            step = next((what for at, what in reversed(self.steps) if at <= now - latency), "start")
            self.worst = (latency, f"{gate_id}: {reason}, fan arrived {now - latency:.1f} (after: {step})")

    def step(self, what: str) -> None:
        self.steps.append((time.monotonic(), what))

    async def watch_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            t = time.monotonic()
            await asyncio.sleep(0.05)
            self.loop_lag_max_s = max(self.loop_lag_max_s, time.monotonic() - t - 0.05)


class Streamer(LightGate):
    """A light gate that admits its own tickets at a steady rate, each followed by its passage,
    and notes every time its hub said it holds less than it had acknowledged."""

    def __init__(self, *args: Any, zone_id: int, tickets: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone_id = zone_id
        self.tickets = tickets
        self.rollbacks = 0
        self.states: list[str] = []

    async def on_state(self, state: str, detail: str) -> None:
        if state == "rolled_back":
            self.rollbacks += 1
        self.states.append(state)
        await super().on_state(state, detail)

    def admit_with_passage(self, ticket_id: int) -> None:
        admit = self.append(lambda seq: JournalEntry(self.name, seq, time.time(), EntryKind.SCAN, reason="ADMIT",
                                                     ticket_id=ticket_id, zone_id=self.zone_id, raw=b"GH1:drill",
                                                     passage=Passage.PENDING))
        self.append(lambda seq: JournalEntry(self.name, seq, time.time(), EntryKind.PASSAGE, reason="ADMIT",
                                             ticket_id=ticket_id, zone_id=self.zone_id, ref_seq=admit.seq,
                                             passage=Passage.PASSED))

    async def stream(self, rate: float, stop: asyncio.Event) -> None:
        every = 1.0 / rate
        await asyncio.sleep(random.random() * every)
        while not stop.is_set() and self.tickets:
            self.admit_with_passage(self.tickets.pop())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)


@dataclass
class Servers:
    """What the drill started outside its event loop's reach; stopped whatever happens."""

    primary: PgCluster
    standby: PgCluster | None = None
    hubs: list[HubProcess] = field(default_factory=list)

    def stop_all(self) -> None:
        for hub in self.hubs:
            hub.stop()
        for cluster in (self.primary, self.standby):
            if cluster is not None:
                cluster.destroy()


async def failover_drill(root: Path, p: FailoverParams = FailoverParams(),
                         say: Callable[[str], None] | None = None) -> dict[str, Any]:
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    pg_root = Path(tempfile.mkdtemp(prefix="gatehouse-failover-pg-"))  # the server runs as postgres
    servers = Servers(PgCluster(pg_root))
    try:
        servers.primary.init().start()
        return await _drill(root, p, say, servers)
    finally:
        # synchronous, first thing: a cancelled drill must not leave servers running
        servers.stop_all()
        shutil.rmtree(pg_root, ignore_errors=True)


async def _drill(root: Path, p: FailoverParams, say: Callable[[str], None], servers: Servers) -> dict[str, Any]:
    primary = servers.primary
    standby: PgCluster | None = None
    venue: Venue | None = None
    hub_b: HubProcess | None = None
    lights: list[Streamer] = []
    agents: list[Gate] = []
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    stream = Stream()
    result: dict[str, Any] = {"light_gates": p.light_gates, "agent_gates": 2, "phase_s": p.phase_s,
                              "lag_s": p.lag_s, "light_rate_per_s": p.light_rate}
    try:
        primary.create_database("hub")
        standby = servers.standby = primary.standby()
        url = multi_host_url("hub", primary, standby)
        say(f"failover: PostgreSQL primary :{primary.port}, standby :{standby.port}; hub processes A and B")
        venue = await Venue.create(root, zones={"North": 50_000, "South": 50_000},
                                   tickets_per_zone=p.tickets_per_zone, event_name="Failover drill", database=url)
        hub_a = venue.hub
        hub_b = hub_a.sibling("hub-b")
        servers.hubs += [hub_a, hub_b]
        await hub_b.astart()
        ws = {h.port: f"ws://127.0.0.1:{h.port}/ws/gate" for h in (hub_a, hub_b)}
        by_zone = {z: [t for t in venue.tickets if t["zone_id"] == zid] for z, zid in venue.zones.items()}

        # the agents: one per zone, deciding fans from the first part of their zone's tickets
        fans: dict[str, list[dict[str, Any]]] = {}
        for i, zone in enumerate(venue.zones):
            order = [hub_a.url, hub_b.url] if i == 0 else [hub_b.url, hub_a.url]
            gate = await venue.add_gate(f"{zone} agent", [zone], passage_timeout_s=2.0, hub_urls=order)
            agents.append(gate)
            fans[gate.gate_id] = by_zone[zone][:p.tickets_per_zone // 4]
        # the light gates: enrolled through the API, each streaming its own slice of its zone's tickets
        async with hub_a.admin_client() as c:
            for i in range(p.light_gates):
                zone = list(venue.zones)[i % 2]
                r = await c.post("/api/v1/gates", json={"name": f"light {i}", "zones": [venue.zones[zone]]})
                r.raise_for_status()
                r = await c.post("/api/v1/enroll", json={"token": r.json()["enrolment_token"]})
                r.raise_for_status()
                body = r.json()
                pool = by_zone[zone][p.tickets_per_zone // 4:]
                mine = [t["ticket_id"] for t in pool[i // 2::max(1, p.light_gates // 2)]]
                order = [ws[hub_a.port], ws[hub_b.port]] if i % 2 == 0 else [ws[hub_b.port], ws[hub_a.port]]
                g = Streamer(body["gate_id"], body["token"], order, zone_id=venue.zones[zone], tickets=mine,
                             config=SESSION)
                g.client.reconnect_delays = quick_delays
                g.watch_admits = set()
                lights.append(g)
        for g in lights:
            g.start()
        await venue.online()
        await asyncio.wait_for(asyncio.gather(*(g.online.wait() for g in lights)), TIMEOUT_S * 6)
        credentials: dict[str, str] = {}
        async with hub_a.admin_client() as c:  # one client: hundreds of fans
            for t in (t for ts in fans.values() for t in ts):
                r = await c.get(f"/api/v1/tickets/{t['ticket_id']}/credential")
                r.raise_for_status()
                credentials[t["number"]] = str(r.json()["text"])
        say(f"failover: {len(lights)} light gates and {len(agents)} agents online; streaming")

        for gate in agents:
            tasks.append(asyncio.create_task(_fans(gate, fans[gate.gate_id], credentials, stream,
                                                   p.fan_interval_s, stop)))
        for g in lights:
            tasks.append(asyncio.create_task(g.stream(p.light_rate, stop)))
        tasks.append(asyncio.create_task(stream.watch_loop(stop)))
        per_step = max(1, p.doubles // 3)
        await asyncio.sleep(p.phase_s)
        _plant(lights, per_step, stream)

        stream.step("hub A killed")
        say("failover: 1. kill -9 hub process A")
        await asyncio.to_thread(hub_a.kill)
        await asyncio.sleep(p.phase_s)
        _plant(lights, per_step, stream)
        await hub_a.astart()
        stream.step("hub A restarted")
        say("failover: hub process A started again")
        await asyncio.sleep(p.phase_s / 2)

        say(f"failover: 2. replication cut {p.lag_s:.1f} s before the primary dies")
        # (every server command off the event loop: the agents in this process keep deciding)
        await asyncio.to_thread(standby.psql, "ALTER SYSTEM SET primary_conninfo = ''")
        await asyncio.to_thread(standby.psql, "SELECT pg_reload_conf()")
        await asyncio.sleep(p.lag_s)
        _plant(lights, p.doubles - 2 * per_step, stream)
        await asyncio.sleep(0.5)
        held_primary = int(await asyncio.to_thread(primary.psql, "SELECT COUNT(*) FROM journal", "hub") or 0)
        journal_at_kill = {g.name: len(g.journal) for g in lights}
        for a in agents:
            assert a.agent.journal is not None
            journal_at_kill[a.gate_id] = a.agent.journal.last_seq
        t_kill = time.monotonic()
        stream.step("primary stopped")
        await asyncio.to_thread(primary.kill)
        say("failover: primary stopped (immediate); promoting the standby")
        await asyncio.to_thread(standby.promote)
        held_standby = int(await asyncio.to_thread(standby.psql, "SELECT COUNT(*) FROM journal", "hub") or 0)
        result["standby_missing_entries_count"] = max(0, held_primary - held_standby)
        say(f"failover: standby promoted; it lacks {result['standby_missing_entries_count']} of the"
            f" {held_primary} journal entries the primary held")

        # recovered: the database the hub now runs on holds every gate's journal up to where it
        # was when the primary died (what the standby lacked was re-sent), and every gate is online
        async def recovered(c: Any) -> bool:
            try:
                r = await c.get("/api/v1/gates")
            except httpx.HTTPError:
                return False
            if r.status_code != 200:
                return False
            held = {g["gate_id"]: int(g["high_water"]) for g in r.json()}
            return all(held.get(g, 0) >= n for g, n in journal_at_kill.items()) and \
                all(g.online.is_set() for g in lights) and all(a.agent.ladder.mode.value == "ONLINE" for a in agents)

        deadline = time.monotonic() + TIMEOUT_S * 9
        async with hub_b.admin_client() as c:
            while not await recovered(c):
                if time.monotonic() > deadline:
                    r = await c.get("/api/v1/gates")
                    held = {g["gate_id"]: g["high_water"] for g in r.json()} if r.status_code == 200 else {}
                    behind = [f"{g}: hub holds {held.get(g)} of {n}" for g, n in journal_at_kill.items()
                              if held.get(g, 0) < n]
                    behind += [f"{g.name}: {g.client.state}" for g in lights if not g.online.is_set()]
                    raise TimeoutError(f"not recovered after {TIMEOUT_S * 9:.0f} s: {'; '.join(behind)[:2000]}")
                await asyncio.sleep(0.1)
        result["recovery_s"] = round(time.monotonic() - t_kill, 3)
        stream.step("recovered")
        say(f"failover: 3. recovered in {result['recovery_s']} s; revocations through both processes")

        result["revocation_after_failover_p99_ms"] = await _revocations(venue, hub_b, lights, agents, fans,
                                                                       p.revocations)
        await asyncio.sleep(p.phase_s / 2)
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    try:
        assert venue is not None
        lost, double = await _audit(venue, lights, agents)
        async with venue.hub.admin_client() as c:
            conflicts = await fetch_all(c, "/api/v1/conflicts", {"limit": 1000})
        doubled = {int(x["ticket_id"]) for x in conflicts if x["kind"] == "double_admit" and x["ticket_id"]}
        result.update({
            "decisions_count": len(stream.latencies),
            "max_stall_s": round(max(stream.latencies, default=0.0), 3),
            "decision_p99_s": round(percentile(stream.latencies, 99), 3),
            "bench_loop_lag_max_s": round(stream.loop_lag_max_s, 3),
            "lost_count": lost,
            "double_counted_count": double,
            "conflicts_expected_count": len(stream.planted),
            "conflicts_reported_count": len(stream.planted & doubled),
            "conflicts_other_count": len(doubled - stream.planted),
            "gates_rolled_back_count": sum(1 for g in lights if g.rollbacks),
            "validations_count": sum(len(g.journal) for g in lights),
        })
        result["passed"] = (result["max_stall_s"] <= STALL_LIMIT_S and lost == 0 and double == 0
                            and result["conflicts_reported_count"] == len(stream.planted)
                            and result.get("revocation_after_failover_p99_ms", 1e9) < REVOCATION_LIMIT_MS)
        say(f"failover: longest stall {result['max_stall_s']} s ({stream.worst[1]}); {result['decisions_count']}"
            " decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(stream.by_reason.items())))
        return result
    finally:
        for g in lights:
            await g.stop()
        if venue is not None:
            await venue.close()


def _plant(lights: list[Streamer], n: int, stream: Stream) -> None:
    """Admit ``n`` tickets already admitted at one light gate again at another."""
    used = [(g, e.ticket_id) for g in lights for e in g.journal
            if e.kind is EntryKind.SCAN and e.ticket_id is not None and e.ticket_id not in stream.planted]
    random.shuffle(used)
    for first, tid in used[:n]:
        assert tid is not None
        other = next(g for g in lights if g is not first and g.zone_id == first.zone_id)
        other.admit_with_passage(tid)
        stream.planted.add(tid)


async def _fans(gate: Gate, tickets: list[dict[str, Any]], credentials: dict[str, str], stream: Stream,
                every: float, stop: asyncio.Event) -> None:
    queue = list(tickets)
    while not stop.is_set() and queue:
        ticket = queue.pop()
        arrived = time.monotonic()
        reason = await gate.scan(credentials[ticket["number"]])
        stream.note(gate.gate_id, reason, time.monotonic() - arrived)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def _revocations(venue: Venue, hub_b: HubProcess, lights: list[Streamer], agents: list[Gate],
                       fans: dict[str, list[dict[str, Any]]], n: int) -> float:
    """Revoke ``n`` tickets (through A and B in turn) and time each to every gate."""
    spare = [t for ts in fans.values() for t in ts[len(ts) // 2:]][:n]
    latencies: list[float] = []
    for i, t in enumerate(spare):
        tid = int(t["ticket_id"])
        hub = venue.hub if i % 2 == 0 else hub_b
        seen: dict[str, float] = {}
        async with hub.admin_client() as c:
            t0 = time.perf_counter()
            (await c.post(f"/api/v1/tickets/{tid}/revoke", json={"reason": "drill"})).raise_for_status()

        def arrived(tid: int = tid, seen: dict[str, float] = seen) -> bool:
            now = time.perf_counter()
            for a in agents:
                reader = a.agent.reader
                if a.gate_id not in seen and reader is not None and (r := reader.ticket_by_id(tid)) is not None \
                        and r.status is TicketStatus.REVOKED:
                    seen[a.gate_id] = now
            return len(seen) == len(agents) and all(tid in g.revoked_at for g in lights)
        try:
            await eventually(arrived, timeout=TIMEOUT_S * 3, what=f"revocation of {tid} at every gate")
        except TimeoutError as exc:
            missing = [f"{g.name} ({g.client.state} on {g.client.url}, cursor {g.cursor}, "
                       f"{g.client.connections} connections)" for g in lights if tid not in g.revoked_at]
            missing += [a.gate_id for a in agents if a.gate_id not in seen]
            raise TimeoutError(f"{exc}; missing at: {'; '.join(missing)}") from None
        latencies += [(v - t0) * 1000 for v in seen.values()]
        latencies += [(g.revoked_at[tid] - t0) * 1000 for g in lights]
    return round(percentile(latencies, 99), 2)


async def _audit(venue: Venue, lights: list[Streamer], agents: list[Gate]) -> tuple[int, int]:
    """(lost, double counted): every gate's journal against what the hub holds, by (seq, nonce)."""
    for g in lights:
        await eventually(lambda g=g: g.acked >= len(g.journal), timeout=TIMEOUT_S * 6, what=f"{g.name} drained")
    for a in agents:
        await eventually(lambda a=a: a.agent.sync_status is not None and a.agent.sync_status()["backlog"] == 0,
                         timeout=TIMEOUT_S * 6, what=f"{a.gate_id} drained")
    journals: dict[str, set[tuple[int, str]]] = {g.name: {(e.seq, e.nonce) for e in g.journal} for g in lights}
    for a in agents:
        assert a.agent.journal is not None
        journals[a.gate_id] = {(e.seq, e.nonce) for e in await a.agent.journal.all_entries()}
    lost = double = 0
    async with venue.hub.admin_client() as c:
        for gate_id, mine in journals.items():
            held = [(v["seq"], v["nonce"]) for v in await fetch_all(
                c, "/api/v1/validations", {"gate_id": gate_id, "limit": 10_000})]
            lost += len(mine - set(held))
            double += len(held) - len(set(held)) + len(set(held) - mine)
    return lost, double
