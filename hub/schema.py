"""The hub's schema, in words; the tables themselves are created and changed by versioned
migrations (:mod:`hub.migrations`, Alembic), the same on SQLite and PostgreSQL.

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
``entry_state``  each ticket's entry state as the hub knows it (entries, inside, last entry
                 and exit, last gate, and the change seq of the last entry event folded in):
                 sent with snapshots so a new or rebuilt gate refuses a used ticket.
``pending_admits`` admits waiting for their passage outcome; expired ones are conflicts.
``stewards``     who may admit by hand at a gate in MANIFEST mode: id, name and the scrypt
                 PIN hash (:func:`tickets.manifest.hash_pin`, JSON) — never a PIN. Pushed
                 to every gate with its manifest.
"""
from __future__ import annotations

#: Entry policy presets created by ``hub init``, with their fixed ids (u8).
DEFAULT_POLICIES: tuple[tuple[int, str], ...] = (
    (1, "single"),
    (2, "reentry"),
    (3, "unlimited"),
    (4, "passback_hard"),
    (5, "passback_soft"),
    (6, "passback_timed"),
)
