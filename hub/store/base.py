"""What every part of the hub store shares: records, the change log append, audit, helpers.

The store is split by concern (one module each: event and auth, zones, tickets, gates,
ingest, reports, backups, paper fallback); each contributes a mixin to
:class:`hub.store.HubStore`, and every one of them touches the database only through
:class:`hub.db.Database` — one transaction helper, two engines.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from hub.db import Database
from tickets.entry import JournalEntry

DB_NAME = "hub.db"
KEYS_DIR = "keys"
ROLES = ("viewer", "supervisor", "admin")
ENROLL_TTL_S = 24 * 3600.0
ADMIT_REASONS = ("ADMIT", "ADMIT_REENTRY", "ADMIT_ON_SIGNATURE")
ADMIT_SQL = "('ADMIT','ADMIT_REENTRY','ADMIT_ON_SIGNATURE')"
#: change kinds the gates receive; the others are for hub processes only
GATE_KINDS = frozenset({"ticket", "zone", "policy", "entry"})
_SLUG = re.compile(r"[^a-z0-9]+")


def db_path(data_dir: Path) -> Path:
    return data_dir / DB_NAME


def hash_token(token: str) -> str:
    """Tokens are 32 random bytes, so one SHA-256 is enough (no password stretching needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(nbytes: int = 32) -> str:
    """A random URL-safe token that never starts with ``-`` (a command line would read it as an option)."""
    while True:
        token = secrets.token_urlsafe(nbytes)
        if not token.startswith("-"):
            return token


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


CLI = Principal("cli", "admin")


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change log: ``row`` is the full row after it (or the event, for ``entry``)."""

    seq: int
    kind: str  # ticket | zone | policy | entry | gate | command | stewards | event
    row: dict[str, Any]
    at: float
    token: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "row": self.row, "at": self.at}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One page of the ticket table, read in one transaction at hub sequence ``seq``.

    Zones and policies come with every page (they are small). ``next_after`` is the
    ``after_ticket_id`` for the next page, or None on the last page. Each ticket row carries
    its entry state (``state``) as of the page's read.
    """

    seq: int
    zones: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    tickets: list[dict[str, Any]]
    next_after: int | None


@dataclass(slots=True)
class StoredBatch:
    """What storing one gate's journal batch did (the protocol's ack is :class:`sync.backend.IngestResult`)."""

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


# --- SQL helpers (every function takes the transaction's connection) ---------------------

#: parsed statements, by their SQL text (parsing a statement costs more than running it)
_text = functools.lru_cache(maxsize=1024)(text)


def one(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> Any:
    return conn.execute(_text(sql), params or {}).first()


def scalar(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> Any:
    return conn.execute(_text(sql), params or {}).scalar()


def rows(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    return list(conn.execute(_text(sql), params or {}).fetchall())


def execute(conn: Connection, sql: str, params: dict[str, Any] | Sequence[dict[str, Any]] | None = None) -> Any:
    return conn.execute(_text(sql), params or {})


def many(conn: Connection, sql: str, params: Sequence[Sequence[Any]]) -> None:
    """Bulk statement with ``?`` placeholders and tuples, straight to the driver's executemany
    (the import and ingest paths: no per-row parameter processing)."""
    if not params:
        return
    if conn.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    conn.exec_driver_sql(sql, list(params))


def driver_rows(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """A query with ``?`` placeholders (long IN lists), straight to the driver."""
    if conn.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    return list(conn.exec_driver_sql(sql, tuple(params)).fetchall())


def marks(n: int) -> str:
    """``(?,?,…)`` for an IN list of ``n`` values (see :func:`driver_rows`)."""
    return "(" + ",".join("?" * n) + ")" if n else "(NULL)"


def in_clause(name: str, values: Iterable[Any], params: dict[str, Any]) -> str:
    """``(:name0, :name1, …)`` for an IN list, binding each value into ``params``."""
    marks = []
    for i, v in enumerate(values):
        params[f"{name}{i}"] = v
        marks.append(f":{name}{i}")
    return "(" + ",".join(marks or ["NULL"]) + ")"


def audit(conn: Connection, actor: Principal, action: str, target: str, detail: dict[str, Any], now: float) -> None:
    execute(conn, "INSERT INTO audit (at, actor, role, action, target, detail) VALUES (:at, :a, :r, :ac, :t, :d)",
            {"at": now, "a": actor.name, "r": actor.role, "ac": action, "t": target, "d": json.dumps(detail)})


def current_seq(conn: Connection) -> int:
    return int(scalar(conn, "SELECT COALESCE(MAX(seq), 0) FROM changes"))


def append_changes(db: Database, conn: Connection, items: Sequence[tuple[str, int, dict[str, Any]]],
                   now: float) -> list[int]:
    """Append ``(kind, ref, row)`` changes to the log; returns their seqs (ascending).

    The one door to the change log: every serving hub process watches it and pushes what it
    finds (see :mod:`hub.feed`), whoever wrote it — an API call, the CLI, another process.
    """
    if not items:
        return []
    db.lock_change_log(conn)
    n = len(items)
    if db.is_pg:
        # under the change-log lock, so the values are drawn (and will commit) in order
        seqs = [int(r[0]) for r in conn.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence('changes', 'seq')) FROM generate_series(1, %s)", (n,))]
    else:
        last = conn.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").scalar()
        start = int(last or 0) + 1
        seqs = list(range(start, start + n))
    token = secrets.token_hex
    many(conn, "INSERT INTO changes (seq, kind, ref, row, at, token) VALUES (?, ?, ?, ?, ?, ?)",
         [(seq, k, ref, json.dumps(row, separators=(",", ":")), now, token(4))
          for seq, (k, ref, row) in zip(seqs, items, strict=True)])
    return seqs


def meta_set(conn: Connection, key: str, value: str) -> None:
    execute(conn, "INSERT INTO meta (key, value) VALUES (:k, :v) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            {"k": key, "v": value})


class StoreCore:
    """The state every mixin uses: the database, the data directory and the clock."""

    db: Database
    data_dir: Path
    clock: Callable[[], float]
    #: set after a local commit that appended changes, so this process's feed reads at once
    changed_event: Any

    def _now(self) -> float:
        return self.clock()

    def _poke(self) -> None:
        """Wake this process's change feed: something was just committed to the change log."""
        ev = getattr(self, "changed_event", None)
        if ev is not None:
            ev.set()


def monotonic() -> float:
    return time.monotonic()
