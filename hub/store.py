"""The hub's store: one SQLite file per venue (WAL) behind async methods (aiosqlite).

This is the only module that writes the hub database while it serves (the importer writes
through its own connection on a worker thread). The sync layer calls it through a thin
adapter; the API routes call it directly. Two connections: one writer (every write runs in
one ``BEGIN IMMEDIATE`` transaction under an asyncio lock) and one reader (sees committed
data only, so a half-done write is never served).

Ingest is idempotent on ``(gate_id, seq)``: a re-sent entry with the same nonce is a no-op;
the same seq with another nonce is kept aside in ``journal_rejects`` and reported as a
conflict, never overwriting the stored entry.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiosqlite

from gatehouse.keyfiles import load_keyring, load_signing_key, private_path, save_signing_key
from hub.errors import BadInput, Conflict, HubError, NotFound, NotInitialised, Unauthorized
from hub.manifest import rows_for_gate
from hub.reconcile import ConflictKind, PaperTick, bulk_ticks, paper_gate_id
from hub.records import (
    TICKET_COLUMNS,
    policy_from_row,
    policy_row,
    record_from_row,
    ticket_row,
    zone_row,
)
from hub.schema import DDL, DEFAULT_POLICIES, PRAGMAS, SCHEMA_VERSION
from tickets.entry import EntryKind, JournalEntry, Passage
from tickets.keys import KeyRing, SigningKey, generate_key
from tickets.manifest import (
    ManifestRow,
    PinHash,
    hash_pin,
    make_row,
    normalize_number,
    sort_rows,
    validate_pin,
)
from tickets.model import Direction, EntryState, Zone
from tickets.policy import EntryKind as PolicyKind
from tickets.policy import EntryPolicy, evaluate_entry, record_passage
from tickets.rotating import new_secret

log = logging.getLogger(__name__)

DB_NAME = "hub.db"
KEYS_DIR = "keys"
ROLES = ("viewer", "supervisor", "admin")
ENROLL_TTL_S = 24 * 3600.0
#: at most this many queued journal batches are stored in one transaction
GROUP_COMMIT_MAX = 256
ADMIT_REASONS = ("ADMIT", "ADMIT_REENTRY", "ADMIT_ON_SIGNATURE")
_ADMIT_SQL = "('ADMIT','ADMIT_REENTRY','ADMIT_ON_SIGNATURE')"
_SLUG = re.compile(r"[^a-z0-9]+")
_STEWARD_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def db_path(data_dir: Path) -> Path:
    return data_dir / DB_NAME


def hash_token(token: str) -> str:
    """Tokens are 32 random bytes, so one SHA-256 is enough (no password stretching needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def slug(name: str) -> str:
    s = _SLUG.sub("-", name.lower()).strip("-")
    return s[:32] or "gate"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling the API: a named token with a role."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change log: ``row`` is the full ticket/zone/policy row after it."""

    seq: int
    kind: str  # "ticket" | "zone" | "policy"
    row: dict[str, Any]
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "row": self.row, "at": self.at}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One page of the ticket table, read in one transaction at hub sequence ``seq``.

    Zones and policies come with every page (they are small). ``next_after`` is the
    ``after_ticket_id`` for the next page, or None on the last page. A gate applies the
    changes after the *first* page's ``seq`` once it has every page: changes carry full
    rows, so re-applying one a page already reflects is harmless.
    """

    seq: int
    zones: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    tickets: list[dict[str, Any]]
    next_after: int | None


@dataclass(slots=True)
class IngestResult:
    high_water: int
    stored: list[JournalEntry] = field(default_factory=list)
    admits: list[JournalEntry] = field(default_factory=list)
    duplicates: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    #: the gate's high water inside the latest completed backup
    backed_up_high_water: int = 0
    #: newly stored passage entries saying an admit did not pass (other gates undo that admit)
    not_passed: list[JournalEntry] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "high_water": self.high_water, "stored": len(self.stored), "admits": len(self.admits),
            "duplicates": self.duplicates, "conflicts": self.conflicts,
            "backed_up_high_water": self.backed_up_high_water,
        }


# --- creating a hub -------------------------------------------------------------------


def init_hub(
    data_dir: Path, *, event_id: int, name: str = "", key_id: int | None = None,
    valid_from: float | None = None, valid_until: float | None = None,
    allow_admit_on_signature: bool = True, clock: Callable[[], float] = time.time,
) -> str:
    """Create the data dir, database, event signing key and an admin token; return the token.

    Refuses an already initialised directory (never overwrites keys or data).
    """
    if not 1 <= event_id <= 0xFFFFFFFF:
        raise BadInput("event id must be 1..4294967295")
    path = db_path(data_dir)
    if path.exists():
        raise Conflict(f"{data_dir} already holds a hub ({path.name}); refusing to overwrite", code="already_initialised")
    data_dir.mkdir(parents=True, exist_ok=True)
    key = generate_key(key_id)
    save_signing_key(data_dir / KEYS_DIR, key)
    now = clock()
    con = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in PRAGMAS:
            con.execute(pragma)
        con.executescript(DDL)
        con.execute("BEGIN")
        meta = {
            "schema_version": str(SCHEMA_VERSION),
            "event_id": str(event_id),
            "event_name": name,
            "signing_key_id": str(key.key_id),
            "hub_epoch": secrets.token_hex(8),
            "allow_admit_on_signature": "1" if allow_admit_on_signature else "0",
            "default_valid_from": str(valid_from if valid_from is not None else now - 3600),
            "default_valid_until": str(valid_until if valid_until is not None else now + 7 * 86400),
            "created_at": str(now),
        }
        con.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
        for pid, pname in DEFAULT_POLICIES:
            cur = con.execute(
                "INSERT INTO changes (kind, ref, row, at) VALUES ('policy', ?, ?, ?)",
                (pid, json.dumps(policy_row(pid, pname, 600.0, None)), now),
            )
            con.execute("INSERT INTO policies (policy_id, name, wait_s, seq) VALUES (?, ?, 600, ?)",
                        (pid, pname, cur.lastrowid))
        token = secrets.token_urlsafe(32)
        con.execute("INSERT INTO tokens (token_hash, name, role, created_at) VALUES (?, 'admin', 'admin', ?)",
                    (hash_token(token), now))
        con.execute("INSERT INTO audit (at, actor, role, action, target, detail) VALUES (?, 'cli', 'admin', 'init', ?, ?)",
                    (now, str(event_id), json.dumps({"key_id": key.key_id, "name": name})))
        con.execute("COMMIT")
    finally:
        con.close()
    return token


# --- the store ------------------------------------------------------------------------


class HubStore:
    """Async access to one venue's hub database. Open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.data_dir = data_dir
        self.path = db_path(data_dir)
        self.clock = clock
        self._w: aiosqlite.Connection | None = None
        self._r: aiosqlite.Connection | None = None
        self._wlock = asyncio.Lock()
        self._signing_key: SigningKey | None = None
        self._keyring: KeyRing | None = None
        #: called with a gate id when a gate is revoked (the sync layer closes its socket)
        self.gate_revoked_listeners: list[Callable[[str], Any]] = []
        #: called with a command dict (``name``, ``reason``, ``args``, ``gates``: ids or None
        #: for all, ``command_id``) for the sync layer to send to gates
        self.command_listeners: list[Callable[[dict[str, Any]], Any]] = []
        #: called with the latest hub seq after a commit that logged changes (live push to gates)
        self.change_listeners: list[Callable[[int], Any]] = []
        #: called with each :class:`IngestResult` once stored (the dashboard's live feed);
        #: a listener must be quick and must not wait on a client
        self.ingest_listeners: list[Callable[[IngestResult], Any]] = []
        self._ingest_q: asyncio.Queue[tuple[str, list[JournalEntry], asyncio.Future[IngestResult]]] = asyncio.Queue()
        self._ingest_task: asyncio.Task[None] | None = None
        self._ingest_exec = ThreadPoolExecutor(1, thread_name_prefix="hub-ingest")
        self._ingest_busy = 0
        self._icon: sqlite3.Connection | None = None
        self._epoch: str | None = None

    @classmethod
    async def open(cls, data_dir: Path, *, clock: Callable[[], float] = time.time) -> HubStore:
        store = cls(data_dir, clock=clock)
        await store._connect()
        return store

    async def _connect(self) -> None:
        if not self.path.exists():
            raise NotInitialised(f"{self.data_dir} holds no hub; run: gatehouse hub init --data {self.data_dir}")
        self._w = await aiosqlite.connect(self.path, isolation_level=None)
        self._r = await aiosqlite.connect(self.path, isolation_level=None)
        for con in (self._w, self._r):
            for pragma in PRAGMAS:
                await con.execute(pragma)
        await self._w.executescript(DDL)  # idempotent: adds tables a newer hub introduced

    async def close(self) -> None:
        if self._ingest_task is not None:
            self._ingest_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ingest_task
            self._ingest_task = None
        if self._icon is not None:
            icon, self._icon = self._icon, None
            await asyncio.get_running_loop().run_in_executor(self._ingest_exec, icon.close)
        self._ingest_exec.shutdown(wait=True)
        for con in (self._w, self._r):
            if con is not None:
                await con.close()
        self._w = self._r = None

    @property
    def w(self) -> aiosqlite.Connection:
        if self._w is None:
            raise RuntimeError("store is closed")
        return self._w

    @property
    def r(self) -> aiosqlite.Connection:
        if self._r is None:
            raise RuntimeError("store is closed")
        return self._r

    async def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        async with self.r.execute(sql, args) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        async with self.r.execute(sql, args) as cur:
            return list(await cur.fetchall())

    async def _record_change(self, kind: str, ref: int, row: dict[str, Any], now: float) -> int:
        cur = await self.w.execute("INSERT INTO changes (kind, ref, row, at) VALUES (?, ?, ?, ?)",
                                   (kind, ref, json.dumps(row), now))
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE on the writer, first clearing a transaction a cancelled or failed
        writer left open. Every write holds ``_wlock``, so an open transaction seen here
        never committed and nobody else is in it: rolling it back is the only safe end."""
        for _ in range(2):
            if self.w.in_transaction:
                log.warning("hub writer found a transaction left open (a cancelled request); rolling it back")
                with contextlib.suppress(sqlite3.Error):
                    await self.w.execute("ROLLBACK")
            try:
                await self.w.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "within a transaction" not in str(exc):
                    raise
        await self.w.execute("BEGIN IMMEDIATE")

    async def _audit(self, actor: Principal, action: str, target: str, detail: dict[str, Any], now: float) -> None:
        await self.w.execute(
            "INSERT INTO audit (at, actor, role, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (now, actor.name, actor.role, action, target, json.dumps(detail)),
        )

    # --- meta, keys, event ---------------------------------------------------------------

    async def meta(self) -> dict[str, str]:
        return dict(await self._all("SELECT key, value FROM meta"))

    async def hub_epoch(self) -> str:
        """Changes when the hub is restored from a backup: gates then re-send their journal.

        Read once per open: a restore replaces the database while the hub is stopped.
        """
        if self._epoch is None:
            row = await self._one("SELECT value FROM meta WHERE key = 'hub_epoch'")
            self._epoch = str(row[0])
        return self._epoch

    def keyring(self) -> KeyRing:
        if self._keyring is None:
            self._keyring = load_keyring(self.data_dir / KEYS_DIR)
        return self._keyring

    async def signing_key(self) -> SigningKey:
        if self._signing_key is None:
            kid = int((await self.meta())["signing_key_id"])
            self._signing_key = await asyncio.to_thread(load_signing_key, private_path(self.data_dir / KEYS_DIR, kid))
        return self._signing_key

    async def rotate_key(self, actor: Principal, key_id: int | None = None) -> int:
        """A new signing key; the old public keys stay valid (credentials already issued still verify)."""
        key = generate_key(key_id)
        await asyncio.to_thread(save_signing_key, self.data_dir / KEYS_DIR, key)
        now = self.clock()
        async with self._wlock:
            await self._begin()
            await self.w.execute("UPDATE meta SET value = ? WHERE key = 'signing_key_id'", (str(key.key_id),))
            await self._audit(actor, "rotate_key", str(key.key_id), {}, now)
            await self.w.execute("COMMIT")
        self._signing_key = None
        self._keyring = None
        return key.key_id

    async def event_info(self) -> dict[str, Any]:
        meta = await self.meta()
        return {
            "event_id": int(meta["event_id"]),
            "name": meta.get("event_name", ""),
            "keys": self.keyring().to_list(),
            "zones": await self.zones(),
            "policies": await self.policies(),
            "allow_admit_on_signature": meta.get("allow_admit_on_signature", "1") == "1",
            "hub_epoch": meta["hub_epoch"],
            "current_seq": await self.current_seq(),
            "emergency": json.loads(meta["emergency"]) if "emergency" in meta else {"active": False},
        }

    # --- API tokens ------------------------------------------------------------------------

    async def authenticate(self, token: str) -> Principal | None:
        row = await self._one("SELECT name, role FROM tokens WHERE token_hash = ? AND revoked_at IS NULL",
                              (hash_token(token),))
        return Principal(row[0], row[1]) if row else None

    async def create_token(self, actor: Principal, name: str, role: str) -> str:
        if role not in ROLES:
            raise BadInput(f"role must be one of {', '.join(ROLES)}", code="bad_role")
        token = secrets.token_urlsafe(32)
        now = self.clock()
        async with self._wlock:
            await self._begin()
            await self.w.execute("INSERT INTO tokens (token_hash, name, role, created_at) VALUES (?, ?, ?, ?)",
                                 (hash_token(token), name, role, now))
            await self._audit(actor, "create_token", name, {"role": role}, now)
            await self.w.execute("COMMIT")
        return token

    # --- zones and policies ------------------------------------------------------------------

    async def _zone_gates(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for gate_id, zones in await self._all("SELECT gate_id, zones FROM gates WHERE status != 'revoked'"):
            for z in json.loads(zones):
                out.setdefault(int(z), []).append(gate_id)
        return out

    async def zones(self) -> list[dict[str, Any]]:
        gates = await self._zone_gates()
        return [zone_row(zid, name, cap, gates.get(zid, []))
                for zid, name, cap in await self._all("SELECT zone_id, name, capacity FROM zones ORDER BY zone_id")]

    async def policies(self) -> list[dict[str, Any]]:
        return [policy_row(pid, name, wait, mx)
                for pid, name, wait, mx in await self._all(
                    "SELECT policy_id, name, wait_s, max_entries FROM policies ORDER BY policy_id")]

    async def upsert_zone(self, actor: Principal, name: str, *, zone_id: int | None = None,
                          capacity: int | None = None) -> dict[str, Any]:
        name = name.strip()
        if not name or len(name) > 100:
            raise BadInput("zone name must be 1..100 characters")
        if capacity is not None and capacity < 0:
            raise BadInput("capacity must not be negative")
        now = self.clock()
        async with self._wlock:
            await self._begin()
            try:
                if zone_id is None:
                    async with self.w.execute("SELECT zone_id FROM zones WHERE name = ?", (name,)) as cur:
                        row = await cur.fetchone()
                    if row:
                        zone_id = int(row[0])
                    else:
                        async with self.w.execute("SELECT COALESCE(MAX(zone_id), 0) + 1 FROM zones") as cur:
                            zone_id = int((await cur.fetchone())[0])  # type: ignore[index]
                if not 1 <= zone_id <= 0xFFFF:
                    raise BadInput("zone id must be 1..65535")
                gates = (await self._zone_gates()).get(zone_id, [])
                row_d = zone_row(zone_id, name, capacity, gates)
                seq = await self._record_change("zone", zone_id, row_d, now)
                await self.w.execute(
                    "INSERT INTO zones (zone_id, name, capacity, seq) VALUES (?, ?, ?, ?) ON CONFLICT (zone_id)"
                    " DO UPDATE SET name = excluded.name, capacity = excluded.capacity, seq = excluded.seq",
                    (zone_id, name, capacity, seq),
                )
                await self._audit(actor, "upsert_zone", str(zone_id), {"name": name, "capacity": capacity}, now)
                await self.w.execute("COMMIT")
            except sqlite3.IntegrityError:
                await self.w.execute("ROLLBACK")
                raise Conflict(f"another zone is already named {name!r}", code="zone_name_taken") from None
            except BaseException:
                await self.w.execute("ROLLBACK")
                raise
        await self.changed()
        return row_d

    async def upsert_policy(self, actor: Principal, policy_id: int, preset: str, *, wait_s: float = 600.0,
                            max_entries: int | None = None) -> dict[str, Any]:
        if not 1 <= policy_id <= 255:
            raise BadInput("policy id must be 1..255")
        try:
            EntryPolicy.preset(policy_id, preset, wait_s=wait_s, max_entries=max_entries)
        except ValueError as exc:
            raise BadInput(str(exc), code="bad_policy") from None
        now = self.clock()
        row_d = policy_row(policy_id, preset, wait_s, max_entries)
        async with self._wlock:
            await self._begin()
            seq = await self._record_change("policy", policy_id, row_d, now)
            await self.w.execute(
                "INSERT INTO policies (policy_id, name, wait_s, max_entries, seq) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (policy_id) DO UPDATE SET name = excluded.name, wait_s = excluded.wait_s,"
                " max_entries = excluded.max_entries, seq = excluded.seq",
                (policy_id, preset, wait_s, max_entries, seq),
            )
            await self._audit(actor, "upsert_policy", str(policy_id), row_d, now)
            await self.w.execute("COMMIT")
        await self.changed()
        return row_d

    # --- tickets -------------------------------------------------------------------------

    async def ticket(self, ticket_id: int) -> dict[str, Any]:
        row = await self._one(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_id = ?", (ticket_id,))
        if row is None:
            raise NotFound(f"no ticket {ticket_id}", code="ticket_not_found")
        return self._ticket_view(row)

    @staticmethod
    def _ticket_view(row: Any) -> dict[str, Any]:
        d = ticket_row(row)
        d["external_id"] = row[11]
        d["opaque"] = row[12]
        return d

    async def ticket_count(self) -> int:
        row = await self._one("SELECT COUNT(*) FROM tickets")
        return int(row[0])

    async def ticket_by_opaque(self, opaque: str) -> dict[str, Any]:
        row = await self._one(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE opaque = ?", (opaque,))
        if row is None:
            raise NotFound("no such ticket page", code="ticket_not_found")
        return self._ticket_view(row)

    async def search_tickets(self, *, number_prefix: str | None = None, holder: str | None = None,
                             seat: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Search by ticket number prefix, holder name (substring, case-insensitive) and seat."""
        where, args = [], []
        if number_prefix:
            # a range on the unique index, not LIKE (LIKE would scan)
            where.append("number >= ? AND number < ?")
            args += [number_prefix, number_prefix + "\U0010ffff"]
        if holder:
            where.append("holder LIKE ? ESCAPE '\\' COLLATE NOCASE")
            args.append("%" + holder.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        if seat:
            where.append("seat = ?")
            args.append(seat)
        sql = f"SELECT {TICKET_COLUMNS} FROM tickets"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY number LIMIT ?"
        args.append(max(1, min(limit, 1000)))
        return [self._ticket_view(r) for r in await self._all(sql, args)]

    async def _change_ticket(self, actor: Principal, action: str, ticket_id: int,
                             mutate: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Read, mutate, write back and log one ticket change in one transaction."""
        now = self.clock()
        async with self._wlock:
            await self._begin()
            try:
                async with self.w.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_id = ?",
                                          (ticket_id,)) as cur:
                    row = await cur.fetchone()
                if row is None:
                    raise NotFound(f"no ticket {ticket_id}", code="ticket_not_found")
                before = self._ticket_view(row)
                raw_secret = row[8]
                after = mutate(dict(before))
                secret = after.pop("_secret", raw_secret)
                opaque = after.pop("_opaque", before["opaque"])
                row_after = (after["ticket_id"], after["number"], after["zone_id"], after["policy_id"],
                             after["valid_from"], after["valid_until"], after["serial"], after["status"],
                             secret, after["holder"], after["seat"])
                change_row = ticket_row(row_after)
                seq = await self._record_change("ticket", ticket_id, change_row, now)
                await self.w.execute(
                    "UPDATE tickets SET zone_id=?, policy_id=?, serial=?, status=?, rotating_secret=?, holder=?,"
                    " seat=?, opaque=?, seq=? WHERE ticket_id=?",
                    (after["zone_id"], after["policy_id"], after["serial"], after["status"], secret,
                     after["holder"], after["seat"], opaque, seq, ticket_id),
                )
                diff = {k: [before[k], change_row[k]] for k in change_row
                        if k != "rotating_secret" and before.get(k) != change_row[k]}
                await self._audit(actor, action, str(ticket_id), diff, now)
                await self.w.execute("COMMIT")
            except BaseException:
                await self.w.execute("ROLLBACK")
                raise
        await self.changed()
        change_row["external_id"] = before["external_id"]
        change_row["opaque"] = opaque
        change_row["seq"] = seq
        return change_row

    async def revoke_ticket(self, actor: Principal, ticket_id: int) -> dict[str, Any]:
        def mutate(t: dict[str, Any]) -> dict[str, Any]:
            if t["status"] == "revoked":
                raise Conflict(f"ticket {ticket_id} is already revoked", code="already_revoked")
            t["status"] = "revoked"
            return t
        return await self._change_ticket(actor, "revoke", ticket_id, mutate)

    async def reinstate_ticket(self, actor: Principal, ticket_id: int) -> dict[str, Any]:
        def mutate(t: dict[str, Any]) -> dict[str, Any]:
            if t["status"] == "valid":
                raise Conflict(f"ticket {ticket_id} is valid already", code="not_revoked")
            t["status"] = "valid"
            return t
        return await self._change_ticket(actor, "reinstate", ticket_id, mutate)

    async def upgrade_ticket(self, actor: Principal, ticket_id: int, *, zone_id: int | None = None,
                             seat: str | None = None, policy_id: int | None = None) -> dict[str, Any]:
        """New zone, seat or policy: a new credential (serial + 1); the old one is SUPERSEDED."""
        if zone_id is not None and await self._one("SELECT 1 FROM zones WHERE zone_id = ?", (zone_id,)) is None:
            raise BadInput(f"zone {zone_id} does not exist", code="zone_not_found")
        if policy_id is not None and await self._one("SELECT 1 FROM policies WHERE policy_id = ?",
                                                     (policy_id,)) is None:
            raise BadInput(f"entry policy {policy_id} does not exist", code="policy_not_found")
        if seat is not None and len(seat) > 64:
            raise BadInput("seat is longer than 64 characters")

        def mutate(t: dict[str, Any]) -> dict[str, Any]:
            new = {**t}
            if zone_id is not None:
                new["zone_id"] = zone_id
            if seat is not None:
                new["seat"] = seat
            if policy_id is not None:
                new["policy_id"] = policy_id
            if all(new[k] == t[k] for k in ("zone_id", "seat", "policy_id")):
                raise Conflict("nothing to change: zone, seat and policy are as given", code="no_change")
            return _bump(new)
        return await self._change_ticket(actor, "upgrade", ticket_id, mutate)

    async def transfer_ticket(self, actor: Principal, ticket_id: int, holder: str) -> dict[str, Any]:
        """A new holder: a new credential (serial + 1), and a new rotating secret and page if rotating."""
        holder = holder.strip()
        if not holder or len(holder) > 200:
            raise BadInput("holder must be 1..200 characters")

        def mutate(t: dict[str, Any]) -> dict[str, Any]:
            if t["holder"] == holder:
                raise Conflict("the ticket already belongs to that holder", code="no_change")
            t["holder"] = holder
            if t["rotating_secret"] is not None:
                t["_secret"] = new_secret()
                t["_opaque"] = secrets.token_urlsafe(12)
            return _bump(t)
        return await self._change_ticket(actor, "transfer", ticket_id, mutate)

    # --- the change log ----------------------------------------------------------------------

    async def current_seq(self) -> int:
        row = await self._one("SELECT seq FROM sqlite_sequence WHERE name = 'changes'")
        return int(row[0]) if row else 0

    async def changes_since(self, cursor: int, limit: int = 1000) -> list[Change]:
        rows = await self._all("SELECT seq, kind, row, at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                               (cursor, max(1, min(limit, 100_000))))
        return [Change(seq, kind, json.loads(row), at) for seq, kind, row, at in rows]

    async def snapshot_rows(self, after_ticket_id: int = 0, limit: int = 5000) -> Snapshot:
        con = self.r
        await con.execute("BEGIN")  # one read transaction: seq, zones, policies and page agree
        try:
            async with con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'") as cur:
                row = await cur.fetchone()
            seq = int(row[0]) if row else 0
            async with con.execute("SELECT gate_id, zones FROM gates WHERE status != 'revoked'") as cur:
                zg: dict[int, list[str]] = {}
                for gate_id, zones in await cur.fetchall():
                    for z in json.loads(zones):
                        zg.setdefault(int(z), []).append(gate_id)
            async with con.execute("SELECT zone_id, name, capacity FROM zones ORDER BY zone_id") as cur:
                zones_l = [zone_row(a, b, c, zg.get(a, [])) for a, b, c in await cur.fetchall()]
            async with con.execute("SELECT policy_id, name, wait_s, max_entries FROM policies ORDER BY policy_id") as cur:
                policies_l = [policy_row(*r) for r in await cur.fetchall()]
            lim = max(1, min(limit, 100_000))
            async with con.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_id > ? ORDER BY ticket_id LIMIT ?",
                                   (after_ticket_id, lim)) as cur:
                tickets_l = [ticket_row(r) for r in await cur.fetchall()]
        finally:
            await con.execute("COMMIT")
        next_after = tickets_l[-1]["ticket_id"] if len(tickets_l) == lim else None
        return Snapshot(seq, zones_l, policies_l, tickets_l, next_after)

    # --- gates -------------------------------------------------------------------------------

    async def create_gate(self, actor: Principal, name: str, zones: Iterable[int] = (), *,
                          ttl_s: float = ENROLL_TTL_S) -> tuple[str, str, float]:
        """Register a gate; returns (gate_id, one-time enrolment token, expiry)."""
        name = name.strip()
        if not name or len(name) > 100:
            raise BadInput("gate name must be 1..100 characters")
        zone_list = sorted({int(z) for z in zones})
        known = {r[0] for r in await self._all("SELECT zone_id FROM zones")}
        missing = [z for z in zone_list if z not in known]
        if missing:
            raise BadInput(f"unknown zone ids: {missing}", code="zone_not_found")
        enroll = secrets.token_urlsafe(24)
        now = self.clock()
        expires = now + ttl_s
        async with self._wlock:
            await self._begin()
            try:
                base = slug(name)
                gate_id = base
                n = 2
                while True:
                    async with self.w.execute("SELECT 1 FROM gates WHERE gate_id = ?", (gate_id,)) as cur:
                        if await cur.fetchone() is None:
                            break
                    gate_id = f"{base}-{n}"
                    n += 1
                await self.w.execute(
                    "INSERT INTO gates (gate_id, name, zones, status, enroll_hash, enroll_expires, created_at)"
                    " VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                    (gate_id, name, json.dumps(zone_list), hash_token(enroll), expires, now),
                )
                await self._emit_zone_changes(zone_list, now)
                await self._audit(actor, "create_gate", gate_id, {"name": name, "zones": zone_list}, now)
                await self.w.execute("COMMIT")
            except BaseException:
                await self.w.execute("ROLLBACK")
                raise
        await self.changed()
        return gate_id, enroll, expires

    async def _emit_zone_changes(self, zone_ids: Iterable[int], now: float) -> None:
        """Zone rows carry their gates: record a change for each zone whose gate list moved."""
        ids = sorted(set(zone_ids))
        if not ids:
            return
        gates: dict[int, list[str]] = {}
        async with self.w.execute("SELECT gate_id, zones FROM gates WHERE status != 'revoked'") as cur:
            for gate_id, zs in await cur.fetchall():
                for z in json.loads(zs):
                    gates.setdefault(int(z), []).append(gate_id)
        for zid in ids:
            async with self.w.execute("SELECT name, capacity FROM zones WHERE zone_id = ?", (zid,)) as cur:
                row = await cur.fetchone()
            if row is None:
                continue
            seq = await self._record_change("zone", zid, zone_row(zid, row[0], row[1], gates.get(zid, [])), now)
            await self.w.execute("UPDATE zones SET seq = ? WHERE zone_id = ?", (seq, zid))

    async def enroll_gate(self, enroll_token: str) -> tuple[str, str]:
        """Exchange a one-time enrolment token for the gate's long-lived token: (gate_id, token)."""
        now = self.clock()
        token = secrets.token_urlsafe(32)
        async with self._wlock:
            await self._begin()
            try:
                async with self.w.execute(
                    "SELECT gate_id, enroll_expires, status FROM gates WHERE enroll_hash = ?",
                    (hash_token(enroll_token),),
                ) as cur:
                    row = await cur.fetchone()
                if row is None or row[2] != "pending":
                    raise Unauthorized("unknown or already used enrolment token", code="bad_enrolment_token")
                if row[1] is not None and now > row[1]:
                    raise Unauthorized("the enrolment token has expired; issue a new one", code="enrolment_expired")
                gate_id = row[0]
                await self.w.execute(
                    "UPDATE gates SET status = 'active', token_hash = ?, enroll_hash = NULL, enroll_expires = NULL,"
                    " last_seen = ? WHERE gate_id = ?",
                    (hash_token(token), now, gate_id),
                )
                await self._audit(Principal(gate_id, "gate"), "enroll", gate_id, {}, now)
                await self.w.execute("COMMIT")
            except BaseException:
                await self.w.execute("ROLLBACK")
                raise
        return gate_id, token

    async def reissue_enrolment(self, actor: Principal, gate_id: str, *, ttl_s: float = ENROLL_TTL_S) -> tuple[str, float]:
        """A new one-time token for a gate (a replaced Pi); the old gate token stops working."""
        enroll = secrets.token_urlsafe(24)
        now = self.clock()
        async with self._wlock:
            await self._begin()
            cur = await self.w.execute(
                "UPDATE gates SET status = 'pending', token_hash = NULL, enroll_hash = ?, enroll_expires = ?"
                " WHERE gate_id = ? AND status != 'revoked'", (hash_token(enroll), now + ttl_s, gate_id))
            if cur.rowcount == 0:
                await self.w.execute("ROLLBACK")
                raise NotFound(f"no enrollable gate {gate_id!r}", code="gate_not_found")
            await self._audit(actor, "reissue_enrolment", gate_id, {}, now)
            await self.w.execute("COMMIT")
        return enroll, now + ttl_s

    async def authenticate_gate(self, token: str) -> str | None:
        row = await self._one("SELECT gate_id FROM gates WHERE token_hash = ? AND status = 'active'",
                              (hash_token(token),))
        return str(row[0]) if row else None

    async def gates(self) -> list[dict[str, Any]]:
        rows = await self._all(
            "SELECT gate_id, name, zones, status, high_water, created_at, last_seen, enroll_expires FROM gates"
            " ORDER BY gate_id")
        return [{"gate_id": g, "name": n, "zones": json.loads(z), "status": s, "high_water": hw,
                 "created_at": c, "last_seen": ls, "enroll_expires": ee}
                for g, n, z, s, hw, c, ls, ee in rows]

    async def gate(self, gate_id: str) -> dict[str, Any]:
        for g in await self.gates():
            if g["gate_id"] == gate_id:
                return g
        raise NotFound(f"no gate {gate_id!r}", code="gate_not_found")

    async def update_gate(self, actor: Principal, gate_id: str, *, name: str | None = None,
                          zones: Iterable[int] | None = None) -> dict[str, Any]:
        """Rename a gate or assign its zones (zones changed → zone changes for the gates to sync)."""
        old = await self.gate(gate_id)
        zone_list = sorted({int(z) for z in zones}) if zones is not None else old["zones"]
        if zones is not None:
            known = {r[0] for r in await self._all("SELECT zone_id FROM zones")}
            missing = [z for z in zone_list if z not in known]
            if missing:
                raise BadInput(f"unknown zone ids: {missing}", code="zone_not_found")
        new_name = name.strip() if name is not None else old["name"]
        if not new_name or len(new_name) > 100:
            raise BadInput("gate name must be 1..100 characters")
        now = self.clock()
        async with self._wlock:
            await self._begin()
            await self.w.execute("UPDATE gates SET name = ?, zones = ? WHERE gate_id = ?",
                                 (new_name, json.dumps(zone_list), gate_id))
            await self._emit_zone_changes(set(zone_list) ^ set(old["zones"]), now)
            await self._audit(actor, "update_gate", gate_id, {"name": new_name, "zones": zone_list}, now)
            await self.w.execute("COMMIT")
        await self.changed()
        return await self.gate(gate_id)

    async def revoke_gate(self, actor: Principal, gate_id: str) -> dict[str, Any]:
        """Refuse the gate from now on; listeners (the sync layer) close its connection."""
        old = await self.gate(gate_id)
        if old["status"] == "revoked":
            raise Conflict(f"gate {gate_id!r} is already revoked", code="already_revoked")
        now = self.clock()
        async with self._wlock:
            await self._begin()
            await self.w.execute("UPDATE gates SET status = 'revoked', token_hash = NULL, enroll_hash = NULL"
                                 " WHERE gate_id = ?", (gate_id,))
            await self._emit_zone_changes(old["zones"], now)
            await self._audit(actor, "revoke_gate", gate_id, {}, now)
            await self.w.execute("COMMIT")
        await self.changed()
        await self._notify(self.gate_revoked_listeners, gate_id)
        return await self.gate(gate_id)

    # --- control-room commands ----------------------------------------------------------------

    async def emergency(self) -> dict[str, Any]:
        """The control room's emergency state: ``active``, ``reason``, ``by``, ``at``, ``gates``."""
        row = await self._one("SELECT value FROM meta WHERE key = 'emergency'")
        return json.loads(row[0]) if row else {"active": False, "reason": "", "by": None, "at": None, "gates": None}

    async def set_emergency(self, actor: Principal, active: bool, reason: str,
                            gates: Sequence[str] | None = None) -> dict[str, Any]:
        """Declare or end an emergency (free egress) at all gates or the named ones.

        Recorded (meta + audit) and handed to ``command_listeners``; gates latch emergency
        until a reset, so ending it here sends ``emergency_off`` for staff to reset locally.
        """
        reason = reason.strip()
        if not reason or len(reason) > 500:
            raise BadInput("reason must be 1..500 characters")
        if gates is not None:
            known = {g["gate_id"] for g in await self.gates()}
            missing = sorted(set(gates) - known)
            if missing:
                raise BadInput(f"unknown gates: {missing}", code="gate_not_found")
        now = self.clock()
        state = {"active": active, "reason": reason, "by": actor.name, "at": now,
                 "gates": sorted(gates) if gates is not None else None}
        command = {"name": "emergency_on" if active else "emergency_off", "reason": reason, "args": {},
                   "gates": state["gates"], "command_id": secrets.token_hex(8)}
        async with self._wlock:
            await self._begin()
            await self.w.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('emergency', ?)",
                                 (json.dumps(state),))
            await self._audit(actor, command["name"], ",".join(state["gates"] or ["all"]), command, now)
            await self.w.execute("COMMIT")
        log.warning("%s by %s: %s", command["name"], actor.name, reason)
        await self._notify(self.command_listeners, command)
        return {**state, "command_id": command["command_id"]}

    async def changed(self) -> None:
        """Tell the change listeners that new changes are committed (also after an import)."""
        if self.change_listeners:
            await self._notify(self.change_listeners, await self.current_seq())

    async def _notify(self, listeners: list[Callable[[Any], Any]], arg: Any) -> None:
        for listener in list(listeners):
            try:
                result = listener(arg)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # a failing listener must not undo what was recorded
                log.exception("listener failed for %r", arg)

    # --- the journal --------------------------------------------------------------------------

    async def journal_high_water(self, gate_id: str) -> int:
        row = await self._one("SELECT high_water FROM gates WHERE gate_id = ?", (gate_id,))
        return int(row[0]) if row else 0

    @property
    def ingest_queue_length(self) -> int:
        """Batches waiting for the ingest writer (for metrics)."""
        return self._ingest_q.qsize() + self._ingest_busy

    async def ingest(self, gate_id: str, entries: Sequence[JournalEntry]) -> IngestResult:
        """Store a batch of one gate's journal entries; see the module docstring for the rules.

        Batches from all gates queue for one writer thread, which stores everything waiting
        in one transaction (group commit): one fsync for many gates, and the event loop only
        awaits a future.
        """
        for e in entries:
            if e.gate_id != gate_id:
                raise BadInput(f"entry seq {e.seq} names gate {e.gate_id!r}, not {gate_id!r}", code="wrong_gate")
        if self._ingest_task is None or self._ingest_task.done():
            self._ingest_task = asyncio.create_task(self._ingest_writer(), name="hub-ingest-writer")
        fut: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        await self._ingest_q.put((gate_id, list(entries), fut))
        result = await fut
        if self.ingest_listeners and (result.stored or result.conflicts):
            await self._notify(self.ingest_listeners, result)
        return result

    async def _ingest_writer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._ingest_q.get()]
            while len(jobs) < GROUP_COMMIT_MAX and not self._ingest_q.empty():
                jobs.append(self._ingest_q.get_nowait())
            self._ingest_busy = len(jobs)
            try:
                outcomes = await loop.run_in_executor(
                    self._ingest_exec, self._ingest_sync, [(g, e) for g, e, _f in jobs], self.clock())
            except BaseException as exc:  # the whole group failed (disk full, closed store)
                outcomes = [exc] * len(jobs)
                if isinstance(exc, asyncio.CancelledError):
                    for _g, _e, fut in jobs:
                        if not fut.done():
                            fut.set_exception(exc)
                    raise
            finally:
                self._ingest_busy = 0
            for (_g, _e, fut), outcome in zip(jobs, outcomes, strict=True):
                if fut.done():
                    continue
                if isinstance(outcome, BaseException):
                    fut.set_exception(outcome)
                else:
                    fut.set_result(outcome)

    def _ingest_con(self) -> sqlite3.Connection:
        if self._icon is None:
            self._icon = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._icon.create_function("gh_norm", 1, _norm_or_none, deterministic=True)
            for pragma in PRAGMAS:
                self._icon.execute(pragma)
        return self._icon

    def _ingest_sync(self, jobs: list[tuple[str, list[JournalEntry]]], now: float) -> list[IngestResult | Exception]:
        """On the ingest thread: store every job in one transaction, each in its own savepoint."""
        con = self._ingest_con()
        out: list[IngestResult | Exception] = []
        con.execute("BEGIN IMMEDIATE")
        try:
            for gate_id, entries in jobs:
                con.execute("SAVEPOINT job")
                try:
                    out.append(_ingest_one(con, gate_id, entries, now))
                    con.execute("RELEASE job")
                except Exception as exc:  # one gate's bad batch must not fail the others in the group
                    con.execute("ROLLBACK TO job")
                    con.execute("RELEASE job")
                    if isinstance(exc, sqlite3.OperationalError):
                        raise  # the database itself is failing: the whole group fails
                    if not isinstance(exc, HubError):
                        log.warning("gate %s: batch refused: %r", gate_id, exc)
                    out.append(exc if isinstance(exc, HubError) else BadInput(
                        f"batch refused: {type(exc).__name__}: {exc}", code="bad_entry"))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return out

    async def validations(self, *, ticket_id: int | None = None, gate_id: str | None = None,
                          since: float | None = None, until: float | None = None, reason: str | None = None,
                          kind: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        where, args = [], []
        for col, val in (("ticket_id", ticket_id), ("gate_id", gate_id), ("reason", reason), ("kind", kind)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if since is not None:
            where.append("at >= ?")
            args.append(since)
        if until is not None:
            where.append("at < ?")
            args.append(until)
        sql = ("SELECT gate_id, seq, nonce, at, kind, reason, ticket_id, ticket_number, zone_id, raw, direction,"
               " mode, cursor, passage, ref_seq, staff_id, detail, received_at FROM journal")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY at DESC, gate_id, seq DESC LIMIT ?"
        args.append(max(1, min(limit, 10_000)))
        out = []
        for r in await self._all(sql, args):
            entry = JournalEntry(gate_id=r[0], seq=r[1], nonce=r[2], at=r[3], kind=EntryKind(r[4]), reason=r[5],
                                 ticket_id=r[6], ticket_number=r[7], zone_id=r[8], raw=r[9], direction=r[10],
                                 mode=r[11], cursor=r[12], passage=Passage(r[13]), ref_seq=r[14], staff_id=r[15],
                                 detail=r[16])
            d = entry.to_wire()
            d["received_at"] = r[17]
            out.append(d)
        return out

    # --- conflicts -----------------------------------------------------------------------------

    async def conflicts(self, *, open_only: bool = False, limit: int = 500) -> list[dict[str, Any]]:
        sql = ("SELECT conflict_id, kind, ticket_id, first_gate, first_seq, second_gate, second_seq, detail,"
               " created_at, resolved_at, resolved_by, resolution FROM conflicts")
        if open_only:
            sql += " WHERE resolved_at IS NULL"
        sql += " ORDER BY conflict_id DESC LIMIT ?"
        out = []
        for r in await self._all(sql, (max(1, min(limit, 10_000)),)):
            entries = []
            for g, s in ((r[3], r[4]), (r[5], r[6])):
                entries.append(await self._entry(g, s))
            out.append({"conflict_id": r[0], "kind": r[1], "ticket_id": r[2],
                        "first": entries[0], "second": entries[1], "detail": json.loads(r[7]),
                        "created_at": r[8], "resolved_at": r[9], "resolved_by": r[10], "resolution": r[11]})
        return out

    async def _entry(self, gate_id: str, seq: int) -> dict[str, Any] | None:
        row = await self._one(
            "SELECT gate_id, seq, at, kind, reason, ticket_id, ticket_number, direction, mode, staff_id, detail"
            " FROM journal WHERE gate_id = ? AND seq = ?", (gate_id, seq))
        if row is None:
            return {"gate_id": gate_id, "seq": seq}
        keys = ("gate_id", "seq", "at", "kind", "reason", "ticket_id", "ticket_number", "direction", "mode",
                "staff_id", "detail")
        return dict(zip(keys, row, strict=True))

    async def open_conflict_count(self) -> int:
        row = await self._one("SELECT COUNT(*) FROM conflicts WHERE resolved_at IS NULL")
        return int(row[0])

    async def resolve_conflict(self, actor: Principal, conflict_id: int, resolution: str) -> dict[str, Any]:
        resolution = resolution.strip()
        if not resolution or len(resolution) > 1000:
            raise BadInput("resolution must be 1..1000 characters")
        now = self.clock()
        async with self._wlock:
            await self._begin()
            cur = await self.w.execute(
                "UPDATE conflicts SET resolved_at = ?, resolved_by = ?, resolution = ?"
                " WHERE conflict_id = ? AND resolved_at IS NULL", (now, actor.name, resolution, conflict_id))
            if cur.rowcount == 0:
                await self.w.execute("ROLLBACK")
                if await self._one("SELECT 1 FROM conflicts WHERE conflict_id = ?", (conflict_id,)) is None:
                    raise NotFound(f"no conflict {conflict_id}", code="conflict_not_found")
                raise Conflict(f"conflict {conflict_id} is already resolved", code="already_resolved")
            await self._audit(actor, "resolve_conflict", str(conflict_id), {"resolution": resolution}, now)
            await self.w.execute("COMMIT")
        return {"conflict_id": conflict_id, "resolved_at": now, "resolved_by": actor.name, "resolution": resolution}

    # --- stats ---------------------------------------------------------------------------------

    async def stats(self, *, since: float | None = None, now: float | None = None) -> dict[str, Any]:
        """Entries/exits per minute per gate and zone, occupancy per zone, refusals by reason."""
        now = self.clock() if now is None else now
        since = now - 3600 if since is None else since
        admitted = f"kind IN ('scan', 'manual') AND reason IN {_ADMIT_SQL}"
        per_gate = [
            {"gate_id": g, "minute": int(m) * 60, "entries": ins, "exits": outs}
            for g, m, ins, outs in await self._all(
                f"SELECT gate_id, CAST(at / 60 AS INTEGER) AS m, SUM(direction = 'in'), SUM(direction = 'out')"
                f" FROM journal WHERE {admitted} AND at >= ? AND at < ? GROUP BY gate_id, m ORDER BY m, gate_id",
                (since, now + 60))
        ]
        per_zone = [
            {"zone_id": z, "minute": int(m) * 60, "entries": ins, "exits": outs}
            for z, m, ins, outs in await self._all(
                f"SELECT zone_id, CAST(at / 60 AS INTEGER) AS m, SUM(direction = 'in'), SUM(direction = 'out')"
                f" FROM journal WHERE {admitted} AND zone_id IS NOT NULL AND at >= ? AND at < ?"
                " GROUP BY zone_id, m ORDER BY m, zone_id", (since, now + 60))
        ]
        # occupancy counts the whole event, not the window; admits that did not pass are not inside
        occ = dict(await self._all(
            f"SELECT zone_id, SUM(CASE direction WHEN 'in' THEN 1 ELSE -1 END) FROM journal j WHERE {admitted}"
            " AND zone_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM journal p WHERE p.gate_id = j.gate_id"
            " AND p.kind = 'passage' AND p.ref_seq = j.seq AND p.passage = 'not_passed') GROUP BY zone_id"))
        occupancy = []
        for z in await self.zones():
            inside = max(0, int(occ.get(z["zone_id"], 0)))
            cap = z["capacity"]
            occupancy.append({"zone_id": z["zone_id"], "name": z["name"], "inside": inside, "capacity": cap,
                              "ratio": round(inside / cap, 4) if cap else None})
        refusals = dict(await self._all(
            f"SELECT reason, COUNT(*) FROM journal WHERE kind = 'scan' AND reason IS NOT NULL"
            f" AND reason NOT IN {_ADMIT_SQL} AND at >= ? AND at < ? GROUP BY reason", (since, now + 60)))
        totals = await self._one(
            f"SELECT COUNT(*), COALESCE(SUM({admitted} AND direction = 'in'), 0) FROM journal")
        return {
            "since": since, "now": now, "per_gate_minute": per_gate, "per_zone_minute": per_zone,
            "occupancy": occupancy, "refusals_by_reason": refusals,
            "journal_entries": totals[0], "entries_total": totals[1],
            "open_conflicts": await self.open_conflict_count(),
        }

    # --- audit ---------------------------------------------------------------------------------

    async def record_audit(self, actor: Principal, action: str, target: str, detail: dict[str, Any]) -> None:
        now = self.clock()
        async with self._wlock:
            await self._audit(actor, action, target, detail, now)

    async def audit_log(self, *, limit: int = 200, action: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, at, actor, role, action, target, detail FROM audit"
        args: list[Any] = []
        if action:
            sql += " WHERE action = ?"
            args.append(action)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(max(1, min(limit, 10_000)))
        return [{"id": i, "at": at, "actor": a, "role": r, "action": ac, "target": t, "detail": json.loads(d)}
                for i, at, a, r, ac, t, d in await self._all(sql, args)]

    # --- backup --------------------------------------------------------------------------------

    async def backup(self, actor: Principal, dest: Path) -> dict[str, Any]:
        """Online backup with the sqlite backup API (the hub keeps serving meanwhile).

        Records each gate's high water *as contained in the backup*: a gate may drop journal
        entries up to that mark (see :meth:`backed_up_high_water`).
        """
        def run() -> dict[str, int]:
            tmp = dest.with_name(dest.name + ".partial")
            if dest.exists():
                raise Conflict(f"{dest} exists; refusing to overwrite a backup", code="backup_exists")
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = sqlite3.connect(self.path, timeout=30.0)
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst, pages=4096)
                hws = dict(dst.execute("SELECT gate_id, high_water FROM gates").fetchall())
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
                src.close()
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
            hws["__bytes__"] = dest.stat().st_size
            return hws

        high_waters = await asyncio.to_thread(run)
        size = high_waters.pop("__bytes__")
        now = self.clock()
        async with self._wlock:
            await self._begin()
            await self.w.execute("INSERT INTO backups (at, path, high_waters) VALUES (?, ?, ?)",
                                 (now, str(dest), json.dumps(high_waters)))
            await self._audit(actor, "backup", str(dest), {"gates": len(high_waters)}, now)
            await self.w.execute("COMMIT")
        return {"path": str(dest), "at": now, "high_waters": high_waters, "bytes": size}

    async def backed_up_high_water(self, gate_id: str) -> int:
        """The gate's journal high water inside the latest completed backup (0 if none)."""
        row = await self._one("SELECT high_waters FROM backups ORDER BY id DESC LIMIT 1")
        if row is None:
            return 0
        return int(json.loads(row[0]).get(gate_id, 0))

    # --- the control-room dashboard ---------------------------------------------------------

    async def latest_modes(self) -> dict[str, dict[str, Any]]:
        """Each gate's latest MODE journal entry: ``{gate_id: {mode, cause, at, seq}}``.

        The detail of a mode entry reads ``"OLD->NEW: cause"``; the cause is split off so the
        dashboard can show why a gate is where it is. Reads only the partial index of mode and
        event entries, so it stays cheap with millions of scans in the journal.
        """
        rows = await self._all(
            "SELECT j.gate_id, j.seq, j.at, j.mode, j.detail FROM journal j"
            " JOIN (SELECT gate_id, MAX(seq) AS seq FROM journal WHERE kind IN ('mode', 'event') AND kind = 'mode'"
            " GROUP BY gate_id) last ON last.gate_id = j.gate_id AND last.seq = j.seq")
        out = {}
        for gate_id, seq, at, mode, detail in rows:
            _transition, _sep, cause = str(detail).partition(": ")
            out[gate_id] = {"mode": mode, "cause": cause, "at": at, "seq": seq}
        return out

    async def alert_entries(self, *, limit: int = 50, since: float | None = None) -> list[dict[str, Any]]:
        """The newest mode changes and hardware/sync events from every gate, newest first."""
        # a passage reported by the turnstile is routine (one per fan): not an alert
        sql = ("SELECT gate_id, seq, at, kind, mode, detail, received_at FROM journal"
               " WHERE kind IN ('mode', 'event') AND detail NOT LIKE 'turnstile\\_passage:%' ESCAPE '\\'")
        args: list[Any] = []
        if since is not None:
            sql += " AND at >= ?"
            args.append(since)
        sql += " ORDER BY at DESC LIMIT ?"
        args.append(max(1, min(limit, 1000)))
        keys = ("gate_id", "seq", "at", "kind", "mode", "detail", "received_at")
        return [dict(zip(keys, r, strict=True)) for r in await self._all(sql, args)]


    # --- stewards, gate manifests and paper ticks (the paper fallback) -------------------------

    async def add_steward(self, actor: Principal, steward_id: str, name: str, pin: str, *,
                          replace: bool = False) -> dict[str, Any]:
        """Register a steward who may admit by hand at the gates; the PIN is stored only hashed.

        ``replace`` updates an existing steward's name and PIN (a forgotten PIN); without it an
        existing id is refused, so a typo cannot silently take over someone else's id.
        """
        steward_id = steward_id.strip()
        name = " ".join(name.split())
        if not _STEWARD_ID.fullmatch(steward_id):
            raise BadInput("steward id must be 1..64 letters, digits or ._-", code="bad_steward_id")
        if not name or len(name) > 100:
            raise BadInput("steward name must be 1..100 characters", code="bad_name")
        try:
            validate_pin(pin)
        except ValueError as exc:
            raise BadInput(str(exc), code="bad_pin") from None
        pin_hash = await asyncio.to_thread(hash_pin, pin)  # scrypt: tens of ms, off the event loop
        now = self.clock()
        async with self._wlock:
            await self._begin()
            try:
                async with self.w.execute("SELECT 1 FROM stewards WHERE steward_id = ?", (steward_id,)) as cur:
                    exists = await cur.fetchone() is not None
                if exists and not replace:
                    raise Conflict(f"steward {steward_id!r} exists; use replace to change the PIN",
                                   code="steward_exists")
                await self.w.execute(
                    "INSERT INTO stewards (steward_id, name, pin_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (steward_id) DO UPDATE SET name = excluded.name, pin_hash = excluded.pin_hash,"
                    " updated_at = excluded.updated_at",
                    (steward_id, name, json.dumps(pin_hash.to_wire()), now, now))
                await self._audit(actor, "update_steward" if exists else "add_steward", steward_id,
                                  {"name": name}, now)  # never the PIN, nor its hash
                await self.w.execute("COMMIT")
            except BaseException:
                await self.w.execute("ROLLBACK")
                raise
        return {"steward_id": steward_id, "name": name, "updated_at": now, "replaced": exists}

    async def stewards(self) -> list[dict[str, Any]]:
        """Every steward, without PIN hashes (for people and the admin API)."""
        return [{"steward_id": i, "name": n, "created_at": c, "updated_at": u}
                for i, n, c, u in await self._all(
                    "SELECT steward_id, name, created_at, updated_at FROM stewards ORDER BY steward_id")]

    async def steward_pins(self) -> list[tuple[str, str, PinHash]]:
        """Every steward with the PIN hash, as gates need it to check PINs offline."""
        return [(i, n, PinHash.from_wire(json.loads(h)))
                for i, n, h in await self._all("SELECT steward_id, name, pin_hash FROM stewards ORDER BY steward_id")]

    async def remove_steward(self, actor: Principal, steward_id: str) -> dict[str, Any]:
        """Remove a steward; gates drop them at their next manifest refresh."""
        now = self.clock()
        async with self._wlock:
            await self._begin()
            cur = await self.w.execute("DELETE FROM stewards WHERE steward_id = ?", (steward_id,))
            if cur.rowcount == 0:
                await self.w.execute("ROLLBACK")
                raise NotFound(f"no steward {steward_id!r}", code="steward_not_found")
            await self._audit(actor, "remove_steward", steward_id, {}, now)
            await self.w.execute("COMMIT")
        return {"steward_id": steward_id, "removed_at": now}

    async def gate_manifest(self, gate_id: str) -> GateManifest:
        """One gate's manifest: the tickets of its zones, sorted, read in one transaction.

        Runs on a worker thread with its own read-only connection (a 60,000-ticket event is
        a fraction of a second of CPU that must not stall the event loop).
        """
        return await asyncio.to_thread(_read_gate_manifest, self.path, gate_id, self.clock())

    async def enter_paper_ticks(self, actor: Principal, gate_id: str, ticks: Sequence[PaperTickIn], *,
                                manifest_hub_seq: int | None = None) -> dict[str, Any]:
        """Tickets ticked on ``gate_id``'s paper manifest, keyed in afterwards by ``actor``.

        They become ``MANUAL`` entries of the pseudo-gate ``paper:<gate_id>``
        (:func:`hub.reconcile.bulk_ticks`) and pass through the same storage and conflict
        check as every gate's journal, in one transaction on the ingest thread (so seqs are
        allocated without races). All or nothing: a number the hub does not know, or of a
        ticket not on this gate's manifest (another zone), refuses the whole batch with
        the offending numbers, so a typo is corrected instead of half-entered. Tickets
        already recorded as admitted by hand at this gate are skipped (entering the same
        sheet twice stores nothing new).
        """
        gate = await self.gate(gate_id)
        if not ticks:
            raise BadInput("no ticked tickets given", code="empty_batch")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._ingest_exec, self._paper_sync, actor, gate, list(ticks),
                                          manifest_hub_seq, self.clock())

    def _paper_sync(self, actor: Principal, gate: dict[str, Any], ticks: list[PaperTickIn],
                    manifest_hub_seq: int | None, now: float) -> dict[str, Any]:
        gate_id = gate["gate_id"]
        paper_gate = paper_gate_id(gate_id)
        con = self._ingest_con()
        con.execute("BEGIN IMMEDIATE")
        try:
            event_id = int(con.execute("SELECT value FROM meta WHERE key = 'event_id'").fetchone()[0])
            zone_names = {z: n for z, n in con.execute("SELECT zone_id, name FROM zones")}
            gate_zones = set(gate["zones"])
            unknown: list[str] = []
            other_zone: list[str] = []
            items: list[PaperTick] = []
            for t in ticks:
                tid = _ticket_by_number(con, t.number)
                if tid is None:
                    unknown.append(t.number)
                    continue
                r = con.execute("SELECT number, holder, zone_id, seat, status FROM tickets WHERE ticket_id = ?",
                                (tid,)).fetchone()
                if r[2] not in gate_zones:
                    other_zone.append(t.number)
                    continue
                row = make_row(event_id, ticket_id=tid, number=r[0], holder=r[1], zone_id=r[2],
                               zone_name=zone_names.get(r[2], ""), seat=r[3], status=r[4])
                items.append(PaperTick(row, at=t.at, steward_id=t.steward_id))
            if unknown or other_zone:
                raise BadInput(
                    f"{len(unknown)} unknown numbers, {len(other_zone)} not on gate {gate_id}'s manifest;"
                    " nothing was entered", code="paper_ticks_refused", unknown=unknown[:200],
                    not_on_manifest=other_zone[:200])
            existing = [JournalEntry(gate_id=g, seq=s, at=0.0, kind=EntryKind.MANUAL, reason=reason,
                                     ticket_number=number)
                        for g, s, reason, number in con.execute(
                            "SELECT gate_id, seq, reason, ticket_number FROM journal WHERE gate_id IN (?, ?)"
                            " AND kind = 'manual' AND ticket_number IS NOT NULL", (gate_id, paper_gate))]
            first_seq = int(con.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM journal WHERE gate_id = ?",
                                        (paper_gate,)).fetchone()[0])
            entries = bulk_ticks(items, actor.name, gate_id=gate_id, first_seq=first_seq, entered_at=now,
                                 manifest_hub_seq=manifest_hub_seq, existing=existing)
            result = IngestResult(high_water=0)
            _store_entries(con, paper_gate, entries, now, result)
            entered = {normalize_number(e.ticket_number or "") for e in entries}
            skipped = sorted({t.row.number for t in items if normalize_number(t.row.number) not in entered})
            con.execute("INSERT INTO audit (at, actor, role, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
                        (now, actor.name, actor.role, "paper_ticks", gate_id,
                         json.dumps({"entered": len(entries), "skipped": len(skipped),
                                     "conflicts": len(result.conflicts), "manifest_hub_seq": manifest_hub_seq,
                                     "seqs": [entries[0].seq, entries[-1].seq] if entries else []})))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        log.warning("%s entered %d paper ticks for gate %s (%d conflicts)", actor.name, len(entries), gate_id,
                    len(result.conflicts))
        return {"gate_id": gate_id, "paper_gate_id": paper_gate, "entered_by": actor.name,
                "entered": len(entries), "seqs": [e.seq for e in entries], "skipped": skipped,
                "conflicts": result.conflicts}


