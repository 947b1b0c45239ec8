"""Zones (with the gates that admit them) and entry policies."""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from hub.db import Database
from hub.errors import BadInput, Conflict
from hub.records import policy_row, zone_row
from hub.store.base import (
    Principal,
    StoreCore,
    append_changes,
    audit,
    execute,
    in_clause,
    one,
    rows,
    scalar,
)
from tickets.policy import EntryPolicy


def zone_gates(conn: Connection) -> dict[int, list[str]]:
    """zone id -> the gates (not revoked) that admit it."""
    out: dict[int, list[str]] = {}
    for gate_id, zones in rows(conn, "SELECT gate_id, zones FROM gates WHERE status != 'revoked' ORDER BY gate_id"):
        for z in json.loads(zones):
            out.setdefault(int(z), []).append(gate_id)
    return out


def zone_list(conn: Connection) -> list[dict[str, Any]]:
    gates = zone_gates(conn)
    return [zone_row(zid, name, cap, gates.get(zid, []))
            for zid, name, cap in rows(conn, "SELECT zone_id, name, capacity FROM zones ORDER BY zone_id")]


def policy_list(conn: Connection) -> list[dict[str, Any]]:
    return [policy_row(pid, name, wait, mx) for pid, name, wait, mx in rows(
        conn, "SELECT policy_id, name, wait_s, max_entries FROM policies ORDER BY policy_id")]


def emit_zone_changes(db: Database, conn: Connection, zone_ids: Iterable[int], now: float) -> None:
    """Zone rows carry their gates: record a change for each zone whose gate list moved."""
    ids = sorted(set(zone_ids))
    if not ids:
        return
    gates = zone_gates(conn)
    params: dict[str, Any] = {}
    found = rows(conn, f"SELECT zone_id, name, capacity FROM zones WHERE zone_id IN {in_clause('z', ids, params)}"
                       " ORDER BY zone_id", params)
    seqs = append_changes(db, conn, [("zone", zid, zone_row(zid, name, cap, gates.get(zid, [])))
                                     for zid, name, cap in found], now)
    execute(conn, "UPDATE zones SET seq = :s WHERE zone_id = :z",
            [{"s": s, "z": zid} for s, (zid, _n, _c) in zip(seqs, found, strict=True)])


def find_zone_by_name(conn: Connection, name: str) -> tuple[int, str] | None:
    """A zone whose name matches ignoring letter case and surrounding space: ``"north"`` is ``"North"``."""
    exact = one(conn, "SELECT zone_id, name FROM zones WHERE name = :n", {"n": name})
    if exact is not None:
        return int(exact[0]), str(exact[1])
    folded = name.strip().casefold()
    hits = [(int(z), str(n)) for z, n in rows(conn, "SELECT zone_id, name FROM zones") if n.strip().casefold() == folded]
    return hits[0] if len(hits) == 1 else None


class ZonesMixin(StoreCore):
    async def zones(self) -> list[dict[str, Any]]:
        return await self.db.read(zone_list)

    async def policies(self) -> list[dict[str, Any]]:
        return await self.db.read(policy_list)

    async def upsert_zone(self, actor: Principal, name: str, *, zone_id: int | None = None,
                          capacity: int | None = None) -> dict[str, Any]:
        """Create or change a zone. A name differing only in letter case from an existing zone
        names that zone (``"north"`` updates ``"North"``), never a second one."""
        name = name.strip()
        if not name or len(name) > 100:
            raise BadInput("zone name must be 1..100 characters")
        if capacity is not None and capacity < 0:
            raise BadInput("capacity must not be negative")
        now = self._now()

        def tx(conn: Connection) -> dict[str, Any]:
            zid = zone_id
            if zid is None:
                hit = find_zone_by_name(conn, name)
                zid = hit[0] if hit else int(scalar(conn, "SELECT COALESCE(MAX(zone_id), 0) + 1 FROM zones"))
            if not 1 <= zid <= 0xFFFF:
                raise BadInput("zone id must be 1..65535")
            other = [z for z, n in rows(conn, "SELECT zone_id, name FROM zones WHERE zone_id != :z", {"z": zid})
                     if n.strip().casefold() == name.casefold()]
            if other:
                raise Conflict(f"another zone is already named {name!r} (zone {other[0]})", code="zone_name_taken")
            row_d = zone_row(zid, name, capacity, zone_gates(conn).get(zid, []))
            (seq,) = append_changes(self.db, conn, [("zone", zid, row_d)], now)
            execute(conn, "INSERT INTO zones (zone_id, name, capacity, seq) VALUES (:z, :n, :c, :s) ON CONFLICT (zone_id)"
                          " DO UPDATE SET name = excluded.name, capacity = excluded.capacity, seq = excluded.seq",
                    {"z": zid, "n": name, "c": capacity, "s": seq})
            audit(conn, actor, "upsert_zone", str(zid), {"name": name, "capacity": capacity}, now)
            return row_d

        row_d = await self.db.write(tx)
        self._poke()
        return row_d

    async def upsert_policy(self, actor: Principal, policy_id: int, preset: str, *, wait_s: float = 600.0,
                            max_entries: int | None = None) -> dict[str, Any]:
        if not 1 <= policy_id <= 255:
            raise BadInput("policy id must be 1..255")
        try:
            EntryPolicy.preset(policy_id, preset, wait_s=wait_s, max_entries=max_entries)
        except ValueError as exc:
            raise BadInput(str(exc), code="bad_policy") from None
        now = self._now()
        row_d = policy_row(policy_id, preset, wait_s, max_entries)

        def tx(conn: Connection) -> None:
            (seq,) = append_changes(self.db, conn, [("policy", policy_id, row_d)], now)
            execute(conn, "INSERT INTO policies (policy_id, name, wait_s, max_entries, seq) VALUES (:p, :n, :w, :m, :s)"
                          " ON CONFLICT (policy_id) DO UPDATE SET name = excluded.name, wait_s = excluded.wait_s,"
                          " max_entries = excluded.max_entries, seq = excluded.seq",
                    {"p": policy_id, "n": preset, "w": wait_s, "m": max_entries, "s": seq})
            audit(conn, actor, "upsert_policy", str(policy_id), row_d, now)
        await self.db.write(tx)
        self._poke()
        return row_d
