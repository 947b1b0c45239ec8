"""Reading the change log: changes since a cursor, snapshot pages, and cursor checks."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection

from hub.records import TICKET_COLUMNS_T, ticket_row
from hub.store.base import Change, Snapshot, StoreCore, current_seq, one, rows
from hub.store.zones import policy_list, zone_list

#: most changes one read returns
MAX_CHANGES = 100_000


def changes_since(conn: Connection, cursor: int, limit: int = 1000, kinds: frozenset[str] | None = None) -> list[Change]:
    got = rows(conn, "SELECT seq, kind, row, at, token FROM changes WHERE seq > :c ORDER BY seq LIMIT :l",
               {"c": cursor, "l": max(1, min(limit, MAX_CHANGES))})
    return [Change(int(seq), kind, json.loads(row), at, token) for seq, kind, row, at, token in got
            if kinds is None or kind in kinds]


def last_read(conn: Connection, cursor: int, limit: int) -> int:
    """The seq a ``changes_since(cursor, limit)`` read ends at, whatever the kinds kept."""
    got = rows(conn, "SELECT seq FROM changes WHERE seq > :c ORDER BY seq LIMIT :l",
               {"c": cursor, "l": max(1, min(limit, MAX_CHANGES))})
    return int(got[-1][0]) if got else cursor


def state_of(row: Any, offset: int) -> dict[str, Any] | None:
    """The ``state`` object of a ticket row joined with ``entry_state`` (columns from ``offset``)."""
    if row[offset] is None:
        return None
    return {"entries": row[offset], "inside": bool(row[offset + 1]), "last_entry_at": row[offset + 2],
            "last_exit_at": row[offset + 3], "state_seq": row[offset + 4]}


def snapshot_page(conn: Connection, after_ticket_id: int, limit: int) -> Snapshot:
    seq = current_seq(conn)
    zones_l = zone_list(conn)
    policies_l = policy_list(conn)
    lim = max(1, min(limit, 100_000))
    got = rows(conn, f"SELECT {TICKET_COLUMNS_T}, s.entries, s.inside, s.last_entry_at, s.last_exit_at, s.state_seq"
                     " FROM tickets t LEFT JOIN entry_state s ON s.ticket_id = t.ticket_id"
                     " WHERE t.ticket_id > :a ORDER BY t.ticket_id LIMIT :l", {"a": after_ticket_id, "l": lim})
    tickets_l = []
    for r in got:
        d = ticket_row(r)
        state = state_of(r, 14)
        if state is not None:
            d["state"] = state
        tickets_l.append(d)
    next_after = tickets_l[-1]["ticket_id"] if len(tickets_l) == lim else None
    return Snapshot(seq, zones_l, policies_l, tickets_l, next_after)


class ChangesMixin(StoreCore):
    async def changes_since(self, cursor: int, limit: int = 1000, kinds: frozenset[str] | None = None) -> list[Change]:
        return await self.db.read(changes_since, cursor, limit, kinds)

    async def changes_page(self, cursor: int, limit: int, kinds: frozenset[str] | None = None) -> tuple[list[Change], int]:
        """Changes after ``cursor`` of the given kinds, and the seq this read ended at (≥ cursor):
        a reader whose filter kept nothing still moves past what it read."""
        def tx(conn: Connection) -> tuple[list[Change], int]:
            got = changes_since(conn, cursor, limit)
            end = got[-1].seq if got else cursor
            return [c for c in got if kinds is None or c.kind in kinds], end
        return await self.db.read(tx)

    async def snapshot_rows(self, after_ticket_id: int = 0, limit: int = 5000) -> Snapshot:
        """One page of the ticket table with each ticket's entry state, read in one transaction."""
        return await self.db.read(snapshot_page, after_ticket_id, limit)

    async def cursor_holds(self, seq: int, token: str | None) -> bool:
        """Is the change at ``seq`` still the one a gate applied (same token)? False when this
        log lost it (a restore from a backup, or a failover to a standby that lacked it)."""
        if seq == 0 or token is None:
            return True
        row = await self.db.read(lambda c: one(c, "SELECT token FROM changes WHERE seq = :s", {"s": seq}))
        return row is not None and (row[0] == token or row[0] == "")

    async def change_token(self, seq: int) -> str | None:
        row = await self.db.read(lambda c: one(c, "SELECT token FROM changes WHERE seq = :s", {"s": seq}))
        return None if row is None else str(row[0])
