"""The gate's journal: append-only SQLite, WAL, ``synchronous=FULL``.

Every decision (refusals too), passage outcome, manual admit and mode change is one row,
committed — fsynced — before :meth:`Journal.append` returns, and so before the turnstile
is unlocked. Kill -9 or a power cut at any point loses no entry that was acted on.

Rows are never updated. SQLite triggers refuse UPDATE outright and refuse DELETE of any
row above ``prunable_seq``: the highest seq the hub has confirmed *inside a completed
backup*. Until the hub says so, nothing leaves the gate.
"""
from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosqlite

from gate_agent.files import private_file
from tickets.entry import EntryKind, JournalEntry, Passage
from tickets.errors import GatehouseError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    nonce TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT,
    ticket_id INTEGER,
    ticket_number TEXT,
    zone_id INTEGER,
    raw BLOB NOT NULL,
    direction TEXT NOT NULL,
    mode TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    passage TEXT NOT NULL,
    ref_seq INTEGER,
    staff_id TEXT,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO journal_meta(key, value) VALUES ('acked_seq', 0), ('prunable_seq', 0);
CREATE TRIGGER IF NOT EXISTS journal_no_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS journal_no_delete BEFORE DELETE ON journal
WHEN OLD.seq > (SELECT value FROM journal_meta WHERE key = 'prunable_seq')
BEGIN SELECT RAISE(ABORT, 'journal entry not yet in a completed hub backup'); END;
"""

_COLS = "seq, nonce, at, kind, reason, ticket_id, ticket_number, zone_id, raw, direction, mode, cursor, passage, ref_seq, staff_id, detail"


class JournalError(GatehouseError, RuntimeError):
    """The journal could not be written: the gate must not act on an unrecorded decision."""


class Journal:
    """Open with :meth:`open`; one writer per file (the gate agent)."""

    def __init__(self, path: Path, gate_id: str, db: aiosqlite.Connection, last_seq: int,
                 clock: Callable[[], float]) -> None:
        self.path = path
        self.gate_id = gate_id
        self._db = db
        self._last_seq = last_seq
        self._lock = asyncio.Lock()
        self._clock = clock

    @classmethod
    async def open(cls, path: Path, gate_id: str, *, clock: Callable[[], float] = time.time) -> Journal:
        path = private_file(Path(path))  # every scanned credential is in here
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute("PRAGMA busy_timeout=5000")
            version = (await (await db.execute("PRAGMA user_version")).fetchone())[0]  # type: ignore[index]
            if version > SCHEMA_VERSION:
                raise JournalError(f"journal schema {version} is newer than this software ({SCHEMA_VERSION})")
            await db.executescript(_SCHEMA)
            await db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            row = await (await db.execute("SELECT max(seq) FROM journal")).fetchone()
            last = int(row[0] or 0) if row else 0
        except BaseException:
            await db.close()
            raise
        return cls(path, gate_id, db, last, clock)

    async def close(self) -> None:
        await self._db.close()

    @property
    def last_seq(self) -> int:
        return self._last_seq

    async def append(
        self,
        kind: EntryKind,
        *,
        reason: str | None = None,
        ticket_id: int | None = None,
        ticket_number: str | None = None,
        zone_id: int | None = None,
        raw: bytes = b"",
        direction: str = "in",
        mode: str = "ONLINE",
        cursor: int = 0,
        passage: Passage = Passage.NONE,
        ref_seq: int | None = None,
        staff_id: str | None = None,
        detail: str = "",
        at: float | None = None,
    ) -> JournalEntry:
        """Append one entry and commit it durably; returns it with its seq."""
        async with self._lock:
            entry = JournalEntry(
                gate_id=self.gate_id, seq=self._last_seq + 1, at=self._clock() if at is None else at, kind=kind,
                nonce=secrets.token_hex(8), reason=reason, ticket_id=ticket_id, ticket_number=ticket_number,
                zone_id=zone_id, raw=raw, direction=direction, mode=mode, cursor=cursor, passage=passage,
                ref_seq=ref_seq, staff_id=staff_id, detail=detail,
            )
            try:
                # One statement in autocommit mode is one transaction: durable on return.
                await self._db.execute(f"INSERT INTO journal ({_COLS}) VALUES ({','.join('?' * 16)})", _row(entry))
            except Exception as exc:
                raise JournalError(f"journal write failed: {exc}") from exc
            self._last_seq = entry.seq
            return entry

    async def entries_after(self, seq: int, limit: int = 500) -> list[JournalEntry]:
        rows = await (await self._db.execute(
            f"SELECT {_COLS} FROM journal WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        )).fetchall()
        return [_entry(self.gate_id, r) for r in rows]

    async def get(self, seq: int) -> JournalEntry | None:
        row = await (await self._db.execute(f"SELECT {_COLS} FROM journal WHERE seq = ?", (seq,))).fetchone()
        return None if row is None else _entry(self.gate_id, row)

    async def _meta(self, key: str) -> int:
        row = await (await self._db.execute("SELECT value FROM journal_meta WHERE key = ?", (key,))).fetchone()
        return int(row[0]) if row else 0

    async def acked_seq(self) -> int:
        """The highest seq the hub has acknowledged holding (all of 1..seq)."""
        return await self._meta("acked_seq")

    async def set_acked(self, seq: int) -> None:
        """Record the hub's ack. It may go *down*: a hub restored from backup holds less."""
        await self._db.execute("UPDATE journal_meta SET value = ? WHERE key = 'acked_seq'", (min(seq, self._last_seq),))

    async def backlog(self) -> int:
        return self._last_seq - await self.acked_seq()

    async def prune(self, backed_up_seq: int) -> int:
        """Delete entries the hub has confirmed inside a completed backup. Returns rows deleted."""
        async with self._lock:
            limit = min(backed_up_seq, await self.acked_seq())
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                await self._db.execute("UPDATE journal_meta SET value = max(value, ?) WHERE key = 'prunable_seq'",
                                       (limit,))
                cur = await self._db.execute("DELETE FROM journal WHERE seq <= ?", (limit,))
                await self._db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    await self._db.execute("ROLLBACK")
                raise
            return cur.rowcount

    async def count(self) -> int:
        row = await (await self._db.execute("SELECT count(*) FROM journal")).fetchone()
        return int(row[0]) if row else 0

    async def all_entries(self) -> list[JournalEntry]:
        rows = await (await self._db.execute(f"SELECT {_COLS} FROM journal ORDER BY seq")).fetchall()
        return [_entry(self.gate_id, r) for r in rows]


def _row(e: JournalEntry) -> tuple[Any, ...]:
    return (e.seq, e.nonce, e.at, str(e.kind), e.reason, e.ticket_id, e.ticket_number, e.zone_id, e.raw,
            e.direction, e.mode, e.cursor, str(e.passage), e.ref_seq, e.staff_id, e.detail)


def _entry(gate_id: str, r: tuple[Any, ...]) -> JournalEntry:
    return JournalEntry(
        gate_id=gate_id, seq=r[0], nonce=r[1], at=r[2], kind=EntryKind(r[3]), reason=r[4], ticket_id=r[5],
        ticket_number=r[6], zone_id=r[7], raw=bytes(r[8]), direction=r[9], mode=r[10], cursor=r[11],
        passage=Passage(r[12]), ref_seq=r[13], staff_id=r[14], detail=r[15],
    )
