"""Journal ingest: idempotent storage, conflict rules, entry state, pending passages.

Batches from all gates queue for one writer, which stores everything waiting in one
transaction (group commit): one commit for many gates, and the event loop only awaits a
future. Per batch:

* idempotent on ``(gate_id, seq)`` (a unique key, so it holds across hub processes): a
  re-sent entry with the same nonce is a no-op; the same seq with another nonce is kept
  aside in ``journal_rejects`` and reported as a conflict, never overwriting the stored entry;
* every newly stored admit is replayed with the ticket's other admits through its entry
  policy (the very function gates decide by); a forbidden pair becomes a conflict. The
  ticket rows are locked first (PostgreSQL: ``FOR UPDATE``), so two hub processes storing
  two admits of one ticket at once still see each other;
* the ticket's entry state is recomputed and an ``entry`` change is appended to the change
  log, which is how every gate of the zone hears of the admit (on any hub process) and how a
  gate that was away catches up;
* an admit waits in ``pending_admits`` until its passage outcome arrives; one that never
  does is expired by :meth:`IngestMixin.expire_pending` with a conflict for a human.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from hub.db import Database
from hub.errors import BadInput, HubError, NotFound
from hub.reconcile import ConflictKind
from hub.records import policy_from_row
from hub.store.base import (
    ADMIT_SQL,
    IngestResult,
    StoreCore,
    append_changes,
    driver_rows,
    execute,
    many,
    marks,
    one,
    rows,
)
from hub.store.tickets import ticket_by_number
from tickets.entry import EntryKind, JournalEntry, Passage
from tickets.model import Direction, EntryState
from tickets.policy import EntryKind as PolicyKind
from tickets.policy import evaluate_entry, record_passage

log = logging.getLogger(__name__)

#: at most this many queued journal batches are stored in one transaction
GROUP_COMMIT_MAX = 256
#: an admit with no passage outcome this long after it is expired (gate timeout + margin)
PENDING_EXPIRY_S = 60.0

_INSERT_JOURNAL = (
    "INSERT INTO journal (gate_id, seq, nonce, at, kind, reason, ticket_id, ticket_number, zone_id, raw, direction,"
    " mode, cursor, passage, ref_seq, staff_id, detail, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " ?, ?, ?, ?, ?) ON CONFLICT (gate_id, seq) DO NOTHING")


class IngestMixin(StoreCore):
    _ingest_q: asyncio.Queue[tuple[str, list[JournalEntry], asyncio.Future[IngestResult]]]
    _ingest_task: asyncio.Task[None] | None = None
    _ingest_busy = 0
    #: called with each IngestResult once stored (the dashboard's live feed); must be quick
    ingest_listeners: list[Any]

    @property
    def ingest_queue_length(self) -> int:
        """Batches waiting for the ingest writer (for metrics)."""
        return self._ingest_q.qsize() + self._ingest_busy

    async def ingest(self, gate_id: str, entries: Sequence[JournalEntry]) -> IngestResult:
        """Store a batch of one gate's journal entries (see the module docstring for the rules)."""
        for e in entries:
            if e.gate_id != gate_id:
                raise BadInput(f"entry seq {e.seq} names gate {e.gate_id!r}, not {gate_id!r}", code="wrong_gate")
        if self._ingest_task is None or self._ingest_task.done():
            self._ingest_task = asyncio.create_task(self._ingest_writer(), name="hub-ingest-writer")
        fut: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        await self._ingest_q.put((gate_id, list(entries), fut))
        result = await fut
        if result.admits or result.not_passed:
            self._poke()
        for listener in list(self.ingest_listeners):
            if result.stored or result.conflicts:
                try:
                    listener(result)
                except Exception:  # a dashboard listener must not undo what was stored
                    log.exception("ingest listener failed")
        return result

    async def _ingest_writer(self) -> None:
        while True:
            jobs = [await self._ingest_q.get()]
            while len(jobs) < GROUP_COMMIT_MAX and not self._ingest_q.empty():
                jobs.append(self._ingest_q.get_nowait())
            self._ingest_busy = len(jobs)
            now = self._now()
            try:
                outcomes: list[IngestResult | BaseException] = list(
                    await self.db.write(store_jobs, self.db, [(g, e) for g, e, _f in jobs], now))
            except asyncio.CancelledError:
                for _g, _e, fut in jobs:
                    if not fut.done():
                        fut.cancel()
                raise
            except Exception as exc:  # the whole group failed (disk full, database gone): each gate re-sends
                log.error("journal group of %d batches not stored: %s", len(jobs), exc)
                outcomes = [exc] * len(jobs)
            finally:
                self._ingest_busy = 0
            for (_g, _e, fut), outcome in zip(jobs, outcomes, strict=True):
                if fut.done():
                    continue
                if isinstance(outcome, BaseException):
                    fut.set_exception(outcome)
                else:
                    fut.set_result(outcome)

    async def expire_pending(self, *, older_than_s: float = PENDING_EXPIRY_S) -> list[dict[str, Any]]:
        """Admits whose passage outcome has not arrived ``older_than_s`` after them: marked expired
        (no longer counted inside) and reported as a ``passage_unknown`` conflict each."""
        now = self._now()
        return await self.db.write(_expire_pending, now, now - older_than_s)

    async def pending_counts(self) -> dict[str, int]:
        """Admits waiting for their passage (``pending``) and those expired unconfirmed."""
        got = await self.db.read(lambda c: rows(
            c, "SELECT expired_at IS NULL, COUNT(*) FROM pending_admits GROUP BY expired_at IS NULL"))
        out = {"pending": 0, "unconfirmed": 0}
        for live, n in got:
            out["pending" if live else "unconfirmed"] = int(n)
        return out


