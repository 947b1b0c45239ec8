"""A journal entry: the gate's durable record of one thing that happened, and the audit record.

The gate appends one entry per decision (refusals too), per passage outcome, per manual
admit and per mode change, each with a gate-local ``seq`` (1, 2, 3, … with no gaps) and a
random ``nonce``. The hub stores every entry forever, idempotently on ``(gate_id, seq)``;
the nonce tells a genuine re-send (same nonce) from a gate that reused a seq after losing
its journal (different nonce: reported, never silently merged).

Passage outcomes are separate entries (``kind="passage"``, ``ref_seq`` = the admit's seq),
so the journal stays append-only: an admit is consumed unless a later passage entry says
``not_passed``.
"""
from __future__ import annotations

import base64
import secrets
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class EntryKind(StrEnum):
    SCAN = "scan"  # a decision on a scanned code
    MANUAL = "manual"  # a steward's admit from the manifest (MANIFEST mode)
    PASSAGE = "passage"  # the turnstile's outcome for an earlier admit (ref_seq)
    MODE = "mode"  # a mode transition (detail: "OLD->NEW: cause")
    EVENT = "event"  # hardware and other events: forced passage, alarm, scanner fault


class Passage(StrEnum):
    PENDING = "pending"  # admitted, waiting for the sensor
    PASSED = "passed"
    NOT_PASSED = "not_passed"  # timed out: ticket stays valid
    NONE = "none"  # not an admit


@dataclass(frozen=True, slots=True)
class JournalEntry:
    gate_id: str
    seq: int
    at: float
    kind: EntryKind
    nonce: str = field(default_factory=lambda: secrets.token_hex(8))
    reason: str | None = None  # a tickets.reasons.Reason value for scans and manual admits
    ticket_id: int | None = None
    ticket_number: str | None = None
    zone_id: int | None = None
    raw: bytes = b""  # the scanned bytes exactly as read (or the code a steward typed)
    direction: str = "in"
    mode: str = "ONLINE"
    cursor: int = 0  # the replica's hub sequence number when decided
    passage: Passage = Passage.NONE
    ref_seq: int | None = None
    staff_id: str | None = None
    detail: str = ""

    @property
    def admitted(self) -> bool:
        return self.reason in ("ADMIT", "ADMIT_REENTRY", "ADMIT_ON_SIGNATURE")

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready dict (``raw`` as base64)."""
        d = asdict(self)
        d["raw"] = base64.b64encode(self.raw).decode("ascii")
        d["kind"] = str(self.kind)
        d["passage"] = str(self.passage)
        return d

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> JournalEntry:
        """Inverse of :meth:`to_wire`. Raises ValueError/TypeError/KeyError on bad input."""
        gate_id = d["gate_id"]
        seq = d["seq"]
        if not isinstance(gate_id, str) or not gate_id:
            raise ValueError("gate_id must be a non-empty string")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise ValueError("seq must be a positive integer")
        at = d["at"]
        if isinstance(at, bool) or not isinstance(at, int | float):
            raise ValueError("at must be a number")
        ticket_id = d.get("ticket_id")
        if ticket_id is not None and (isinstance(ticket_id, bool) or not isinstance(ticket_id, int)):
            raise ValueError("ticket_id must be an integer or null")
        return cls(
            gate_id=gate_id,
            seq=seq,
            at=float(at),
            kind=EntryKind(d["kind"]),
            nonce=str(d["nonce"]),
            reason=d.get("reason"),
            ticket_id=ticket_id,
            ticket_number=d.get("ticket_number"),
            zone_id=d.get("zone_id"),
            raw=base64.b64decode(d.get("raw") or "", validate=True),
            direction=str(d.get("direction", "in")),
            mode=str(d.get("mode", "ONLINE")),
            cursor=int(d.get("cursor", 0)),
            passage=Passage(d.get("passage", "none")),
            ref_seq=d.get("ref_seq"),
            staff_id=d.get("staff_id"),
            detail=str(d.get("detail", "")),
        )
