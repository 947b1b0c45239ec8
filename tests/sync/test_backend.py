"""The adapter helpers turn a store's row dicts (as hub/store.py keeps them) into protocol values."""
from __future__ import annotations

import pytest

from sync import messages as m
from sync.backend import change_from_row, snapshot_page_from_rows
from sync.errors import RemoteProtocolError
from tickets.model import TicketStatus
from tickets.policy import Passback

TICKET_ROW = {"ticket_id": 5, "number": "000000000005", "zone_id": 1, "policy_id": 2, "valid_from": 0.0,
              "valid_until": 9e9, "serial": 1, "status": "revoked", "rotating_secret": "AAEC", "holder": "A",
              "seat": "B1", "external_id": "x-5", "opaque": "zz"}
POLICY_ROW = {"policy_id": 2, "name": "passback_timed", "kind": "unlimited", "passback": "timed", "wait_s": 90.0,
              "max_entries": None}
ZONE_ROW = {"zone_id": 1, "name": "north", "capacity": 100, "gates": ["g1", "g2"]}


def test_change_log_rows_become_protocol_changes() -> None:
    c = change_from_row(7, "ticket", TICKET_ROW)
    assert isinstance(c, m.TicketUpsert) and c.seq == 7
    assert c.ticket.status is TicketStatus.REVOKED and c.ticket.rotating_secret == b"\x00\x01\x02"
    p = change_from_row(8, "policy", POLICY_ROW)
    assert isinstance(p, m.PolicyChange) and p.policy.passback is Passback.TIMED and p.policy.passback_wait_s == 90.0
    z = change_from_row(9, "zone", ZONE_ROW)
    assert isinstance(z, m.ZoneChange) and z.zone.gates == frozenset({"g1", "g2"})


def test_snapshot_page_from_store_rows() -> None:
    page = snapshot_page_from_rows(40, [ZONE_ROW], [POLICY_ROW], [TICKET_ROW], None, 1)
    assert page.seq == 40 and page.tickets[0].ticket_id == 5 and page.next_after is None


def test_a_malformed_store_row_is_refused_with_a_reason() -> None:
    with pytest.raises(RemoteProtocolError):
        change_from_row(1, "ticket", {"ticket_id": "five"})
    with pytest.raises(RemoteProtocolError):
        change_from_row(1, "gate", {})