# --- on the writer thread ------------------------------------------------------------------


def store_jobs(conn: Connection, db: Database, jobs: list[tuple[str, list[JournalEntry]]],
               now: float) -> list[IngestResult | Exception]:
    """Store every job in the transaction ``conn``, each in its own savepoint."""
    out: list[IngestResult | Exception] = []
    entry_events: list[tuple[int, dict[str, Any]]] = []
    for gate_id, entries in jobs:
        try:
            with conn.begin_nested():
                result, events = ingest_one(conn, db, gate_id, entries, now)
            out.append(result)
            entry_events += events
        except HubError as exc:
            out.append(exc)
        except Exception as exc:
            if _is_storage_failure(exc):
                raise  # the database itself is failing: the whole group fails
            log.warning("gate %s: batch refused: %r", gate_id, exc)
            out.append(BadInput(f"batch refused: {type(exc).__name__}: {exc}", code="bad_entry"))
    record_entry_events(db, conn, entry_events, now)
    return out


def _is_storage_failure(exc: Exception) -> bool:
    from sqlalchemy.exc import OperationalError

    return isinstance(exc, OperationalError)


def ingest_one(conn: Connection, db: Database, gate_id: str, entries: list[JournalEntry],
               now: float) -> tuple[IngestResult, list[tuple[int, dict[str, Any]]]]:
    lock = " FOR UPDATE" if db.is_pg else ""
    row = one(conn, f"SELECT high_water FROM gates WHERE gate_id = :g{lock}", {"g": gate_id})
    if row is None:
        raise NotFound(f"no gate {gate_id!r}", code="gate_not_found")
    result = IngestResult(high_water=int(row[0]))
    events = store_entries(conn, db, gate_id, entries, now, result)
    high_water = _advance_high_water(conn, gate_id, result.high_water)
    execute(conn, "UPDATE gates SET high_water = :h, last_seen = :at WHERE gate_id = :g",
            {"h": high_water, "at": now, "g": gate_id})
    result.high_water = high_water
    backup = one(conn, "SELECT high_waters FROM backups ORDER BY id DESC LIMIT 1")
    result.backed_up_high_water = int(json.loads(backup[0]).get(gate_id, 0)) if backup else 0
    return result, events


