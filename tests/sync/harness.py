"""In-memory owners for the sans-I/O sessions and a fake link that can drop, duplicate,
delay and reorder frames (seeded), so the protocol can be driven without sockets or sleeps.

``MemoryGate`` plays the gate agent: a journal list, a replica dict, entry counts, and a
single-entry decision. ``MemoryHub`` plays the hub service over
:class:`sync.memory.MemoryHubBackend`. ``Link`` carries encoded frames both ways.
"""
from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field, replace
from typing import Any

from sync import messages as m
from sync import session as s
from sync.memory import MemoryHubBackend
from sync.merge import merge_ticket
from tickets.entry import EntryKind, JournalEntry
from tickets.model import TicketRecord, TicketStatus, Zone
from tickets.policy import EntryPolicy


def ticket(i: int, *, policy_id: int = 1) -> TicketRecord:
    return TicketRecord(ticket_id=i, number=f"T{i:06d}", zone_id=1, policy_id=policy_id,
                        valid_from=0.0, valid_until=1e12, rotating_secret=bytes([i % 256]) * 4)


def make_backend(n_tickets: int = 20, gates: tuple[str, ...] = ("g1", "g2")) -> MemoryHubBackend:
    b = MemoryHubBackend()
    b.set_zone(Zone(1, "north", frozenset(gates)))
    b.set_policy(EntryPolicy.preset(1, "single"))
    for i in range(1, n_tickets + 1):
        b.upsert_ticket(ticket(i))
    for g in gates:
        b.add_gate(g, f"token-{g}")
    return b


@dataclass
class LinkFaults:
    drop: float = 0.0
    dup: float = 0.0
    max_delay: float = 0.0  # uniform random delay in [0, max_delay): reorders frames


@dataclass(order=True)
class _Frame:
    at: float
    n: int
    frame: Any = field(compare=False)


class Link:
    """One connection: two one-way queues of encoded frames with seeded faults."""

    def __init__(self, rng: random.Random, faults: LinkFaults | None = None) -> None:
        self.rng = rng
        self.faults = faults or LinkFaults()
        self.to_hub: list[_Frame] = []
        self.to_gate: list[_Frame] = []
        self._n = itertools.count()
        self.dropped = self.duplicated = 0

    def send(self, queue: list[_Frame], frames: list[str | bytes], now: float) -> None:
        f = self.faults
        for fr in frames:
            if f.drop and self.rng.random() < f.drop:
                self.dropped += 1
                continue
            copies = 2 if f.dup and self.rng.random() < f.dup else 1
            self.duplicated += copies - 1
            for _ in range(copies):
                delay = self.rng.uniform(0, f.max_delay) if f.max_delay else 0.0
                heapq.heappush(queue, _Frame(now + delay, next(self._n), fr))

    @staticmethod
    def due(queue: list[_Frame], now: float) -> list[str | bytes]:
        out = []
        while queue and queue[0].at <= now:
            out.append(heapq.heappop(queue).frame)
        return out

    def idle(self) -> bool:
        return not self.to_hub and not self.to_gate


