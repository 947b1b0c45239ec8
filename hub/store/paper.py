"""The paper fallback: stewards (PIN hashes), each gate's manifest, and ticks keyed in from paper."""
from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from hub.errors import BadInput, Conflict, NotFound
from hub.reconcile import PaperTick, bulk_ticks, paper_gate_id
from hub.records import TICKET_COLUMNS, record_from_row, ticket_row
from hub.store.base import (
    IngestResult,
    Principal,
    StoreCore,
    append_changes,
    audit,
    current_seq,
    execute,
    in_clause,
    one,
    rows,
    scalar,
)
from hub.store.ingest import record_entry_events, store_entries
from hub.store.tickets import ticket_by_number
from tickets.entry import EntryKind, JournalEntry
from tickets.manifest import (
    ManifestRow,
    PinHash,
    hash_pin,
    make_row,
    normalize_number,
    sort_rows,
    validate_pin,
)
from tickets.model import Zone

log = logging.getLogger(__name__)

_STEWARD_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


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


def read_gate_manifest(conn: Connection, gate_id: str, now: float) -> GateManifest:
    from hub.manifest import rows_for_gate  # the PDF renderer beside it is heavy to import

    seq = current_seq(conn)
    meta = dict(rows(conn, "SELECT key, value FROM meta WHERE key IN ('event_id', 'event_name')"))
    g = one(conn, "SELECT name, zones, status FROM gates WHERE gate_id = :g", {"g": gate_id})
    if g is None:
        raise NotFound(f"no gate {gate_id!r}", code="gate_not_found")
    if g[2] == "revoked":
        raise Conflict(f"gate {gate_id!r} is revoked; it has no manifest", code="gate_revoked")
    zone_ids = [int(z) for z in json.loads(g[1])]
    zones = {int(zid): Zone(int(zid), name, frozenset({gate_id}), cap)
             for zid, name, cap in rows(conn, "SELECT zone_id, name, capacity FROM zones") if zid in zone_ids}
    records = []
    if zones:
        params: dict[str, Any] = {}
        records = [record_from_row(ticket_row(r)) for r in rows(
            conn, f"SELECT {TICKET_COLUMNS} FROM tickets WHERE zone_id IN {in_clause('z', zones, params)}", params)]
    event_id = int(meta["event_id"])
    out = sort_rows(rows_for_gate(records, zones, event_id=event_id, gate_id=gate_id))
    return GateManifest(gate_id, g[0], event_id, meta.get("event_name", ""), seq, now, tuple(out))


class PaperMixin(StoreCore):
    async def add_steward(self, actor: Principal, steward_id: str, name: str, pin: str, *,
                          replace: bool = False) -> dict[str, Any]:
        """Register a steward who may admit by hand at the gates; the PIN is stored only hashed.

        ``replace`` updates an existing steward's name and PIN (a forgotten PIN); without it an
        existing id is refused, so a typo cannot silently take over someone else's id. Gates
        hear of it at once (a ``stewards`` change makes every hub process tell its gates to
        refresh their manifest and stewards).
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
        now = self._now()

        def tx(conn: Connection) -> bool:
            exists = one(conn, "SELECT 1 FROM stewards WHERE steward_id = :s", {"s": steward_id}) is not None
            if exists and not replace:
                raise Conflict(f"steward {steward_id!r} exists; use replace to change the PIN", code="steward_exists")
            execute(conn, "INSERT INTO stewards (steward_id, name, pin_hash, created_at, updated_at)"
                          " VALUES (:s, :n, :h, :at, :at) ON CONFLICT (steward_id) DO UPDATE SET name = excluded.name,"
                          " pin_hash = excluded.pin_hash, updated_at = excluded.updated_at",
                    {"s": steward_id, "n": name, "h": json.dumps(pin_hash.to_wire()), "at": now})
            audit(conn, actor, "update_steward" if exists else "add_steward", steward_id, {"name": name}, now)
            append_changes(self.db, conn, [("stewards", 0, {"steward_id": steward_id, "action": "put"})], now)
            return exists

        exists = await self.db.write(tx)
        self._poke()
        return {"steward_id": steward_id, "name": name, "updated_at": now, "replaced": exists}

    async def stewards(self) -> list[dict[str, Any]]:
        """Every steward, without PIN hashes (for people and the admin API)."""
        return [{"steward_id": i, "name": n, "created_at": c, "updated_at": u}
                for i, n, c, u in await self.db.read(lambda c: rows(
                    c, "SELECT steward_id, name, created_at, updated_at FROM stewards ORDER BY steward_id"))]

    async def steward_pins(self) -> list[tuple[str, str, PinHash]]:
        """Every steward with the PIN hash, as gates need it to check PINs offline."""
        return [(i, n, PinHash.from_wire(json.loads(h))) for i, n, h in await self.db.read(
            lambda c: rows(c, "SELECT steward_id, name, pin_hash FROM stewards ORDER BY steward_id"))]

    async def remove_steward(self, actor: Principal, steward_id: str) -> dict[str, Any]:
        """Remove a steward; gates drop them at once (through the change log)."""
        now = self._now()

        def tx(conn: Connection) -> None:
            cur = execute(conn, "DELETE FROM stewards WHERE steward_id = :s", {"s": steward_id})
            if cur.rowcount == 0:
                raise NotFound(f"no steward {steward_id!r}", code="steward_not_found")
            audit(conn, actor, "remove_steward", steward_id, {}, now)
            append_changes(self.db, conn, [("stewards", 0, {"steward_id": steward_id, "action": "remove"})], now)

        await self.db.write(tx)
        self._poke()
        return {"steward_id": steward_id, "removed_at": now}

    async def gate_manifest(self, gate_id: str) -> GateManifest:
        """One gate's manifest: the tickets of its zones, sorted, read in one transaction."""
        return await self.db.read(read_gate_manifest, gate_id, self._now())

    async def enter_paper_ticks(self, actor: Principal, gate_id: str, ticks: Sequence[PaperTickIn], *,
                                manifest_hub_seq: int | None = None) -> dict[str, Any]:
        """Tickets ticked on ``gate_id``'s paper manifest, keyed in afterwards by ``actor``.

        They become ``MANUAL`` entries of the pseudo-gate ``paper:<gate_id>``
        (:func:`hub.reconcile.bulk_ticks`) and pass through the same storage and conflict
        check as every gate's journal, in one transaction. All or nothing: a number the hub
        does not know, or of a ticket not on this gate's manifest (another zone), refuses the
        whole batch with the offending numbers, so a typo is corrected instead of half-entered.
        Tickets already recorded as admitted by hand at this gate are skipped.
        """
        gate = await self.gate(gate_id)  # type: ignore[attr-defined]
        if not ticks:
            raise BadInput("no ticked tickets given", code="empty_batch")
        now = self._now()
        out = await self.db.write(_paper_tx, self.db, actor, gate, list(ticks), manifest_hub_seq, now)
        self._poke()
        log.warning("%s entered %d paper ticks for gate %s (%d conflicts)", actor.name, out["entered"], gate_id,
                    len(out["conflicts"]))
        return out