def store_entries(conn: Connection, db: Database, gate_id: str, entries: list[JournalEntry], now: float,
                  result: IngestResult) -> list[tuple[int, dict[str, Any]]]:
    """Store new entries of one journal (a gate's, or a ``paper:<gate>`` one) and reconcile them.

    The one authoritative reconciliation path: scans, manual admits from a gate screen and
    paper ticks keyed in on the hub all pass here. Returns the entry events to append to the
    change log (``(ticket_id, event)``), after the caller has stored everything of its group.
    """
    existing: dict[int, str] = {}
    seqs = sorted({e.seq for e in entries})
    for i in range(0, len(seqs), 900):
        part = seqs[i:i + 900]
        existing.update(driver_rows(conn, f"SELECT seq, nonce FROM journal WHERE gate_id = ? AND seq IN {marks(len(part))}",
                                    [gate_id, *part]))
    new: list[JournalEntry] = []
    rejects: list[JournalEntry] = []
    for e in entries:
        have = existing.get(e.seq)
        if have is None:
            existing[e.seq] = e.nonce
            new.append(e)
        elif have == e.nonce:
            result.duplicates += 1
        else:
            rejects.append(e)
    # entries that carry only a number (manual admits, legacy barcodes) get the ticket id
    resolved: dict[int, int] = {}
    for e in new:
        if e.ticket_id is None and e.ticket_number:
            hit = ticket_by_number(conn, e.ticket_number, normalized=e.kind is EntryKind.MANUAL and e.admitted)
            if hit is not None:
                resolved[id(e)] = hit
    new = [e if id(e) not in resolved else replace(e, ticket_id=resolved[id(e)]) for e in new]
    many(conn, _INSERT_JOURNAL, [
        (gate_id, e.seq, e.nonce, e.at, str(e.kind), e.reason, e.ticket_id, e.ticket_number, e.zone_id, e.raw,
         e.direction, e.mode, e.cursor, str(e.passage), e.ref_seq, e.staff_id, e.detail, now) for e in new])
    result.stored = new
    for e in rejects:
        result.conflicts += _seq_reuse(conn, gate_id, e, existing[e.seq], now)

    touched: set[int] = set()
    events: list[tuple[int, dict[str, Any]]] = []
    admitted_in: list[JournalEntry] = []
    passages: list[JournalEntry] = []
    pending: list[tuple[Any, ...]] = []
    for e in new:
        if e.kind in (EntryKind.SCAN, EntryKind.MANUAL) and e.admitted:
            result.admits.append(e)
            if e.ticket_id is None:
                if e.kind is EntryKind.MANUAL:
                    result.conflicts += _unknown_manual(conn, gate_id, e, now)
                    result.conflicts += _check_number_double_admit(conn, gate_id, e, now)
                continue
            touched.add(e.ticket_id)
            events.append((e.ticket_id, {"ticket_id": e.ticket_id, "zone_id": e.zone_id, "gate_id": gate_id,
                                         "gate_seq": e.seq, "at": e.at, "direction": e.direction}))
            if e.direction == Direction.IN:
                admitted_in.append(e)
            if e.kind is EntryKind.SCAN:
                pending.append((gate_id, e.seq, e.ticket_id, e.zone_id, e.at))
        elif e.kind is EntryKind.PASSAGE and e.ref_seq is not None:
            passages.append(e)
    many(conn, "INSERT INTO pending_admits (gate_id, seq, ticket_id, zone_id, at) VALUES (?, ?, ?, ?, ?)"
               " ON CONFLICT (gate_id, seq) DO NOTHING", pending)
    many(conn, "DELETE FROM pending_admits WHERE gate_id = ? AND seq = ?", [(gate_id, e.ref_seq) for e in passages])
    if passages:
        _close_passage_unknown(conn, gate_id, [e for e in passages], now)
    for e in passages:
        if e.passage is Passage.NOT_PASSED:
            result.not_passed.append(e)
            _not_passed(conn, gate_id, e.ref_seq, now)
            if e.ticket_id is not None:
                touched.add(e.ticket_id)
                events.append((e.ticket_id, {"ticket_id": e.ticket_id, "zone_id": e.zone_id, "gate_id": gate_id,
                                             "gate_seq": e.ref_seq, "at": e.at, "direction": e.direction,
                                             "not_passed": True}))
    if touched:
        history = _lock_and_read_history(conn, db, sorted(touched))
        for e in admitted_in:
            assert e.ticket_id is not None
            result.conflicts += _check_double_admit(conn, e.ticket_id, gate_id, e.seq, history, now)
        _store_entry_states(conn, history)
    return events


