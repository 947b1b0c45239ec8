"""Gates: registration, enrolment, tokens, zones they admit, revocation, what they report."""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from hub.errors import BadInput, Conflict, NotFound, Unauthorized
from hub.store.base import (
    ENROLL_TTL_S,
    Principal,
    StoreCore,
    append_changes,
    audit,
    driver_rows,
    execute,
    hash_token,
    marks,
    new_token,
    one,
    rows,
    slug,
)
from hub.store.zones import emit_zone_changes

_GATE_COLUMNS = "gate_id, name, zones, status, high_water, created_at, last_seen, enroll_expires, info"


def gate_dict(r: Any) -> dict[str, Any]:
    return {"gate_id": r[0], "name": r[1], "zones": json.loads(r[2]), "status": r[3], "high_water": r[4],
            "created_at": r[5], "last_seen": r[6], "enroll_expires": r[7], "info": json.loads(r[8] or "{}")}


def _known_zones(conn: Connection, zone_list: list[int]) -> None:
    known = {r[0] for r in rows(conn, "SELECT zone_id FROM zones")}
    missing = [z for z in zone_list if z not in known]
    if missing:
        raise NotFound(f"unknown zone ids: {missing}", code="zone_not_found")


class GatesMixin(StoreCore):
    async def create_gate(self, actor: Principal, name: str, zones: Iterable[int] = (), *,
                          ttl_s: float = ENROLL_TTL_S) -> tuple[str, str, float]:
        """Register a gate; returns (gate_id, one-time enrolment token, expiry)."""
        name = name.strip()
        if not name or len(name) > 100:
            raise BadInput("gate name must be 1..100 characters")
        zone_list = sorted({int(z) for z in zones})
        enroll = new_token(24)
        now = self._now()
        expires = now + ttl_s

        def tx(conn: Connection) -> str:
            _known_zones(conn, zone_list)
            base = slug(name)
            gate_id, n = base, 2
            while one(conn, "SELECT 1 FROM gates WHERE gate_id = :g", {"g": gate_id}) is not None:
                gate_id, n = f"{base}-{n}", n + 1
            execute(conn, "INSERT INTO gates (gate_id, name, zones, status, enroll_hash, enroll_expires, created_at)"
                          " VALUES (:g, :n, :z, 'pending', :e, :x, :at)",
                    {"g": gate_id, "n": name, "z": json.dumps(zone_list), "e": hash_token(enroll), "x": expires,
                     "at": now})
            emit_zone_changes(self.db, conn, zone_list, now)
            append_changes(self.db, conn, [("gate", 0, {"gate_id": gate_id, "status": "pending", "zones": zone_list})],
                           now)
            audit(conn, actor, "create_gate", gate_id, {"name": name, "zones": zone_list}, now)
            return gate_id

        gate_id = await self.db.write(tx)
        self._poke()
        return gate_id, enroll, expires

    async def enroll_gate(self, enroll_token: str) -> tuple[str, str]:
        """Exchange a one-time enrolment token for the gate's long-lived token: (gate_id, token)."""
        now = self._now()
        token = new_token()

        def tx(conn: Connection) -> str:
            row = one(conn, "SELECT gate_id, enroll_expires, status FROM gates WHERE enroll_hash = :h",
                      {"h": hash_token(enroll_token)})
            if row is None or row[2] != "pending":
                raise Unauthorized("unknown or already used enrolment token", code="bad_enrolment_token")
            if row[1] is not None and now > row[1]:
                raise Unauthorized("the enrolment token has expired; issue a new one", code="enrolment_expired")
            gate_id = str(row[0])
            execute(conn, "UPDATE gates SET status = 'active', token_hash = :t, enroll_hash = NULL,"
                          " enroll_expires = NULL, last_seen = :at WHERE gate_id = :g",
                    {"t": hash_token(token), "at": now, "g": gate_id})
            audit(conn, Principal(gate_id, "gate"), "enroll", gate_id, {}, now)
            return gate_id

        return await self.db.write(tx), token

    async def reissue_enrolment(self, actor: Principal, gate_id: str, *,
                                ttl_s: float = ENROLL_TTL_S) -> tuple[str, float]:
        """A new one-time token for a gate (a replaced Pi); the old gate token stops working."""
        enroll = new_token(24)
        now = self._now()

        def tx(conn: Connection) -> None:
            cur = execute(conn, "UPDATE gates SET status = 'pending', token_hash = NULL, enroll_hash = :e,"
                                " enroll_expires = :x WHERE gate_id = :g AND status != 'revoked'",
                          {"e": hash_token(enroll), "x": now + ttl_s, "g": gate_id})
            if cur.rowcount == 0:
                raise NotFound(f"no enrollable gate {gate_id!r}", code="gate_not_found")
            append_changes(self.db, conn, [("gate", 0, {"gate_id": gate_id, "status": "pending"})], now)
            audit(conn, actor, "reissue_enrolment", gate_id, {}, now)

        await self.db.write(tx)
        self._poke()
        return enroll, now + ttl_s

    async def authenticate_gate(self, token: str) -> str | None:
        row = await self.db.read(lambda c: one(
            c, "SELECT gate_id FROM gates WHERE token_hash = :h AND status = 'active'", {"h": hash_token(token)}))
        return str(row[0]) if row else None

    async def gate_token_status(self, token: str, claimed_gate: str | None = None) -> str:
        """Why a gate token is refused: ``revoked`` (this gate was revoked), ``re_enrol`` (the
        gate id is known but waits for a new enrolment), or ``unknown`` (the hub never saw it
        — e.g. restored from a backup older than the gate's enrolment)."""
        def tx(conn: Connection) -> str:
            row = one(conn, "SELECT status FROM gates WHERE token_hash = :h", {"h": hash_token(token)})
            if row is not None:
                return "revoked" if row[0] == "revoked" else str(row[0])
            if claimed_gate:
                g = one(conn, "SELECT status FROM gates WHERE gate_id = :g", {"g": claimed_gate})
                if g is not None:
                    return "revoked" if g[0] == "revoked" else "re_enrol"
            return "unknown"
        return await self.db.read(tx)

    async def gates(self) -> list[dict[str, Any]]:
        return [gate_dict(r) for r in await self.db.read(
            lambda c: rows(c, f"SELECT {_GATE_COLUMNS} FROM gates ORDER BY gate_id"))]

    async def gate(self, gate_id: str) -> dict[str, Any]:
        row = await self.db.read(lambda c: one(c, f"SELECT {_GATE_COLUMNS} FROM gates WHERE gate_id = :g",
                                               {"g": gate_id}))
        if row is None:
            raise NotFound(f"no gate {gate_id!r}", code="gate_not_found")
        return gate_dict(row)

    async def update_gate(self, actor: Principal, gate_id: str, *, name: str | None = None,
                          zones: Iterable[int] | None = None) -> dict[str, Any]:
        """Rename a gate or assign its zones (zones changed → zone changes for the gates to sync)."""
        now = self._now()
        zone_arg = sorted({int(z) for z in zones}) if zones is not None else None

        def tx(conn: Connection) -> None:
            row = one(conn, f"SELECT {_GATE_COLUMNS} FROM gates WHERE gate_id = :g", {"g": gate_id})
            if row is None:
                raise NotFound(f"no gate {gate_id!r}", code="gate_not_found")
            old = gate_dict(row)
            zone_list = zone_arg if zone_arg is not None else old["zones"]
            if zone_arg is not None:
                _known_zones(conn, zone_list)
            new_name = name.strip() if name is not None else old["name"]
            if not new_name or len(new_name) > 100:
                raise BadInput("gate name must be 1..100 characters")
            execute(conn, "UPDATE gates SET name = :n, zones = :z WHERE gate_id = :g",
                    {"n": new_name, "z": json.dumps(zone_list), "g": gate_id})
            emit_zone_changes(self.db, conn, set(zone_list) ^ set(old["zones"]), now)
            append_changes(self.db, conn, [("gate", 0, {"gate_id": gate_id, "status": old["status"],
                                                        "zones": zone_list})], now)
            audit(conn, actor, "update_gate", gate_id, {"name": new_name, "zones": zone_list}, now)

        await self.db.write(tx)
        self._poke()
        return await self.gate(gate_id)

    async def revoke_gate(self, actor: Principal, gate_id: str) -> dict[str, Any]:
        """Refuse the gate from now on: every hub process closes its connection (through the change log)."""
        now = self._now()

        def tx(conn: Connection) -> None:
            row = one(conn, "SELECT status, zones FROM gates WHERE gate_id = :g", {"g": gate_id})
            if row is None:
                raise NotFound(f"no gate {gate_id!r}", code="gate_not_found")
            if row[0] == "revoked":
                raise Conflict(f"gate {gate_id!r} is already revoked", code="already_revoked")
            execute(conn, "UPDATE gates SET status = 'revoked', token_hash = NULL, enroll_hash = NULL"
                          " WHERE gate_id = :g", {"g": gate_id})
            emit_zone_changes(self.db, conn, json.loads(row[1]), now)
            append_changes(self.db, conn, [("gate", 0, {"gate_id": gate_id, "status": "revoked"})], now)
            audit(conn, actor, "revoke_gate", gate_id, {}, now)

        await self.db.write(tx)
        self._poke()
        return await self.gate(gate_id)

    async def record_gate_info(self, gate_id: str, info: dict[str, Any]) -> None:
        """What a gate reports about itself (versions, clock skew, hardware), merged into ``gates.info``."""
        def tx(conn: Connection) -> None:
            row = one(conn, "SELECT info FROM gates WHERE gate_id = :g", {"g": gate_id})
            if row is None:
                return
            merged = {**json.loads(row[0] or "{}"), **info}
            execute(conn, "UPDATE gates SET info = :i WHERE gate_id = :g", {"i": json.dumps(merged), "g": gate_id})
        await self.db.write(tx)

    async def touch_gates(self, gate_ids: Iterable[str]) -> None:
        """These gates are connected to this hub process now (every process's dashboard reads it)."""
        ids = sorted(gate_ids)
        if not ids:
            return
        now = self._now()

        def tx(conn: Connection) -> None:
            # ``info.linked_at``: a live websocket here, as opposed to ``last_seen`` (any contact,
            # a journal POST too); the other processes' dashboards read it
            infos = {str(g): json.loads(i or "{}") for g, i in driver_rows(
                conn, f"SELECT gate_id, info FROM gates WHERE gate_id IN {marks(len(ids))}", ids)}
            execute(conn, "UPDATE gates SET last_seen = :at, info = :i WHERE gate_id = :g",
                    [{"at": now, "g": g, "i": json.dumps({**infos[g], "linked_at": now})} for g in ids if g in infos])

        await self.db.write(tx)

    async def journal_high_water(self, gate_id: str) -> int:
        row = await self.db.read(lambda c: one(c, "SELECT high_water FROM gates WHERE gate_id = :g", {"g": gate_id}))
        return int(row[0]) if row else 0

    async def high_waters(self) -> dict[str, int]:
        return dict(await self.db.read(lambda c: rows(c, "SELECT gate_id, high_water FROM gates")))

    async def backed_up_high_water(self, gate_id: str) -> int:
        """The gate's journal high water inside the latest completed backup (0 if none)."""
        row = await self.db.read(lambda c: one(c, "SELECT high_waters FROM backups ORDER BY id DESC LIMIT 1"))
        if row is None:
            return 0
        return int(json.loads(row[0]).get(gate_id, 0))
