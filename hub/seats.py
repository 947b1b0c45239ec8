"""Seat mismatches as the hub sees them: double-sold seats, zones over capacity, shared-seat zones.

One query (:func:`seat_mismatches`) reads who holds which seat and asks the pure rules in
:mod:`tickets.seats`; the ticket import reports its answer, the seats page
(``/seats``, :mod:`hub.routes.seats`) lists it until every clash is resolved, and the
readiness report (:mod:`hub.readiness`) turns it into ✖ lines. A clash is resolved the way a
box office resolves it — revoke one ticket, re-seat one (``gatehouse hub reseat``), or mark
the zone *shared seats* (standing, benches: seat labels there are not unique places) — and
disappears from every list by itself, because the lists are computed, never stored.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from hub.errors import NotFound
from hub.store.base import Principal, audit, execute, one, rows
from tickets.seats import Holding, OverCapacity, SeatClash, double_sold, over_capacity, seat_key

if TYPE_CHECKING:
    from hub.store import HubStore

#: double-sold seats listed in one answer (the count is always whole; the page pages the rest)
LISTED = 200


def read_holdings(conn: Connection) -> tuple[list[Holding], set[int]]:
    """The valid tickets that share a seat with another (only those: the rules in
    :func:`tickets.seats.double_sold` decide), and the zones whose seats are shared.

    Every valid seated ticket's zone and seat is read once and keyed as the rules key it; a
    :class:`Holding` is built only for a place held more than once (a 60,000-seat venue with
    a handful of double sales builds a handful)."""
    shared = {int(z) for (z,) in rows(conn, "SELECT zone_id FROM zones WHERE shared_seats = 1")}
    places: dict[tuple[int, str], list[tuple[Any, ...]]] = {}
    for r in conn.exec_driver_sql("SELECT ticket_id, number, zone_id, seat FROM tickets"
                                  " WHERE status = 'valid' AND seat != ''"):
        places.setdefault((r[2], seat_key(r[3])), []).append(r)
    held = [Holding(int(t), str(n), int(z), str(s)) for group in places.values() if len(group) > 1
            for t, n, z, s in group]
    return held, shared


def zone_facts(conn: Connection) -> list[dict[str, Any]]:
    """Each zone: id, name, capacity, shared seats, valid tickets."""
    counts = {int(z): int(n) for z, n in rows(
        conn, "SELECT zone_id, COUNT(*) FROM tickets WHERE status = 'valid' GROUP BY zone_id")}
    return [{"zone_id": int(z), "name": str(n), "capacity": c, "shared_seats": bool(s), "tickets": counts.get(int(z), 0)}
            for z, n, c, s in rows(conn, "SELECT zone_id, name, capacity, shared_seats FROM zones ORDER BY zone_id")]


def clashes_and_overbooking(conn: Connection) -> tuple[list[SeatClash], list[OverCapacity], list[dict[str, Any]]]:
    held, shared = read_holdings(conn)
    zones = zone_facts(conn)
    over = over_capacity({z["zone_id"]: z["tickets"] for z in zones}, {z["zone_id"]: z["capacity"] for z in zones})
    return double_sold(held, shared), over, zones


def clash_json(c: SeatClash, zone_names: dict[int, str], holders: dict[int, str] | None = None) -> dict[str, Any]:
    return {"key": c.key, "zone_id": c.zone_id, "zone": zone_names.get(c.zone_id, str(c.zone_id)), "seat": c.seat,
            "tickets": [{"ticket_id": h.ticket_id, "number": h.number, "seat": h.seat,
                         **({"holder": holders.get(h.ticket_id, "")} if holders is not None else {})}
                        for h in c.tickets]}


def seat_mismatches(conn: Connection, *, listed: int = LISTED, zone_id: int | None = None) -> dict[str, Any]:
    """Double-sold seats (the first ``listed``, with the whole count) and zones over capacity."""
    clashes, over, zones = clashes_and_overbooking(conn)
    if zone_id is not None:
        clashes = [c for c in clashes if c.zone_id == zone_id]
    names = {z["zone_id"]: z["name"] for z in zones}
    shown = clashes[:max(0, listed)]
    ids = sorted({h.ticket_id for c in shown for h in c.tickets})
    holders: dict[int, str] = {}
    for i in range(0, len(ids), 900):
        part = ids[i:i + 900]
        marks = ",".join(f":t{j}" for j in range(len(part)))
        holders.update({int(t): str(h) for t, h in rows(
            conn, f"SELECT ticket_id, holder FROM tickets WHERE ticket_id IN ({marks})",
            {f"t{j}": v for j, v in enumerate(part)})})
    return {
        "double_sold_count": len(clashes),
        "double_sold": [clash_json(c, names, holders) for c in shown],
        "double_sold_truncated": len(clashes) > len(shown),
        "over_capacity": [{"zone_id": o.zone_id, "zone": names.get(o.zone_id, str(o.zone_id)), "capacity": o.capacity,
                           "tickets": o.tickets, "excess": o.excess} for o in over],
        "shared_seat_zones": [z["zone_id"] for z in zones if z["shared_seats"]],
    }


def mismatch_lines(m: dict[str, Any]) -> list[str]:
    """The mismatches as lines for a terminal (the CLI import and re-seat print them on stderr)."""
    out = []
    for c in m["double_sold"]:
        numbers = ", ".join(t["number"] for t in c["tickets"])
        out.append(f"double-sold seat: zone {c['zone']} seat {c['seat']}: {numbers}")
    if m["double_sold_truncated"]:
        out.append(f"... {m['double_sold_count'] - len(m['double_sold'])} more double-sold seats"
                   " (gatehouse hub seats lists them all)")
    for o in m["over_capacity"]:
        out.append(f"over capacity: zone {o['zone']}: {o['tickets']} valid tickets for {o['capacity']} places"
                   f" ({o['excess']} too many)")
    return out


def find_zone(conn: Connection, ref: str | int) -> tuple[int, str]:
    """A zone named by id or by name (letter case and surrounding space ignored)."""
    text = str(ref).strip()
    if text.isdigit():
        hit = one(conn, "SELECT zone_id, name FROM zones WHERE zone_id = :z", {"z": int(text)})
        if hit is not None:
            return int(hit[0]), str(hit[1])
    folded = text.casefold()
    hits = [(int(z), str(n)) for z, n in rows(conn, "SELECT zone_id, name FROM zones") if n.strip().casefold() == folded]
    if len(hits) != 1:
        raise NotFound(f"no zone {text!r}", code="zone_not_found")
    return hits[0]


async def mismatches(store: HubStore, *, listed: int = LISTED, zone_id: int | None = None) -> dict[str, Any]:
    return await store.db.read(lambda c: seat_mismatches(c, listed=listed, zone_id=zone_id))


async def set_shared_seats(store: HubStore, actor: Principal, zone: str | int, shared: bool) -> dict[str, Any]:
    """Mark a zone's seats shared (standing, benches: a seat label is not a unique place) or
    numbered again. Audited; the seats page and readiness report read it at once. Gates do
    not need it (a seat is never checked at the turnstile), so it is not in the change log."""
    now = store.clock()

    def tx(conn: Connection) -> dict[str, Any]:
        zid, name = find_zone(conn, zone)
        before = one(conn, "SELECT shared_seats FROM zones WHERE zone_id = :z", {"z": zid})[0]
        if bool(before) == shared:  # asked again (a retried request): nothing to change, nothing to audit
            return {"zone_id": zid, "name": name, "shared_seats": shared, "changed": False}
        execute(conn, "UPDATE zones SET shared_seats = :s WHERE zone_id = :z", {"s": int(shared), "z": zid})
        audit(conn, actor, "zone_seating", str(zid), {"zone": name, "shared_seats": shared}, now)
        return {"zone_id": zid, "name": name, "shared_seats": shared, "changed": True}

    return await store.db.write(tx)
