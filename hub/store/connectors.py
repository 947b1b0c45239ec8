"""Ticket-shop connectors as the hub stores them: settings, secrets, cursor, last outcome,
and check-ins made at the shop recorded as entries of a ``shop:<connector>`` journal.

The shop's API token lives in the hub database only (as gate token hashes and steward PIN
hashes do); it is never returned by the API, printed by the CLI or logged. The webhook
secret is kept as a SHA-256 only and compared in constant time.
"""
from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from hub.errors import NotFound
from hub.store.base import (
    Principal,
    StoreCore,
    StoredBatch,
    append_changes,
    audit,
    driver_rows,
    execute,
    hash_token,
    marks,
    meta_set,
    one,
    rows,
)
from hub.store.ingest import record_entry_events, store_entries
from hub.store.uploads import shop_gate_id, status_json
from tickets.entry import EntryKind, JournalEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConnectorRecord:
    """One configured connector as the hub runs it (``secret`` included: hub-internal only)."""

    connector_id: str
    kind: str
    config: dict[str, Any]
    secret: str | None
    mapping: dict[str, Any]
    cursor: str | None
    status: dict[str, Any]
    uploads: bool
    enabled: bool

    def public(self) -> dict[str, Any]:
        """What an operator may see: never the token."""
        return {"connector_id": self.connector_id, "kind": self.kind, "config": self.config,
                "mapping": self.mapping, "cursor": self.cursor, "status": self.status, "uploads": self.uploads,
                "enabled": self.enabled, "has_token": self.secret is not None}


@dataclass(frozen=True, slots=True)
class ShopCheckin:
    """A check-in the shop knows of (its own scanners): becomes entry state here."""

    ref: int  # the shop's check-in id: the seq in the ``shop:<connector>`` journal
    external_id: str  # the ticket, as the connector imported it
    at: float
    direction: str  # in | out
    detail: str = ""


_COLS = "connector_id, kind, config, secret, mapping, cursor, status, uploads, enabled"


def _record(r: Any) -> ConnectorRecord:
    return ConnectorRecord(r[0], r[1], json.loads(r[2] or "{}"), r[3], json.loads(r[4] or "{}"), r[5],
                           status_json(r[6]), bool(r[7]), bool(r[8]))


def _store_shop_checkins(conn: Connection, db: Any, connector_id: str, checkins: Sequence[ShopCheckin],
                         now: float) -> tuple[int, list[dict[str, Any]]]:
    gate = shop_gate_id(connector_id)
    # our own uploads come back in the shop's data: recognised by the check-in id the shop gave
    # us, or by ticket and time (an upload whose answer was lost)
    ours: set[str] = set()
    refs = sorted({str(c.ref) for c in checkins})
    for i in range(0, len(refs), 500):
        part = refs[i:i + 500]
        ours.update(str(r[0]) for r in driver_rows(conn, "SELECT shop_ref FROM checkin_uploads WHERE connector_id = ?"
                                                         f" AND shop_ref IN {marks(len(part))}", [connector_id, *part]))
    tickets: dict[str, tuple[int, str, int]] = {}
    exts = sorted({c.external_id for c in checkins})
    for i in range(0, len(exts), 500):
        part = exts[i:i + 500]
        for tid, number, zone, ext in driver_rows(conn, "SELECT ticket_id, number, zone_id, external_id FROM tickets"
                                                        f" WHERE external_id IN {marks(len(part))}", part):
            tickets[ext] = (int(tid), number, int(zone))
    missing = [c for c in checkins if c.external_id not in tickets]
    if missing:
        log.warning("%s: %d check-ins name tickets the hub does not have (not imported: see the sync's skipped"
                    " counts); they are not entry state here", connector_id, len(missing))
    fresh = [c for c in checkins if str(c.ref) not in ours and c.external_id in tickets]
    if fresh:
        times: dict[int, list[float]] = {}
        ids = sorted({tickets[c.external_id][0] for c in fresh})
        for i in range(0, len(ids), 500):
            part_ids = ids[i:i + 500]
            for tid, at in driver_rows(conn, "SELECT ticket_id, at FROM checkin_uploads WHERE connector_id = ? AND"
                                             f" ticket_id IN {marks(len(part_ids))}", [connector_id, *part_ids]):
                times.setdefault(int(tid), []).append(float(at))
        fresh = [c for c in fresh if not any(abs(c.at - t) < 0.5 for t in times.get(tickets[c.external_id][0], []))]
    entries = [JournalEntry(gate_id=gate, seq=c.ref, at=c.at, kind=EntryKind.MANUAL, nonce=f"{connector_id}-{c.ref}",
                            reason="ADMIT", ticket_id=tickets[c.external_id][0], ticket_number=tickets[c.external_id][1],
                            zone_id=tickets[c.external_id][2], direction=c.direction, mode="ONLINE",
                            staff_id=connector_id, detail=c.detail[:200]) for c in fresh]
    result = StoredBatch(high_water=0)
    events = store_entries(conn, db, gate, entries, now, result)
    record_entry_events(db, conn, events, now)
    return len(result.stored), result.conflicts


