"""Stable reason codes for every verdict.

These codes travel on the wire and into reports: never rename one, only add. Each has a
short message for gate staff, written to be read at a glance in the rain.
"""
from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    ADMIT = "ADMIT"
    ADMIT_REENTRY = "ADMIT_REENTRY"
    ADMIT_ON_SIGNATURE = "ADMIT_ON_SIGNATURE"
    ALREADY_INSIDE = "ALREADY_INSIDE"
    ALREADY_USED = "ALREADY_USED"
    UNKNOWN = "UNKNOWN"
    REVOKED = "REVOKED"
    SUPERSEDED = "SUPERSEDED"
    WRONG_GATE = "WRONG_GATE"
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    FORGED = "FORGED"
    MALFORMED = "MALFORMED"
    GATE_CLOSED = "GATE_CLOSED"
    ANTI_PASSBACK_WAIT = "ANTI_PASSBACK_WAIT"
    # Added by gatehouse: a rotating code shown outside its time window (a screenshot).
    STALE_CODE = "STALE_CODE"
    # Added by gatehouse: the gate is in MANIFEST mode (replica untrusted, scanner down or
    # staff choice) and does not decide scans; staff check the manifest instead.
    MANIFEST_MODE = "MANIFEST_MODE"

    @property
    def admits(self) -> bool:
        return self in ADMITTING

    @property
    def message(self) -> str:
        return MESSAGES[self]


ADMITTING = frozenset({Reason.ADMIT, Reason.ADMIT_REENTRY, Reason.ADMIT_ON_SIGNATURE})

MESSAGES: dict[Reason, str] = {
    Reason.ADMIT: "Welcome — go ahead",
    Reason.ADMIT_REENTRY: "Welcome back — go ahead",
    Reason.ADMIT_ON_SIGNATURE: "Valid ticket (not on list yet) — go ahead",
    Reason.ALREADY_INSIDE: "Already inside — must exit before re-entering",
    Reason.ALREADY_USED: "Ticket already used",
    Reason.UNKNOWN: "Ticket not found — send to ticket office",
    Reason.REVOKED: "Ticket cancelled — send to ticket office",
    Reason.SUPERSEDED: "Old ticket replaced by a newer one — ask for the new ticket",
    Reason.WRONG_GATE: "Wrong gate — direct fan to the right gate",
    Reason.NOT_YET_VALID: "Ticket not valid yet",
    Reason.EXPIRED: "Ticket no longer valid",
    Reason.FORGED: "Invalid ticket signature — call a supervisor",
    Reason.MALFORMED: "Unreadable code — scan again or type the ticket number",
    Reason.GATE_CLOSED: "Gate closed",
    Reason.ANTI_PASSBACK_WAIT: "Just entered — wait before re-entering",
    Reason.STALE_CODE: "Code expired or a screenshot — ask for the live ticket on the phone",
    Reason.MANIFEST_MODE: "Manifest mode — check the ticket on the manifest",
}
