"""Fan-out of admits: batched into one frame per flush on v2, one per admit on v1, and
limited to the gates of the ticket's zone."""
from __future__ import annotations

import random

from sync import messages as m
from sync import session as s
from sync.hub_route import GateRegistry
from tests.sync.harness import MemoryGate, World, make_backend


def live_hub_session(version: int) -> s.HubSession:
    w = World(make_backend(10), [MemoryGate("g1", s.SessionConfig(max_version=version))], random.Random(1))
    w.connect_all()
    w.settle()
    sess = w.hub.sessions["g1"]
    sess.frames_to_send()
    return sess


def admits(n: int) -> list[m.RemoteAdmit]:
    return [m.RemoteAdmit(ticket_id=i, gate_id="g2", at=float(i), gate_seq=i) for i in range(1, n + 1)]


def test_v2_gate_gets_the_admits_of_one_flush_in_one_frame() -> None:
    sess = live_hub_session(2)
    for a in admits(5):
        assert sess.send_remote_admit(a)
    frames = sess.frames_to_send()
    assert len(frames) == 1
    decoded = m.decode(frames[0])
    assert isinstance(decoded, m.RemoteAdmits) and decoded.admits == tuple(admits(5))


def test_v1_gate_gets_one_frame_per_admit() -> None:
    sess = live_hub_session(1)
    for a in admits(3):
        sess.send_remote_admit(a)
    frames = sess.frames_to_send()
    assert [type(m.decode(f)) for f in frames] == [m.RemoteAdmit] * 3


def test_gate_applies_every_admit_of_a_batch_in_order() -> None:
    g = s.GateSession("g1")
    g.connect(s.GateFacts(0, 0, 0, "E1"), 0.0)
    g.messages_to_send()
    g.receive(m.HelloReply(2, 1, 2, 0, 0, "E1", 0, 1, "deltas"), 0.0)
    events = g.receive_frame(m.encode(m.RemoteAdmits(tuple(admits(4)))), 0.1)
    assert [e.ticket_id for e in events if isinstance(e, s.RemoteAdmitted)] == [1, 2, 3, 4]


def test_other_messages_keep_their_place_between_batched_admits() -> None:
    out = s._coalesce_admits([*admits(2), m.Ping(1), *admits(3)])
    assert [x.type for x in out] == ["remote_admits", "ping", "remote_admits"]


def test_malformed_batch_is_refused_with_a_reason_not_a_crash() -> None:
    try:
        m.decode('{"type": "remote_admits", "admits": [{"ticket_id": "x"}]}')
    except m.RemoteProtocolError as exc:
        assert exc.code == "bad_field"
    else:
        raise AssertionError("accepted a malformed batch")


def test_fanout_goes_only_to_the_gates_of_the_tickets_zone() -> None:
    class Conn:
        def __init__(self) -> None:
            self.got: list[m.RemoteAdmit] = []
            self.session = self

        def send_remote_admit(self, admit: m.RemoteAdmit) -> bool:
            self.got.append(admit)
            return True

        def flush_soon(self, delay: float = 0.0) -> None:
            pass

    reg = GateRegistry()
    conns = {g: Conn() for g in ("n1", "n2", "s1")}
    reg.connections = conns  # type: ignore[assignment]
    reg.zone_gates = {1: frozenset({"n1", "n2"}), 2: frozenset({"s1"})}.get
    admit = m.RemoteAdmit(ticket_id=7, gate_id="n1", at=1.0)
    assert reg.broadcast_admit(admit, zone_id=1) == 1
    assert [len(c.got) for c in conns.values()] == [0, 1, 0]
    assert reg.broadcast_admit(admit, zone_id=None) == 2  # zone unknown: everyone else
