"""Shared pieces of the hub benchmarks (``ingest``, ``sync``, ``load``, ``failover``): a real hub
process with its store (SQLite, or PostgreSQL with several hub processes), many lightweight
gates over the real websocket, and process figures.

The hub is :class:`gatehouse.venue.HubProcess` (``gatehouse hub serve`` as a child process on
127.0.0.1): one Python process, so about one core; on PostgreSQL :meth:`Hub.add_process` starts
more processes serving the same hub. The lightweight gates are real
:class:`sync.gate_client.GateClient` instances (real websockets, the real sans-I/O session)
whose owner keeps the journal and the replica in memory, so that 200 of them fit in the
benchmark process and the hub, not the load generator, is what is measured. Where the gate's
own SQLite work matters (a snapshot, a decision) the benchmarks use real gate agents instead.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gatehouse.bench import percentile
from gatehouse.venue import HubProcess, eventually, free_port
from hub.db import Database
from hub.importer import import_tickets
from hub.store import database_url, init_hub
from sync import messages as m
from sync import session as s
from sync.backend import HelloFacts
from sync.gate_client import GateClient, backoff
from tickets.entry import EntryKind, JournalEntry, Passage
from tickets.model import TicketRecord, TicketStatus, Zone
from tickets.policy import EntryPolicy

EVENT_ID = 1
#: the lightweight gates' session: slow heartbeats, so 200 idle links cost the hub little
LIGHT_SESSION = s.SessionConfig(heartbeat_interval_s=10.0, heartbeat_timeout_s=60.0)


def progress(bench: str, msg: str) -> None:
    print(f"[bench {bench}] {msg}", file=sys.stderr, flush=True)


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in [0, 1]; 0.0 for no values (:func:`gatehouse.bench.percentile`)."""
    return percentile(list(values), q * 100)


def tickets_csv(rows: int, zones: Sequence[str] = ("North", "South", "East", "West")) -> bytes:
    """A generated ticket CSV of ``rows`` rows over ``zones`` (zones are created by the import)."""
    lines = ["number,holder,zone,seat,policy,external_id"]
    lines += [f"B{i:08d},Holder {i},{zones[i % len(zones)]},R{i % 50}-{i % 30},{'single' if i % 5 else 'reentry'},x{i}"
              for i in range(1, rows + 1)]
    return ("\n".join(lines) + "\n").encode()


def quick_delays() -> Iterator[float]:
    return backoff(0.2, 2.0, 2.0)  # quick, jittered


# --------------------------------------------------------------------------- the hub process
@dataclass
class Hub:
    """A hub data directory, its serving child process and what the benchmarks need of it."""

    process: HubProcess
    #: the zones each enrolled gate admits (fan-out reaches a zone's gates only)
    gate_zones: dict[str, list[int]] = field(default_factory=dict)
    #: further processes serving the same hub (PostgreSQL only); ``process`` is the first
    others: list[HubProcess] = field(default_factory=list)

    @property
    def processes(self) -> list[HubProcess]:
        return [self.process, *self.others]

    @property
    def pids(self) -> list[int]:
        return [p.proc.pid for p in self.processes if p.proc is not None]

    def ws_urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{p.port}/ws/gate" for p in self.processes]

    def add_process(self, name: str | None = None) -> HubProcess:
        """Another ``gatehouse hub serve`` on the same hub (started with :meth:`start`)."""
        proc = self.process.sibling(name or f"hub-{len(self.processes) + 1}")
        self.others.append(proc)
        return proc

    def database(self) -> Database:
        return Database(database_url(self.data), readers=1)

    def zone_peers(self, gates: Sequence[LightGate], zone_id: int = 1) -> list[LightGate]:
        """The gates that admit ``zone_id``: the ones an admit of that zone is fanned out to."""
        return [g for g in gates if zone_id in self.gate_zones.get(g.name, [])]

    @property
    def data(self) -> Path:
        return self.process.data

    @property
    def pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.process.port}/ws/gate"

    @classmethod
    def create(cls, root: Path, *, name: str = "bench", database: str | None = None) -> Hub:
        """A new hub in ``root/hub``; ``database``: a PostgreSQL URL (default SQLite)."""
        data = root / "hub"
        now = time.time()
        admin = init_hub(data, event_id=EVENT_ID, name=name, valid_from=now - 3600, valid_until=now + 86_400,
                         database=database)
        return cls(HubProcess(data, free_port(), admin))

    def import_csv(self, rows: int) -> float:
        """Import ``rows`` generated tickets into the (not yet serving) hub; returns rows/s."""
        db = self.database()
        try:
            report = import_tickets(db, tickets_csv(rows), "csv")
        finally:
            db.close()
        if report.error_count:
            raise RuntimeError(f"generated import had {report.error_count} errors: {report.errors[:3]}")
        return report.rows / report.seconds if report.seconds > 0 else float(report.rows)

    def start(self) -> None:
        for p in self.processes:
            if p.proc is None or p.proc.poll() is not None:
                p.start()

    def stop(self) -> None:
        for p in self.processes:
            p.stop()

    def replica_position(self) -> tuple[int, str]:
        """(hub change seq, hub epoch), read from the database: what a gate whose replica is
        already up to date presents in its hello (so it is answered with deltas, not a snapshot)."""
        db = self.database()
        try:
            return db.read_sync(_position)
        finally:
            db.close()

    async def enrol(self, count: int, prefix: str = "bench", zones: Sequence[int] | None = None) -> list[tuple[str, str]]:
        """Enrol ``count`` gates through the API; returns (gate_id, token) pairs.

        Without ``zones`` the gates are spread over the venue's zones round-robin, as at a
        real stadium (each zone has its own gates; fan-out goes to a zone's gates only).
        """
        out: list[tuple[str, str]] = []
        async with self.process.admin_client() as c:
            if zones is None:
                r = await c.get("/api/v1/zones")
                r.raise_for_status()
                zone_ids = [int(z["zone_id"]) for z in r.json()]
            else:
                zone_ids = []

            async def one(i: int) -> tuple[str, str]:
                assigned = list(zones) if zones is not None else ([zone_ids[i % len(zone_ids)]] if zone_ids else [])
                r = await c.post("/api/v1/gates", json={"name": f"{prefix} {i}", "zones": assigned})
                r.raise_for_status()
                r = await c.post("/api/v1/enroll", json={"token": r.json()["enrolment_token"]})
                r.raise_for_status()
                body = r.json()
                self.gate_zones[str(body["gate_id"])] = assigned
                return str(body["gate_id"]), str(body["token"])

            for start in range(0, count, 20):  # a few at a time: enrolment is not what we measure
                out += await asyncio.gather(*(one(i) for i in range(start, min(count, start + 20))))
        return out

    async def revoke(self, ticket_id: int) -> None:
        async with self.process.admin_client() as c:
            (await c.post(f"/api/v1/tickets/{ticket_id}/revoke")).raise_for_status()


