"""Row shapes the hub hands out: tickets, zones and policies as JSON-ready dicts.

A change in the ``changes`` log carries one of these dicts (the full row after the change),
so a gate can rebuild its replica from changes alone. :func:`record_from_row` turns a
ticket row back into the :class:`tickets.model.TicketRecord` the gate's decision reads.
"""
from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from tickets.model import TicketRecord, TicketStatus
from tickets.policy import EntryPolicy

TICKET_COLUMNS = (
    "ticket_id, number, zone_id, policy_id, valid_from, valid_until, serial, status, "
    "rotating_secret, holder, seat, external_id, opaque, barcode_key"
)
#: :data:`TICKET_COLUMNS` qualified with the table alias ``t`` (for joins)
TICKET_COLUMNS_T = ", ".join("t." + c.strip() for c in TICKET_COLUMNS.split(","))


def ticket_row(r: Sequence[Any]) -> dict[str, Any]:
    """A ticket row (selected with :data:`TICKET_COLUMNS`) as a TicketRecord-shaped dict.

    ``barcode_key`` (hex; present when the ticket has a barcode apart from its number) is
    what gates look a scanned barcode up by; the barcode itself never leaves the hub.
    """
    secret = r[8]
    out = {
        "ticket_id": r[0],
        "number": r[1],
        "zone_id": r[2],
        "policy_id": r[3],
        "valid_from": r[4],
        "valid_until": r[5],
        "serial": r[6],
        "status": r[7],
        "rotating_secret": base64.b64encode(secret).decode("ascii") if secret else None,
        "holder": r[9],
        "seat": r[10],
    }
    if len(r) > 13 and r[13]:
        out["barcode_key"] = r[13]
    return out


def record_from_row(d: Mapping[str, Any]) -> TicketRecord:
    """The TicketRecord for a ticket row dict (as carried by a change or a snapshot)."""
    secret = d.get("rotating_secret")
    return TicketRecord(
        ticket_id=int(d["ticket_id"]),
        number=str(d["number"]),
        zone_id=int(d["zone_id"]),
        policy_id=int(d["policy_id"]),
        valid_from=float(d["valid_from"]),
        valid_until=float(d["valid_until"]),
        serial=int(d.get("serial", 0)),
        status=TicketStatus(d.get("status", "valid")),
        rotating_secret=base64.b64decode(secret) if secret else None,
        holder=str(d.get("holder", "")),
        seat=str(d.get("seat", "")),
    )


def policy_row(policy_id: int, name: str, wait_s: float, max_entries: int | None) -> dict[str, Any]:
    p = policy_from_row({"policy_id": policy_id, "name": name, "wait_s": wait_s, "max_entries": max_entries})
    return {
        "policy_id": policy_id,
        "name": name,
        "kind": str(p.kind),
        "passback": str(p.passback),
        "wait_s": wait_s,
        "passback_wait_s": p.passback_wait_s,
        "max_entries": max_entries,
    }


def policy_from_row(d: Mapping[str, Any]) -> EntryPolicy:
    return EntryPolicy.preset(
        int(d["policy_id"]), str(d["name"]), wait_s=float(d.get("wait_s", 600.0)),
        max_entries=d.get("max_entries"),
    )


def zone_row(zone_id: int, name: str, capacity: int | None, gates: list[str]) -> dict[str, Any]:
    return {"zone_id": zone_id, "name": name, "capacity": capacity, "gates": sorted(gates)}
