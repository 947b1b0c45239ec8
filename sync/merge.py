"""Pure rules for applying hub data to a gate's replica, shared by every gate store.

The one rule the protocol cannot enforce by itself: a gate never un-revokes a ticket it
knows to be revoked, and never moves a ticket back to an older serial. A hub restored from
an old backup may send a snapshot in which a since-revoked ticket is valid again; the gate
keeps its own, newer knowledge. (Un-revoking on purpose is done by issuing a new ticket or
a new serial, never by flipping the status back.)
"""
from __future__ import annotations

from dataclasses import replace

from tickets.model import TicketRecord, TicketStatus


def merge_ticket(local: TicketRecord | None, incoming: TicketRecord) -> TicketRecord:
    """The record to store when ``incoming`` (snapshot row or upsert) meets ``local``."""
    if local is None:
        return incoming
    merged = incoming
    if incoming.serial < local.serial:
        merged = replace(merged, serial=local.serial)
    if local.status is TicketStatus.REVOKED and merged.status is not TicketStatus.REVOKED:
        merged = replace(merged, status=TicketStatus.REVOKED)
    elif local.status is TicketStatus.SUPERSEDED and merged.status is TicketStatus.VALID \
            and merged.serial <= local.serial:
        merged = replace(merged, status=TicketStatus.SUPERSEDED)
    return merged