def record_entry_events(db: Database, conn: Connection, events: list[tuple[int, dict[str, Any]]], now: float) -> None:
    """Append the group's entry events to the change log (last in the transaction, so the
    change-log lock on PostgreSQL is held only for the commit) and stamp each ticket's
    entry state with the seq of its latest event."""
    if not events:
        return
    seqs = append_changes(db, conn, [("entry", tid, ev) for tid, ev in events], now)
    latest: dict[int, int] = {}
    for (tid, _ev), seq in zip(events, seqs, strict=True):
        latest[tid] = seq
    many(conn, "UPDATE entry_state SET state_seq = ? WHERE ticket_id = ?", [(s, t) for t, s in latest.items()])


# --- the ticket's history, conflicts and entry state -----------------------------------------

_History = dict[int, dict[str, Any]]


def _lock_and_read_history(conn: Connection, db: Database, ticket_ids: list[int]) -> _History:
    """Lock the tickets (PostgreSQL: another hub process storing an admit of one of them waits
    here and then sees this one), then read each one's policy and admits/exits in time order."""
    out: _History = {}
    for i in range(0, len(ticket_ids), 500):
        part = ticket_ids[i:i + 500]
        in_ = marks(len(part))
        if db.is_pg:
            driver_rows(conn, f"SELECT ticket_id FROM tickets WHERE ticket_id IN {in_} ORDER BY ticket_id FOR UPDATE",
                        part)
        for tid, pid, name, wait, mx in driver_rows(
                conn, f"SELECT t.ticket_id, p.policy_id, p.name, p.wait_s, p.max_entries FROM tickets t JOIN"
                      f" policies p ON p.policy_id = t.policy_id WHERE t.ticket_id IN {in_}", part):
            out[int(tid)] = {"policy": _policy(pid, name, wait, mx), "rows": []}
        for tid, g, s, at, direction, kind in driver_rows(
                conn, f"SELECT j.ticket_id, j.gate_id, j.seq, j.at, j.direction, j.kind FROM journal j"
                      f" WHERE j.ticket_id IN {in_} AND j.kind IN ('scan', 'manual') AND j.reason IN {ADMIT_SQL}"
                      " AND NOT EXISTS (SELECT 1 FROM journal p WHERE p.gate_id = j.gate_id AND p.kind = 'passage'"
                      " AND p.ref_seq = j.seq AND p.passage = 'not_passed') ORDER BY j.at, j.gate_id, j.seq", part):
            if int(tid) in out:
                out[int(tid)]["rows"].append((g, int(s), float(at), direction, kind))
    return out


@functools.lru_cache(maxsize=256)
def _policy(pid: int, name: str, wait: float, mx: int | None) -> Any:
    return policy_from_row({"policy_id": pid, "name": name, "wait_s": wait, "max_entries": mx})


def _store_entry_states(conn: Connection, history: _History) -> None:
    states = []
    for tid, h in history.items():
        state, last_gate = EntryState(), None
        for g, _s, at, direction, _kind in h["rows"]:
            d = Direction.OUT if direction == Direction.OUT else Direction.IN
            state = record_passage(state, d, at)
            if d is Direction.IN:
                last_gate = g
        states.append((tid, state.entries, int(state.inside), state.last_entry_at, state.last_exit_at, last_gate))
    many(conn, "INSERT INTO entry_state (ticket_id, entries, inside, last_entry_at, last_exit_at, last_gate)"
               " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ticket_id) DO UPDATE SET entries = excluded.entries,"
               " inside = excluded.inside, last_entry_at = excluded.last_entry_at, last_exit_at = excluded.last_exit_at,"
               " last_gate = excluded.last_gate", states)