def _position(conn: Any) -> tuple[int, str]:
    from sqlalchemy import text

    seq = conn.execute(text("SELECT COALESCE(MAX(seq), 0) FROM changes")).scalar()
    epoch = conn.execute(text("SELECT value FROM meta WHERE key = 'hub_epoch'")).scalar()
    return int(seq or 0), str(epoch)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (``/proc/PID/status`` VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def load_average() -> float:
    return os.getloadavg()[0]


# --------------------------------------------------------------------------- lightweight gates
class LightGate:
    """A :class:`sync.backend.GateOwner` in memory, driving a real :class:`GateClient`.

    Records when each journal entry was handed to the client and when the hub acked it, when
    each revocation and each remote admit arrived, and when a snapshot finished.
    """

    def __init__(self, name: str, token: str, url: str, *, cursor: int = 0, epoch: str | None = None,
                 journal: list[JournalEntry] | None = None, config: s.SessionConfig | None = LIGHT_SESSION,
                 record_acks: bool = False) -> None:
        self.name = name
        self.journal = journal if journal is not None else []
        self.acked = 0
        self.cursor = cursor
        #: the token of the change at ``cursor`` (a hub whose log went back no longer has it)
        self.cursor_token: str | None = None
        self.epoch = epoch
        self.revoked_at: dict[int, float] = {}
        self.admit_at: dict[int, float] = {}
        self.watch_admits: set[int] | None = None  # None: record every remote admit
        self.remote_admits = 0
        self.online = asyncio.Event()
        self.snapshot_done_at: float | None = None
        self.snapshot_rows = 0
        self.acked_event = asyncio.Event()
        self.record_acks = record_acks
        self.handed_at: dict[int, float] = {}
        self.ack_latencies_s: list[float] = []
        self.ack_waiters: list[tuple[int, Callable[[], None]]] = []
        self.client = GateClient(url, token, name, self, config=config, reconnect_delays=quick_delays)
        self.task: asyncio.Task[None] | None = None

    # --- GateOwner
    async def hello_facts(self) -> HelloFacts:
        return HelloFacts(self.cursor, self.acked, len(self.journal), self.epoch, self.cursor_token)

    async def journal_after(self, seq: int, limit: int) -> list[JournalEntry]:
        return self.journal[seq:seq + limit]

    async def snapshot_started(self, seq: int, total_rows: int, reason: str) -> None:
        self.snapshot_rows = 0

    async def apply_snapshot_batch(self, rows: Sequence[TicketRecord], zones: Sequence[Zone],
                                   policies: Sequence[EntryPolicy], done_rows: int, total_rows: int,
                                   states: Sequence[Any] = ()) -> None:
        self.snapshot_rows += len(rows)

    async def snapshot_finished(self, cursor: int, token: str | None = None) -> None:
        self.cursor = cursor
        self.cursor_token = token
        self.snapshot_done_at = time.perf_counter()

    async def apply_deltas(self, changes: Sequence[m.Change], cursor: int, token: str | None = None) -> None:
        now = time.perf_counter()
        for c in changes:
            # the hub store sends a revocation as the whole row with its new status
            if isinstance(c, m.TicketRevoke):
                self.revoked_at.setdefault(c.ticket_id, now)
            elif isinstance(c, m.TicketUpsert) and c.ticket.status is TicketStatus.REVOKED:
                self.revoked_at.setdefault(c.ticket.ticket_id, now)
            elif isinstance(c, m.EntryEvent) and not c.not_passed:
                await self.on_remote_admit(c.ticket_id, c.gate_id, c.at, c.direction)
        self.cursor = cursor
        self.cursor_token = token

    async def on_remote_admit(self, ticket_id: int, gate_id: str, at: float, direction: str) -> None:
        self.remote_admits += 1
        if self.watch_admits is None or ticket_id in self.watch_admits:
            self.admit_at.setdefault(ticket_id, time.perf_counter())

    async def on_ack(self, high_water: int, backed_up: int) -> None:
        if self.record_acks and high_water > self.acked:
            now = time.perf_counter()
            for seq in range(self.acked + 1, high_water + 1):
                t = self.handed_at.pop(seq, None)
                if t is not None:
                    self.ack_latencies_s.append(now - t)
        self.acked = max(self.acked, high_water)
        if self.acked >= len(self.journal):
            self.acked_event.set()
        for item in [w for w in self.ack_waiters if w[0] <= self.acked]:
            self.ack_waiters.remove(item)
            item[1]()

    async def on_hub_epoch(self, epoch: str) -> None:
        self.epoch = epoch

    async def on_command(self, name: str, reason: str, args: dict[str, Any]) -> None:
        pass

    async def on_state(self, state: str, detail: str) -> None:
        if state == "online":
            self.online.set()
        else:
            self.online.clear()

    # --- driving
    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.client.run())

    async def stop(self) -> None:
        await self.client.stop()
        if self.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task, 10)

    def append(self, entry_for_seq: Callable[[int], JournalEntry]) -> JournalEntry:
        """Commit one journal entry (built for the next seq) and hand it to the client."""
        e = entry_for_seq(len(self.journal) + 1)
        self.journal.append(e)
        if self.record_acks:
            self.handed_at[e.seq] = time.perf_counter()
        self.client.journal_appended(e.seq)
        return e

    def admit(self, ticket_id: int) -> JournalEntry:
        return self.append(lambda seq: JournalEntry(self.name, seq, time.time(), EntryKind.SCAN, reason="ADMIT",
                                                    ticket_id=ticket_id, zone_id=1, passage=Passage.PENDING))