class MemoryGate:
    """A gate owner over lists and dicts, deciding single-entry tickets like the real gate."""

    def __init__(self, gate_id: str, config: s.SessionConfig | None = None) -> None:
        self.gate_id = gate_id
        self.session = s.GateSession(gate_id, config)
        self.journal: list[JournalEntry] = []
        self.acked = 0
        self.backed_up = 0
        self.cursor = 0
        self.hub_epoch: str | None = None
        self.replica: dict[int, TicketRecord] = {}
        self.staging: dict[int, TicketRecord] | None = None
        self.entries: dict[int, int] = {}
        self.seen_remote: set[tuple[str, int]] = set()
        self.revoked_ever: set[int] = set()
        self.events: list[Any] = []
        self.rollbacks = 0
        self.incompatible = 0
        self.close_wanted: list[str] = []

    # ---- the gate's own work
    def scan(self, ticket_id: int, at: float) -> JournalEntry:
        """Decide and journal one scan (single-entry policy): admit once, refuse after."""
        t = self.replica.get(ticket_id)
        if t is None:
            reason = "UNKNOWN"
        elif t.status is TicketStatus.REVOKED:
            reason = "REVOKED"
        elif self.entries.get(ticket_id, 0) > 0:
            reason = "ALREADY_USED"
        else:
            reason = "ADMIT"
            self.entries[ticket_id] = 1
        e = JournalEntry(self.gate_id, len(self.journal) + 1, at, EntryKind.SCAN, reason=reason,
                         ticket_id=ticket_id, cursor=self.cursor)
        self.journal.append(e)
        self.session.journal_appended(e.seq)
        return e

    def facts(self) -> s.GateFacts:
        return s.GateFacts(self.cursor, self.acked, len(self.journal), self.hub_epoch)

    def pump_upload(self, now: float) -> None:
        while (want := self.session.upload_wanted()) is not None:
            after, limit = want
            self.session.send_journal(self.journal[after:after + limit], now)

    # ---- events
    def handle(self, events: list[Any]) -> None:
        for ev in events:
            self.events.append(ev)
            if isinstance(ev, s.HelloAccepted):
                if ev.replica_sync == "deltas":
                    self.hub_epoch = ev.hub_epoch  # a snapshot's epoch counts once it is complete
            elif isinstance(ev, s.JournalAcked):
                self.acked, self.backed_up = ev.high_water, ev.backed_up
            elif isinstance(ev, s.HubRolledBack):
                self.rollbacks += 1
            elif isinstance(ev, s.Incompatible):
                self.incompatible += 1
            elif isinstance(ev, s.SnapshotStarted):
                self.staging = {}
            elif isinstance(ev, s.ApplySnapshotBatch):
                assert self.staging is not None
                for row in ev.rows:
                    self.staging[row.ticket_id] = merge_ticket(self.replica.get(row.ticket_id), row)
            elif isinstance(ev, s.SnapshotAborted):
                self.staging = None
            elif isinstance(ev, s.SnapshotFinished):
                assert self.staging is not None
                for tid, old in self.replica.items():  # never un-revoke, even if the hub forgot the ticket
                    if old.status is TicketStatus.REVOKED and tid not in self.staging:
                        self.staging[tid] = old
                self.replica, self.staging, self.cursor = self.staging, None, ev.cursor
                self.hub_epoch = ev.hub_epoch or self.hub_epoch
            elif isinstance(ev, s.ApplyDeltas):
                for c in ev.changes:
                    self._apply(c)
                self.cursor = ev.cursor
            elif isinstance(ev, s.RemoteAdmitted) and ev.not_passed:
                if (ev.gate_id, ev.gate_seq) in self.seen_remote:
                    self.seen_remote.discard((ev.gate_id, ev.gate_seq))
                    self.entries[ev.ticket_id] = max(0, self.entries.get(ev.ticket_id, 0) - 1)
            elif isinstance(ev, s.RemoteAdmitted):
                if (ev.gate_id, ev.gate_seq) not in self.seen_remote and ev.direction == "in":
                    self.seen_remote.add((ev.gate_id, ev.gate_seq))
                    self.entries[ev.ticket_id] = self.entries.get(ev.ticket_id, 0) + 1
            elif isinstance(ev, s.CloseWanted):
                self.close_wanted.append(ev.reason)
        for t in self.replica.values():
            if t.status is TicketStatus.REVOKED:
                self.revoked_ever.add(t.ticket_id)

    def _apply(self, c: m.Change) -> None:
        if isinstance(c, m.TicketUpsert):
            self.replica[c.ticket.ticket_id] = merge_ticket(self.replica.get(c.ticket.ticket_id), c.ticket,
                                                              from_snapshot=False)
        elif isinstance(c, m.TicketRevoke) and c.ticket_id in self.replica:
            self.replica[c.ticket_id] = replace(self.replica[c.ticket_id], status=TicketStatus.REVOKED)
        elif isinstance(c, m.TicketSupersede) and c.ticket_id in self.replica:
            self.replica[c.ticket_id] = replace(self.replica[c.ticket_id], serial=c.serial)