def _pair(first_kind: str, second_kind: str) -> str:
    """The conflict's kind in people's words: ``scan+scan``, ``manual+scan``, ``manual+manual``."""
    manual = (first_kind == EntryKind.MANUAL) + (second_kind == EntryKind.MANUAL)
    return str((ConflictKind.SCAN_SCAN, ConflictKind.MANUAL_SCAN, ConflictKind.MANUAL_MANUAL)[manual])


def add_conflict(conn: Connection, kind: str, ticket_id: int | None, first: tuple[str, int],
                 second: tuple[str, int], detail: dict[str, Any], now: float) -> list[dict[str, Any]]:
    got = one(conn, "INSERT INTO conflicts (kind, ticket_id, first_gate, first_seq, second_gate, second_seq, detail,"
                    " created_at) VALUES (:k, :t, :fg, :fs, :sg, :ss, :d, :at) ON CONFLICT DO NOTHING"
                    " RETURNING conflict_id",
              {"k": kind, "t": ticket_id, "fg": first[0], "fs": first[1], "sg": second[0], "ss": second[1],
               "d": json.dumps(detail), "at": now})
    if got is None:
        return []
    log.warning("conflict %s on ticket %s: %s/%s vs %s/%s", kind, ticket_id, *first, *second)
    return [{"conflict_id": int(got[0]), "kind": kind, "ticket_id": ticket_id,
             "first": {"gate_id": first[0], "seq": first[1]},
             "second": {"gate_id": second[0], "seq": second[1]}, "detail": detail}]


def _seq_reuse(conn: Connection, gate_id: str, e: JournalEntry, stored_nonce: str,
               now: float) -> list[dict[str, Any]]:
    execute(conn, "INSERT INTO journal_rejects (gate_id, seq, nonce, entry, received_at) VALUES (:g, :s, :n, :e, :at)"
                  " ON CONFLICT DO NOTHING",
            {"g": gate_id, "s": e.seq, "n": e.nonce, "e": json.dumps(e.to_wire()), "at": now})
    return add_conflict(
        conn, "seq_reuse", e.ticket_id, (gate_id, e.seq), (gate_id, e.seq),
        {"stored_nonce": stored_nonce, "new_nonce": e.nonce,
         "message": "the gate re-used a journal seq with different content (lost journal?)"}, now)


def _unknown_manual(conn: Connection, gate_id: str, e: JournalEntry, now: float) -> list[dict[str, Any]]:
    return add_conflict(
        conn, "manual_unknown", None, (gate_id, e.seq), (gate_id, e.seq),
        {"ticket_number": e.ticket_number, "staff_id": e.staff_id,
         "message": "a steward admitted a ticket number the hub does not know"}, now)


def _check_double_admit(conn: Connection, ticket_id: int, gate_id: str, seq: int, history: _History,
                        now: float) -> list[dict[str, Any]]:
    """Replay the ticket's admits and exits through its entry policy; flag an admit it forbids.

    Admits whose passage timed out (``not_passed``) did not consume the ticket and are skipped.
    Only pairs involving the new entry ``(gate_id, seq)`` are reported, so a late entry that
    slots in between earlier ones is caught too.
    """
    h = history.get(ticket_id)
    if h is None or len(h["rows"]) < 2:
        return []
    policy = h["policy"]
    state = EntryState()
    first: tuple[str, int, str] | None = None
    prev: tuple[str, int, str] | None = None
    found: list[dict[str, Any]] = []
    for g, s, at, direction, kind in h["rows"]:
        if direction == Direction.OUT:
            state = record_passage(state, Direction.OUT, at)
            continue
        reason, _flags = evaluate_entry(policy, state, at)
        # a single-entry ticket's first admission is the one that stands; others pair with it
        anchor = first if policy.kind is PolicyKind.SINGLE else prev
        if not reason.admits and anchor is not None and (gate_id, seq) in ((g, s), (anchor[0], anchor[1])):
            found += add_conflict(
                conn, "double_admit", ticket_id, (anchor[0], anchor[1]), (g, s),
                {"policy": policy.name, "would_be": str(reason), "first_kind": anchor[2], "second_kind": kind,
                 "pair": _pair(anchor[2], kind), "message": "admitted twice where the entry policy forbids it"}, now)
        state = record_passage(state, Direction.IN, at)
        prev = (g, s, kind)
        first = first or prev
    return found