async def start_light_gates(gates: Sequence[LightGate], within_s: float = 120.0) -> float:
    """Start every gate and wait until all are online; returns the seconds it took."""
    t0 = time.perf_counter()
    for g in gates:
        g.start()
    await asyncio.wait_for(asyncio.gather(*(g.online.wait() for g in gates)), within_s)
    return time.perf_counter() - t0


async def until(pred: Callable[[], object], within_s: float, what: str, step_s: float = 0.002) -> None:
    """:func:`gatehouse.venue.eventually` with a 2 ms step: benchmarks time what they wait for."""
    await eventually(pred, within_s, what, step_s)


class EntryMix:
    """Realistic journal entries for one gate: 75 % admits of imported tickets (each gate its
    own run, about 1 in 200 re-using a random ticket so the hub's double-admit check finds real
    conflicts), 15 % passage outcomes, 10 % refusals. ``admit_ratio`` changes the share of
    admits (the rest keeps the 60:40 split): every admit is fanned out to every other gate."""

    def __init__(self, gate_id: str, index: int, gates: int, tickets: int, seed: int = 2026,
                 admit_ratio: float = 0.75) -> None:
        self.gate_id = gate_id
        self.admit_ratio = admit_ratio
        self.passage_ratio = admit_ratio + (1.0 - admit_ratio) * 0.6
        self.rng = random.Random(seed * 1000 + index)
        self.tickets = max(1, tickets)
        self.next_own = index * max(1, self.tickets // max(1, gates))

    def __call__(self, seq: int) -> JournalEntry:
        rng, now = self.rng, time.time()
        roll = rng.random()
        if roll < self.admit_ratio:
            if rng.random() < 0.005:
                tid = rng.randint(1, self.tickets)
            else:
                tid = 1 + self.next_own % self.tickets
                self.next_own += 1
            return JournalEntry(self.gate_id, seq, now, EntryKind.SCAN, reason="ADMIT", ticket_id=tid,
                                zone_id=1 + tid % 4, raw=b"GH1:" + b"A" * 150, passage=Passage.PENDING)
        if roll < self.passage_ratio:
            return JournalEntry(self.gate_id, seq, now, EntryKind.PASSAGE, ref_seq=max(1, seq - 1),
                                passage=Passage.PASSED)
        return JournalEntry(self.gate_id, seq, now, EntryKind.SCAN,
                            reason=rng.choice(("UNKNOWN", "FORGED", "ALREADY_USED")), raw=b"junk")
