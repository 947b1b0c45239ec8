"""The gate's mode ladder, as a pure state machine.

The gate's mode follows from a handful of facts; :class:`ModeLadder` holds those facts and
recomputes the mode whenever one changes, returning the transition (old, new, cause) so
the agent can journal it, show it and sync it. Precedence, highest first:

=========== =================================================================
EMERGENCY   fire alarm input or a control-room command; left only by a reset
CLOSED      closed by command, or outside the event's gate hours
MANIFEST    the replica cannot be trusted (schema mismatch, failed integrity
            check, too old while offline, hub says incompatible), the scanner
            is down, or staff chose it
OFFLINE     the hub is unreachable or speaks no common protocol version
ONLINE      connected to the hub with a current replica
=========== =================================================================

Each transition says whether it deserves a WARNING (``Transition.warn``): a real
degradation does, and so does every step out of one until the gate is ONLINE again (so a
warned outage always has its end in the log). The steps a healthy gate takes at start-up —
a new or rebuilt replica waiting in MANIFEST for the hub's first snapshot, then ONLINE —
and other improvements are INFO.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


class Mode(StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"
    MANIFEST = "MANIFEST"
    EMERGENCY = "EMERGENCY"
    CLOSED = "CLOSED"


#: how far each mode is from normal service: a step up this scale is a degradation
SERVICE_LOSS = {Mode.ONLINE: 0, Mode.OFFLINE: 1, Mode.MANIFEST: 2, Mode.CLOSED: 3, Mode.EMERGENCY: 4}
#: a replica made at enrolment (or by rebuild-replica) waits for the hub's first snapshot
NEVER_SYNCED = "replica never synced from the hub"
#: causes that are expected steps of a healthy start, not degradations
EXPECTED_CAUSES = frozenset({NEVER_SYNCED})


@dataclass(frozen=True, slots=True)
class Facts:
    hub_connected: bool = False
    #: why the replica cannot be trusted, or "" when it can
    replica_untrusted: str = ""
    scanner_fault: str = ""
    staff_manifest: bool = False
    closed: str = ""  # cause, e.g. "command" or "outside gate hours"
    alarm: bool = False  # fire contact open right now
    emergency_latched: str = ""  # cause; stays until reset even when the alarm clears
    last_sync_at: float | None = None
    #: why the hub refuses this gate (e.g. it does not know it: re-enrol), or "" when it does not
    hub_refused: str = ""


@dataclass(frozen=True, slots=True)
class Transition:
    old: Mode
    new: Mode
    cause: str
    #: a real degradation, or a step out of one: log (and show) it as a WARNING, not INFO
    warn: bool = False


def mode_of(f: Facts) -> tuple[Mode, str]:
    """The mode for these facts and its cause, in ladder precedence."""
    if f.emergency_latched:
        return Mode.EMERGENCY, f.emergency_latched
    if f.closed:
        return Mode.CLOSED, f.closed
    if f.replica_untrusted:
        return Mode.MANIFEST, f.replica_untrusted
    if f.scanner_fault:
        return Mode.MANIFEST, f"scanner down: {f.scanner_fault}"
    if f.staff_manifest:
        return Mode.MANIFEST, "staff command"
    if not f.hub_connected:
        return Mode.OFFLINE, f"hub refuses this gate: {f.hub_refused}" if f.hub_refused else "hub unreachable"
    return Mode.ONLINE, "connected"


@dataclass
class ModeLadder:
    facts: Facts = field(default_factory=Facts)
    mode: Mode = Mode.OFFLINE
    cause: str = "starting"
    #: a warned degradation is still open (cleared once ONLINE again)
    degraded: bool = False

    def update(self, **changes: object) -> Transition | None:
        """Change facts; return the transition if the mode changed."""
        facts = replace(self.facts, **changes)  # type: ignore[arg-type]
        if facts.alarm and not facts.emergency_latched:
            facts = replace(facts, emergency_latched="fire alarm")
        self.facts = facts
        new, cause = mode_of(facts)
        if new is self.mode:
            self.cause = cause
            return None
        worse = SERVICE_LOSS[new] > SERVICE_LOSS[self.mode]
        if worse and cause not in EXPECTED_CAUSES:
            warn = self.degraded = True
        else:
            warn = self.degraded  # a step out of a warned degradation closes it in the log
            if new is Mode.ONLINE:
                self.degraded = False
        t = Transition(self.mode, new, cause, warn)
        self.mode, self.cause = new, cause
        return t

    def emergency(self, cause: str) -> Transition | None:
        return self.update(emergency_latched=cause or "command")

    def reset_emergency(self) -> Transition | None:
        """Leave EMERGENCY. Refused (returns None, stays) while the fire contact is still open."""
        if self.facts.alarm:
            return None
        return self.update(emergency_latched="")

    def replica_stale(self, now: float, max_age_s: float) -> bool:
        """True when offline and the replica's last sync is older than the limit."""
        last = self.facts.last_sync_at
        return not self.facts.hub_connected and last is not None and now - last > max_age_s
