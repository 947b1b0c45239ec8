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
import math
import secrets
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

#: largest integer a journal field may hold (a signed 64-bit column on either database)
MAX_INT = 2**63 - 1
#: times are epoch seconds before 2106 (u32), like every other time in the system
MAX_TIME = float(2**32)
MAX_RAW = 4096


def _int(d: dict[str, Any], name: str, *, required: bool = False, minimum: int = 0) -> int | None:
    v = d[name] if required else d.get(name)
    if v is None and not required:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{name} must be an integer")
    if not minimum <= v <= MAX_INT:
        raise ValueError(f"{name} is out of range")
    return v


def _text(d: dict[str, Any], name: str, *, required: bool = False, limit: int = 200) -> str | None:
    v = d[name] if required else d.get(name)
    if v is None and not required:
        return None
    if not isinstance(v, str):
        raise ValueError(f"{name} must be text")
    if required and not v:
        raise ValueError(f"{name} must not be empty")
    if len(v) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not valid text (a lone surrogate)") from None
    return v


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
        """Inverse of :meth:`to_wire`. Raises ValueError/TypeError/KeyError on bad input.

        Every field is checked for type and range, so nothing a peer sends can reach a
        database as a value it cannot store (integers beyond 64 bits, a time that is NaN or
        centuries away, text with lone surrogates).
        """
        if not isinstance(d, dict):
            raise TypeError("a journal entry is an object")
        gate_id = _text(d, "gate_id", required=True, limit=64)
        seq = _int(d, "seq", required=True, minimum=1)
        at = d["at"]
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at) or not 0 <= at < MAX_TIME:
            raise ValueError("at must be a finite epoch time in seconds")
        raw_b64 = d.get("raw") or ""
        if not isinstance(raw_b64, str):
            raise TypeError("raw must be base64 text")
        raw = base64.b64decode(raw_b64, validate=True)
        if len(raw) > MAX_RAW:
            raise ValueError(f"raw is longer than {MAX_RAW} bytes")
        direction = _text(d, "direction", limit=8) or "in"
        if direction not in ("in", "out"):
            raise ValueError("direction must be in or out")
        return cls(
            gate_id=gate_id or "",
            seq=seq or 0,
            at=float(at),
            kind=EntryKind(d["kind"]),
            nonce=_text(d, "nonce", required=True, limit=64) or "",
            reason=_text(d, "reason", limit=40),
            ticket_id=_int(d, "ticket_id", minimum=0),
            ticket_number=_text(d, "ticket_number", limit=200),
            zone_id=_int(d, "zone_id", minimum=0),
            raw=raw,
            direction=direction,
            mode=_text(d, "mode", limit=20) or "ONLINE",
            cursor=_int(d, "cursor", minimum=0) or 0,
            passage=Passage(d.get("passage", "none")),
            ref_seq=_int(d, "ref_seq", minimum=0),
            staff_id=_text(d, "staff_id", limit=64),
            detail=_text(d, "detail", limit=2000) or "",
        )