@dataclass(frozen=True, slots=True)
class PaperTickIn:
    """One ticked line as keyed in: the number, and the time and steward written beside it, if any."""

    number: str
    at: float | None = None
    steward_id: str | None = None


@dataclass(frozen=True, slots=True)
class GateManifest:
    """A gate's manifest as read from the hub database at ``hub_seq``: rows sorted for lookup."""

    gate_id: str
    gate_name: str
    event_id: int
    event_name: str
    hub_seq: int
    generated_at: float
    rows: tuple[ManifestRow, ...]


def _read_gate_manifest(path: Path, gate_id: str, now: float) -> GateManifest:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    try:
        con.execute("BEGIN")  # one read transaction: seq, gate, zones and tickets agree
        row = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        seq = int(row[0]) if row else 0
        meta = dict(con.execute("SELECT key, value FROM meta WHERE key IN ('event_id', 'event_name')").fetchall())
        g = con.execute("SELECT name, zones, status FROM gates WHERE gate_id = ?", (gate_id,)).fetchone()
        if g is None:
            raise NotFound(f"no gate {gate_id!r}", code="gate_not_found")
        if g[2] == "revoked":
            raise Conflict(f"gate {gate_id!r} is revoked; it has no manifest", code="gate_revoked")
        zone_ids = [int(z) for z in json.loads(g[1])]
        zones = {zid: Zone(zid, name, frozenset({gate_id}), cap)
                 for zid, name, cap in con.execute("SELECT zone_id, name, capacity FROM zones").fetchall()
                 if zid in zone_ids}
        records = []
        if zones:
            marks = ",".join("?" * len(zones))
            records = [record_from_row(ticket_row(r)) for r in con.execute(
                f"SELECT {TICKET_COLUMNS} FROM tickets WHERE zone_id IN ({marks})", tuple(zones))]
        con.execute("COMMIT")
    finally:
        con.close()
    event_id = int(meta["event_id"])
    rows = sort_rows(rows_for_gate(records, zones, event_id=event_id, gate_id=gate_id))
    return GateManifest(gate_id, g[0], event_id, meta.get("event_name", ""), seq, now, tuple(rows))


