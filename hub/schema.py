"""The hub's SQLite schema: one file per venue, WAL.

Tables and why they exist:

``meta``         event id, hub epoch, defaults — one key/value row each.
``zones``        zone id (u16) → name, capacity. Which gates serve a zone lives in ``gates.zones``.
``policies``     entry policy id (u8) → preset name and parameters (see :mod:`tickets.policy`).
``tickets``      the source of truth for every ticket; ``seq`` is the hub sequence number of
                 its latest change.
``changes``      one row per ticket/zone/policy change, carrying the full row *after* the
                 change; its ``seq`` (AUTOINCREMENT, never reused) is what gates sync from.
``gates``        enrolled gates; only token hashes are stored. ``high_water`` is the highest
                 journal seq such that 1..seq are all stored.
``journal``      every journal entry from every gate, forever (the audit record), keyed
                 ``(gate_id, seq)``.
``journal_rejects`` an entry that reused a stored ``(gate_id, seq)`` with another nonce:
                 kept beside the original, never overwriting it.
``conflicts``    things a supervisor must look at (double admits, seq reuse, unknown manual
                 admits), with both entries.
``tokens``       API bearer tokens (hashes) with their role.
``audit``        who changed what, when.
``backups``      completed online backups, with each gate's high water at that moment.
``stewards``     who may admit by hand at a gate in MANIFEST mode: id, name and the scrypt
                 PIN hash (:func:`tickets.manifest.hash_pin`, JSON) — never a PIN. Pushed
                 to every gate with its manifest.
"""
from __future__ import annotations

SCHEMA_VERSION = 1

#: Entry policy presets created by ``hub init``, with their fixed ids (u8).
DEFAULT_POLICIES: tuple[tuple[int, str], ...] = (
    (1, "single"),
    (2, "reentry"),
    (3, "unlimited"),
    (4, "passback_hard"),
    (5, "passback_soft"),
    (6, "passback_timed"),
)

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS zones (
    zone_id INTEGER PRIMARY KEY CHECK (zone_id BETWEEN 1 AND 65535),
    name TEXT NOT NULL UNIQUE,
    capacity INTEGER,
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS policies (
    policy_id INTEGER PRIMARY KEY CHECK (policy_id BETWEEN 1 AND 255),
    name TEXT NOT NULL,
    wait_s REAL NOT NULL DEFAULT 600,
    max_entries INTEGER,
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id INTEGER PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    external_id TEXT NOT NULL UNIQUE,
    holder TEXT NOT NULL DEFAULT '',
    seat TEXT NOT NULL DEFAULT '',
    zone_id INTEGER NOT NULL,
    policy_id INTEGER NOT NULL,
    valid_from REAL NOT NULL,
    valid_until REAL NOT NULL,
    serial INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'valid',
    rotating_secret BLOB,
    opaque TEXT UNIQUE,
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tickets_holder ON tickets (holder COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS tickets_seat ON tickets (seat);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    ref INTEGER NOT NULL,
    row TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS gates (
    gate_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    zones TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'pending',
    token_hash TEXT UNIQUE,
    enroll_hash TEXT UNIQUE,
    enroll_expires REAL,
    high_water INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    last_seen REAL
);
CREATE TABLE IF NOT EXISTS journal (
    gate_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
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
    detail TEXT NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (gate_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS journal_ticket ON journal (ticket_id, at);
CREATE INDEX IF NOT EXISTS journal_at ON journal (at);
CREATE INDEX IF NOT EXISTS journal_passage ON journal (gate_id, ref_seq) WHERE kind = 'passage';
CREATE INDEX IF NOT EXISTS journal_number ON journal (ticket_number) WHERE ticket_id IS NULL;
CREATE INDEX IF NOT EXISTS journal_alerts ON journal (gate_id, seq) WHERE kind IN ('mode', 'event');
CREATE TABLE IF NOT EXISTS journal_rejects (
    id INTEGER PRIMARY KEY,
    gate_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    nonce TEXT NOT NULL,
    entry TEXT NOT NULL,
    received_at REAL NOT NULL,
    UNIQUE (gate_id, seq, nonce)
);
CREATE TABLE IF NOT EXISTS conflicts (
    conflict_id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    ticket_id INTEGER,
    first_gate TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    second_gate TEXT NOT NULL,
    second_seq INTEGER NOT NULL,
    detail TEXT NOT NULL,
    created_at REAL NOT NULL,
    resolved_at REAL,
    resolved_by TEXT,
    resolution TEXT,
    UNIQUE (kind, first_gate, first_seq, second_gate, second_seq)
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stewards (
    steward_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    pin_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS backups (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    path TEXT NOT NULL,
    high_waters TEXT NOT NULL
);
"""

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=OFF",
)
