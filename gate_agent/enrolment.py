"""``gatehouse gate enroll``: trade a one-time token for this gate's own credentials.

The hub prints a one-time enrolment token (``gatehouse hub enroll-gate``); the gate sends it
once to ``POST /api/v1/enroll`` and receives its gate id, its long-lived token (the hub
keeps only a hash) and the event: id, public keys, zones and policies. The token is stored
owner-only; the event goes straight into the replica so the gate can decide offline from
its first minute.
"""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from gate_agent.files import private_dir, write_private
from gate_agent.replica import Replica
from sync import messages as m
from tickets.keys import KeyRing


def enroll(hub_url: str, token: str, data_dir: Path, ca_file: Path | None = None) -> int:
    verify: Any = str(ca_file) if ca_file else True
    try:
        r = httpx.post(hub_url.rstrip("/") + "/api/v1/enroll", json={"token": token}, timeout=15, verify=verify)
    except httpx.HTTPError as exc:
        print(f"cannot reach the hub at {hub_url}: {exc}", file=sys.stderr)
        return 1
    if r.status_code != 200:
        try:
            err = r.json()["error"]
            print(f"enrolment refused: {err['code']}: {err['message']}", file=sys.stderr)
        except Exception:
            print(f"enrolment refused: HTTP {r.status_code}", file=sys.stderr)
        return 1
    body = r.json()
    save_enrolment(data_dir, hub_url, body)
    asyncio.run(seed_replica(data_dir / "replica.sqlite3", body["event"]))
    print(f"enrolled as gate {body['gate_id']}; credentials in {data_dir / 'gate-credentials.json'}")
    return 0


def save_enrolment(data_dir: Path, hub_url: str, body: dict[str, Any]) -> Path:
    """Write the gate's credentials (owner-only, atomically) and the event it joined."""
    private_dir(data_dir)
    path = write_private(data_dir / "gate-credentials.json",
                         json.dumps({"gate_id": body["gate_id"], "token": body["token"], "hub_url": hub_url}))
    write_private(data_dir / "event.json", json.dumps(body["event"], indent=2))
    return path


async def seed_replica(path: Path, event: dict[str, Any]) -> None:
    replica = await Replica.open(path)
    try:
        await replica.set_event(
            event_id=int(event["event_id"]), keyring=KeyRing.from_list(event.get("keys", [])),
            zones=[m.zone_from_wire(z) for z in event.get("zones", [])],
            policies=[m.policy_from_wire(p) for p in event.get("policies", [])],
            allow_admit_on_signature=bool(event.get("allow_admit_on_signature", True)),
        )
    finally:
        await replica.close()
