"""The gate's replica of the event: tickets, revocations, zones, policies, keys, entry state.

One SQLite file (WAL). The hub is its source of truth; the gate applies snapshot batches
and deltas from sync, each batch in one transaction together with the new cursor (the
hub sequence number it reflects), so the replica is never half-updated.

Two connections, on purpose:

* writes go through aiosqlite (sync batches, entry-state updates, migrations), off the
  event loop;
* the decision reads through :class:`ReplicaReader`, a plain ``sqlite3`` connection used
  on the loop thread. A primary-key lookup takes a few microseconds; a hop to a worker
  thread and back would cost more than the lookup, and the decision must stay pure and
  synchronous (``tickets.decide`` takes a view, not a coroutine).

Schema versions are ``PRAGMA user_version``; :data:`MIGRATIONS` moves an older file
forward. A file *newer* than this software understands raises
:class:`ReplicaSchemaError` — the gate then goes to MANIFEST mode rather than guess.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from gate_agent.files import private_file
from tickets.errors import GatehouseError
from tickets.keys import KeyRing
from tickets.model import EntryState, TicketRecord, TicketStatus, Zone
from tickets.policy import EntryKind, EntryPolicy, Passback
from tickets.pretix import PretixEvent

SCHEMA_VERSION = 4

log = logging.getLogger(__name__)


class ReplicaError(GatehouseError, RuntimeError):
    """The replica cannot be used as it is. ``cause`` is a short machine word."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(f"{cause}: {detail}")
        self.cause = cause
        self.detail = detail


class ReplicaSchemaError(ReplicaError):
    def __init__(self, found: int, expected: int) -> None:
        super().__init__("schema_mismatch", f"replica schema {found}, this software speaks {expected}")
        self.found = found
        self.expected = expected