def _set_pretix_event(db: Any, conn: Connection, block: dict[str, Any], now: float) -> None:
    """Store the event info block for gates; when it changed (new signing keys — pretix makes
    an event's key when it signs its first ticket — or a new mapping) every serving hub process
    sends it to its connected gates at once, as a ``pretix_event`` command through the change log."""
    text = json.dumps(block, sort_keys=True)
    old = one(conn, "SELECT value FROM meta WHERE key = 'pretix_event'")
    if old is not None and old[0] == text:
        return
    meta_set(conn, "pretix_event", text)
    command = {"name": "pretix_event", "reason": "pretix keys or product mapping changed", "args": {"pretix": block},
               "gates": None, "command_id": secrets.token_hex(8)}
    append_changes(db, conn, [("command", 0, command)], now)
    log.warning("pretix event info changed (%d signing keys, %d products); sent to the gates",
                len(block.get("public_keys") or []), len(block.get("products") or []))


class ConnectorsMixin(StoreCore):
    async def save_connector(self, actor: Principal, connector_id: str, kind: str, config: dict[str, Any], *,
                             secret: str | None, mapping: dict[str, Any], webhook_secret: str | None = None,
                             uploads: bool = True, pretix_event: dict[str, Any] | None = None) -> None:
        """Create or replace a connector's settings (the cursor restarts: the next sync is a full one)."""
        now = self._now()

        def tx(conn: Connection) -> None:
            execute(conn, "INSERT INTO connectors (connector_id, kind, config, secret, webhook_secret_hash, mapping,"
                          " cursor, status, uploads, enabled, created_at, updated_at) VALUES (:i, :k, :c, :s, :w, :m,"
                          " NULL, '{}', :u, 1, :at, :at) ON CONFLICT (connector_id) DO UPDATE SET kind = excluded.kind,"
                          " config = excluded.config, secret = excluded.secret, webhook_secret_hash ="
                          " COALESCE(excluded.webhook_secret_hash, connectors.webhook_secret_hash), mapping ="
                          " excluded.mapping, cursor = NULL, uploads = excluded.uploads, enabled = 1,"
                          " updated_at = excluded.updated_at",
                    {"i": connector_id, "k": kind, "c": json.dumps(config), "s": secret,
                     "w": hash_token(webhook_secret) if webhook_secret else None, "m": json.dumps(mapping),
                     "u": int(uploads), "at": now})
            if pretix_event is not None:
                _set_pretix_event(self.db, conn, pretix_event, now)
            audit(conn, actor, "connect", connector_id, {"kind": kind, "config": config, "uploads": uploads,
                                                         "webhook_secret_set": webhook_secret is not None}, now)
        await self.db.write(tx)

    async def connectors(self) -> list[ConnectorRecord]:
        got = await self.db.read(lambda c: rows(c, f"SELECT {_COLS} FROM connectors ORDER BY connector_id"))
        return [_record(r) for r in got]

    async def connector(self, connector_id: str) -> ConnectorRecord:
        r = await self.db.read(lambda c: one(c, f"SELECT {_COLS} FROM connectors WHERE connector_id = :i",
                                             {"i": connector_id}))
        if r is None:
            raise NotFound(f"no connector {connector_id!r} (gatehouse hub connect {connector_id} …)",
                           code="connector_not_found")
        return _record(r)

    async def webhook_secret_ok(self, connector_id: str, secret: str) -> bool:
        r = await self.db.read(lambda c: one(c, "SELECT webhook_secret_hash FROM connectors WHERE connector_id = :i"
                                                " AND enabled = 1", {"i": connector_id}))
        if r is None or not r[0]:
            return False
        return hmac.compare_digest(str(r[0]), hash_token(secret))

    async def set_connector_state(self, connector_id: str, *, cursor: str | None = None,
                                  status: dict[str, Any] | None = None,
                                  pretix_event: dict[str, Any] | None = None) -> None:
        """After a sync: the new cursor (if any), the outcome merged into ``status``, and the
        event info block gates read (the shop's keys may have changed)."""
        def tx(conn: Connection) -> None:
            if cursor is not None:
                execute(conn, "UPDATE connectors SET cursor = :c WHERE connector_id = :i", {"c": cursor, "i": connector_id})
            if status is not None:
                old = one(conn, "SELECT status FROM connectors WHERE connector_id = :i", {"i": connector_id})
                merged = {**status_json(old[0] if old else None), **status}
                execute(conn, "UPDATE connectors SET status = :s WHERE connector_id = :i",
                        {"s": json.dumps(merged), "i": connector_id})
            if pretix_event is not None:
                _set_pretix_event(self.db, conn, pretix_event, self._now())
        await self.db.write(tx)
        self._poke()

    async def record_shop_checkins(self, connector_id: str, checkins: Sequence[ShopCheckin]) -> tuple[int, list[dict[str, Any]]]:
        """Check-ins made at the shop, stored as entries of ``shop:<connector>`` (idempotent on the
        shop's check-in id) through the one reconciliation path, so gates refuse those tickets
        as used and a double entry is a conflict. Our own uploads coming back are left out."""
        if not checkins:
            return 0, []
        now = self._now()
        stored, conflicts = await self.db.write(_store_shop_checkins, self.db, connector_id, list(checkins), now)
        if stored:
            self._poke()
        return stored, conflicts
