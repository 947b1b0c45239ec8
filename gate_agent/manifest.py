"""The gate's local manifest and the steward's manual-admit path (MANIFEST mode).

The manifest lives in its **own** SQLite file (``manifest.sqlite3``), apart from the
replica: MANIFEST mode exists for the moments the replica cannot be trusted (a schema the
software does not know, a failed integrity check), so the manifest must not share its fate.
If this file itself is unreadable or from a newer version, it is moved aside and started
empty — the hub pushes the manifest again, and ticks are rebuilt from the journal — so the
fallback never stops the gate.

What it holds:

* the latest manifest rows pushed from the hub, replaced wholesale in one transaction
  (:meth:`ManifestStore.replace_all`), with the hub sequence number and generation time;
* stewards: id, name, and a scrypt PIN hash with a per-steward salt — never a PIN — plus
  wrong-PIN counters that lock a steward out for a while after :data:`MAX_PIN_FAILURES`;
* ticks: tickets a steward has admitted by hand at this gate, so the same ticket is not
  admitted twice from the manifest.

:func:`manual_admit` is the one door for a steward's admit: PIN, lookup, tick check, and a
``MANUAL`` journal entry committed (fsynced) before it returns — before the turnstile may be
released. Every attempt is journaled, refused ones too, with the cause of manual mode.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from gate_agent.files import private_file
from gate_agent.journal import Journal
from tickets.entry import EntryKind, JournalEntry, Passage
from tickets.errors import GatehouseError
from tickets.manifest import (
    ManifestRow,
    ManualRefusal,
    PinHash,
    QueryKind,
    TicketState,
    fold_name,
    normalize_number,
    parse_typed,
    verify_pin,
)
from tickets.reasons import Reason

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: wrong PINs in a row before a steward is locked out
MAX_PIN_FAILURES = 5
#: how long a lockout lasts
LOCKOUT_S = 300.0
#: most matches a search returns (the screen shows a short list)
SEARCH_LIMIT = 20
#: longest typed text kept in the journal's ``raw``
MAX_TYPED = 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    ticket_id INTEGER PRIMARY KEY,
    number TEXT NOT NULL,
    number_key TEXT NOT NULL,
    check_code TEXT NOT NULL,
    holder TEXT NOT NULL,
    holder_key TEXT NOT NULL,
    zone_id INTEGER NOT NULL,
    zone_name TEXT NOT NULL,
    seat TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rows_number ON rows(number_key);
-- a manifest arriving in batches waits here until complete, so a gate never searches half of one
CREATE TABLE IF NOT EXISTS staged (
    ticket_id INTEGER PRIMARY KEY, number TEXT NOT NULL, number_key TEXT NOT NULL, check_code TEXT NOT NULL,
    holder TEXT NOT NULL, holder_key TEXT NOT NULL, zone_id INTEGER NOT NULL, zone_name TEXT NOT NULL,
    seat TEXT NOT NULL, status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rows_code ON rows(check_code);
CREATE TABLE IF NOT EXISTS stewards (
    steward_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    salt BLOB NOT NULL,
    digest BLOB NOT NULL,
    n INTEGER NOT NULL,
    r INTEGER NOT NULL,
    p INTEGER NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ticks (
    number_key TEXT PRIMARY KEY,
    ticket_id INTEGER,
    journal_seq INTEGER NOT NULL,
    steward_id TEXT NOT NULL,
    at REAL NOT NULL
);
"""

_UPSERT_STEWARD = (
    "INSERT INTO stewards(steward_id, name, salt, digest, n, r, p) VALUES (?,?,?,?,?,?,?) "
    "ON CONFLICT(steward_id) DO UPDATE SET name=excluded.name, salt=excluded.salt, "
    "digest=excluded.digest, n=excluded.n, r=excluded.r, p=excluded.p"
)
_ROW_COLS = "r.ticket_id, r.number, r.check_code, r.holder, r.zone_id, r.zone_name, r.seat, r.status"
_TICK_COLS = "t.number_key, t.ticket_id, t.journal_seq, t.steward_id, t.at"


