"""One lane of a gate: scan → decide → journal → turnstile → passage → entry state.

The order is the durability rule: the decision is journaled (fsynced) *before* the
turnstile unlocks, and the ticket counts as used only once the passage sensor confirms
it. A fan who does not pass within the timeout keeps a valid ticket.

While an admit waits for its passage the ticket is held as *pending*: a second scan of
the same ticket in that window is refused as if the first had passed.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gate_agent.journal import Journal
from gate_agent.modes import Mode, ModeLadder
from gate_agent.passages import UnlockLog
from gate_agent.replica import Replica, ReplicaReader
from tickets.barcode import journal_raw
from tickets.decide import decide
from tickets.entry import EntryKind, JournalEntry, Passage
from tickets.model import Direction, EntryState, GatePolicy, Scan, TicketRecord, Verdict
from tickets.policy import record_passage
from tickets.reasons import Reason

log = logging.getLogger(__name__)


class TurnstileLike(Protocol):
    async def unlock(self, direction: Direction) -> None: ...

    async def passage(self, timeout: float) -> bool: ...


class GateView:
    """The replica as the decision sees it, plus admits still waiting for their passage."""

    def __init__(self, reader: ReplicaReader) -> None:
        self.reader = reader
        self.pending: dict[int, EntryState] = {}

    def ticket_by_id(self, ticket_id: int) -> TicketRecord | None:
        return self.reader.ticket_by_id(ticket_id)

    def ticket_by_number(self, number: str) -> TicketRecord | None:
        return self.reader.ticket_by_number(number)

    def ticket_by_barcode_key(self, key: bytes) -> TicketRecord | None:
        return self.reader.ticket_by_barcode_key(key)

    def entry_state(self, ticket_id: int) -> EntryState:
        held = self.pending.get(ticket_id)
        return held if held is not None else self.reader.entry_state(ticket_id)


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    entry: JournalEntry
    decided_in_s: float


class Lane:
    def __init__(
        self,
        *,
        journal: Journal,
        replica: Replica,
        view: GateView,
        policy: Callable[[], GatePolicy],
        turnstile: TurnstileLike,
        ladder: ModeLadder,
        cursor: Callable[[], int],
        passage_timeout_s: float = 8.0,
        clock: Callable[[], float] = time.time,
        on_entry: Callable[[JournalEntry], None] | None = None,
        unlocks: UnlockLog | None = None,
    ) -> None:
        self.journal = journal
        self.replica = replica
        self.view = view
        self._policy = policy
        self.turnstile = turnstile
        self.ladder = ladder
        self._cursor = cursor
        self.passage_timeout_s = passage_timeout_s
        self.clock = clock
        self._on_entry = on_entry or (lambda _e: None)
        self.unlocks = unlocks
        self._turnstile_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.recent: deque[dict[str, Any]] = deque(maxlen=50)
        self.counters = {"scans": 0, "admitted": 0, "refused": 0, "passed": 0, "not_passed": 0,
                         "unlock_notes_failed": 0}

    async def handle_scan(self, scan: Scan) -> Decision:
        """Decide one scan and journal it; the turnstile work continues in the background."""
        t0 = time.perf_counter()
        now = self.clock()
        mode = self.ladder.mode
        if mode in (Mode.EMERGENCY, Mode.CLOSED):
            verdict = Verdict(Reason.GATE_CLOSED, Reason.GATE_CLOSED.message, direction=scan.direction,
                              detail=f"gate in {mode}: {self.ladder.cause}")
        elif mode is Mode.MANIFEST:
            verdict = Verdict(Reason.MANIFEST_MODE, Reason.MANIFEST_MODE.message,
                              direction=scan.direction, detail=f"manifest mode: {self.ladder.cause}")
        else:
            verdict = decide(scan, self.view, self._policy(), now)
        entry = await self.journal.append(
            EntryKind.SCAN, reason=str(verdict.reason), ticket_id=verdict.ticket_id,
            ticket_number=verdict.ticket_number, zone_id=verdict.zone_id, raw=journal_raw(scan.payload),
            direction=str(scan.direction), mode=str(mode), cursor=self._cursor(),
            passage=Passage.PENDING if verdict.admitted else Passage.NONE,
            detail=",".join(verdict.flags) or verdict.detail, at=now,
        )
        self.counters["scans"] += 1
        self._on_entry(entry)
        self.recent.appendleft({"seq": entry.seq, "at": now, "reason": str(verdict.reason),
                                "message": verdict.message, "ticket": verdict.ticket_number or verdict.ticket_id,
                                "right_gates": list(verdict.right_gates)})
        if verdict.admitted and verdict.ticket_id is not None:
            self.counters["admitted"] += 1
            self.release(entry, verdict.ticket_id, verdict.zone_id, scan.direction)
        else:
            self.counters["refused"] += 1
        return Decision(verdict, entry, time.perf_counter() - t0)

    def release(self, entry: JournalEntry, ticket_id: int | None, zone_id: int | None, direction: Direction) -> None:
        """Unlock for a journaled admit (scan or manual) and follow its passage in the background."""
        held: EntryState | None = None
        if ticket_id is not None and self.view is not None:
            held = record_passage(self.view.entry_state(ticket_id), direction, entry.at)
            self.view.pending[ticket_id] = held
        task = asyncio.create_task(self._pass(entry, ticket_id, zone_id, direction, held))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pass(self, entry: JournalEntry, ticket_id: int | None, zone_id: int | None, direction: Direction,
                    held: EntryState | None) -> None:
        passed = False
        try:
            async with self._turnstile_lock:
                # Noted before the release (no fsync: ~0.1 ms): a passage can only follow it.
                await self._note_unlock(entry.seq, direction)
                await self.turnstile.unlock(direction)
                passed = await self.turnstile.passage(self.passage_timeout_s)
        except Exception:
            log.exception("turnstile failed during admit seq %s; recording not passed", entry.seq)
        outcome = Passage.PASSED if passed else Passage.NOT_PASSED
        result = await self.journal.append(
            EntryKind.PASSAGE, reason=entry.reason, ticket_id=ticket_id, ticket_number=entry.ticket_number,
            zone_id=zone_id, direction=entry.direction, mode=str(self.ladder.mode), cursor=self._cursor(),
            passage=outcome, ref_seq=entry.seq,
        )
        self._on_entry(result)
        if passed:
            self.counters["passed"] += 1
            if ticket_id is not None and held is not None and self.replica is not None:
                await self.replica.put_entry_states({ticket_id: held}, journal_seq=result.seq)
        else:
            self.counters["not_passed"] += 1
        if ticket_id is not None and self.view is not None:
            self.view.pending.pop(ticket_id, None)

    async def _note_unlock(self, seq: int, direction: Direction) -> None:
        """Note the controller's passage counter at this unlock, so a crash before the outcome
        can be resolved at the next start (:mod:`gate_agent.passages`). Never stops a passage."""
        if self.unlocks is None:
            return
        try:
            count = self.turnstile.passage_count(direction)  # type: ignore[attr-defined]
            if count is not None:
                await self.unlocks.note(seq, str(direction), *count)
        except Exception:
            self.counters["unlock_notes_failed"] += 1
            log.exception("could not note the passage counter for admit seq %s; a crash now would "
                          "resolve it as not passed", seq)

    async def drain(self) -> None:
        """Wait for every passage in flight (used at shutdown and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def journal_mode_change(self, old: Mode, new: Mode, cause: str) -> JournalEntry:
        entry = await self.journal.append(EntryKind.MODE, mode=str(new), cursor=self._cursor(),
                                          detail=f"{old}->{new}: {cause}")
        self._on_entry(entry)
        return entry
