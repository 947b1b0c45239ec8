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

from tickets.model import TicketRecord, TicketStatus


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