def _norm_or_none(number: str | None) -> str | None:
    return normalize_number(number) if number is not None else None


def _bump(t: dict[str, Any]) -> dict[str, Any]:
    if t["serial"] >= 0xFFFF:
        raise Conflict("ticket has been changed too often (serial exhausted)", code="serial_exhausted")
    t["serial"] += 1
    return t


def restore_hub(data_dir: Path, src: Path, *, clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """Replace the hub database with a backup, and mark the hub restored (new epoch).

    The hub must be stopped. Gates then see a new ``hub_epoch`` and a high water below what
    they had seen acked, and re-send their journals from there.
    """
    if not src.is_file():
        raise NotFound(f"no backup file {src}", code="backup_not_found")
    try:
        check = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        try:
            ok = check.execute("PRAGMA integrity_check").fetchone()[0]
            epoch_row = check.execute("SELECT value FROM meta WHERE key = 'event_id'").fetchone()
        finally:
            check.close()
    except sqlite3.DatabaseError as exc:
        raise BadInput(f"{src} is not a hub backup: {exc}", code="bad_backup") from None
    if ok != "ok" or epoch_row is None:
        raise BadInput(f"{src} failed its integrity check: {ok}", code="bad_backup")
    data_dir.mkdir(parents=True, exist_ok=True)
    target = db_path(data_dir)
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    tmp = target.with_name(target.name + ".restoring")
    tmp.unlink(missing_ok=True)
    s = sqlite3.connect(src)
    d = sqlite3.connect(tmp)
    try:
        s.backup(d)
        now = clock()
        epoch = secrets.token_hex(8)
        d.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('hub_epoch', ?)", (epoch,))
        d.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('restored_at', ?)", (str(now),))
        d.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('restored_from', ?)", (str(src),))
        d.execute("INSERT INTO audit (at, actor, role, action, target, detail) VALUES (?, 'cli', 'admin', 'restore', ?, ?)",
                  (now, str(src), json.dumps({"hub_epoch": epoch})))
        d.commit()
    finally:
        d.close()
        s.close()
    os.replace(tmp, target)
    return {"hub_epoch": epoch, "restored_at": now, "from": str(src)}


# --- ingest, on the ingest writer thread (plain sqlite3) ----------------------------------


def _ingest_one(con: sqlite3.Connection, gate_id: str, entries: list[JournalEntry], now: float) -> IngestResult:
    row = con.execute("SELECT high_water FROM gates WHERE gate_id = ?", (gate_id,)).fetchone()
    if row is None:
        raise NotFound(f"no gate {gate_id!r}", code="gate_not_found")
    high_water = int(row[0])
    result = IngestResult(high_water=high_water)
    _store_entries(con, gate_id, entries, now, result)
    high_water = _advance_high_water(con, gate_id, high_water)
    con.execute("UPDATE gates SET high_water = ?, last_seen = ? WHERE gate_id = ?", (high_water, now, gate_id))
    result.high_water = high_water
    backup = con.execute("SELECT high_waters FROM backups ORDER BY id DESC LIMIT 1").fetchone()
    result.backed_up_high_water = int(json.loads(backup[0]).get(gate_id, 0)) if backup else 0
    return result


def _store_entries(con: sqlite3.Connection, gate_id: str, entries: list[JournalEntry], now: float,
                   result: IngestResult) -> None:
    """Store new entries of one journal (a gate's, or a ``paper:<gate>`` one) and reconcile them.

    The one authoritative reconciliation path: scans, manual admits from a gate screen and
    paper ticks keyed in on the hub all pass here. Re-sends (same nonce) are counted and
    ignored, so they never create conflicts; every newly stored admit is replayed with the
    ticket's other admits through its entry policy (:func:`_check_double_admit`).
    """
    existing: dict[int, str] = {}
    seqs = sorted({e.seq for e in entries})
    for i in range(0, len(seqs), 900):
        part = seqs[i:i + 900]
        existing.update(con.execute(
            f"SELECT seq, nonce FROM journal WHERE gate_id = ? AND seq IN ({','.join('?' * len(part))})",
            (gate_id, *part)).fetchall())
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
            # only a steward's typed number is worth the normalized look-up (a table scan)
            hit = _ticket_by_number(con, e.ticket_number,
                                    normalized=e.kind is EntryKind.MANUAL and e.admitted)
            if hit is not None:
                resolved[id(e)] = hit
    con.executemany(
        "INSERT INTO journal (gate_id, seq, nonce, at, kind, reason, ticket_id, ticket_number, zone_id,"
        " raw, direction, mode, cursor, passage, ref_seq, staff_id, detail, received_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(gate_id, e.seq, e.nonce, e.at, str(e.kind), e.reason, resolved.get(id(e), e.ticket_id),
          e.ticket_number, e.zone_id, e.raw, e.direction, e.mode, e.cursor, str(e.passage), e.ref_seq,
          e.staff_id, e.detail, now) for e in new],
    )
    result.stored = new
    for e in rejects:
        result.conflicts += _seq_reuse(con, gate_id, e, existing[e.seq], now)
    for e in new:
        tid = resolved.get(id(e), e.ticket_id)
        if e.kind in (EntryKind.SCAN, EntryKind.MANUAL) and e.admitted:
            result.admits.append(e if tid == e.ticket_id else replace(e, ticket_id=tid))
            if tid is None:
                if e.kind is EntryKind.MANUAL:
                    result.conflicts += _unknown_manual(con, gate_id, e, now)
                    result.conflicts += _check_number_double_admit(con, gate_id, e, now)
                continue
            if e.direction == Direction.IN:
                result.conflicts += _check_double_admit(con, tid, gate_id, e.seq, now)
        elif e.kind is EntryKind.PASSAGE and e.passage is Passage.NOT_PASSED and e.ref_seq is not None:
            result.not_passed.append(e)
            _not_passed(con, gate_id, e.ref_seq, now)