class MemoryHub:
    """A hub owner: answers hellos, streams snapshots and catch-ups, stores, acks, fans out."""

    def __init__(self, backend: MemoryHubBackend, config: s.SessionConfig | None = None,
                 snapshot_page: int = 7, changes_page: int = 5) -> None:
        self.backend = backend
        self.config = config
        self.sessions: dict[str, s.HubSession] = {}
        self.snapshot_page = snapshot_page
        self.changes_page = changes_page
        self.events: list[Any] = []
        self.close_wanted: list[tuple[str, str]] = []

    def open(self, gate_id: str, now: float) -> s.HubSession:
        sess = s.HubSession(gate_id, self.config, now)
        self.sessions[gate_id] = sess
        return sess

    def close(self, gate_id: str) -> None:
        self.sessions.pop(gate_id, None)

    def handle(self, gate_id: str, events: list[Any]) -> None:
        sess = self.sessions.get(gate_id)
        if sess is None:
            return
        b = self.backend
        for ev in events:
            self.events.append((gate_id, ev))
            if isinstance(ev, s.HelloReceived):
                facts = s.HubFacts(b.high_water_now(gate_id), b.epoch, b.s.seq, 0, dict(b.event))
                self.handle(gate_id, sess.answer_hello(facts))
            elif isinstance(ev, s.SnapshotNeeded):
                page = b.snapshot_rows_now(0, self.snapshot_page)
                sess.begin_snapshot(page.seq, page.total_rows, ev.reason)
                first = True
                while True:
                    sess.snapshot_batch(page.tickets, page.zones if first else (), page.policies if first else (),
                                        page.total_rows)
                    if page.next_after is None:
                        break
                    page, first = b.snapshot_rows_now(page.next_after, self.snapshot_page), False
                self.handle(gate_id, [sess.end_snapshot()])
            elif isinstance(ev, s.CatchUpNeeded):
                while changes := b.changes_since_now(sess.sent_seq, self.changes_page):
                    sess.send_changes(changes)
                sess.caught_up()
            elif isinstance(ev, s.StoreEntries):
                r = b.ingest_now(gate_id, ev.entries)
                sess.entries_stored(r.high_water, 0, r.conflicts)
                for e in r.admits:
                    if (admit := s.remote_admit_for(gate_id, e)) is not None:
                        for other in self.sessions.values():
                            other.send_remote_admit(admit)
            elif isinstance(ev, s.CloseWanted):
                self.close_wanted.append((gate_id, ev.reason))

    def push(self, change: m.Change) -> None:
        for sess in self.sessions.values():
            sess.push_changes([change])


class World:
    """Hub, gates and links on one simulated clock."""

    def __init__(self, backend: MemoryHubBackend, gates: list[MemoryGate], rng: random.Random,
                 faults: LinkFaults | None = None, hub_config: s.SessionConfig | None = None) -> None:
        self.now = 0.0
        self.hub = MemoryHub(backend, hub_config)
        self.gates = {g.gate_id: g for g in gates}
        self.rng = rng
        self.faults = faults or LinkFaults()
        self.links: dict[str, Link | None] = dict.fromkeys(self.gates)

    def connect(self, gate_id: str) -> None:
        g = self.gates[gate_id]
        if self.links[gate_id] is not None:
            self.disconnect(gate_id)
        self.links[gate_id] = Link(self.rng, self.faults)
        self.hub.open(gate_id, self.now)
        g.session.connect(g.facts(), self.now)

    def disconnect(self, gate_id: str) -> None:
        self.links[gate_id] = None
        self.hub.close(gate_id)
        self.gates[gate_id].session.connection_lost()

    def connect_all(self) -> None:
        for gid in self.gates:
            self.connect(gid)

    def step(self, dt: float = 0.1) -> None:
        """Advance the clock by ``dt``; move due frames; run timers and uploads."""
        self.now += dt
        for gid, g in self.gates.items():
            link = self.links[gid]
            if link is None:
                continue
            hs = self.hub.sessions.get(gid)
            g.pump_upload(self.now)
            link.send(link.to_hub, g.session.frames_to_send(), self.now)
            for fr in link.due(link.to_hub, self.now):
                if hs is not None:
                    self.hub.handle(gid, hs.receive_frame(fr, self.now))
            if hs is not None:
                self.hub.handle(gid, hs.tick(self.now))
        for gid, g in self.gates.items():
            link = self.links[gid]
            hs = self.hub.sessions.get(gid)
            if link is None or hs is None:
                continue
            link.send(link.to_gate, hs.frames_to_send(), self.now)
            for fr in link.due(link.to_gate, self.now):
                g.handle(g.session.receive_frame(fr, self.now))
            g.handle(g.session.tick(self.now))
            if g.close_wanted and g.session.state is s.GateState.INCOMPATIBLE:
                continue
            if g.close_wanted:  # a dead link: the transport would close and reconnect
                g.close_wanted.clear()
                self.connect(gid)

    def settle(self, max_steps: int = 2000, dt: float = 0.1) -> int:
        """Step until every link is idle and every gate is live and fully acked."""
        for i in range(max_steps):
            self.step(dt)
            if all(self._settled(gid) for gid in self.gates):
                return i
        raise AssertionError(f"not settled after {max_steps} steps: " + ", ".join(
            f"{gid}: {g.session.state} acked={g.acked}/{len(g.journal)} cursor={g.cursor}/{self.hub.backend.s.seq}"
            for gid, g in self.gates.items()))

    def _settled(self, gid: str) -> bool:
        g, link = self.gates[gid], self.links[gid]
        return (link is not None and link.idle() and g.session.state is s.GateState.LIVE
                and g.acked == len(g.journal) and g.cursor == self.hub.backend.s.seq)
