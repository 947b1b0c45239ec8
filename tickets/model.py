"""The values the decision works on: scans, replica records, entry state, gate policy, verdicts.

All frozen: a verdict or a record never changes after it is made. ``ReplicaView`` is the
one door from :func:`tickets.decide.decide` to the gate's data; the gate agent implements
it over its SQLite replica, tests implement it over a dict.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from tickets.reasons import Reason

if TYPE_CHECKING:
    from tickets.keys import KeyRing
    from tickets.policy import EntryPolicy
    from tickets.pretix import PretixEvent


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class TicketStatus(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"


class CredentialKind(StrEnum):
    SIGNED = "signed"  # static signed QR
    ROTATING = "rotating"  # signed QR + time-based code
    LEGACY = "legacy"  # a barcode or ticket number, looked up in the replica
    PRETIX = "pretix"  # a pretix signed secret (pretix_sig1)


@dataclass(frozen=True, slots=True)
class Scan:
    """What a scanner read: the raw bytes, never interpreted by the scanner."""

    payload: bytes
    symbology: str = "unknown"  # "qrcode", "code128", "ean13", "itf", "pdf417", "keyed", ...
    source: str = ""  # which scanner read it
    at: float = 0.0  # wall-clock seconds when read
    direction: Direction = Direction.IN


@dataclass(frozen=True, slots=True)
class TicketRecord:
    """One ticket as the replica holds it. The hub is its source of truth."""

    ticket_id: int
    number: str
    zone_id: int
    policy_id: int
    valid_from: float
    valid_until: float
    serial: int = 0  # current revision; a credential with a lower serial is superseded
    status: TicketStatus = TicketStatus.VALID
    rotating_secret: bytes | None = None
    holder: str = ""
    seat: str = ""
    #: :func:`tickets.barcode.barcode_key` of the ticket's secret barcode; None for a ticket
    #: whose barcode is its number (found by number) or that has only a signed credential
    barcode_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class EntryState:
    """Where a ticket's holder is, as far as this gate knows."""

    entries: int = 0
    inside: bool = False
    last_entry_at: float | None = None
    last_exit_at: float | None = None


NEVER_ENTERED = EntryState()


@dataclass(frozen=True, slots=True)
class Zone:
    zone_id: int
    name: str
    gates: frozenset[str]
    capacity: int | None = None


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """The rules this gate decides by: who it is, which keys it trusts, zones, entry policies."""

    gate_id: str
    event_id: int
    keyring: KeyRing
    zones: Mapping[int, Zone]
    entry_policies: Mapping[int, EntryPolicy]
    allow_admit_on_signature: bool = True
    #: (opens, closes) epoch-second windows; empty means always open.
    open_windows: tuple[tuple[float, float], ...] = ()
    #: closed by command (the CLOSED mode) regardless of the windows
    closed: bool = False
    #: tolerance for validity windows, for gate clocks that drift
    clock_skew_s: float = 60.0
    #: rotating codes are accepted this many 15 s steps either side of now
    rotating_window_steps: int = 1
    #: keys and product mapping for pretix signed tickets; None: the event has none
    pretix: PretixEvent | None = None


class ReplicaView(Protocol):
    """Read access to the gate's replica, as the decision needs it."""

    def ticket_by_id(self, ticket_id: int) -> TicketRecord | None: ...

    def ticket_by_number(self, number: str) -> TicketRecord | None: ...

    def ticket_by_barcode_key(self, key: bytes) -> TicketRecord | None:
        """The ticket whose barcode has this key; a revoked one first if several share it."""
        ...

    def entry_state(self, ticket_id: int) -> EntryState: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision on one scan. ``reason`` is the stable code; ``message`` is for staff."""

    reason: Reason
    message: str
    ticket_id: int | None = None
    ticket_number: str | None = None
    zone_id: int | None = None
    zone_name: str | None = None
    kind: CredentialKind | None = None
    serial: int | None = None
    direction: Direction = Direction.IN
    #: for WRONG_GATE: the gates that may admit this ticket
    right_gates: tuple[str, ...] = ()
    #: notes for supervisors that do not change the outcome, e.g. "passback_soft"
    flags: tuple[str, ...] = ()
    #: technical detail for the log (never shown to fans)
    detail: str = ""
    holder: str = field(default="", repr=False)
    seat: str = ""

    @property
    def admitted(self) -> bool:
        return self.reason.admits