def _ticket_by_number(con: sqlite3.Connection, number: str, *, normalized: bool = True) -> int | None:
    """The ticket a typed number names: exact first, then ignoring spaces, dashes and case.

    A steward's typed number is normalized at the gate (``"MAN-1"`` → ``"MAN1"``), so the
    fallback compares normalized forms. It scans the ticket table, so ingest asks for it
    only for manual admits (a few per event), never for every unreadable barcode.
    """
    hit = con.execute("SELECT ticket_id FROM tickets WHERE number = ?", (number,)).fetchone()
    if hit is None and normalized:
        key = normalize_number(number)
        found = con.execute("SELECT ticket_id FROM tickets WHERE gh_norm(number) = ? LIMIT 2", (key,)).fetchall()
        hit = found[0] if len(found) == 1 else None  # two tickets normalizing alike: leave it to a human
    return int(hit[0]) if hit is not None else None


def _pair(first_kind: str, second_kind: str) -> str:
    """The conflict's kind in people's words: ``scan+scan``, ``manual+scan``, ``manual+manual``."""
    manual = (first_kind == EntryKind.MANUAL) + (second_kind == EntryKind.MANUAL)
    return str((ConflictKind.SCAN_SCAN, ConflictKind.MANUAL_SCAN, ConflictKind.MANUAL_MANUAL)[manual])