_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tickets (
    ticket_id INTEGER PRIMARY KEY,
    number TEXT NOT NULL,
    zone_id INTEGER NOT NULL,
    policy_id INTEGER NOT NULL,
    valid_from REAL NOT NULL,
    valid_until REAL NOT NULL,
    serial INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'valid',
    rotating_secret BLOB,
    holder TEXT NOT NULL DEFAULT '',
    seat TEXT NOT NULL DEFAULT ''
);
CREATE INDEX tickets_number ON tickets(number);
CREATE TABLE zones (zone_id INTEGER PRIMARY KEY, name TEXT NOT NULL, gates TEXT NOT NULL, capacity INTEGER);
CREATE TABLE policies (
    policy_id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, passback TEXT NOT NULL,
    wait_s REAL NOT NULL DEFAULT 0, max_entries INTEGER
);
CREATE TABLE keys (key_id INTEGER PRIMARY KEY, ed25519 TEXT NOT NULL);
CREATE TABLE entry_state (
    ticket_id INTEGER PRIMARY KEY, entries INTEGER NOT NULL, inside INTEGER NOT NULL,
    last_entry_at REAL, last_exit_at REAL
);
"""

# v2: revocations are remembered apart from the ticket rows, so a resync from a hub that
# was restored from an older backup can never un-revoke a ticket this gate knew revoked.
_V2 = """
CREATE TABLE revoked (ticket_id INTEGER PRIMARY KEY, status TEXT NOT NULL, serial INTEGER NOT NULL, at REAL NOT NULL);
"""

# v3: a ticket's barcode is looked up by its keyed digest (tickets.barcode); the gate never
# holds the barcode itself. Not unique: a revoked row may share a key with a valid one, and
# the lookup then takes the revoked one.
_V3 = """
ALTER TABLE tickets ADD COLUMN barcode_key BLOB;
CREATE INDEX tickets_barcode_key ON tickets(barcode_key) WHERE barcode_key IS NOT NULL;
"""

# v4: each entry state remembers the hub change seq of the last entry event folded in, so an
# event the gate already holds (from a snapshot page read after it) is never applied twice.
_V4 = """
ALTER TABLE entry_state ADD COLUMN state_seq INTEGER NOT NULL DEFAULT 0;
"""

#: MIGRATIONS[n] takes a file at version n to n+1.
MIGRATIONS: dict[int, str] = {0: _V1, 1: _V2, 2: _V3, 3: _V4}


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    event_id: int | None
    cursor: int
    synced_at: float | None
    tickets: int
    schema_version: int


def record_to_row(r: TicketRecord) -> tuple[Any, ...]:
    return (r.ticket_id, r.number, r.zone_id, r.policy_id, r.valid_from, r.valid_until, r.serial,
            str(r.status), r.rotating_secret, r.holder, r.seat, r.barcode_key)


def row_to_record(row: tuple[Any, ...]) -> TicketRecord:
    return TicketRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], TicketStatus(row[7]),
                        row[8], row[9], row[10], row[11])


def record_from_wire(d: Mapping[str, Any]) -> TicketRecord:
    """A ticket row as sync carries it (``rotating_secret`` base64, ``barcode_key`` hex, or null)."""
    secret = d.get("rotating_secret")
    key = d.get("barcode_key")
    return TicketRecord(
        ticket_id=int(d["ticket_id"]), number=str(d["number"]), zone_id=int(d["zone_id"]),
        policy_id=int(d["policy_id"]), valid_from=float(d["valid_from"]), valid_until=float(d["valid_until"]),
        serial=int(d.get("serial", 0)), status=TicketStatus(d.get("status", "valid")),
        rotating_secret=base64.b64decode(secret) if secret else None,
        holder=str(d.get("holder", "")), seat=str(d.get("seat", "")),
        barcode_key=bytes.fromhex(key) if key else None,
    )


def record_to_wire(r: TicketRecord) -> dict[str, Any]:
    return {
        "ticket_id": r.ticket_id, "number": r.number, "zone_id": r.zone_id, "policy_id": r.policy_id,
        "valid_from": r.valid_from, "valid_until": r.valid_until, "serial": r.serial, "status": str(r.status),
        "rotating_secret": base64.b64encode(r.rotating_secret).decode() if r.rotating_secret else None,
        "holder": r.holder, "seat": r.seat, "barcode_key": r.barcode_key.hex() if r.barcode_key else None,
    }


_TICKET_COLS = ("ticket_id, number, zone_id, policy_id, valid_from, valid_until, serial, status, rotating_secret, "
                "holder, seat, barcode_key")
_UPSERT_TICKET = f"INSERT OR REPLACE INTO tickets ({_TICKET_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
# Rows of the shape before barcode keys (11 columns), still accepted by bulk_load.
_UPSERT_TICKET_NO_KEY = ("INSERT OR REPLACE INTO tickets (ticket_id, number, zone_id, policy_id, valid_from, "
                         "valid_until, serial, status, rotating_secret, holder, seat) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
_UPSERT_STATE_SEQ = (
    "INSERT OR REPLACE INTO entry_state(ticket_id, entries, inside, last_entry_at, last_exit_at, state_seq) "
    "VALUES (?,?,?,?,?,?)")


class Replica:
    """Writer side of the replica (aiosqlite). Open with :meth:`open`."""

    def __init__(self, path: Path, db: aiosqlite.Connection) -> None:
        self.path = path
        self._db = db
        # One connection, many coroutines (sync batches, passages, fan-out): transactions
        # must not interleave, or a second BEGIN lands inside the first.
        self._tx = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path, *, migrate: bool = True) -> Replica:
        path = private_file(Path(path))  # holds rotating-code secrets
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            version = (await (await db.execute("PRAGMA user_version")).fetchone())[0]  # type: ignore[index]
            if version > SCHEMA_VERSION or (version < SCHEMA_VERSION and not migrate):
                raise ReplicaSchemaError(version, SCHEMA_VERSION)
            while version < SCHEMA_VERSION:
                await db.execute("BEGIN IMMEDIATE")
                for stmt in _statements(MIGRATIONS[version]):
                    await db.execute(stmt)
                version += 1
                await db.execute(f"PRAGMA user_version={version}")
                await db.execute("COMMIT")
        except BaseException:
            await db.close()
            raise
        return cls(path, db)

    async def close(self) -> None:
        await self._db.close()

    async def integrity_check(self) -> None:
        """Raise :class:`ReplicaError` unless SQLite's quick check passes and the replica is set up."""
        rows = await (await self._db.execute("PRAGMA quick_check")).fetchall()
        problems = [r[0] for r in rows if r[0] != "ok"]
        if problems:
            raise ReplicaError("integrity", "; ".join(problems[:5]))

    # --- meta -------------------------------------------------------------------------
    async def get_meta(self, key: str) -> str | None:
        row = await (await self._db.execute("SELECT value FROM meta WHERE key=?", (key,))).fetchone()
        return None if row is None else str(row[0])

    async def set_meta(self, values: Mapping[str, object]) -> None:
        async with self._tx:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                await self._set_meta_in_tx(values)
                await self._db.execute("COMMIT")
            except BaseException:
                await _rollback(self._db)
                raise

    async def _set_meta_in_tx(self, values: Mapping[str, object]) -> None:
        await self._db.executemany(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", [(k, str(v)) for k, v in values.items()]
        )

    async def info(self) -> ReplicaInfo:
        meta = dict(await (await self._db.execute("SELECT key, value FROM meta")).fetchall())
        count = (await (await self._db.execute("SELECT count(*) FROM tickets")).fetchone())[0]  # type: ignore[index]
        version = (await (await self._db.execute("PRAGMA user_version")).fetchone())[0]  # type: ignore[index]
        return ReplicaInfo(
            event_id=int(meta["event_id"]) if "event_id" in meta else None,
            cursor=int(meta.get("cursor", 0)),
            synced_at=float(meta["synced_at"]) if "synced_at" in meta else None,
            tickets=int(count),
            schema_version=int(version),
        )

    # --- event set-up -----------------------------------------------------------------
    async def set_event(
        self,
        *,
        event_id: int,
        keyring: KeyRing,
        zones: Iterable[Zone],
        policies: Iterable[EntryPolicy],
        allow_admit_on_signature: bool = True,
        pretix: PretixEvent | None = None,
    ) -> None:
        """Store the event the hub serves. ``pretix``: keys and product mapping for pretix
        signed tickets (kept as its wire form in ``meta``; None removes it)."""
        async with self._tx:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                await self._set_meta_in_tx({"event_id": event_id, "allow_admit_on_signature": int(allow_admit_on_signature)})
                if pretix is None:
                    await self._db.execute("DELETE FROM meta WHERE key = 'pretix'")
                else:
                    await self._set_meta_in_tx({"pretix": json.dumps(pretix.to_wire(), sort_keys=True)})
                await self._db.execute("DELETE FROM keys")
                await self._db.executemany(
                    "INSERT INTO keys(key_id, ed25519) VALUES (?, ?)",
                    [(k.key_id, k.to_dict()["ed25519"]) for k in keyring],
                )
                await self._replace_zones(zones)
                await self._replace_policies(policies)
                await self._db.execute("COMMIT")
            except BaseException:
                await _rollback(self._db)
                raise

    async def _replace_zones(self, zones: Iterable[Zone]) -> None:
        await self._db.execute("DELETE FROM zones")
        await self._db.executemany(
            "INSERT INTO zones(zone_id, name, gates, capacity) VALUES (?,?,?,?)",
            [(z.zone_id, z.name, json.dumps(sorted(z.gates)), z.capacity) for z in zones],
        )

    async def _replace_policies(self, policies: Iterable[EntryPolicy]) -> None:
        await self._db.execute("DELETE FROM policies")
        await self._db.executemany(
            "INSERT INTO policies(policy_id, name, kind, passback, wait_s, max_entries) VALUES (?,?,?,?,?,?)",
            [(p.policy_id, p.name, str(p.kind), str(p.passback), p.passback_wait_s, p.max_entries) for p in policies],
        )

    # --- tickets ------------------------------------------------------------------------
    async def apply_tickets(self, records: Iterable[TicketRecord], *, cursor: int | None = None,
                            now: float | None = None, from_snapshot: bool = True,
                            zones: Iterable[Zone] | None = None, policies: Iterable[EntryPolicy] | None = None,
                            meta: Mapping[str, object] | None = None,
                            entry_states: Mapping[int, tuple[EntryState, int]] | None = None) -> int:
        """Upsert ticket rows (a snapshot page or a delta), zones and policies in one transaction.

        Revocations are remembered as tombstones. From a **snapshot** (what a hub restored
        from an old backup sends) a tombstoned ticket stays revoked unless the row carries a
        *higher* serial (a fresh credential). A **delta** is newer than anything the gate
        knows by construction, so a valid row in a delta is a deliberate reinstatement and
        clears the tombstone.

        ``entry_states`` (ticket id -> (state, state_seq)) are stored in the same transaction:
        the hub's entry state from a snapshot, or entry events from other gates.
        """
        now = time.time() if now is None else now
        rows = list(records)
        tombstones = [(r.ticket_id, str(r.status), r.serial, now) for r in rows if r.status is not TicketStatus.VALID]
        async with self._tx:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                if rows:
                    valid = [r for r in rows if r.status is TicketStatus.VALID]
                    if from_snapshot:
                        await self._db.executemany("DELETE FROM revoked WHERE ticket_id = ? AND serial < ?",
                                                   [(r.ticket_id, r.serial) for r in valid])
                    else:
                        await self._db.executemany("DELETE FROM revoked WHERE ticket_id = ?", [(r.ticket_id,) for r in valid])
                    await self._db.executemany(_UPSERT_TICKET, [record_to_row(r) for r in rows])
                    # Re-apply remembered revocations that the incoming rows would undo.
                    await self._db.execute(
                        "UPDATE tickets SET status = revoked.status FROM revoked "
                        "WHERE revoked.ticket_id = tickets.ticket_id AND tickets.status = 'valid'"
                    )
                if tombstones:
                    await self._db.executemany(
                        "INSERT OR REPLACE INTO revoked(ticket_id, status, serial, at) VALUES (?,?,?,?)", tombstones
                    )
                if zones is not None:
                    await self._db.executemany(
                        "INSERT OR REPLACE INTO zones(zone_id, name, gates, capacity) VALUES (?,?,?,?)",
                        [(z.zone_id, z.name, json.dumps(sorted(z.gates)), z.capacity) for z in zones],
                    )
                if policies is not None:
                    await self._db.executemany(
                        "INSERT OR REPLACE INTO policies(policy_id, name, kind, passback, wait_s, max_entries) "
                        "VALUES (?,?,?,?,?,?)",
                        [(p.policy_id, p.name, str(p.kind), str(p.passback), p.passback_wait_s, p.max_entries)
                         for p in policies],
                    )
                if entry_states:
                    await self._db.executemany(_UPSERT_STATE_SEQ, [
                        (tid, st.entries, int(st.inside), st.last_entry_at, st.last_exit_at, seq)
                        for tid, (st, seq) in entry_states.items()])
                values: dict[str, object] = {"synced_at": now, **(meta or {})}
                if cursor is not None:
                    values["cursor"] = cursor
                await self._set_meta_in_tx(values)
                await self._db.execute("COMMIT")
            except BaseException:
                await _rollback(self._db)
                raise
            return len(rows)

    async def bulk_load(self, rows: Iterable[tuple[Any, ...]], *, batch: int = 50_000,
                        progress: Callable[[int], Awaitable[None] | None] | None = None) -> int:
        """Load raw ticket rows (the :func:`record_to_row` shape, or the same without the last
        column, ``barcode_key``) fast: for building test replicas."""
        total = 0
        chunk: list[tuple[Any, ...]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= batch:
                total += await self._load_chunk(chunk)
                chunk = []
                if progress is not None:
                    progress(total)
        if chunk:
            total += await self._load_chunk(chunk)
        return total

    async def _load_chunk(self, chunk: list[tuple[Any, ...]]) -> int:
        async with self._tx:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                await self._db.executemany(_UPSERT_TICKET if len(chunk[0]) == 12 else _UPSERT_TICKET_NO_KEY, chunk)
                await self._db.execute("COMMIT")
            except BaseException:
                await _rollback(self._db)
                raise
            return len(chunk)

        # --- entry state ----------------------------------------------------------------------
    async def put_entry_states(self, states: Mapping[int, EntryState], *, journal_seq: int | None = None) -> None:
        """Store entry states (own passages, or admits fanned out from other gates)."""
        async with self._tx:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                await self._db.executemany(
                    "INSERT INTO entry_state(ticket_id, entries, inside, last_entry_at, last_exit_at) "
                    "VALUES (?,?,?,?,?) ON CONFLICT(ticket_id) DO UPDATE SET entries = excluded.entries, "
                    "inside = excluded.inside, last_entry_at = excluded.last_entry_at, "
                    "last_exit_at = excluded.last_exit_at",
                    [(tid, s.entries, int(s.inside), s.last_entry_at, s.last_exit_at) for tid, s in states.items()],
                )
                if journal_seq is not None:
                    await self._set_meta_in_tx({"journal_applied_seq": journal_seq})
                await self._db.execute("COMMIT")
            except BaseException:
                await _rollback(self._db)
                raise


async def _rollback(db: aiosqlite.Connection) -> None:
    """Roll back after any failure, cancellation included.

    A task cancelled while awaiting ``BEGIN`` or ``COMMIT`` leaves that statement running in
    aiosqlite's thread; the ROLLBACK queued behind it undoes it, so the connection never
    stays inside a transaction (every later BEGIN would fail). "No transaction" is fine.
    """
    with contextlib.suppress(sqlite3.Error):
        await db.execute("ROLLBACK")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


class ReplicaReader:
    """The decision's view of the replica (implements :class:`tickets.model.ReplicaView`).

    A synchronous, read-only ``sqlite3`` connection for microsecond lookups on the loop
    thread. Zones, policies and keys are loaded into memory by :meth:`load_policy_parts`.
    """

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True, check_same_thread=False)
        self._conn.execute("PRAGMA query_only=1")
        self._by_id = f"SELECT {_TICKET_COLS} FROM tickets WHERE ticket_id = ?"
        self._by_number = f"SELECT {_TICKET_COLS} FROM tickets WHERE number = ? LIMIT 1"
        # Revoked or superseded first: if two rows ever share a key, never admit on the valid one.
        self._by_barcode_key = (f"SELECT {_TICKET_COLS} FROM tickets WHERE barcode_key = ? "
                                "ORDER BY status = 'valid' LIMIT 1")

    def close(self) -> None:
        self._conn.close()

    def ticket_by_id(self, ticket_id: int) -> TicketRecord | None:
        if not 0 <= ticket_id < 2**63:
            return None
        row = self._conn.execute(self._by_id, (ticket_id,)).fetchone()
        return None if row is None else row_to_record(row)

    def ticket_by_number(self, number: str) -> TicketRecord | None:
        row = self._conn.execute(self._by_number, (number,)).fetchone()
        return None if row is None else row_to_record(row)

    def entry_state_seq(self, ticket_id: int) -> int:
        """The hub change seq of the last entry event folded into this ticket's state (0: none)."""
        if not 0 <= ticket_id < 2**63:
            return 0
        row = self._conn.execute("SELECT state_seq FROM entry_state WHERE ticket_id = ?", (ticket_id,)).fetchone()
        return int(row[0]) if row else 0

    def ticket_by_barcode_key(self, key: bytes) -> TicketRecord | None:
        row = self._conn.execute(self._by_barcode_key, (key,)).fetchone()
        return None if row is None else row_to_record(row)

    def entry_state(self, ticket_id: int) -> EntryState:
        if not 0 <= ticket_id < 2**63:
            return EntryState()
        row = self._conn.execute(
            "SELECT entries, inside, last_entry_at, last_exit_at FROM entry_state WHERE ticket_id = ?", (ticket_id,)
        ).fetchone()
        if row is None:
            return EntryState()
        return EntryState(row[0], bool(row[1]), row[2], row[3])

    def meta(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT key, value FROM meta").fetchall())

    def keyring(self) -> KeyRing:
        rows = self._conn.execute("SELECT key_id, ed25519 FROM keys").fetchall()
        return KeyRing.from_list({"key_id": r[0], "ed25519": r[1]} for r in rows)

    def zones(self) -> dict[int, Zone]:
        rows = self._conn.execute("SELECT zone_id, name, gates, capacity FROM zones").fetchall()
        return {r[0]: Zone(r[0], r[1], frozenset(json.loads(r[2])), r[3]) for r in rows}

    def pretix(self) -> PretixEvent | None:
        """The event's pretix keys and product mapping, if the hub sent any.

        The stored form was checked when stored, so only a damaged file fails to parse: that
        is logged, and the gate decides without it (pretix signed tickets not yet in the
        replica are then refused UNKNOWN, never admitted blind).
        """
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'pretix'").fetchone()
        if row is None:
            return None
        try:
            return PretixEvent.from_wire(json.loads(row[0]))
        except (ValueError, TypeError) as exc:
            log.error("replica's pretix event info is unreadable (%s); pretix signatures not accepted", exc)
            return None

    def policies(self) -> dict[int, EntryPolicy]:
        rows = self._conn.execute(
            "SELECT policy_id, name, kind, passback, wait_s, max_entries FROM policies"
        ).fetchall()
        return {r[0]: EntryPolicy(r[0], r[1], EntryKind(r[2]), Passback(r[3]), r[4], r[5]) for r in rows}
