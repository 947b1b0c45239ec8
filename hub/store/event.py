"""The event itself: meta settings, signing keys, API tokens, and control-room commands."""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from hub.errors import BadInput, NotFound
from hub.keyfiles import load_keyring, load_signing_key, private_path, save_signing_key
from hub.store.base import (
    KEYS_DIR,
    ROLES,
    Principal,
    StoreCore,
    append_changes,
    audit,
    current_seq,
    execute,
    hash_token,
    meta_set,
    new_token,
    one,
    rows,
)
from tickets.keys import KeyRing, SigningKey, generate_key

log = logging.getLogger(__name__)


class EventMixin(StoreCore):
    _signing_key: SigningKey | None = None
    _keyring: KeyRing | None = None
    _epoch: str | None = None

    # --- meta ------------------------------------------------------------------------------

    async def meta(self) -> dict[str, str]:
        return await self.db.read(lambda c: {k: v for k, v in rows(c, "SELECT key, value FROM meta")})

    async def hub_epoch(self) -> str:
        """Changes when the hub is restored from a backup: gates then re-send their journal.

        Read once per open: a restore replaces the database while the hub is stopped.
        """
        if self._epoch is None:
            row = await self.db.read(lambda c: one(c, "SELECT value FROM meta WHERE key = 'hub_epoch'"))
            self._epoch = str(row[0])
        return self._epoch

    async def set_meta(self, actor: Principal, values: Mapping[str, str | None], *, action: str = "set_meta",
                       announce: bool = False) -> None:
        """Set meta keys (a value of None deletes its key), audited as ``action``, in one
        transaction. With ``announce`` an ``event`` change naming the keys is appended, so every
        serving hub process hears of it at once (dashboards refresh; gates ignore the kind)."""
        now = self._now()
        changed = dict(values)

        def tx(conn: Connection) -> None:
            for k, v in changed.items():
                if v is None:
                    execute(conn, "DELETE FROM meta WHERE key = :k", {"k": k})
                else:
                    meta_set(conn, k, v)
            audit(conn, actor, action, ",".join(sorted(changed)), changed, now)
            if announce:
                append_changes(self.db, conn, [("event", 0, {"keys": sorted(changed)})], now)
        await self.db.write(tx)
        if announce:
            self._poke()

    # --- keys ------------------------------------------------------------------------------

    def keyring(self) -> KeyRing:
        if self._keyring is None:
            self._keyring = load_keyring(self.data_dir / KEYS_DIR)
        return self._keyring

    async def signing_key(self) -> SigningKey:
        if self._signing_key is None:
            kid = int((await self.meta())["signing_key_id"])
            self._signing_key = await asyncio.to_thread(load_signing_key, private_path(self.data_dir / KEYS_DIR, kid))
        return self._signing_key

    async def rotate_key(self, actor: Principal, key_id: int | None = None) -> int:
        """A new signing key; the old public keys stay valid (credentials already issued still verify)."""
        key = generate_key(key_id)
        await asyncio.to_thread(save_signing_key, self.data_dir / KEYS_DIR, key)
        now = self._now()

        def tx(conn: Connection) -> None:
            meta_set(conn, "signing_key_id", str(key.key_id))
            audit(conn, actor, "rotate_key", str(key.key_id), {}, now)
        await self.db.write(tx)
        self._signing_key = None
        self._keyring = None
        return key.key_id

    async def event_info(self) -> dict[str, Any]:
        meta = await self.meta()
        zones = await self.zones()  # type: ignore[attr-defined]
        policies = await self.policies()  # type: ignore[attr-defined]
        info = {
            "event_id": int(meta["event_id"]),
            "name": meta.get("event_name", ""),
            "keys": self.keyring().to_list(),
            "zones": zones,
            "policies": policies,
            "allow_admit_on_signature": meta.get("allow_admit_on_signature", "1") == "1",
            "hub_epoch": meta["hub_epoch"],
            "current_seq": await self.current_seq(),
            "emergency": json.loads(meta["emergency"]) if "emergency" in meta else {"active": False},
        }
        if "pretix_event" in meta:
            # a connected pretix: its signing keys and products → zones (docs/connectors.md)
            info["pretix"] = json.loads(meta["pretix_event"])
        return info

    async def current_seq(self) -> int:
        return await self.db.read(current_seq)

    # --- API tokens ------------------------------------------------------------------------

    async def authenticate(self, token: str) -> Principal | None:
        row = await self.db.read(lambda c: one(
            c, "SELECT name, role FROM tokens WHERE token_hash = :h AND revoked_at IS NULL", {"h": hash_token(token)}))
        return Principal(row[0], row[1]) if row else None

    async def create_token(self, actor: Principal, name: str, role: str) -> str:
        if role not in ROLES:
            raise BadInput(f"role must be one of {', '.join(ROLES)}", code="bad_role")
        token = new_token()
        now = self._now()

        def tx(conn: Connection) -> None:
            execute(conn, "INSERT INTO tokens (token_hash, name, role, created_at) VALUES (:h, :n, :r, :at)",
                    {"h": hash_token(token), "n": name, "r": role, "at": now})
            audit(conn, actor, "create_token", name, {"role": role}, now)
        await self.db.write(tx)
        return token

    # --- control-room commands --------------------------------------------------------------

    async def emergency(self) -> dict[str, Any]:
        """The control room's emergency state: ``active``, ``reason``, ``by``, ``at``, ``gates``."""
        row = await self.db.read(lambda c: one(c, "SELECT value FROM meta WHERE key = 'emergency'"))
        return json.loads(row[0]) if row else {"active": False, "reason": "", "by": None, "at": None, "gates": None}

    async def set_emergency(self, actor: Principal, active: bool, reason: str,
                            gates: Sequence[str] | None = None) -> dict[str, Any]:
        """Declare or end an emergency (free egress) at all gates or the named ones.

        Recorded (meta, audit, and a ``command`` change every hub process sends to its
        gates); gates latch emergency until a reset, so ending it sends ``emergency_off`` for
        staff to reset locally.
        """
        reason = reason.strip()
        if not reason or len(reason) > 500:
            raise BadInput("reason must be 1..500 characters")
        now = self._now()
        state = {"active": active, "reason": reason, "by": actor.name, "at": now,
                 "gates": sorted(gates) if gates is not None else None}
        gate_list: list[str] | None = sorted(gates) if gates is not None else None
        name = "emergency_on" if active else "emergency_off"
        command: dict[str, Any] = {"name": name, "reason": reason, "args": {}, "gates": gate_list,
                                   "command_id": secrets.token_hex(8)}

        def tx(conn: Connection) -> None:
            if gates is not None:
                known = {r[0] for r in rows(conn, "SELECT gate_id FROM gates")}
                missing = sorted(set(gates) - known)
                if missing:
                    raise NotFound(f"unknown gates: {missing}", code="gate_not_found")
            meta_set(conn, "emergency", json.dumps(state))
            audit(conn, actor, name, ",".join(gate_list or ["all"]), command, now)
            append_changes(self.db, conn, [("command", 0, command)], now)
        await self.db.write(tx)
        self._poke()
        log.warning("%s by %s: %s", command["name"], actor.name, reason)
        return {**state, "command_id": command["command_id"]}

    async def send_command(self, actor: Principal, name: str, reason: str, gates: Sequence[str] | None = None,
                           args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Any other command to gates (``close``, ``open``, ``refresh_manifest``), through the change log."""
        now = self._now()
        command = {"name": name, "reason": reason, "args": args or {},
                   "gates": sorted(gates) if gates is not None else None, "command_id": secrets.token_hex(8)}

        def tx(conn: Connection) -> None:
            audit(conn, actor, name, ",".join(command["gates"] or ["all"]), command, now)
            append_changes(self.db, conn, [("command", 0, command)], now)
        await self.db.write(tx)
        self._poke()
        return command

    async def record_audit(self, actor: Principal, action: str, target: str, detail: dict[str, Any]) -> None:
        now = self._now()
        await self.db.write(lambda c: audit(c, actor, action, target, detail, now))