def _add_conflict(con: sqlite3.Connection, kind: str, ticket_id: int | None, first: tuple[str, int],
                  second: tuple[str, int], detail: dict[str, Any], now: float) -> list[dict[str, Any]]:
    cur = con.execute(
        "INSERT OR IGNORE INTO conflicts (kind, ticket_id, first_gate, first_seq, second_gate, second_seq, detail,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (kind, ticket_id, first[0], first[1], second[0], second[1], json.dumps(detail), now),
    )
    if cur.rowcount != 1:
        return []
    log.warning("conflict %s on ticket %s: %s/%s vs %s/%s", kind, ticket_id, *first, *second)
    return [{"conflict_id": cur.lastrowid, "kind": kind, "ticket_id": ticket_id,
             "first": {"gate_id": first[0], "seq": first[1]},
             "second": {"gate_id": second[0], "seq": second[1]}, "detail": detail}]


def _seq_reuse(con: sqlite3.Connection, gate_id: str, e: JournalEntry, stored_nonce: str,
               now: float) -> list[dict[str, Any]]:
    con.execute(
        "INSERT OR IGNORE INTO journal_rejects (gate_id, seq, nonce, entry, received_at) VALUES (?, ?, ?, ?, ?)",
        (gate_id, e.seq, e.nonce, json.dumps(e.to_wire()), now),
    )
    return _add_conflict(
        con, "seq_reuse", e.ticket_id, (gate_id, e.seq), (gate_id, e.seq),
        {"stored_nonce": stored_nonce, "new_nonce": e.nonce,
         "message": "the gate re-used a journal seq with different content (lost journal?)"}, now)