def _paper_tx(conn: Connection, db: Any, actor: Principal, gate: dict[str, Any], ticks: list[PaperTickIn],
              manifest_hub_seq: int | None, now: float) -> dict[str, Any]:
    gate_id = gate["gate_id"]
    paper_gate = paper_gate_id(gate_id)
    event_id = int(scalar(conn, "SELECT value FROM meta WHERE key = 'event_id'"))
    zone_names = dict(rows(conn, "SELECT zone_id, name FROM zones"))
    gate_zones = set(gate["zones"])
    unknown: list[str] = []
    other_zone: list[str] = []
    items: list[PaperTick] = []
    for t in ticks:
        tid = ticket_by_number(conn, t.number)
        if tid is None:
            unknown.append(t.number)
            continue
        r = one(conn, "SELECT number, holder, zone_id, seat, status FROM tickets WHERE ticket_id = :t", {"t": tid})
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
    existing = [JournalEntry(gate_id=g, seq=int(s), at=0.0, kind=EntryKind.MANUAL, reason=reason, ticket_number=number)
                for g, s, reason, number in rows(
                    conn, "SELECT gate_id, seq, reason, ticket_number FROM journal WHERE gate_id IN (:g, :p)"
                          " AND kind = 'manual' AND ticket_number IS NOT NULL", {"g": gate_id, "p": paper_gate})]
    first_seq = int(scalar(conn, "SELECT COALESCE(MAX(seq), 0) + 1 FROM journal WHERE gate_id = :p", {"p": paper_gate}))
    entries = bulk_ticks(items, actor.name, gate_id=gate_id, first_seq=first_seq, entered_at=now,
                         manifest_hub_seq=manifest_hub_seq, existing=existing)
    result = IngestResult(high_water=0)
    events = store_entries(conn, db, paper_gate, entries, now, result)
    record_entry_events(db, conn, events, now)
    entered = {normalize_number(e.ticket_number or "") for e in entries}
    skipped = sorted({t.row.number for t in items if normalize_number(t.row.number) not in entered})
    audit(conn, actor, "paper_ticks", gate_id,
          {"entered": len(entries), "skipped": len(skipped), "conflicts": len(result.conflicts),
           "manifest_hub_seq": manifest_hub_seq, "seqs": [entries[0].seq, entries[-1].seq] if entries else []}, now)
    return {"gate_id": gate_id, "paper_gate_id": paper_gate, "entered_by": actor.name,
            "entered": len(entries), "seqs": [e.seq for e in entries], "skipped": skipped,
            "conflicts": result.conflicts}
