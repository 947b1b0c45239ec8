"""Reconciling admits across gates: manual admits, scans and paper ticks (pure, no database).

**Which path is authoritative.** Conflicts shown to supervisors come from one place only:
the hub store's ingest (:func:`hub.store._store_entries`), which replays each newly stored
admit with the ticket's earlier ones through :func:`tickets.policy.evaluate_entry` — the
very function the gates decide by — and records every forbidden pair once. Gate journals
(scans and manual admits) and paper ticks keyed in on the hub all go through it.

:func:`find_conflicts` here is a whole-journal *cross-check*: given every entry at once
(an export after the event, a test) it lists the same pairs without a database, and its
:class:`ConflictKind` names (``manual+scan`` …) are what the store puts in a conflict's
``detail.pair``. Never store its output as conflicts: the store already has them.
:func:`bulk_ticks` is used by the store to turn paper ticks into journal entries.

While a gate runs on its replica alone (OFFLINE) or on the paper manifest (MANIFEST), it
cannot know what other gates admitted. Afterwards — when it is back ONLINE and its journal
has reached the hub, or after the event — the hub puts every gate's entries side by side
and asks, per ticket: did this ticket get in more often than its entry policy allows?

Each such case is a :class:`Conflict` holding *both* entries (the earlier admission and the
one that should not have happened), so a supervisor sees the facts: which gates, which
stewards, when, and in which mode. Kinds:

* ``manual+scan``     — admitted from the manifest at one gate, scanned in at another;
* ``manual+manual``   — admitted by hand twice (two gates, or paper and screen);
* ``scan+scan``       — scanned in at two gates that could not see each other (a partition).

What counts as an admission: a ``SCAN`` or ``MANUAL`` entry whose reason admits, inward,
unless a later ``PASSAGE`` entry of the same gate says ``not_passed`` for it (the fan never
went through, so the ticket stays valid). An admit still pending counts: the gate let the
fan have the turnstile. Inward scans and outward scans (exits) are replayed in time order
through the ticket's entry policy, the same one the gates decide by.

:func:`bulk_ticks` turns tickets ticked on a paper manifest (when even the gate screen was
down) into ``MANUAL`` journal entries entered on the hub, recording who entered them.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from tickets.entry import EntryKind, JournalEntry, Passage
from tickets.manifest import ManifestRow, normalize_number
from tickets.policy import STRICTEST, EntryPolicy, EntryRule, Passback
from tickets.reasons import Reason

#: gate id prefix for entries keyed in from paper on the hub, so their seqs never collide
#: with the gate's own journal
PAPER_GATE_PREFIX = "paper:"


class ConflictKind(StrEnum):
    SCAN_SCAN = "scan+scan"
    MANUAL_SCAN = "manual+scan"
    MANUAL_MANUAL = "manual+manual"


@dataclass(frozen=True, slots=True)
class Conflict:
    """A ticket admitted more often than its policy allows: both admissions, and why."""

    ticket_id: int | None
    ticket_number: str | None
    kind: ConflictKind
    first: JournalEntry  # the admission that stands
    second: JournalEntry  # the one the policy forbids
    policy: str  # the entry policy's name
    rule: str  # what was broken, for people: "single entry", "entered again while inside", ...

    @property
    def gates(self) -> tuple[str, str]:
        return (self.first.gate_id, self.second.gate_id)

    @property
    def same_gate(self) -> bool:
        return self.first.gate_id == self.second.gate_id

    @property
    def key(self) -> tuple[str, int, str, int]:
        """Stable identity (for storing conflicts idempotently): both entries' (gate, seq)."""
        return (self.first.gate_id, self.first.seq, self.second.gate_id, self.second.seq)


@dataclass(frozen=True, slots=True)
class Deduped:
    entries: list[JournalEntry]  # one per (gate_id, seq)
    replays: int  # exact re-sends (same nonce) dropped
    clashes: list[tuple[JournalEntry, JournalEntry]]  # same (gate_id, seq), different nonce