def _unknown_manual(con: sqlite3.Connection, gate_id: str, e: JournalEntry, now: float) -> list[dict[str, Any]]:
    return _add_conflict(
        con, "manual_unknown", None, (gate_id, e.seq), (gate_id, e.seq),
        {"ticket_number": e.ticket_number, "staff_id": e.staff_id,
         "message": "a steward admitted a ticket number the hub does not know"}, now)


def _check_double_admit(con: sqlite3.Connection, ticket_id: int, gate_id: str, seq: int,
                        now: float) -> list[dict[str, Any]]:
    """Replay the ticket's admits and exits through its entry policy; flag an admit it forbids.

    Admits whose passage timed out (``not_passed``) did not consume the ticket and are skipped.
    Only pairs involving the new entry ``(gate_id, seq)`` are reported, so a late entry that
    slots in between earlier ones is caught too.
    """
    prow = con.execute(
        "SELECT t.policy_id, p.name, p.wait_s, p.max_entries FROM tickets t JOIN policies p"
        " ON p.policy_id = t.policy_id WHERE t.ticket_id = ?", (ticket_id,)).fetchone()
    if prow is None:
        return []
    policy = policy_from_row({"policy_id": prow[0], "name": prow[1], "wait_s": prow[2], "max_entries": prow[3]})
    rows = con.execute(
        f"SELECT j.gate_id, j.seq, j.at, j.direction, j.kind FROM journal j WHERE j.ticket_id = ?"
        f" AND j.kind IN ('scan', 'manual') AND j.reason IN {_ADMIT_SQL}"
        " AND NOT EXISTS (SELECT 1 FROM journal p WHERE p.gate_id = j.gate_id AND p.kind = 'passage'"
        " AND p.ref_seq = j.seq AND p.passage = 'not_passed') ORDER BY j.at, j.gate_id, j.seq",
        (ticket_id,)).fetchall()
    if len(rows) < 2:
        return []
    state = EntryState()
    first: tuple[str, int, str] | None = None
    prev: tuple[str, int, str] | None = None
    found: list[dict[str, Any]] = []
    for g, s, at, direction, kind in rows:
        if direction == Direction.OUT:
            state = record_passage(state, Direction.OUT, at)
            continue
        reason, _flags = evaluate_entry(policy, state, at)
        # a single-entry ticket's first admission is the one that stands; others pair with it
        anchor = first if policy.kind is PolicyKind.SINGLE else prev
        if not reason.admits and anchor is not None and (gate_id, seq) in ((g, s), (anchor[0], anchor[1])):
            found += _add_conflict(
                con, "double_admit", ticket_id, (anchor[0], anchor[1]), (g, s),
                {"policy": policy.name, "would_be": str(reason), "first_kind": anchor[2], "second_kind": kind,
                 "pair": _pair(anchor[2], kind), "message": "admitted twice where the entry policy forbids it"}, now)
        state = record_passage(state, Direction.IN, at)
        prev = (g, s, kind)
        first = first or prev
    return found


