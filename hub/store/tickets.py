"""Tickets: look-ups, search with paging, and changes (revoke, reinstate, upgrade, transfer)."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from hub.errors import BadInput, Conflict, NotFound
from hub.records import TICKET_COLUMNS, ticket_row
from hub.store.base import Principal, StoreCore, append_changes, audit, execute, one, rows, scalar
from tickets.manifest import normalize_number
from tickets.rotating import new_secret

#: the most rows one page of a list may hold
MAX_PAGE = 1000


def ticket_view(row: Any) -> dict[str, Any]:
    """A ticket as the store hands it to the API (the API strips secrets per role)."""
    d = ticket_row(row)
    d["external_id"] = row[11]
    d["opaque"] = row[12]
    d["has_barcode"] = bool(row[13])
    d.pop("barcode_key", None)
    return d


def resolve_ticket_ref(conn: Connection, ref: str | int) -> int:
    """A ticket named by id (``5``), by number (``T000005``) or by a typed number (``t-000005``)."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit() and len(ref) < 19):
        tid = int(ref)
        if one(conn, "SELECT 1 FROM tickets WHERE ticket_id = :t", {"t": tid}) is not None:
            return tid
        if isinstance(ref, int):
            raise NotFound(f"no ticket {ref}", code="ticket_not_found")
    text_ref = str(ref).strip()
    hit = one(conn, "SELECT ticket_id FROM tickets WHERE number = :n", {"n": text_ref})
    if hit is None:
        found = rows(conn, "SELECT ticket_id FROM tickets WHERE number_key = :k LIMIT 2",
                     {"k": normalize_number(text_ref)})
        if len(found) > 1:
            raise Conflict(f"{text_ref!r} matches several ticket numbers; give the exact number or id",
                           code="ambiguous_ticket")
        hit = found[0] if found else None
    if hit is None:
        raise NotFound(f"no ticket with id or number {text_ref!r}", code="ticket_not_found")
    return int(hit[0])


def ticket_by_number(conn: Connection, number: str, *, normalized: bool = True) -> int | None:
    """The ticket a number names: exact first, then as typed (spaces, dashes and case ignored).

    Two tickets whose numbers normalise alike are left to a human (None)."""
    hit = one(conn, "SELECT ticket_id FROM tickets WHERE number = :n", {"n": number})
    if hit is None and normalized:
        found = rows(conn, "SELECT ticket_id FROM tickets WHERE number_key = :k LIMIT 2", {"k": normalize_number(number)})
        hit = found[0] if len(found) == 1 else None
    return int(hit[0]) if hit is not None else None


def bump(t: dict[str, Any]) -> dict[str, Any]:
    if t["serial"] >= 0xFFFF:
        raise Conflict("ticket has been changed too often (serial exhausted)", code="serial_exhausted")
    t["serial"] += 1
    return t


