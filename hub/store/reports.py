"""What supervisors read: validations, conflicts, stats, the audit log, gate modes and alerts."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection

from hub.errors import BadInput, Conflict, NotFound
from hub.store.base import ADMIT_SQL, Principal, StoreCore, audit, execute, one, rows, scalar
from hub.store.zones import zone_list
from tickets.entry import EntryKind, JournalEntry, Passage

MAX_PAGE = 10_000
_VALIDATION_COLUMNS = ("gate_id, seq, nonce, at, kind, reason, ticket_id, ticket_number, zone_id, raw, direction,"
                       " mode, cursor, passage, ref_seq, staff_id, detail, received_at")


def _entry(conn: Connection, gate_id: str, seq: int) -> dict[str, Any]:
    row = one(conn, "SELECT gate_id, seq, at, kind, reason, ticket_id, ticket_number, direction, mode, staff_id, detail"
                    " FROM journal WHERE gate_id = :g AND seq = :s", {"g": gate_id, "s": seq})
    if row is None:
        return {"gate_id": gate_id, "seq": seq}
    keys = ("gate_id", "seq", "at", "kind", "reason", "ticket_id", "ticket_number", "direction", "mode",
            "staff_id", "detail")
    return dict(zip(keys, row, strict=True))


class ReportsMixin(StoreCore):
    async def validations(self, *, ticket_id: int | None = None, gate_id: str | None = None,
                          since: float | None = None, until: float | None = None, reason: str | None = None,
                          kind: str | None = None, limit: int = 200,
                          before: tuple[float, str, int] | None = None) -> list[dict[str, Any]]:
        """Journal entries, newest first. Keyset paging: ``before`` is ``(at, gate_id, seq)`` of
        the last row of the previous page."""
        where: list[str] = []
        params: dict[str, Any] = {}
        for col, val in (("ticket_id", ticket_id), ("gate_id", gate_id), ("reason", reason), ("kind", kind)):
            if val is not None:
                where.append(f"{col} = :{col}")
                params[col] = val
        if since is not None:
            where.append("at >= :since")
            params["since"] = since
        if until is not None:
            where.append("at < :until")
            params["until"] = until
        if before is not None:
            where.append("(at < :b_at OR (at = :b_at AND (gate_id > :b_g OR (gate_id = :b_g AND seq < :b_s))))")
            params.update(b_at=before[0], b_g=before[1], b_s=before[2])
        sql = f"SELECT {_VALIDATION_COLUMNS} FROM journal"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY at DESC, gate_id, seq DESC LIMIT :lim"
        params["lim"] = max(1, min(limit, MAX_PAGE))
        out = []
        for r in await self.db.read(lambda c: rows(c, sql, params)):
            entry = JournalEntry(gate_id=r[0], seq=r[1], nonce=r[2], at=r[3], kind=EntryKind(r[4]), reason=r[5],
                                 ticket_id=r[6], ticket_number=r[7], zone_id=r[8], raw=bytes(r[9]), direction=r[10],
                                 mode=r[11], cursor=r[12], passage=Passage(r[13]), ref_seq=r[14], staff_id=r[15],
                                 detail=r[16])
            d = entry.to_wire()
            d["received_at"] = r[17]
            out.append(d)
        return out

    async def conflicts(self, *, open_only: bool = False, limit: int = 500,
                        before: int | None = None) -> list[dict[str, Any]]:
        """Conflicts, newest first; keyset paging with ``before`` = the last conflict id seen."""
        def tx(conn: Connection) -> list[dict[str, Any]]:
            where: list[str] = []
            params: dict[str, Any] = {"lim": max(1, min(limit, MAX_PAGE))}
            if open_only:
                where.append("resolved_at IS NULL")
            if before is not None:
                where.append("conflict_id < :before")
                params["before"] = before
            sql = ("SELECT conflict_id, kind, ticket_id, first_gate, first_seq, second_gate, second_seq, detail,"
                   " created_at, resolved_at, resolved_by, resolution FROM conflicts")
            if where:
                sql += " WHERE " + " AND ".join(where)
            sql += " ORDER BY conflict_id DESC LIMIT :lim"
            out = []
            for r in rows(conn, sql, params):
                out.append({"conflict_id": r[0], "kind": r[1], "ticket_id": r[2],
                            "first": _entry(conn, r[3], r[4]), "second": _entry(conn, r[5], r[6]),
                            "detail": json.loads(r[7]), "created_at": r[8], "resolved_at": r[9],
                            "resolved_by": r[10], "resolution": r[11]})
            return out
        return await self.db.read(tx)

    async def open_conflict_count(self) -> int:
        return int(await self.db.read(lambda c: scalar(c, "SELECT COUNT(*) FROM conflicts WHERE resolved_at IS NULL")))

    async def resolve_conflict(self, actor: Principal, conflict_id: int, resolution: str) -> dict[str, Any]:
        resolution = resolution.strip()
        if not resolution or len(resolution) > 1000:
            raise BadInput("resolution must be 1..1000 characters")
        now = self._now()

        def tx(conn: Connection) -> None:
            cur = execute(conn, "UPDATE conflicts SET resolved_at = :at, resolved_by = :by, resolution = :r"
                                " WHERE conflict_id = :c AND resolved_at IS NULL",
                          {"at": now, "by": actor.name, "r": resolution, "c": conflict_id})
            if cur.rowcount == 0:
                if one(conn, "SELECT 1 FROM conflicts WHERE conflict_id = :c", {"c": conflict_id}) is None:
                    raise NotFound(f"no conflict {conflict_id}", code="conflict_not_found")
                raise Conflict(f"conflict {conflict_id} is already resolved", code="already_resolved")
            audit(conn, actor, "resolve_conflict", str(conflict_id), {"resolution": resolution}, now)
        await self.db.write(tx)
        return {"conflict_id": conflict_id, "resolved_at": now, "resolved_by": actor.name, "resolution": resolution}

    async def stats(self, *, since: float | None = None, now: float | None = None) -> dict[str, Any]:
        """Entries/exits per minute per gate and zone, occupancy per zone, refusals by reason.

        Occupancy counts the whole event: admits in, minus exits, minus admits that did not
        pass the turnstile, minus admits whose passage never came (``unconfirmed``, raised as
        conflicts). ``pending`` counts admits still waiting for their passage (inside, as far
        as the turnstile lets anyone know yet).
        """
        now = self._now() if now is None else now
        since = now - 3600 if since is None else since
        minute = self.db.minute("at")
        admitted = f"kind IN ('scan', 'manual') AND reason IN {ADMIT_SQL}"
        ins = "SUM(CASE WHEN direction = 'in' THEN 1 ELSE 0 END)"
        outs = "SUM(CASE WHEN direction = 'out' THEN 1 ELSE 0 END)"

        def tx(conn: Connection) -> dict[str, Any]:
            window = {"since": since, "until": now + 60}
            per_gate = [
                {"gate_id": g, "minute": int(m) * 60, "entries": int(i), "exits": int(o)}
                for g, m, i, o in rows(conn, f"SELECT gate_id, {minute} AS m, {ins}, {outs} FROM journal WHERE"
                                             f" {admitted} AND at >= :since AND at < :until GROUP BY gate_id, m"
                                             " ORDER BY m, gate_id", window)]
            per_zone = [
                {"zone_id": z, "minute": int(m) * 60, "entries": int(i), "exits": int(o)}
                for z, m, i, o in rows(conn, f"SELECT zone_id, {minute} AS m, {ins}, {outs} FROM journal WHERE"
                                             f" {admitted} AND zone_id IS NOT NULL AND at >= :since AND at < :until"
                                             " GROUP BY zone_id, m ORDER BY m, zone_id", window)]
            # One pass: admits count +1 in / -1 out, and a "not passed" passage (which carries its
            # admit's zone and direction) takes its admit back. No sub-query per admit: without
            # table statistics SQLite answers a correlated NOT EXISTS from the primary key, reading
            # the gate's whole journal once per admit (6 s on a 117,000-entry matchday journal).
            occ = {int(z): int(n) for z, n in rows(
                conn, f"SELECT zone_id, SUM(CASE WHEN {admitted} THEN (CASE direction WHEN 'in' THEN 1 ELSE -1 END)"
                      " WHEN kind = 'passage' AND passage = 'not_passed' THEN (CASE direction WHEN 'in' THEN -1"
                      " ELSE 1 END) ELSE 0 END) FROM journal WHERE zone_id IS NOT NULL GROUP BY zone_id")}
            pend: dict[int, tuple[int, int]] = {}
            for z, live, n in rows(conn, "SELECT zone_id, expired_at IS NULL, COUNT(*) FROM pending_admits"
                                         " WHERE zone_id IS NOT NULL GROUP BY zone_id, expired_at IS NULL"):
                p, u = pend.get(int(z), (0, 0))
                pend[int(z)] = (p + int(n), u) if live else (p, u + int(n))
            occupancy = []
            for z in zone_list(conn):
                zid = z["zone_id"]
                pending, unconfirmed = pend.get(zid, (0, 0))
                inside = max(0, occ.get(zid, 0) - unconfirmed)
                cap = z["capacity"]
                occupancy.append({"zone_id": zid, "name": z["name"], "inside": inside, "pending": pending,
                                  "unconfirmed": unconfirmed, "capacity": cap,
                                  "ratio": round(inside / cap, 4) if cap else None})
            refusals = {r: int(n) for r, n in rows(
                conn, f"SELECT reason, COUNT(*) FROM journal WHERE kind = 'scan' AND reason IS NOT NULL"
                      f" AND reason NOT IN {ADMIT_SQL} AND at >= :since AND at < :until GROUP BY reason", window)}
            total, entries = one(conn, f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN {admitted} AND direction = 'in'"
                                       " THEN 1 ELSE 0 END), 0) FROM journal")
            pending_total = sum(p for p, _u in pend.values())
            unconfirmed_total = sum(u for _p, u in pend.values())
            return {
                "since": since, "now": now, "per_gate_minute": per_gate, "per_zone_minute": per_zone,
                "occupancy": occupancy, "refusals_by_reason": refusals,
                "journal_entries": int(total), "entries_total": int(entries),
                "pending_total": pending_total, "unconfirmed_total": unconfirmed_total,
                "open_conflicts": int(scalar(conn, "SELECT COUNT(*) FROM conflicts WHERE resolved_at IS NULL")),
            }
        return await self.db.read(tx)

    async def audit_log(self, *, limit: int = 200, action: str | None = None,
                        before: int | None = None) -> list[dict[str, Any]]:
        where: list[str] = []
        params: dict[str, Any] = {"lim": max(1, min(limit, MAX_PAGE))}
        if action:
            where.append("action = :action")
            params["action"] = action
        if before is not None:
            where.append("id < :before")
            params["before"] = before
        sql = "SELECT id, at, actor, role, action, target, detail FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT :lim"
        return [{"id": i, "at": at, "actor": a, "role": r, "action": ac, "target": t, "detail": json.loads(d)}
                for i, at, a, r, ac, t, d in await self.db.read(lambda c: rows(c, sql, params))]

    async def latest_modes(self) -> dict[str, dict[str, Any]]:
        """Each gate's latest MODE journal entry: ``{gate_id: {mode, cause, at, seq}}``.

        The detail of a mode entry reads ``"OLD->NEW: cause"``; the cause is split off so the
        dashboard can show why a gate is where it is.
        """
        got = await self.db.read(lambda c: rows(
            c, "SELECT j.gate_id, j.seq, j.at, j.mode, j.detail FROM journal j"
               " JOIN (SELECT gate_id, MAX(seq) AS seq FROM journal WHERE kind IN ('mode', 'event') AND kind = 'mode'"
               " GROUP BY gate_id) last ON last.gate_id = j.gate_id AND last.seq = j.seq"))
        out = {}
        for gate_id, seq, at, mode, detail in got:
            _transition, _sep, cause = str(detail).partition(": ")
            out[gate_id] = {"mode": mode, "cause": cause, "at": at, "seq": seq}
        return out

    async def alert_entries(self, *, limit: int = 50, since: float | None = None) -> list[dict[str, Any]]:
        """The newest mode changes and hardware/sync events from every gate, newest first."""
        # a passage reported by the turnstile is routine (one per fan): not an alert
        sql = ("SELECT gate_id, seq, at, kind, mode, detail, received_at FROM journal"
               " WHERE kind IN ('mode', 'event') AND detail NOT LIKE 'turnstile\\_passage:%' ESCAPE '\\'")
        params: dict[str, Any] = {"lim": max(1, min(limit, 1000))}
        if since is not None:
            sql += " AND at >= :since"
            params["since"] = since
        # "+at": sort the few mode/event rows found through their partial index, rather than walk
        # the whole journal backwards along journal_at looking for them
        sql += " ORDER BY +at DESC LIMIT :lim"
        keys = ("gate_id", "seq", "at", "kind", "mode", "detail", "received_at")
        return [dict(zip(keys, r, strict=True)) for r in await self.db.read(lambda c: rows(c, sql, params))]
