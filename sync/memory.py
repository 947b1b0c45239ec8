"""An in-memory hub backend: the :class:`~sync.backend.HubBackend` contract over dicts.

For the sync tests and ``gatehouse bench sync`` (which says ``backend: "memory"``), so the
protocol can be exercised without the hub's SQLite store. It keeps the same rules the real
store must: idempotent ingest on ``(gate_id, seq)``, a re-used seq with another nonce
recorded as a conflict, a gap-free high water per gate, every double admission of a
single-entry ticket recorded as a conflict, and a new epoch on restore.
"""
from __future__ import annotations

import bisect
import copy
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sync.backend import IngestResult, SnapshotPage
from sync.messages import (
    Change,
    PolicyChange,
    TicketRevoke,
    TicketSupersede,
    TicketUpsert,
    ZoneChange,
)
from tickets.entry import EntryKind, JournalEntry, Passage
from tickets.model import TicketRecord, TicketStatus, Zone
from tickets.policy import EntryPolicy, EntryRule


@dataclass(frozen=True, slots=True)
class Conflict:
    kind: str  # "double_admit" or "seq_reuse"
    gate_id: str
    seq: int
    ticket_id: int | None
    detail: str


@dataclass
class _State:
    journals: dict[str, dict[int, JournalEntry]] = field(default_factory=dict)
    high: dict[str, int] = field(default_factory=dict)
    tickets: dict[int, TicketRecord] = field(default_factory=dict)
    zones: dict[int, Zone] = field(default_factory=dict)
    policies: dict[int, EntryPolicy] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    seq: int = 0
    admits: dict[int, list[tuple[str, int]]] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    inserted: int = 0
    duplicates: int = 0
    #: per gate: the high water inside the last completed backup
    backed_up: dict[str, int] = field(default_factory=dict)


