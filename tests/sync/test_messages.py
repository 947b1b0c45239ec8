"""The wire codec: every message round-trips, and no input makes decode raise anything but
RemoteProtocolError."""
from __future__ import annotations

import json
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import messages as m
from sync.errors import GatehouseError, RemoteProtocolError
from tests.sync.harness import ticket
from tickets.entry import EntryKind, JournalEntry
from tickets.model import Zone
from tickets.policy import EntryPolicy

ENTRY = JournalEntry("g1", 1, 10.5, EntryKind.SCAN, reason="ADMIT", ticket_id=7, raw=b"GH1:ABC\x00")

EXAMPLES: list[m.Message] = [
    m.Hello("g1", 1, 2, 1, cursor=5, acked_high_water=3, journal_seq=9, hub_epoch="e1", compressed=True),
    m.HelloReply(2, 1, 2, hub_held=3, backed_up=1, hub_epoch="e1", hub_seq=40, schema_version=1,
                 replica_sync="snapshot", reason="initial", event={"event_id": 1, "keys": ["k"]}),
    m.HelloReply(None, 3, 4, 0, 0, "e1", 0, 1, reason="gate speaks v1..v2"),
    m.SnapshotBegin(40, 2, "initial"),
    m.SnapshotBatch(0, (ticket(1), ticket(2)), (Zone(1, "north", frozenset({"g1", "g2"}), 900),),
                    (EntryPolicy.preset(1, "passback_timed", wait_s=30),), 2, 2),
    m.SnapshotEnd(40, 1, 2),
    m.SnapshotRequest("gap"),
    m.Deltas(40, (m.TicketUpsert(41, ticket(3)), m.TicketRevoke(42, 3, "refund"),
                  m.TicketSupersede(43, 1, 2, replaced_by=9), m.ZoneChange(44, Zone(2, "south", frozenset())),
                  m.PolicyChange(45, EntryPolicy.preset(2, "reentry")))),
    m.CatchUp(40),
    m.JournalBatch((ENTRY, JournalEntry("g1", 2, 11.0, EntryKind.MODE, detail="ONLINE->OFFLINE: link"))),
    m.JournalAck(2, 1, 0),
    m.RemoteAdmit(7, "g2", 12.0, "in", 4),
    m.RemoteAdmit(7, "g2", 13.0, "in", 4, not_passed=True),
    m.Ping(1),
    m.Pong(1, 45),
    m.Error("malformed", "bad json", fatal=False),
    m.Command("emergency_on", "fire alarm north stand", {"zone": 1}, "c-1"),
]


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda x: x.type)
def test_every_message_round_trips_through_json_text(msg: m.Message) -> None:
    frame = m.encode(msg)
    assert isinstance(frame, str)
    assert m.decode(frame) == msg


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda x: x.type)
def test_every_message_round_trips_compressed(msg: m.Message) -> None:
    frame = zlib.compress(m.encode(msg).encode())  # type: ignore[union-attr]
    assert m.decode(frame) == msg


def test_large_messages_go_compressed_only_when_asked() -> None:
    big = m.SnapshotBatch(0, tuple(ticket(i) for i in range(1, 200)))
    assert isinstance(m.encode(big), str)
    packed = m.encode(big, compress=True)
    assert isinstance(packed, bytes) and len(packed) < len(m.encode(big)) / 3
    assert m.decode(packed) == big
    assert isinstance(m.encode(m.Ping(1), compress=True), str)  # small ones stay text


@pytest.mark.parametrize(("frame", "code"), [
    ("not json", "malformed"),
    ("[1,2]", "malformed"),
    ('{"no_type": 1}', "malformed"),
    ('{"type": "launch_missiles"}', "unknown_type"),
    ('{"type": "ping"}', "bad_field"),
    ('{"type": "ping", "nonce": "1"}', "bad_field"),
    ('{"type": "journal_ack", "high_water": -1}', "bad_field"),
    ('{"type": "journal_ack", "high_water": true}', "bad_field"),
    ('{"type": "hello", "gate_id": "", "min_version": 1, "max_version": 1, "schema_version": 1,'
     ' "cursor": 0, "acked_high_water": 0, "journal_seq": 0}', "bad_field"),
    ('{"type": "journal_batch", "entries": [{"gate_id": "g", "seq": 0}]}', "bad_field"),
    ('{"type": "journal_batch", "entries": [1]}', "bad_field"),
    ('{"type": "deltas", "prev_seq": 0, "changes": [{"kind": "teleport", "seq": 1}]}', "bad_field"),
    ('{"type": "snapshot_batch", "index": 0, "rows": [{"ticket_id": 1}]}', "bad_field"),
    ('{"type": "snapshot_batch", "index": 0, "rows": [], "policies": [{"policy_id": 1, "kind": "x"}]}',
     "bad_field"),
    (b"\x78\x9c garbage", "malformed"),
    (zlib.compress(b"\xff\xfe"), "malformed"),
    ("[" * 100_000, "malformed"),
])
def test_malformed_frames_are_refused_with_a_reason(frame: str | bytes, code: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        m.decode(frame)
    assert info.value.code == code
    assert isinstance(info.value, GatehouseError)


def test_journal_batch_with_a_gap_is_refused() -> None:
    d = m.to_dict(m.JournalBatch((ENTRY,)))
    d["entries"].append(JournalEntry("g1", 3, 1.0, EntryKind.SCAN).to_wire())
    with pytest.raises(RemoteProtocolError, match="consecutive"):
        m.decode(json.dumps(d))


def test_a_zip_bomb_is_refused_not_inflated() -> None:
    bomb = zlib.compress(b" " * (m.MAX_JSON_BYTES + 10), 9)
    with pytest.raises(RemoteProtocolError) as info:
        m.decode(bomb)
    assert info.value.code == "too_large"


def test_unknown_extra_fields_are_ignored_for_forward_compatibility() -> None:
    assert m.decode('{"type": "ping", "nonce": 3, "added_in_v9": {"x": 1}}') == m.Ping(3)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([m.to_dict(x) for x in EXAMPLES]), st.text(max_size=12), json_values)
def test_decode_is_total_over_mutated_messages(base: dict, key: str, value: object) -> None:
    d = dict(base)
    d[key if key in d or not d else list(d)[len(key) % len(d)]] = value
    try:
        got = m.decode(json.dumps(d))
    except RemoteProtocolError:
        return
    assert got.type == d["type"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_decode_is_total_over_random_bytes(frame: bytes | str) -> None:
    try:
        m.decode(frame)
    except RemoteProtocolError:
        pass
