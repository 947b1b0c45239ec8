"""A ticket row on the wire carries its barcode key (hex), optional both ways."""
from __future__ import annotations

import dataclasses
import json

import pytest

from sync import messages as m
from sync.errors import RemoteProtocolError
from tests.sync.harness import ticket
from tickets.barcode import barcode_key

KEY = barcode_key("k7dhnx2v9qpwmb3ytf4cszr8ga6ue5jh")


def test_a_barcode_key_travels_in_snapshots_and_deltas_as_hex() -> None:
    row = dataclasses.replace(ticket(1), barcode_key=KEY)
    for msg in (m.SnapshotBatch(0, (row,), (), (), 1, 1), m.Deltas(0, (m.TicketUpsert(1, row),))):
        text = m.encode(msg)
        assert KEY.hex() in str(text)
        assert m.decode(text) == msg


def test_a_row_without_a_key_has_no_key_field_and_reads_as_none() -> None:
    wire = m.ticket_to_wire(ticket(2))
    assert "barcode_key" not in wire
    assert m.ticket_from_wire(wire).barcode_key is None
    assert m.ticket_from_wire({**wire, "barcode_key": None}).barcode_key is None


def test_an_upper_case_hex_key_is_accepted() -> None:
    wire = {**m.ticket_to_wire(ticket(3)), "barcode_key": KEY.hex().upper()}
    assert m.ticket_from_wire(wire).barcode_key == KEY


@pytest.mark.parametrize("bad", ["abc", KEY.hex() + "00", "zz" * 16, 12, ["x"]])
def test_a_bad_barcode_key_refuses_the_message_with_a_reason(bad: object) -> None:
    wire = {**m.ticket_to_wire(ticket(4)), "barcode_key": bad}
    frame = json.dumps({"type": "deltas", "prev_seq": 0, "changes": [{"seq": 1, "kind": "ticket", "ticket": wire}]})
    with pytest.raises(RemoteProtocolError) as info:
        m.decode(frame)
    assert info.value.code == "bad_field" and "barcode_key" in str(info.value)