def dedupe(entries: Iterable[JournalEntry]) -> Deduped:
    """One entry per ``(gate_id, seq)``, the first seen kept.

    A re-send carries the same nonce and is dropped silently. A different nonce under the
    same key means a gate reused a seq (lost its journal): both are returned as a clash for
    a human, and only the first is reconciled.
    """
    seen: dict[tuple[str, int], JournalEntry] = {}
    replays = 0
    clashes: list[tuple[JournalEntry, JournalEntry]] = []
    for e in entries:
        key = (e.gate_id, e.seq)
        prior = seen.get(key)
        if prior is None:
            seen[key] = e
        elif prior.nonce == e.nonce:
            replays += 1
        else:
            clashes.append((prior, e))
    return Deduped(list(seen.values()), replays, clashes)


def _cancelled(entries: Sequence[JournalEntry]) -> set[tuple[str, int]]:
    """Admits whose fan never went through: a later passage entry said ``not_passed``."""
    return {(e.gate_id, e.ref_seq) for e in entries
            if e.kind is EntryKind.PASSAGE and e.passage is Passage.NOT_PASSED and e.ref_seq is not None}


def admissions(entries: Iterable[JournalEntry]) -> list[JournalEntry]:
    """The entries that let someone through a turnstile (in or out), deduplicated, in time order."""
    unique = dedupe(entries).entries
    cancelled = _cancelled(unique)
    out = [e for e in unique if e.kind in (EntryKind.SCAN, EntryKind.MANUAL) and e.admitted
           and (e.gate_id, e.seq) not in cancelled]
    return sorted(out, key=_order)


def _order(e: JournalEntry) -> tuple[float, str, int]:
    return (e.at, e.gate_id, e.seq)


def _kind(a: JournalEntry, b: JournalEntry) -> ConflictKind:
    manual = (a.kind is EntryKind.MANUAL) + (b.kind is EntryKind.MANUAL)
    return (ConflictKind.SCAN_SCAN, ConflictKind.MANUAL_SCAN, ConflictKind.MANUAL_MANUAL)[manual]


def find_conflicts(
    entries: Iterable[JournalEntry],
    policy_of: Callable[[int], EntryPolicy | None] | Mapping[int, EntryPolicy],
    *,
    number_to_id: Mapping[str, int] | None = None,
) -> list[Conflict]:
    """Every admission that the ticket's entry policy forbids, paired with the one before it.

    ``policy_of`` gives a ticket's entry policy by ticket id (a mapping or a function); a
    ticket with no known policy is judged by the strictest (single entry), as gates do.
    Entries that name only a ticket number (manual overrides of tickets missing from a
    manifest) are joined to their ticket through ``number_to_id`` and through other entries
    that carry both. Returns conflicts in time order of the forbidden admission.
    """
    lookup: Callable[[int], EntryPolicy | None] = policy_of.get if isinstance(policy_of, Mapping) else policy_of
    passes = admissions(entries)
    ids: dict[str, int] = {normalize_number(k): v for k, v in (number_to_id or {}).items()}
    for e in passes:
        if e.ticket_id is not None and e.ticket_number:
            ids.setdefault(normalize_number(e.ticket_number), e.ticket_id)

    by_id: dict[int, list[JournalEntry]] = defaultdict(list)
    by_number: dict[str, list[JournalEntry]] = defaultdict(list)
    for e in passes:
        tid = e.ticket_id
        if tid is None and e.ticket_number:
            tid = ids.get(normalize_number(e.ticket_number))
        if tid is not None:
            by_id[tid].append(e)
        elif e.ticket_number:
            by_number[normalize_number(e.ticket_number)].append(e)
        # an admit naming no ticket at all cannot conflict with anything

    conflicts: list[Conflict] = []
    for tid, events in by_id.items():
        conflicts += _replay(events, lookup(tid) or STRICTEST, tid)
    for events in by_number.values():
        conflicts += _replay(events, STRICTEST, None)
    return sorted(conflicts, key=lambda c: _order(c.second))