class TicketsMixin(StoreCore):
    async def ticket(self, ticket_id: int | str) -> dict[str, Any]:
        def tx(conn: Connection) -> dict[str, Any]:
            tid = resolve_ticket_ref(conn, ticket_id)
            row = one(conn, f"SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_id = :t", {"t": tid})
            view = ticket_view(row)
            st = one(conn, "SELECT entries, inside, last_entry_at, last_exit_at, last_gate FROM entry_state"
                           " WHERE ticket_id = :t", {"t": tid})
            view["entry_state"] = ({"entries": st[0], "inside": bool(st[1]), "last_entry_at": st[2],
                                    "last_exit_at": st[3], "last_gate": st[4]} if st else
                                   {"entries": 0, "inside": False, "last_entry_at": None, "last_exit_at": None,
                                    "last_gate": None})
            return view
        return await self.db.read(tx)

    async def ticket_barcode(self, ticket_id: int) -> str | None:
        """The ticket's secret barcode (admins issuing a reprint only); None when its number is its barcode."""
        row = await self.db.read(lambda c: one(c, "SELECT barcode FROM tickets WHERE ticket_id = :t", {"t": ticket_id}))
        if row is None:
            raise NotFound(f"no ticket {ticket_id}", code="ticket_not_found")
        return row[0]

    async def ticket_count(self) -> int:
        return int(await self.db.read(lambda c: scalar(c, "SELECT COUNT(*) FROM tickets")))

    async def ticket_by_opaque(self, opaque: str) -> dict[str, Any]:
        row = await self.db.read(lambda c: one(c, f"SELECT {TICKET_COLUMNS} FROM tickets WHERE opaque = :o",
                                               {"o": opaque}))
        if row is None:
            raise NotFound("no such ticket page", code="ticket_not_found")
        return ticket_view(row)

    async def search_tickets(self, *, number_prefix: str | None = None, holder: str | None = None,
                             seat: str | None = None, zone_id: int | None = None, limit: int = 50,
                             after: str | None = None) -> list[dict[str, Any]]:
        """Search by number prefix, holder (substring, any case), seat and zone, ordered by number.

        Keyset paging: ``after`` is the last number of the previous page. Callers learn there is
        a next page when they get ``limit`` rows (the API turns that into a ``next`` link).
        """
        where, params = [], {}
        if number_prefix:
            # a range on the unique index, not LIKE (LIKE would scan)
            where.append("number >= :lo AND number < :hi")
            params.update(lo=number_prefix, hi=number_prefix + "\U0010ffff")
        if holder:
            where.append("LOWER(holder) LIKE :h ESCAPE '\\'")
            params["h"] = "%" + holder.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        if seat:
            where.append("seat = :seat")
            params["seat"] = seat
        if zone_id is not None:
            where.append("zone_id = :zone")
            params["zone"] = zone_id
        if after is not None:
            where.append("number > :after")
            params["after"] = after
        sql = f"SELECT {TICKET_COLUMNS} FROM tickets"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY number LIMIT :lim"
        params["lim"] = max(1, min(limit, MAX_PAGE))
        return [ticket_view(r) for r in await self.db.read(lambda c: rows(c, sql, params))]

    async def _change_ticket(self, actor: Principal, action: str, ticket_id: int | str,
                             mutate: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Read, mutate, write back and log one ticket change in one transaction."""
        now = self._now()

        def tx(conn: Connection) -> dict[str, Any]:
            tid = resolve_ticket_ref(conn, ticket_id)
            row = one(conn, f"SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_id = :t", {"t": tid})
            raw_secret = one(conn, "SELECT rotating_secret FROM tickets WHERE ticket_id = :t", {"t": tid})[0]
            before = ticket_view(row)
            after = mutate(dict(before))
            secret = after.pop("_secret", raw_secret)
            opaque = after.pop("_opaque", before["opaque"])
            row_after = (after["ticket_id"], after["number"], after["zone_id"], after["policy_id"],
                         after["valid_from"], after["valid_until"], after["serial"], after["status"],
                         secret, after["holder"], after["seat"], before["external_id"], opaque, row[13])
            change_row = ticket_row(row_after)
            (seq,) = append_changes(self.db, conn, [("ticket", tid, change_row)], now)
            execute(conn, "UPDATE tickets SET zone_id=:z, policy_id=:p, serial=:s, status=:st, rotating_secret=:sec,"
                          " holder=:h, seat=:seat, opaque=:o, seq=:seq WHERE ticket_id=:t",
                    {"z": after["zone_id"], "p": after["policy_id"], "s": after["serial"], "st": after["status"],
                     "sec": secret, "h": after["holder"], "seat": after["seat"], "o": opaque, "seq": seq, "t": tid})
            diff = {k: [before[k], change_row[k]] for k in change_row
                    if k not in ("rotating_secret", "barcode_key") and before.get(k) != change_row[k]}
            audit(conn, actor, action, str(tid), diff, now)
            out = dict(change_row)
            out.pop("barcode_key", None)
            out.update(external_id=before["external_id"], opaque=opaque, seq=seq, has_barcode=before["has_barcode"])
            return out

        result = await self.db.write(tx)
        self._poke()
        return result

    async def revoke_ticket(self, actor: Principal, ticket_id: int | str) -> dict[str, Any]:
        def mutate(t: dict[str, Any]) -> dict[str, Any]:
            if t["status"] == "revoked":
                raise Conflict(f"ticket {t['number']} is already revoked", code="already_revoked")
            t["status"] = "revoked"
            return t
        return await self._change_ticket(actor, "revoke", ticket_id, mutate)

    async def reinstate_ticket(self, actor: Principal, ticket_id: int | str) -> dict[str, Any]:
        def mutate(t: dict[str, Any]) -> dict[str, Any]:
            if t["status"] == "valid":
                raise Conflict(f"ticket {t['number']} is valid already", code="not_revoked")
            t["status"] = "valid"
            return t
        return await self._change_ticket(actor, "reinstate", ticket_id, mutate)

    async def upgrade_ticket(self, actor: Principal, ticket_id: int | str, *, zone_id: int | None = None,
                             seat: str | None = None, policy_id: int | None = None) -> dict[str, Any]:
        """New zone, seat or policy: a new credential (serial + 1); the old one is SUPERSEDED."""
        if seat is not None and len(seat) > 64:
            raise BadInput("seat is longer than 64 characters")

        def check(conn: Connection) -> None:
            if zone_id is not None and one(conn, "SELECT 1 FROM zones WHERE zone_id = :z", {"z": zone_id}) is None:
                raise BadInput(f"zone {zone_id} does not exist", code="zone_not_found")
            if policy_id is not None and one(conn, "SELECT 1 FROM policies WHERE policy_id = :p",
                                             {"p": policy_id}) is None:
                raise BadInput(f"entry policy {policy_id} does not exist", code="policy_not_found")
        await self.db.read(check)

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
            return bump(new)
        return await self._change_ticket(actor, "upgrade", ticket_id, mutate)

    async def transfer_ticket(self, actor: Principal, ticket_id: int | str, holder: str) -> dict[str, Any]:
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
            return bump(t)
        return await self._change_ticket(actor, "transfer", ticket_id, mutate)

    async def resolve_ticket(self, ref: str | int) -> int:
        """The ticket id a CLI or API argument names (id or number)."""
        return await self.db.read(resolve_ticket_ref, ref)
