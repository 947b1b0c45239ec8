"""Admits whose passage a crash left open: noted at each unlock, resolved at the next start.

An admit is journaled ``pending`` before the unlock and its outcome (``passed`` /
``not_passed``) when the sensor answers or the timeout runs out. A gate killed in between
never writes the outcome: the hub would count the fan inside for ever and the restarted gate
would not know either way. So at start, :func:`resolve_pending` journals an outcome for every
admit that has none, like any passage entry (kind ``passage``, ``ref_seq`` = the admit's seq),
and it is synced as usual:

* **with a turnstile controller that counts passages** (the serial backend): the lane notes
  the controller's counter for the direction just before each unlock (:class:`UnlockLog`, a
  small SQLite file beside the journal). At start the gate asks the controller again: if it
  has counted a turn in that direction since the unlock (and it has not rebooted meanwhile),
  the fan went through → ``passed``; otherwise ``not_passed``. The counter cannot tell the
  admitted fan from someone who forced the arm the same way after the controller relocked
  (2 s without the gate): that rare case is counted as the fan's passage, which refuses a
  re-entry rather than letting a second person in on the same ticket.
* **otherwise** (GPIO, simulator, a controller that does not answer, no note): ``not_passed``
  with the cause "gate restarted" — the ticket stays valid, as after any timeout.

The unlock notes are written with ``synchronous=NORMAL`` (they survive the process being
killed; a power cut also resets the controller's counter, so fsync would buy nothing): a
note costs the unlock about a tenth of a millisecond.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from tickets.entry import EntryKind, JournalEntry, Passage

log = logging.getLogger(__name__)

RESTARTED = "gate restarted"
#: unlock notes kept (the outcome of older ones is in the journal)
KEEP_NOTES = 256


class CountingTurnstile(Protocol):
    def passage_count(self, direction: Any) -> tuple[int, int] | None: ...

    async def query_state(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class UnlockNote:
    seq: int
    direction: str
    boot_id: int
    count: int


class UnlockLog:
    """The controller's passage counter at each unlock (seq of the admit → boot id, count)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> UnlockLog:
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("CREATE TABLE IF NOT EXISTS unlock (seq INTEGER PRIMARY KEY, direction TEXT NOT NULL,"
                             " boot_id INTEGER NOT NULL, count INTEGER NOT NULL)")
        except BaseException:
            await db.close()
            raise
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    async def note(self, seq: int, direction: str, boot_id: int, count: int) -> None:
        await self._db.execute("INSERT OR REPLACE INTO unlock VALUES (?, ?, ?, ?)", (seq, direction, boot_id, count))
        if seq % 64 == 0:
            await self._db.execute("DELETE FROM unlock WHERE seq <= ?", (seq - KEEP_NOTES,))

    async def notes(self) -> list[UnlockNote]:
        rows = await (await self._db.execute("SELECT seq, direction, boot_id, count FROM unlock ORDER BY seq")).fetchall()
        return [UnlockNote(int(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]


def open_admits(entries: Sequence[JournalEntry]) -> list[JournalEntry]:
    """Admits (scans and manual admits) journaled ``pending`` with no passage entry after them."""
    resolved = {e.ref_seq for e in entries if e.kind is EntryKind.PASSAGE and e.ref_seq is not None}
    return [e for e in entries
            if e.kind is not EntryKind.PASSAGE and e.passage is Passage.PENDING and e.seq not in resolved]


@dataclass(frozen=True, slots=True)
class Outcome:
    admit: JournalEntry
    passed: bool
    detail: str


async def decide_outcomes(admits: Sequence[JournalEntry], notes: Sequence[UnlockNote],
                          turnstile: object) -> list[Outcome]:
    """What became of each open admit (see the module docstring for the rules)."""
    if not admits:
        return []
    state: dict[str, Any] | None = None
    query = getattr(turnstile, "query_state", None)
    if callable(query) and any(n.seq in {a.seq for a in admits} for n in notes):
        try:
            state = await query()
        except Exception:
            log.exception("turnstile controller state unreadable; open admits resolved as not passed")
    by_seq = {n.seq: n for n in notes}
    outcomes = []
    for admit in admits:
        note = by_seq.get(admit.seq)
        if note is None:
            outcomes.append(Outcome(admit, False, f"{RESTARTED}: no passage recorded before the restart"))
            continue
        if state is None or state.get("boot_id") != note.boot_id:
            why = "the controller did not answer" if state is None else "the controller restarted too"
            outcomes.append(Outcome(admit, False, f"{RESTARTED}: passage unknown ({why})"))
            continue
        # The count at the next unlock in the same direction (or now) against the one at this unlock.
        later = [n for n in notes if n.seq > note.seq and n.direction == note.direction and n.boot_id == note.boot_id]
        after = later[0].count if later else int(state.get(f"passages_{note.direction}", note.count))
        turned = (after - note.count) & 0xFFFF
        if turned > 0:
            outcomes.append(Outcome(admit, True, f"{RESTARTED}: the turnstile controller counted the passage"))
        else:
            outcomes.append(Outcome(admit, False, f"{RESTARTED}: the turnstile controller counted no passage"))
    return outcomes


async def resolve_pending(
    *,
    entries: Sequence[JournalEntry],
    notes: Sequence[UnlockNote],
    turnstile: object,
    append: Callable[..., Any],
    mode: str,
    cursor: int,
) -> list[tuple[Outcome, JournalEntry]]:
    """Journal an outcome for every open admit; returns each with its new passage entry."""
    admits = open_admits(entries)
    done = []
    for outcome in await decide_outcomes(admits, notes, turnstile):
        a = outcome.admit
        entry = await append(
            EntryKind.PASSAGE, reason=a.reason, ticket_id=a.ticket_id, ticket_number=a.ticket_number,
            zone_id=a.zone_id, direction=a.direction, mode=mode, cursor=cursor,
            passage=Passage.PASSED if outcome.passed else Passage.NOT_PASSED, ref_seq=a.seq,
            staff_id=a.staff_id, detail=outcome.detail,
        )
        log.warning("admit seq %s (ticket %s) left open by a crash: %s — %s", a.seq, a.ticket_number or a.ticket_id,
                    "passed" if outcome.passed else "not passed", outcome.detail)
        done.append((outcome, entry))
    return done


async def close_quietly(log_: UnlockLog | None) -> None:
    if log_ is not None:
        with contextlib.suppress(Exception):
            await log_.close()