class MemoryHubBackend:
    """Dict-backed hub store. Synchronous ``*_now`` methods for sans-I/O tests; the async
    methods are the :class:`~sync.backend.HubBackend` protocol."""

    def __init__(self, event: dict[str, Any] | None = None) -> None:
        self.s = _State()
        self.epoch = secrets.token_hex(6)
        self.tokens: dict[str, str] = {}
        self.event = event or {"event_id": 1, "name": "test event"}
        self._ids: list[int] | None = None  # sorted ticket ids for snapshot paging

    # ---- administration (what the hub's admin API would do)
    def add_gate(self, gate_id: str, token: str) -> None:
        self.tokens[token] = gate_id

    def revoke_gate(self, gate_id: str) -> None:
        self.tokens = {t: g for t, g in self.tokens.items() if g != gate_id}

    def _change(self, make: Any) -> Change:
        self.s.seq += 1
        c: Change = make(self.s.seq)
        self.s.changes.append(c)
        return c

    def upsert_ticket(self, t: TicketRecord) -> Change:
        self.s.tickets[t.ticket_id] = t
        self._ids = None
        return self._change(lambda seq: TicketUpsert(seq, t))

    def add_tickets_bulk(self, tickets: Sequence[TicketRecord]) -> None:
        """Import without change records (a snapshot carries them): for large benchmarks."""
        for t in tickets:
            self.s.tickets[t.ticket_id] = t
        self._ids = None

    def revoke(self, ticket_id: int, reason: str = "cancelled") -> Change:
        t = self.s.tickets.get(ticket_id)
        if t is not None:
            self.s.tickets[ticket_id] = replace(t, status=TicketStatus.REVOKED)
        return self._change(lambda seq: TicketRevoke(seq, ticket_id, reason))

    def supersede(self, ticket_id: int, serial: int) -> Change:
        t = self.s.tickets.get(ticket_id)
        if t is not None:
            self.s.tickets[ticket_id] = replace(t, serial=serial)
        return self._change(lambda seq: TicketSupersede(seq, ticket_id, serial))

    def set_zone(self, z: Zone) -> Change:
        self.s.zones[z.zone_id] = z
        return self._change(lambda seq: ZoneChange(seq, z))

    def set_policy(self, p: EntryPolicy) -> Change:
        self.s.policies[p.policy_id] = p
        return self._change(lambda seq: PolicyChange(seq, p))

    def backup(self) -> _State:
        """A completed backup: from now on gates may prune what it holds of their journals."""
        self.s.backed_up = dict(self.s.high)
        return copy.deepcopy(self.s)

    def restore(self, state: _State) -> None:
        """Replace everything with a backup: the hub forgets what came after; new epoch."""
        self.s = copy.deepcopy(state)
        self._ids = None
        self.epoch = secrets.token_hex(6)

    # ---- queries for tests
    @property
    def conflicts(self) -> list[Conflict]:
        return self.s.conflicts

    def stored(self, gate_id: str) -> dict[int, JournalEntry]:
        return self.s.journals.get(gate_id, {})

    # ---- synchronous core
    def high_water_now(self, gate_id: str) -> int:
        return self.s.high.get(gate_id, 0)

    def ingest_now(self, gate_id: str, entries: Sequence[JournalEntry]) -> IngestResult:
        journal = self.s.journals.setdefault(gate_id, {})
        admits: list[JournalEntry] = []
        conflicts = 0
        for e in entries:
            have = journal.get(e.seq)
            if have is not None:
                self.s.duplicates += 1
                if have.nonce != e.nonce:
                    self.s.conflicts.append(Conflict("seq_reuse", gate_id, e.seq, e.ticket_id,
                                                     f"nonce {e.nonce} != stored {have.nonce}"))
                    conflicts += 1
                continue
            journal[e.seq] = e
            self.s.inserted += 1
            if e.admitted and e.ticket_id is not None:
                admits.append(e)
                if e.direction == "in":
                    conflicts += self._check_double_admit(gate_id, e)
            elif (e.kind is EntryKind.PASSAGE and e.passage is Passage.NOT_PASSED and e.ticket_id is not None
                  and e.ref_seq is not None):
                admits.append(e)  # fanned out as an undo: the ticket stays valid
                earlier = self.s.admits.get(e.ticket_id, [])
                if (gate_id, e.ref_seq) in earlier:
                    earlier.remove((gate_id, e.ref_seq))
        high = self.s.high.get(gate_id, 0)
        while high + 1 in journal:
            high += 1
        self.s.high[gate_id] = high
        return IngestResult(high, tuple(admits), conflicts, self.s.backed_up.get(gate_id, 0))

    def _check_double_admit(self, gate_id: str, e: JournalEntry) -> int:
        assert e.ticket_id is not None
        earlier = self.s.admits.setdefault(e.ticket_id, [])
        earlier.append((gate_id, e.seq))
        t = self.s.tickets.get(e.ticket_id)
        policy = self.s.policies.get(t.policy_id) if t is not None else None
        single = policy is None or policy.kind is EntryRule.SINGLE
        if single and len(earlier) > 1:
            self.s.conflicts.append(Conflict("double_admit", gate_id, e.seq, e.ticket_id,
                                             f"also admitted at {earlier[0][0]} seq {earlier[0][1]}"))
            return 1
        return 0

    def changes_since_now(self, cursor: int, limit: int) -> list[Change]:
        seqs = [c.seq for c in self.s.changes]
        i = bisect.bisect_right(seqs, cursor)
        return self.s.changes[i:i + limit]

    def snapshot_rows_now(self, after_ticket_id: int, limit: int) -> SnapshotPage:
        rows = self._ticket_page(after_ticket_id, limit)
        return SnapshotPage(self.s.seq, tuple(self.s.zones.values()), tuple(self.s.policies.values()), tuple(rows),
                            rows[-1].ticket_id if len(rows) == limit else None, len(self.s.tickets))

    def _ticket_page(self, after_ticket_id: int, limit: int) -> list[TicketRecord]:
        if self._ids is None or len(self._ids) != len(self.s.tickets):
            self._ids = sorted(self.s.tickets)
        ids = self._ids
        i = bisect.bisect_right(ids, after_ticket_id)
        return [self.s.tickets[k] for k in ids[i:i + limit]]

    # ---- HubBackend protocol
    async def authenticate_gate(self, token: str) -> str | None:
        return self.tokens.get(token)

    async def journal_high_water(self, gate_id: str) -> int:
        return self.high_water_now(gate_id)

    async def backup_high_water(self, gate_id: str) -> int:
        return self.s.backed_up.get(gate_id, 0)

    async def ingest(self, gate_id: str, entries: Sequence[JournalEntry]) -> IngestResult:
        return self.ingest_now(gate_id, entries)

    async def current_seq(self) -> int:
        return self.s.seq

    async def changes_since(self, cursor: int, limit: int) -> list[Change]:
        return self.changes_since_now(cursor, limit)

    async def snapshot_rows(self, after_ticket_id: int, limit: int) -> SnapshotPage:
        return self.snapshot_rows_now(after_ticket_id, limit)

    async def event_info(self) -> dict[str, Any]:
        return dict(self.event)

    async def hub_epoch(self) -> str:
        return self.epoch