def _check_number_double_admit(conn: Connection, gate_id: str, e: JournalEntry, now: float) -> list[dict[str, Any]]:
    """Number-only manual admits of a number the hub does not know, judged as single entry."""
    got = rows(conn, f"SELECT gate_id, seq, kind FROM journal WHERE ticket_id IS NULL AND ticket_number = :n"
                     f" AND kind = 'manual' AND direction = 'in' AND reason IN {ADMIT_SQL} ORDER BY at, gate_id, seq",
               {"n": e.ticket_number})
    if len(got) < 2:
        return []
    first = (got[0][0], int(got[0][1]))
    found: list[dict[str, Any]] = []
    for g, s, _kind in got[1:]:
        if (gate_id, e.seq) in ((g, s), first):
            found += add_conflict(
                conn, "double_admit", None, first, (g, int(s)),
                {"policy": "single", "ticket_number": e.ticket_number, "first_kind": "manual",
                 "second_kind": "manual", "pair": str(ConflictKind.MANUAL_MANUAL),
                 "message": "a number unknown to the hub was admitted by hand twice"}, now)
    return found


def _not_passed(conn: Connection, gate_id: str, ref_seq: int, now: float) -> None:
    """An admit that did not pass the turnstile consumed nothing: close conflicts built on it."""
    execute(conn, "UPDATE conflicts SET resolved_at = :at, resolved_by = 'hub', resolution = 'admit not passed'"
                  " WHERE resolved_at IS NULL AND kind = 'double_admit' AND ((first_gate = :g AND first_seq = :s)"
                  " OR (second_gate = :g AND second_seq = :s))", {"at": now, "g": gate_id, "s": ref_seq})


def _close_passage_unknown(conn: Connection, gate_id: str, passages: list[JournalEntry], now: float) -> None:
    """A passage outcome that arrives after its admit was expired closes that conflict."""
    many(conn, "UPDATE conflicts SET resolved_at = ?, resolved_by = 'hub', resolution = ?"
               " WHERE resolved_at IS NULL AND kind = 'passage_unknown' AND first_gate = ? AND first_seq = ?",
         [(now, f"passage reported late: {e.passage}", gate_id, e.ref_seq) for e in passages])


def _expire_pending(conn: Connection, now: float, cutoff: float) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stale = rows(conn, "SELECT gate_id, seq, ticket_id, at FROM pending_admits WHERE expired_at IS NULL AND at < :c"
                       " ORDER BY at LIMIT 1000", {"c": cutoff})
    by_gate: dict[str, int] = defaultdict(int)
    for gate_id, seq, ticket_id, at in stale:
        execute(conn, "UPDATE pending_admits SET expired_at = :n WHERE gate_id = :g AND seq = :s",
                {"n": now, "g": gate_id, "s": seq})
        by_gate[gate_id] += 1
        found += add_conflict(
            conn, "passage_unknown", ticket_id, (gate_id, int(seq)), (gate_id, int(seq)),
            {"admitted_at": at, "waited_s": round(now - at, 1),
             "message": "the gate never reported whether the fan passed the turnstile (gate restarted, or its"
                        " journal has not arrived); not counted inside until it does"}, now)
    for gate_id, n in by_gate.items():
        log.warning("gate %s: %d admits with no passage outcome after the timeout; raised for supervisors", gate_id, n)
    return found


def _advance_high_water(conn: Connection, gate_id: str, high_water: int) -> int:
    while True:
        seqs = [int(r[0]) for r in rows(conn, "SELECT seq FROM journal WHERE gate_id = :g AND seq > :h ORDER BY seq"
                                              " LIMIT 5000", {"g": gate_id, "h": high_water})]
        for s in seqs:
            if s != high_water + 1:
                return high_water
            high_water = s
        if len(seqs) < 5000:
            return high_water