class ManifestStoreError(GatehouseError, RuntimeError):
    """The manifest store could not be opened or written."""


@dataclass(frozen=True, slots=True)
class ManifestInfo:
    hub_seq: int | None  # None: no manifest received yet
    generated_at: float | None
    rows: int
    replaced_at: float | None


@dataclass(frozen=True, slots=True)
class Tick:
    """A ticket admitted by hand at this gate."""

    number_key: str
    ticket_id: int | None
    journal_seq: int
    steward_id: str
    at: float


@dataclass(frozen=True, slots=True)
class Match:
    """A search hit: the row, how it matched, and the tick if already admitted here."""

    row: ManifestRow
    how: str  # "number", "prefix", "code", "code_digits", "name"
    tick: Tick | None = None


@dataclass(frozen=True, slots=True)
class PinCheck:
    ok: bool
    reason: str = ""  # a ManualRefusal value when not ok
    detail: str = ""
    name: str = ""
    attempts_left: int | None = None
    locked_until: float | None = None


def _row(r: Sequence[Any]) -> ManifestRow:
    return ManifestRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]), str(r[6]), str(r[7]))


def _tick(r: Sequence[Any]) -> Tick | None:
    if r[0] is None:
        return None
    return Tick(str(r[0]), None if r[1] is None else int(r[1]), int(r[2]), str(r[3]), float(r[4]))


def _db_row(r: ManifestRow) -> tuple[Any, ...]:
    return (r.ticket_id, r.number, normalize_number(r.number), r.check_code, r.holder, fold_name(r.holder),
            r.zone_id, r.zone_name, r.seat, str(TicketState(r.status)))


def _meta(hub_seq: int, generated_at: float, now: float, rows: int) -> list[tuple[str, str]]:
    return [("hub_seq", str(int(hub_seq))), ("generated_at", repr(float(generated_at))),
            ("replaced_at", repr(float(now))), ("rows", str(rows))]