def _replay(events: list[JournalEntry], policy: EntryPolicy, ticket_id: int | None) -> list[Conflict]:
    """Walk one ticket's passes in time order through its policy; return the forbidden ones."""
    out: list[Conflict] = []
    first_in: JournalEntry | None = None
    last_in: JournalEntry | None = None
    inside = False
    count = 0

    def conflict(prior: JournalEntry, e: JournalEntry, rule: str) -> Conflict:
        number = e.ticket_number or prior.ticket_number
        return Conflict(ticket_id, number, _kind(prior, e), prior, e, policy.name, rule)

    for e in events:
        if e.direction == "out":
            inside = False
            continue
        if first_in is not None and last_in is not None:
            if policy.kind is EntryRule.SINGLE:
                out.append(conflict(first_in, e, "single entry"))
                continue  # the forbidden admission does not move the holder's state
            if policy.max_entries is not None and count >= policy.max_entries:
                out.append(conflict(last_in, e, f"at most {policy.max_entries} entries"))
                continue
            hard = policy.kind is EntryRule.REENTRY or policy.passback is Passback.HARD
            if hard and inside:
                out.append(conflict(last_in, e, "entered again while inside (no exit)"))
                continue
            if policy.passback is Passback.TIMED and e.at - last_in.at < policy.passback_wait_s:
                out.append(conflict(last_in, e, f"re-entered within {policy.passback_wait_s:.0f} s"))
                continue
        first_in = first_in or e
        last_in = e
        inside = True
        count += 1
    return out


# --- paper ticks entered on the hub ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PaperTick:
    """A ticked line of a paper manifest, with the time the steward wrote beside it, if any."""

    row: ManifestRow
    at: float | None = None
    steward_id: str | None = None  # the steward who signed the paper, if known


def paper_gate_id(gate_id: str) -> str:
    return PAPER_GATE_PREFIX + gate_id


def bulk_ticks(
    rows_ticked_on_paper: Iterable[ManifestRow | PaperTick],
    entered_by: str,
    *,
    gate_id: str,
    first_seq: int,
    entered_at: float,
    manifest_hub_seq: int | None = None,
    existing: Iterable[JournalEntry] = (),
) -> list[JournalEntry]:
    """``MANUAL`` entries for tickets ticked on ``gate_id``'s paper manifest, keyed in on the hub.

    The entries belong to the pseudo-gate ``paper:<gate_id>`` with seqs from ``first_seq``
    (the hub passes the next free one), so they are stored and reconciled like any other
    entry without touching the gate's own journal numbering. ``staff_id`` is whoever
    entered them (``entered_by``); the detail names the gate, the manifest's hub seq, the
    signing steward and when the fan was let in, when the paper says.

    Tickets already recorded as admitted by hand at this gate (on its screen, or keyed in
    from paper before — pass them in ``existing``) are skipped, as are lines ticked twice in
    the input: a steward who ticked the paper *and* used the screen admitted one fan.
    """
    if not entered_by.strip():
        raise ValueError("entered_by must name who entered the paper ticks")
    if not gate_id:
        raise ValueError("gate_id must not be empty")
    if first_seq < 1:
        raise ValueError("first_seq must be a positive integer")
    paper_gate = paper_gate_id(gate_id)
    done: set[str] = set()
    for e in existing:
        if (e.kind is EntryKind.MANUAL and e.admitted and e.ticket_number
                and e.gate_id in (gate_id, paper_gate)):
            done.add(normalize_number(e.ticket_number))
    when = datetime.fromtimestamp(entered_at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    out: list[JournalEntry] = []
    for item in rows_ticked_on_paper:
        tick = item if isinstance(item, PaperTick) else PaperTick(item)
        row = tick.row
        key = normalize_number(row.number)
        if key in done:
            continue
        done.add(key)
        parts = [f"paper tick from gate {gate_id}'s manifest"]
        if manifest_hub_seq is not None:
            parts.append(f"hub seq {manifest_hub_seq}")
        parts.append(f"entered by {entered_by} at {when}")
        if tick.steward_id:
            parts.append(f"steward {tick.steward_id}")
        parts.append("admitted at time written on paper" if tick.at is not None else "admission time unknown")
        if not row.admissible:
            parts.append(f"ticket was {row.status} on the manifest")
        out.append(JournalEntry(
            gate_id=paper_gate, seq=first_seq + len(out), at=tick.at if tick.at is not None else entered_at,
            kind=EntryKind.MANUAL, reason=str(Reason.ADMIT), ticket_id=row.ticket_id, ticket_number=row.number,
            zone_id=row.zone_id, raw=row.number.encode(), mode="MANIFEST", passage=Passage.PASSED,
            staff_id=entered_by, detail="; ".join(parts),
        ))
    return out
