"""The rules of a steward's manual admit from the manifest (MANIFEST mode), as pure functions.

The gate (:func:`gate_agent.manifest.manual_admit`) does the I/O in this order — gate mode,
the steward's PIN, what was typed, the manifest look-up, the journal — and asks these
functions at each step whether to go on. Like :func:`tickets.decide.decide` they take every
fact as an argument and return a value; a refusal is a normal result with a stable code
(:class:`tickets.reasons.Reason` for the ticket's side, :class:`ManualRefusal` for the
steward's side).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tickets.manifest import ManifestRow, ManualRefusal, QueryKind, TicketState, TypedQuery
from tickets.reasons import Reason

#: a gate in these modes admits nobody by hand either
REFUSED_MODES = frozenset({"EMERGENCY", "CLOSED"})
#: what the screen says when a ticket is not on the manifest and no override was asked for
NOT_ON_MANIFEST = "Not on the manifest — supervisor may override with a note"
ALREADY_TICKED = "Already admitted by hand at this gate"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A manifest row the typed text matched, and this gate's tick of it if it was admitted here."""

    row: ManifestRow
    how: str  # "number", "prefix", "code", "code_digits", "name"
    ticked_by: str | None = None
    ticked_at: float | None = None
    ticked_seq: int | None = None


@dataclass(frozen=True, slots=True)
class ManualDecision:
    """Admit or refuse, with the stable ``reason``, the steward's ``message`` and the journal ``detail``."""

    admit: bool
    reason: str
    message: str
    detail: str
    row: ManifestRow | None = None
    candidates: tuple[ManifestRow, ...] = ()
    #: admitted by override: a number the manifest does not hold, on a supervisor's note
    override: bool = False


def _refuse(reason: str, message: str, detail: str, row: ManifestRow | None = None,
            candidates: Sequence[ManifestRow] = ()) -> ManualDecision:
    return ManualDecision(False, reason, message, detail, row, tuple(candidates))


def refused_by_mode(mode: str) -> ManualDecision | None:
    """Step 1: a closed gate or one in emergency admits nobody, by hand or otherwise."""
    if mode in REFUSED_MODES:
        return _refuse(Reason.GATE_CLOSED, Reason.GATE_CLOSED.message, f"gate in {mode}")
    return None


def refused_pin(refusal: str, detail: str) -> ManualDecision:
    """Step 2: the steward's PIN was not accepted (the check itself is I/O: a slow hash, lockouts)."""
    code = ManualRefusal(refusal)
    return _refuse(code, code.message, detail)


def refused_query(query: TypedQuery, name_hits: Sequence[ManifestRow] = ()) -> ManualDecision | None:
    """Step 3: only a number or a check code may admit; a name only lists candidates to browse."""
    if query.kind in (QueryKind.EMPTY, QueryKind.NAME):
        return _refuse(Reason.MALFORMED, "Type the ticket number or the code from the manifest",
                       f"not a number or code: {query.kind}",
                       candidates=name_hits if query.kind is QueryKind.NAME else ())
    return None


def judge(query: TypedQuery, matches: Sequence[Candidate], *, override: bool = False, note: str = "",
          manifest_received: bool = True, override_tick: Candidate | None = None) -> ManualDecision:
    """Step 4: the manifest rows that matched decide.

    * several matches: ambiguous, type more;
    * one match: admitted unless it is revoked or superseded on the manifest, or was already
      admitted by hand at this gate;
    * none: refused unless a supervisor ``override`` with a ``note`` names a full number not yet
      admitted here by override (``override_tick``): the hub reconciles it later.
    """
    if len(matches) > 1:
        return _refuse(ManualRefusal.AMBIGUOUS, ManualRefusal.AMBIGUOUS.message,
                       f"{len(matches)} tickets match", candidates=[m.row for m in matches])
    if matches:
        m = matches[0]
        row = m.row
        if row.status != TicketState.VALID:
            reason = Reason.REVOKED if row.status == TicketState.REVOKED else Reason.SUPERSEDED
            return _refuse(reason, reason.message, f"manifest status {row.status}", row)
        if m.ticked_by is not None:
            return _refuse(Reason.ALREADY_USED, ALREADY_TICKED,
                           f"ticked by {m.ticked_by} at {m.ticked_at or 0:.0f} (seq {m.ticked_seq})", row)
        return ManualDecision(True, Reason.ADMIT, Reason.ADMIT.message, f"matched by {m.how}", row)
    if not override:
        why = "not on manifest" if manifest_received else "not on manifest: no manifest received yet"
        return _refuse(Reason.UNKNOWN, NOT_ON_MANIFEST, why)
    if not note.strip():
        return _refuse(ManualRefusal.NOTE_REQUIRED, ManualRefusal.NOTE_REQUIRED.message, "override without a note")
    if query.kind is not QueryKind.NUMBER:
        return _refuse(Reason.UNKNOWN, "Type the full ticket number to override", "override needs a number")
    if override_tick is not None:
        return _refuse(Reason.ALREADY_USED, ALREADY_TICKED,
                       f"override already ticked by {override_tick.ticked_by} (seq {override_tick.ticked_seq})")
    return ManualDecision(True, Reason.ADMIT, "Admitted by override — go ahead",
                          f"override: {' '.join(note.split())[:200]}", override=True)