def _check_number_double_admit(con: sqlite3.Connection, gate_id: str, e: JournalEntry,
                               now: float) -> list[dict[str, Any]]:
    """Number-only manual admits of a number the hub does not know, judged as single entry.

    Overrides of a ticket missing from every manifest cannot be tied to a ticket, but two
    of them for the same typed number are still one ticket used twice: the earliest stands,
    every other one is a ``double_admit`` (only pairs involving the new entry are added).
    """
    rows = con.execute(
        f"SELECT gate_id, seq, kind FROM journal WHERE ticket_id IS NULL AND ticket_number = ?"
        f" AND kind = 'manual' AND direction = 'in' AND reason IN {_ADMIT_SQL} ORDER BY at, gate_id, seq",
        (e.ticket_number,)).fetchall()
    if len(rows) < 2:
        return []
    first = (rows[0][0], rows[0][1])
    found: list[dict[str, Any]] = []
    for g, s, _kind in rows[1:]:
        if (gate_id, e.seq) in ((g, s), first):
            found += _add_conflict(
                con, "double_admit", None, first, (g, s),
                {"policy": "single", "ticket_number": e.ticket_number, "first_kind": "manual",
                 "second_kind": "manual", "pair": str(ConflictKind.MANUAL_MANUAL),
                 "message": "a number unknown to the hub was admitted by hand twice"}, now)
    return found


def _not_passed(con: sqlite3.Connection, gate_id: str, ref_seq: int, now: float) -> None:
    """An admit that did not pass the turnstile consumed nothing: close conflicts built on it."""
    con.execute(
        "UPDATE conflicts SET resolved_at = ?, resolved_by = 'hub', resolution = 'admit not passed'"
        " WHERE resolved_at IS NULL AND kind = 'double_admit' AND ((first_gate = ? AND first_seq = ?)"
        " OR (second_gate = ? AND second_seq = ?))",
        (now, gate_id, ref_seq, gate_id, ref_seq),
    )


def _advance_high_water(con: sqlite3.Connection, gate_id: str, high_water: int) -> int:
    while True:
        seqs = [r[0] for r in con.execute(
            "SELECT seq FROM journal WHERE gate_id = ? AND seq > ? ORDER BY seq LIMIT 5000",
            (gate_id, high_water))]
        for s in seqs:
            if s != high_water + 1:
                return high_water
            high_water = s
        if len(seqs) < 5000:
            return high_water
