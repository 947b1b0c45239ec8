"""The durable queue of check-ins going back to ticket shops (table ``checkin_uploads``).

Every admit the hub stores (scan or manual, any gate, paper ticks too) is queued here in the
same transaction, once per configured connector that uploads, keyed ``(connector, gate, seq)``
so a re-sent journal entry is never queued twice. Entries that came *from* a shop (the
pseudo-gates ``shop:<connector>``) are not queued: the shop has them already.

A hub process uploads by *claiming* due rows (:func:`claim_uploads`): on PostgreSQL with
``SELECT … FOR UPDATE SKIP LOCKED``, so two hub processes never claim the same row; on SQLite
the one writer serialises claims. A claim is a lease: a row claimed by a process that died is
claimed again after :data:`CLAIM_LEASE_S`, and the upload it repeats is harmless because the
shop de-duplicates on our nonce. An admit whose passage outcome has not arrived yet is not
claimed (a fan who turns back at the turnstile has not checked in); one that did not pass is
``skipped`` with that reason.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from hub.db import Database
from hub.store.base import StoreCore, execute, many, one, rows
from tickets.barcode import JOURNAL_KEY_PREFIX, PROVISIONAL_ID_BASE
from tickets.entry import EntryKind, JournalEntry

log = logging.getLogger(__name__)

#: journal of check-ins read from a shop (``shop:pretix``): stored, never uploaded back
SHOP_GATE_PREFIX = "shop:"
#: a claim older than this is taken over (the claiming process died mid-upload)
CLAIM_LEASE_S = 120.0
#: states a queue row moves through
STATUSES = ("pending", "claimed", "done", "refused", "skipped")

_COLUMNS = ("u.upload_id, u.connector_id, u.gate_id, u.seq, u.nonce, u.ticket_id, u.barcode_key, u.ticket_number,"
            " u.at, u.direction, u.forced, u.attempts")


def shop_gate_id(connector_id: str) -> str:
    return SHOP_GATE_PREFIX + connector_id


@dataclass(frozen=True, slots=True)
class ClaimedUpload:
    """One queued check-in claimed for upload, with what the connector needs to send it.

    ``barcode`` and ``external_id`` come from the ticket the admit resolved to; both are None
    while the ticket is still unknown (admitted on a shop's signature before the hub had it).
    """

    upload_id: int
    connector_id: str
    gate_id: str
    seq: int
    nonce: str
    ticket_id: int | None
    barcode_key: str | None
    ticket_number: str | None
    at: float
    direction: str
    forced: bool
    attempts: int
    barcode: str | None
    external_id: str | None

    @property
    def idempotency_key(self) -> str:
        """What the shop de-duplicates on: stable per journal entry, whichever process sends it."""
        return f"gatehouse-{self.gate_id}-{self.seq}-{self.nonce}"[:190]


def _journal_key(raw: bytes) -> str | None:
    if raw.startswith(JOURNAL_KEY_PREFIX):
        return raw[len(JOURNAL_KEY_PREFIX):].decode("ascii", "replace")
    return None


def enqueue_uploads(conn: Connection, gate_id: str, admits: Sequence[JournalEntry], now: float) -> int:
    """Queue newly stored admits for every connector that uploads check-ins; returns rows queued."""
    if not admits or gate_id.startswith(SHOP_GATE_PREFIX):
        return 0
    connectors = [r[0] for r in rows(conn, "SELECT connector_id FROM connectors WHERE enabled = 1 AND uploads = 1")]
    if not connectors:
        return 0
    params: list[tuple[Any, ...]] = []
    for e in admits:
        if e.kind not in (EntryKind.SCAN, EntryKind.MANUAL) or not e.admitted:
            continue
        tid = e.ticket_id if e.ticket_id is not None and e.ticket_id < PROVISIONAL_ID_BASE else None
        # decided without the shop: offline, from the manifest, on a signature alone, or by hand
        forced = int(e.mode != "ONLINE" or e.reason == "ADMIT_ON_SIGNATURE" or e.kind is EntryKind.MANUAL)
        for c in connectors:
            params.append((c, gate_id, e.seq, e.nonce, tid, _journal_key(e.raw), e.ticket_number, e.at,
                           e.direction, forced, now))
    many(conn, "INSERT INTO checkin_uploads (connector_id, gate_id, seq, nonce, ticket_id, barcode_key, ticket_number,"
               " at, direction, forced, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
               " ON CONFLICT (connector_id, gate_id, seq) DO NOTHING", params)
    return len(params)


def skip_not_passed(conn: Connection, gate_id: str, ref_seqs: Sequence[int], now: float) -> None:
    """Admits whose fan did not pass the turnstile consumed nothing: nothing to check in."""
    many(conn, "UPDATE checkin_uploads SET status = 'skipped', done_at = ?, last_error = ?"
               " WHERE gate_id = ? AND seq = ? AND status IN ('pending', 'claimed')",
         [(now, "the fan did not pass the turnstile: no check-in", gate_id, s) for s in ref_seqs])


def resolve_upload_tickets(conn: Connection, mapped: Sequence[tuple[str, int, int]]) -> None:
    """Entries re-mapped from a provisional id or barcode key to a ticket: ``(gate_id, seq, ticket_id)``."""
    many(conn, "UPDATE checkin_uploads SET ticket_id = ? WHERE gate_id = ? AND seq = ?",
         [(tid, g, s) for g, s, tid in mapped])


def claim_uploads(conn: Connection, db: Database, connector_id: str, who: str, now: float,
                  limit: int = 50, lease_s: float = CLAIM_LEASE_S) -> list[ClaimedUpload]:
    """Claim up to ``limit`` due rows for ``who`` (a hub process); see the module docstring."""
    lock = " FOR UPDATE OF u SKIP LOCKED" if db.is_pg else ""
    got = rows(conn, f"SELECT {_COLUMNS} FROM checkin_uploads u WHERE u.connector_id = :c"
                     " AND ((u.status = 'pending' AND u.next_at <= :now) OR (u.status = 'claimed' AND u.claimed_at < :stale))"
                     " AND NOT EXISTS (SELECT 1 FROM pending_admits p WHERE p.gate_id = u.gate_id AND p.seq = u.seq"
                     f" AND p.expired_at IS NULL) ORDER BY u.upload_id LIMIT :l{lock}",
               {"c": connector_id, "now": now, "stale": now - lease_s, "l": limit})
    if not got:
        return []
    many(conn, "UPDATE checkin_uploads SET status = 'claimed', claimed_by = ?, claimed_at = ? WHERE upload_id = ?",
         [(who, now, r[0]) for r in got])
    out = []
    for r in got:
        tid, key = r[5], r[6]
        ticket = None
        if tid is not None:
            ticket = one(conn, "SELECT ticket_id, barcode, external_id, number FROM tickets WHERE ticket_id = :t",
                         {"t": tid})
        elif key is not None:
            ticket = one(conn, "SELECT ticket_id, barcode, external_id, number FROM tickets WHERE barcode_key = :k",
                         {"k": key})
        out.append(ClaimedUpload(
            upload_id=int(r[0]), connector_id=r[1], gate_id=r[2], seq=int(r[3]), nonce=r[4],
            ticket_id=int(ticket[0]) if ticket else None, barcode_key=key,
            ticket_number=(ticket[3] if ticket else r[7]), at=float(r[8]), direction=r[9], forced=bool(r[10]),
            attempts=int(r[11]), barcode=ticket[1] if ticket else None, external_id=ticket[2] if ticket else None))
    return out


@dataclass(frozen=True, slots=True)
class UploadResult:
    """What became of one claimed upload.

    ``status``: ``done`` (the shop recorded it), ``refused`` (the shop said no: a conflict for a
    supervisor), ``skipped`` (nothing to upload: ``error`` says why) or ``retry`` (the shop could
    not be reached or failed: tried again at ``retry_at``).
    """

    upload_id: int
    status: str
    error: str = ""
    shop_ref: str | None = None
    retry_at: float = 0.0
    detail: dict[str, Any] | None = None


def finish_uploads(conn: Connection, who: str, claimed: Sequence[ClaimedUpload], results: Sequence[UploadResult],
                   now: float) -> list[dict[str, Any]]:
    """Record outcomes (only for rows still claimed by ``who``: a row another process took over
    after the lease is left to it); returns the conflicts raised for refusals."""
    from hub.store.ingest import add_conflict

    by_id = {c.upload_id: c for c in claimed}
    conflicts: list[dict[str, Any]] = []
    for res in results:
        c = by_id[res.upload_id]
        still = one(conn, "SELECT 1 FROM checkin_uploads WHERE upload_id = :u AND status = 'claimed' AND claimed_by = :w",
                    {"u": res.upload_id, "w": who})
        if still is None:
            log.warning("upload %d: claim lost to another process before its outcome (%s) was recorded",
                        res.upload_id, res.status)
            continue
        if res.status == "retry":
            execute(conn, "UPDATE checkin_uploads SET status = 'pending', attempts = attempts + 1, next_at = :n,"
                          " last_error = :e, claimed_by = NULL, claimed_at = NULL WHERE upload_id = :u",
                    {"n": res.retry_at, "e": res.error[:500], "u": res.upload_id})
            continue
        execute(conn, "UPDATE checkin_uploads SET status = :s, attempts = attempts + 1, done_at = :at, last_error = :e,"
                      " shop_ref = :r, ticket_id = COALESCE(ticket_id, :t), ticket_number = COALESCE(ticket_number, :n)"
                      " WHERE upload_id = :u",
                {"s": res.status, "at": now, "e": res.error[:500] or None, "r": res.shop_ref, "t": c.ticket_id,
                 "n": c.ticket_number, "u": res.upload_id})
        if res.status == "refused":
            detail = {"connector": c.connector_id, "ticket_number": c.ticket_number, "reason": res.error,
                      "forced": c.forced, "admitted_at": c.at, **(res.detail or {}),
                      "message": f"{c.connector_id} refused this gate's check-in: {res.error}"}
            conflicts += add_conflict(conn, "shop_refused", c.ticket_id, (c.gate_id, c.seq),
                                      (shop_gate_id(c.connector_id), c.upload_id), detail, now)
    return conflicts


class UploadsMixin(StoreCore):
    async def upload_counts(self, connector_id: str | None = None) -> dict[str, dict[str, int]]:
        """Rows per connector and status (what the operator's queue view shows first)."""
        def tx(conn: Connection) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for cid, status, n in rows(conn, "SELECT connector_id, status, COUNT(*) FROM checkin_uploads"
                                             " GROUP BY connector_id, status"):
                if connector_id is None or cid == connector_id:
                    out.setdefault(cid, dict.fromkeys(STATUSES, 0))[status] = int(n)
            return out
        return await self.db.read(tx)

    async def uploads(self, connector_id: str, *, status: str | None = None, after: int = 0,
                      limit: int = 100) -> list[dict[str, Any]]:
        """Queue rows in id order (keyset paging on ``after``), optionally of one status."""
        where = "connector_id = :c AND upload_id > :a"
        params: dict[str, Any] = {"c": connector_id, "a": after, "l": max(1, min(limit, 1000))}
        if status is not None:
            where += " AND status = :s"
            params["s"] = status
        got = await self.db.read(lambda c: rows(
            c, "SELECT upload_id, gate_id, seq, ticket_id, ticket_number, at, direction, forced, status, attempts,"
               f" next_at, last_error, shop_ref, created_at, done_at FROM checkin_uploads WHERE {where}"
               " ORDER BY upload_id LIMIT :l", params))
        keys = ("upload_id", "gate_id", "seq", "ticket_id", "ticket_number", "at", "direction", "forced", "status",
                "attempts", "next_at", "last_error", "shop_ref", "created_at", "done_at")
        out = [dict(zip(keys, r, strict=True)) for r in got]
        for d in out:
            d["forced"] = bool(d["forced"])
        return out


def status_json(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