def _move_aside(path: Path, aside: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if p.exists():
            p.replace(Path(str(aside) + suffix))


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ManifestStore:
    """Open with :meth:`open`; one per gate, used from the gate agent's event loop."""

    def __init__(self, path: Path, db: aiosqlite.Connection) -> None:
        self.path = path
        self._db = db
        #: serialises lookup → tick check → journal → tick, so two lanes cannot admit one ticket twice
        self.admit_lock = asyncio.Lock()
        self.counters = {"admitted": 0, "refused": 0, "pin_refused": 0, "lockouts": 0, "overrides": 0}

    # --- lifecycle ------------------------------------------------------------------------
    @classmethod
    async def open(cls, path: Path, *, now: float | None = None) -> ManifestStore:
        """Open (or create) the store. An unusable file is moved aside, never fatal."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return await cls._open(path)
        except (sqlite3.DatabaseError, ManifestStoreError) as exc:
            aside = path.with_name(f"{path.name}.unusable-{int(now if now is not None else time.time())}")
            log.error("manifest store %s unusable (%s); moved to %s, starting empty", path, exc, aside)
            _move_aside(path, aside)  # a rare, tiny rename: not worth a thread hop
            return await cls._open(path)

    @classmethod
    async def _open(cls, path: Path) -> ManifestStore:
        private_file(path)  # holds steward PIN hashes and fans' names
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a power cut may lose the last pushed manifest or tick, never corrupt the
            # file; the hub re-pushes and ticks are rebuilt from the (FULL-synced) journal.
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            row = await (await db.execute("PRAGMA quick_check")).fetchone()
            if row is None or row[0] != "ok":
                raise ManifestStoreError(f"integrity check failed: {row[0] if row else 'no answer'}")
            version = (await (await db.execute("PRAGMA user_version")).fetchone())[0]  # type: ignore[index]
            if version > SCHEMA_VERSION:
                raise ManifestStoreError(f"manifest schema {version} is newer than this software ({SCHEMA_VERSION})")
            await db.executescript(_SCHEMA)
            await db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            await db.close()
            raise
        return cls(path, db)

    async def close(self) -> None:
        await self._db.close()

    # --- the manifest ---------------------------------------------------------------------
    async def replace_all(self, rows: Iterable[ManifestRow], hub_seq: int, generated_at: float,
                          *, now: float | None = None) -> int:
        """Replace every row with a new manifest from the hub, atomically. Returns the row count.

        Ticks are kept: a new manifest does not forget who was already admitted by hand.
        """
        now = time.time() if now is None else now
        old = await self.info()
        if old.hub_seq is not None and hub_seq < old.hub_seq:
            # A hub restored from an older backup: take its data (it is the source of truth)
            # but say so loudly, since tickets sold since may be missing.
            log.warning("manifest from hub seq %s replaces a newer one (%s): hub rolled back?", hub_seq, old.hub_seq)
        data = [_db_row(r) for r in rows]
        db = self._db
        try:
            await db.execute("BEGIN IMMEDIATE")
            await db.execute("DELETE FROM rows")
            await db.executemany("INSERT OR REPLACE INTO rows VALUES (?,?,?,?,?,?,?,?,?,?)", data)
            await db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                                 _meta(hub_seq, generated_at, now, len(data)))
            await db.execute("COMMIT")
        except BaseException as exc:
            await _rollback(db)
            if isinstance(exc, sqlite3.Error):
                raise ManifestStoreError(f"manifest replace failed: {exc}") from exc
            raise
        return len(data)

    async def stage_rows(self, hub_seq: int, rows: Iterable[ManifestRow], *, first: bool) -> int:
        """Receive one batch of a manifest streamed by sync; ``first`` starts a new one.

        Nothing is visible to searches until :meth:`commit_staged`. A batch for a different
        ``hub_seq`` than the one being staged (a new manifest started mid-stream) restarts
        staging. Returns the number of rows staged so far.
        """
        data = [_db_row(r) for r in rows]
        db = self._db
        staging = await (await db.execute("SELECT value FROM meta WHERE key = 'staging_seq'")).fetchone()
        try:
            await db.execute("BEGIN IMMEDIATE")
            if first or staging is None or int(staging[0]) != hub_seq:
                await db.execute("DELETE FROM staged")
                await db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('staging_seq', ?)", (str(hub_seq),))
            await db.executemany("INSERT OR REPLACE INTO staged VALUES (?,?,?,?,?,?,?,?,?,?)", data)
            await db.execute("COMMIT")
        except BaseException:
            await _rollback(db)
            raise
        row = await (await db.execute("SELECT count(*) FROM staged")).fetchone()
        return int(row[0]) if row else 0

    async def commit_staged(self, hub_seq: int, generated_at: float, *, expected_rows: int,
                            now: float | None = None) -> int:
        """Swap a completely received manifest in, atomically. Refuses an incomplete one.

        Raises :class:`ManifestStoreError` (and keeps the old manifest) if the staged rows
        are for another hub seq or fewer/more than ``expected_rows``.
        """
        now = time.time() if now is None else now
        db = self._db
        try:
            await db.execute("BEGIN IMMEDIATE")
            staging = await (await db.execute("SELECT value FROM meta WHERE key = 'staging_seq'")).fetchone()
            count_row = await (await db.execute("SELECT count(*) FROM staged")).fetchone()
            count = int(count_row[0]) if count_row else 0
            if staging is None or int(staging[0]) != hub_seq or count != expected_rows:
                raise ManifestStoreError(
                    f"staged manifest incomplete: seq {staging[0] if staging else None} with {count} rows, "
                    f"expected seq {hub_seq} with {expected_rows}")
            await db.execute("DELETE FROM rows")
            await db.execute("INSERT INTO rows SELECT * FROM staged")
            await db.execute("DELETE FROM staged")
            await db.execute("DELETE FROM meta WHERE key = 'staging_seq'")
            await db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", _meta(hub_seq, generated_at,
                                                                                               now, count))
            await db.execute("COMMIT")
        except BaseException:
            await _rollback(db)
            raise
        return count

    async def info(self) -> ManifestInfo:
        meta: dict[str, str] = {str(k): str(v) for k, v in await (await self._db.execute("SELECT key, value FROM meta")).fetchall()}
        return ManifestInfo(
            hub_seq=int(meta["hub_seq"]) if "hub_seq" in meta else None,
            generated_at=float(meta["generated_at"]) if "generated_at" in meta else None,
            rows=int(meta.get("rows", 0)),
            replaced_at=float(meta["replaced_at"]) if "replaced_at" in meta else None,
        )

    async def _query(self, where: str, params: Sequence[object], how: str, limit: int) -> list[Match]:
        sql = (f"SELECT {_ROW_COLS}, {_TICK_COLS} FROM rows r LEFT JOIN ticks t ON t.number_key = r.number_key "
               f"WHERE {where} ORDER BY r.number_key LIMIT ?")
        rows = await (await self._db.execute(sql, (*params, limit))).fetchall()
        return [Match(_row(r[:8]), how, _tick(r[8:])) for r in rows]

    async def by_number(self, number: str) -> Match | None:
        found = await self._query("r.number_key = ?", (normalize_number(number),), "number", 1)
        return found[0] if found else None

    async def search(self, typed: str, limit: int = SEARCH_LIMIT) -> list[Match]:
        """Rows matching what a steward typed, best matches first.

        A number finds itself exactly, or else every number starting with it; a check code
        finds its tickets (narrowed by trailing digits if typed after it); letters find
        holder names containing them. All but the name search use an index; the name search
        scans the table (about 10 ms for 60,000 rows, measured in the tests).
        """
        q = parse_typed(typed)
        if q.kind is QueryKind.EMPTY:
            return []
        if q.kind is QueryKind.NUMBER:
            exact = await self._query("r.number_key = ?", (q.text,), "number", limit)
            if exact:
                return exact
            # prefix: a range on the index, not LIKE (which would not use it)
            return await self._query("r.number_key >= ? AND r.number_key < ?", (q.text, q.text + "\U0010ffff"),
                                     "prefix", limit)
        if q.kind is QueryKind.CODE_DIGITS:
            return await self._query("r.check_code = ? AND r.number_key LIKE ? ESCAPE '\\'",
                                     (q.text, "%" + _like_escape(q.digits)), "code_digits", limit)
        if q.kind is QueryKind.CODE:
            found = await self._query("r.check_code = ?", (q.text,), "code", limit)
            if q.text.isalpha() and len(found) < limit:  # "ANNA" is a code and a name
                seen = {m.row.ticket_id for m in found}
                found += [m for m in await self._name(q.text.casefold(), limit - len(found))
                          if m.row.ticket_id not in seen]
            return found
        return await self._name(q.text, limit)

    async def _name(self, folded: str, limit: int) -> list[Match]:
        return await self._query("r.holder_key LIKE ? ESCAPE '\\'", ("%" + _like_escape(folded) + "%",), "name", limit)

    # --- ticks ----------------------------------------------------------------------------
    async def tick_of(self, number: str) -> Tick | None:
        row = await (await self._db.execute(
            f"SELECT {_TICK_COLS} FROM ticks t WHERE t.number_key = ?", (normalize_number(number),)
        )).fetchone()
        return None if row is None else _tick(row)

    async def add_tick(self, number: str, ticket_id: int | None, journal_seq: int, steward_id: str, at: float) -> None:
        await self._db.execute("INSERT OR IGNORE INTO ticks VALUES (?,?,?,?,?)",
                               (normalize_number(number), ticket_id, journal_seq, steward_id, at))

    async def restore_ticks(self, entries: Iterable[JournalEntry]) -> int:
        """Re-create ticks from the journal's manual admits (after a crash or a fresh store).

        The journal is the record; a tick is only its index. Returns how many were missing.
        """
        added = 0
        for e in entries:
            if e.kind is EntryKind.MANUAL and e.admitted and e.ticket_number:
                cur = await self._db.execute(
                    "INSERT OR IGNORE INTO ticks VALUES (?,?,?,?,?)",
                    (normalize_number(e.ticket_number), e.ticket_id, e.seq, e.staff_id or "", e.at))
                added += max(cur.rowcount, 0)
        return added

    async def ticks(self) -> list[Tick]:
        rows = await (await self._db.execute(f"SELECT {_TICK_COLS} FROM ticks t ORDER BY t.at")).fetchall()
        return [t for t in (_tick(r) for r in rows) if t is not None]

    # --- stewards -------------------------------------------------------------------------
    async def put_steward(self, steward_id: str, name: str, pin: PinHash) -> None:
        """Add or update a steward (as pushed by the hub, or enrolled locally).

        Keeps the steward's lockout state: a new PIN hash does not clear a lockout early.
        """
        if not steward_id or len(steward_id) > 64:
            raise ValueError("steward_id must be 1-64 characters")
        await self._db.execute(_UPSERT_STEWARD, (steward_id, name, pin.salt, pin.digest, pin.n, pin.r, pin.p))

    async def replace_stewards(self, stewards: Iterable[tuple[str, str, PinHash]]) -> int:
        """Make the steward list exactly ``(steward_id, name, pin_hash)`` as pushed by the hub.

        Stewards no longer listed are removed; those kept keep their lockout state.
        """
        items = list(stewards)
        for steward_id, _name, _pin in items:
            if not steward_id or len(steward_id) > 64:
                raise ValueError("steward_id must be 1-64 characters")
        db = self._db
        try:
            await db.execute("BEGIN IMMEDIATE")
            await db.execute("CREATE TEMP TABLE IF NOT EXISTS keep (steward_id TEXT PRIMARY KEY)")
            await db.execute("DELETE FROM keep")
            await db.executemany("INSERT OR IGNORE INTO keep VALUES (?)", [(i[0],) for i in items])
            await db.execute("DELETE FROM stewards WHERE steward_id NOT IN (SELECT steward_id FROM keep)")
            for steward_id, name, pin in items:
                await db.execute(_UPSERT_STEWARD, (steward_id, name, pin.salt, pin.digest, pin.n, pin.r, pin.p))
            await db.execute("COMMIT")
        except BaseException:
            await _rollback(db)
            raise
        return len(items)

    async def remove_steward(self, steward_id: str) -> bool:
        cur = await self._db.execute("DELETE FROM stewards WHERE steward_id = ?", (steward_id,))
        return cur.rowcount > 0

    async def steward_ids(self) -> list[str]:
        return [str(r[0]) for r in await (await self._db.execute("SELECT steward_id FROM stewards ORDER BY 1")).fetchall()]

    async def check_pin(self, steward_id: str, pin: str, now: float) -> PinCheck:
        """Verify a steward's PIN, counting failures and locking out after too many.

        The scrypt work runs in a worker thread: the other lane keeps scanning meanwhile.
        An unknown steward and a wrong PIN give the same answer to the screen.
        """
        row = await (await self._db.execute(
            "SELECT name, salt, digest, n, r, p, failures, locked_until FROM stewards WHERE steward_id = ?",
            (steward_id,))).fetchone()
        if row is None:
            self.counters["pin_refused"] += 1
            return PinCheck(False, ManualRefusal.PIN_REFUSED, "unknown steward id")
        name, salt, digest, n, r, p, failures_before, locked_until = row
        if locked_until > now:
            return PinCheck(False, ManualRefusal.STEWARD_LOCKED, f"locked until {locked_until:.0f}",
                            name=name, attempts_left=0, locked_until=float(locked_until))
        ok = await asyncio.to_thread(verify_pin, pin, PinHash(bytes(salt), bytes(digest), n, r, p))
        if ok:
            if failures_before:
                await self._db.execute("UPDATE stewards SET failures = 0 WHERE steward_id = ?", (steward_id,))
            return PinCheck(True, name=name)
        self.counters["pin_refused"] += 1
        # Counted in one SQL statement, not from the value read above: two lanes failing at once
        # both count, and exactly one of them reaches the limit.
        counted = await (await self._db.execute(
            "UPDATE stewards SET failures = failures + 1 WHERE steward_id = ? RETURNING failures",
            (steward_id,))).fetchall()  # fetch all: the statement (and its write) completes now
        first = next(iter(counted), None)
        failures = int(first[0]) if first is not None else MAX_PIN_FAILURES
        if failures >= MAX_PIN_FAILURES:
            until = now + LOCKOUT_S
            self.counters["lockouts"] += 1
            await self._db.execute("UPDATE stewards SET failures = 0, locked_until = ? WHERE steward_id = ?",
                                   (until, steward_id))
            log.warning("steward %s locked out after %d wrong PINs", steward_id, MAX_PIN_FAILURES)
            return PinCheck(False, ManualRefusal.STEWARD_LOCKED, f"wrong PIN {MAX_PIN_FAILURES} times: locked",
                            name=name, attempts_left=0, locked_until=until)
        return PinCheck(False, ManualRefusal.PIN_REFUSED, f"wrong PIN ({failures} of {MAX_PIN_FAILURES})",
                        name=name, attempts_left=MAX_PIN_FAILURES - failures)


# --- the manual admit ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ManualResult:
    """What the screen shows after a manual admit attempt. ``admitted``: release the turnstile."""

    admitted: bool
    reason: str  # Reason.ADMIT, a ticket Reason, or a ManualRefusal
    message: str
    entry: JournalEntry  # the journaled attempt (durable)
    row: ManifestRow | None = None
    candidates: tuple[ManifestRow, ...] = ()
    attempts_left: int | None = None
    locked_until: float | None = None
    override: bool = False


_REFUSED_MODES = frozenset({"EMERGENCY", "CLOSED"})


async def manual_admit(
    store: ManifestStore,
    journal: Journal,
    *,
    typed: str,
    steward_id: str,
    pin: str,
    reason_for_manual: str,
    mode: str,
    cursor: int,
    now: float,
    override: bool = False,
    note: str = "",
) -> ManualResult:
    """A steward admits a ticket from the manifest.

    Order: gate mode → steward PIN → lookup of ``typed`` → status and tick checks → journal
    → tick. The ``MANUAL`` entry is committed before this returns, so the caller may release
    the turnstile only when ``result.admitted``. Every attempt is journaled; the PIN never is.

    ``override`` with a ``note`` lets a steward (on a supervisor's word) admit a ticket
    number the manifest does not hold — a ticket sold after the last manifest, say. The
    hub reconciles it later like any other admit.
    """
    typed = typed.strip()[:MAX_TYPED]
    raw = typed.encode("utf-8", "replace")
    cause = f"cause: {reason_for_manual or 'unspecified'}"

    async def record(reason: str, detail: str, row: ManifestRow | None = None, number: str | None = None,
                     admitted: bool = False) -> JournalEntry:
        return await journal.append(
            EntryKind.MANUAL, reason=reason, ticket_id=row.ticket_id if row else None,
            ticket_number=row.number if row else number, zone_id=row.zone_id if row else None, raw=raw,
            mode=mode, cursor=cursor, passage=Passage.PENDING if admitted else Passage.NONE,
            staff_id=steward_id or None, detail=f"{cause}; {detail}" if detail else cause, at=now)

    async def refuse(reason: str, message: str, detail: str, *, row: ManifestRow | None = None,
                     candidates: Sequence[ManifestRow] = (), check: PinCheck | None = None) -> ManualResult:
        store.counters["refused"] += 1
        entry = await record(reason, detail, row)
        log.info("manual admit refused (%s) for %r by %s: %s", reason, typed, steward_id, detail)
        return ManualResult(False, reason, message, entry, row, tuple(candidates),
                            check.attempts_left if check else None, check.locked_until if check else None)

    if mode in _REFUSED_MODES:
        return await refuse(Reason.GATE_CLOSED, Reason.GATE_CLOSED.message, f"gate in {mode}")
    check = await store.check_pin(steward_id, pin, now)
    if not check.ok:
        refusal = ManualRefusal(check.reason)
        return await refuse(refusal, refusal.message, check.detail, check=check)

    q = parse_typed(typed)
    if q.kind in (QueryKind.EMPTY, QueryKind.NAME):
        candidates = [m.row for m in await store.search(typed)] if q.kind is QueryKind.NAME else []
        return await refuse(Reason.MALFORMED, "Type the ticket number or the code from the manifest",
                            f"not a number or code: {q.kind}", candidates=candidates)

    async with store.admit_lock:
        if q.kind is QueryKind.NUMBER:
            hit = await store.by_number(q.text)
            matches = [hit] if hit is not None else []
        else:  # a code (plus digits): name hits from search() are for browsing, never for admitting
            matches = [m for m in await store.search(typed) if m.how in ("code", "code_digits")]
        if len(matches) > 1:
            return await refuse(ManualRefusal.AMBIGUOUS, ManualRefusal.AMBIGUOUS.message,
                                f"{len(matches)} tickets match {typed!r}", candidates=[m.row for m in matches])
        if matches:
            m = matches[0]
            row = m.row
            if row.status != TicketState.VALID:
                reason = Reason.REVOKED if row.status == TicketState.REVOKED else Reason.SUPERSEDED
                return await refuse(reason, reason.message, f"manifest status {row.status}", row=row)
            if m.tick is not None:
                return await refuse(Reason.ALREADY_USED, "Already admitted by hand at this gate",
                                    f"ticked by {m.tick.steward_id} at {m.tick.at:.0f} (seq {m.tick.journal_seq})",
                                    row=row)
            entry = await record(Reason.ADMIT, f"matched by {m.how}", row, admitted=True)
            await _tick_after_journal(store, row.number, row.ticket_id, entry, steward_id, now)
            store.counters["admitted"] += 1
            return ManualResult(True, Reason.ADMIT, Reason.ADMIT.message, entry, row)

        # not on the manifest
        if not override:
            info = await store.info()
            why = "not on manifest" if info.hub_seq is not None else "not on manifest: no manifest received yet"
            return await refuse(Reason.UNKNOWN, "Not on the manifest — supervisor may override with a note", why)
        if not note.strip():
            return await refuse(ManualRefusal.NOTE_REQUIRED, ManualRefusal.NOTE_REQUIRED.message,
                                "override without a note")
        if q.kind is not QueryKind.NUMBER:
            return await refuse(Reason.UNKNOWN, "Type the full ticket number to override", "override needs a number")
        tick = await store.tick_of(q.text)
        if tick is not None:
            return await refuse(Reason.ALREADY_USED, "Already admitted by hand at this gate",
                                f"override already ticked by {tick.steward_id} (seq {tick.journal_seq})")
        detail = f"override: {' '.join(note.split())[:200]}"
        entry = await journal.append(
            EntryKind.MANUAL, reason=Reason.ADMIT, ticket_number=q.text, raw=raw, mode=mode, cursor=cursor,
            passage=Passage.PENDING, staff_id=steward_id, detail=f"{cause}; {detail}", at=now)
        await _tick_after_journal(store, q.text, None, entry, steward_id, now)
        store.counters["admitted"] += 1
        store.counters["overrides"] += 1
        log.warning("manual override admit of %s by %s: %s", q.text, steward_id, note)
        return ManualResult(True, Reason.ADMIT, "Admitted by override — go ahead", entry, override=True)


async def _tick_after_journal(store: ManifestStore, number: str, ticket_id: int | None, entry: JournalEntry,
                              steward_id: str, now: float) -> None:
    try:
        await store.add_tick(number, ticket_id, entry.seq, steward_id, now)
    except Exception:
        # The admit is journaled (the record); the tick is its index and is rebuilt from the
        # journal at start-up (restore_ticks). Do not refuse a fan already let through.
        log.exception("tick for journal seq %s not stored; will be restored from the journal", entry.seq)


async def _rollback(db: aiosqlite.Connection) -> None:
    """Roll back after any failure, cancellation included ("no transaction" is fine)."""
    with contextlib.suppress(sqlite3.Error):
        await db.execute("ROLLBACK")
