"""Pure rules for applying hub data to a gate's replica, shared by every gate store.

The rule the protocol cannot enforce by itself: a **snapshot** never un-revokes a ticket the
gate knows to be revoked, and never moves a ticket back to an older serial. A snapshot is
what a restored (rolled-back) hub sends, and it may show a since-revoked ticket as valid;
the gate keeps its own, newer knowledge, including revoked tickets the snapshot lacks.

A **delta** is different: within one hub epoch and past the gate's cursor it is by
construction newer than anything the gate knows (a restored hub is met with a snapshot,
never with deltas), so an explicit reinstatement made at the hub after the revocation is
applied as sent. Only the serial is still never lowered.
"""
from __future__ import annotations

from dataclasses import replace

from tickets.model import EntryState, TicketRecord, TicketStatus


def merge_ticket(local: TicketRecord | None, incoming: TicketRecord, *, from_snapshot: bool = True) -> TicketRecord:
    """The record to store when ``incoming`` (a snapshot row, or a delta's row) meets ``local``."""
    if local is None:
        return incoming
    merged = incoming
    if incoming.serial < local.serial:
        merged = replace(merged, serial=local.serial)
    if from_snapshot and local.status is TicketStatus.REVOKED and merged.status is not TicketStatus.REVOKED:
        merged = replace(merged, status=TicketStatus.REVOKED)
    return merged


def merge_state(local: EntryState, hub: EntryState) -> EntryState:
    """A ticket's entry state when the hub's (from a snapshot) meets what the gate knows.

    Entries never go down (either side may have counted an admit the other has not heard of
    yet); each side's last entry and exit times are kept; *inside* is taken from the side
    with the more recent event, and when both are as recent, inside wins (fail closed: a
    holder believed inside is refused re-entry rather than let in twice).
    """
    def latest(s: EntryState) -> float | None:
        times = [t for t in (s.last_entry_at, s.last_exit_at) if t is not None]
        return max(times) if times else None

    lt, ht = latest(local), latest(hub)
    if ht is None:
        inside = local.inside if lt is not None or local.entries else hub.inside or local.inside
    elif lt is None or ht > lt:
        inside = hub.inside
    elif lt > ht:
        inside = local.inside
    else:
        inside = local.inside or hub.inside
    return EntryState(
        entries=max(local.entries, hub.entries), inside=inside,
        last_entry_at=_max(local.last_entry_at, hub.last_entry_at),
        last_exit_at=_max(local.last_exit_at, hub.last_exit_at),
    )


def _max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
