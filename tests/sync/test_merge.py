"""The replica merge rule: snapshots never un-revoke, deltas are the hub's newer word."""
from __future__ import annotations

from dataclasses import replace

from sync.merge import merge_ticket
from tests.sync.harness import ticket
from tickets.model import TicketStatus

REVOKED = replace(ticket(1), status=TicketStatus.REVOKED, serial=3)


def test_snapshot_row_never_unrevokes_a_ticket_the_gate_knows_revoked() -> None:
    stale = replace(ticket(1), serial=2)
    merged = merge_ticket(REVOKED, stale)
    assert merged.status is TicketStatus.REVOKED and merged.serial == 3


def test_snapshot_row_never_lowers_the_serial() -> None:
    assert merge_ticket(replace(ticket(1), serial=5), replace(ticket(1), serial=4)).serial == 5


def test_delta_reinstatement_from_the_hub_is_applied() -> None:
    reinstated = replace(ticket(1), serial=3)
    assert merge_ticket(REVOKED, reinstated, from_snapshot=False).status is TicketStatus.VALID


def test_new_tickets_and_newer_rows_pass_through() -> None:
    assert merge_ticket(None, ticket(2)) == ticket(2)
    newer = replace(ticket(1), serial=4, seat="B1")
    assert merge_ticket(replace(ticket(1), serial=3), newer) == newer
