"""Feed tests: each transition of the gate and hub sessions, driven message by message."""
from __future__ import annotations

import random

import pytest

from sync import messages as m
from sync import session as s
from sync.errors import LocalProtocolError
from tests.sync.harness import LinkFaults, MemoryGate, World, make_backend, ticket
from tickets.entry import EntryKind, JournalEntry, Passage
from tickets.model import TicketStatus

CFG = s.SessionConfig(batch_size=3, max_in_flight=2, ack_timeout_s=2.0, reply_timeout_s=2.0,
                      heartbeat_interval_s=1.0, heartbeat_timeout_s=3.0, max_errors=5)


def entries(gate: str, first: int, last: int) -> list[JournalEntry]:
    return [JournalEntry(gate, i, float(i), EntryKind.SCAN, reason="ADMIT", ticket_id=i) for i in range(first, last + 1)]


def reply(**kw: object) -> m.HelloReply:
    base: dict[str, object] = dict(version=2, min_version=1, max_version=2, hub_held=0, backed_up=0,
                                   hub_epoch="E1", hub_seq=10, schema_version=1, replica_sync="deltas")
    base.update(kw)
    return m.HelloReply(**base)  # type: ignore[arg-type]


FACTS = s.GateFacts(5, 0, 0, "E1")


def connected_gate(facts: s.GateFacts = FACTS, cfg: s.SessionConfig = CFG) -> s.GateSession:
    g = s.GateSession("g1", cfg)
    g.connect(facts, 0.0)
    assert [x.type for x in g.messages_to_send()] == ["hello"]
    return g


# ----------------------------------------------------------------------------- versions
@pytest.mark.parametrize(("gate", "hub", "chosen"), [
    ((1, 1), (1, 2), 1), ((1, 2), (1, 1), 1), ((1, 2), (1, 2), 2), ((2, 3), (1, 2), 2), ((3, 4), (1, 2), None),
])
def test_hub_picks_the_highest_common_version(gate: tuple[int, int], hub: tuple[int, int], chosen: int | None) -> None:
    assert s.choose_version(*gate, *hub) == chosen


def test_incompatible_gate_is_told_why_and_the_gate_stays_offline() -> None:
    hub = s.HubSession("g1", s.SessionConfig(min_version=4, max_version=5))
    g = s.GateSession("g1", CFG)
    g.connect(s.GateFacts(5, 0, 0, "E1"), 0.0)
    [hello] = g.messages_to_send()
    ev = hub.receive(hello, 0.0)
    assert ev == [s.HelloReceived(hello, None)]  # type: ignore[arg-type]
    assert hub.answer_hello(s.HubFacts(0, "E1", 10)) == [s.CloseWanted("incompatible protocol version")]
    assert hub.state is s.HubState.CLOSED
    [rep] = hub.messages_to_send()
    events = g.receive(rep, 0.1)
    assert isinstance(events[0], s.Incompatible) and "v1..v3" in events[0].reason
    assert g.state is s.GateState.INCOMPATIBLE
    assert g.upload_wanted() is None


def test_v1_gate_with_v2_hub_speaks_v1_and_gets_no_compressed_frames() -> None:
    w = World(make_backend(300), [MemoryGate("g1", s.SessionConfig(max_version=1))], random.Random(1))
    w.connect_all()
    w.step()
    hub_sess = w.hub.sessions["g1"]
    assert hub_sess.version == 1
    hub_sess.receive(m.SnapshotRequest("test"), w.now)
    hub_sess.begin_snapshot(1, 300)
    hub_sess.snapshot_batch([ticket(i) for i in range(1, 300)])
    frames = hub_sess.frames_to_send()
    assert len(frames[-1]) > m.COMPRESS_MIN_BYTES
    assert all(isinstance(f, str) for f in frames)


def test_v2_gate_with_v1_hub_speaks_v1_and_syncs() -> None:
    w = World(make_backend(300), [MemoryGate("g1")], random.Random(1),
              hub_config=s.SessionConfig(max_version=1))
    w.connect_all()
    w.settle()
    g = w.gates["g1"]
    assert g.session.version == 1 and len(g.replica) == 300


def test_v2_both_sides_compress_the_snapshot() -> None:
    w = World(make_backend(300), [MemoryGate("g1")], random.Random(1))
    w.hub.snapshot_page = 300
    w.connect_all()
    w.step()
    hub_sess = w.hub.sessions["g1"]
    hub_sess.receive(m.SnapshotRequest("test"), w.now)
    hub_sess.begin_snapshot(1, 300)
    hub_sess.snapshot_batch([ticket(i) for i in range(1, 300)])
    assert isinstance(hub_sess.frames_to_send()[-1], bytes)
    w.connect_all()
    w.settle()
    assert w.hub.sessions["g1"].version == 3
    assert len(w.gates["g1"].replica) == 300


# ----------------------------------------------------------------------------- hello / rollback
def test_hello_reply_with_deltas_makes_the_gate_live() -> None:
    g = connected_gate()
    ev = g.receive(reply(), 0.1)
    assert isinstance(ev[0], s.HelloAccepted) and g.state is s.GateState.LIVE


def test_hub_holding_less_than_acked_means_rollback_and_resend_unasked() -> None:
    g = connected_gate(s.GateFacts(5, acked_high_water=8, journal_seq=10, hub_epoch="E1"))
    ev = g.receive(reply(hub_held=4), 0.1)
    assert s.HubRolledBack(4, 8, "E1", "E1") in ev
    assert s.NeedResend(5) in ev
    assert s.JournalAcked(4, 0) in ev
    assert g.upload_wanted() == (4, 3)


def test_hub_epoch_change_is_reported_as_rollback_even_with_equal_high_water() -> None:
    g = connected_gate(s.GateFacts(5, acked_high_water=8, journal_seq=8, hub_epoch="E1"))
    ev = g.receive(reply(hub_held=8, hub_epoch="E2"), 0.1)
    assert any(isinstance(e, s.HubRolledBack) and e.epoch_now == "E2" for e in ev)


def test_hub_holding_more_than_acked_is_a_lost_ack_and_is_taken() -> None:
    g = connected_gate(s.GateFacts(5, acked_high_water=2, journal_seq=6, hub_epoch="E1"))
    ev = g.receive(reply(hub_held=5), 0.1)
    assert not any(isinstance(e, s.HubRolledBack) for e in ev)
    assert s.JournalAcked(5, 0) in ev and g.upload_wanted() == (5, 1)


def test_hub_holding_more_than_the_gate_journal_is_refused() -> None:
    g = connected_gate(s.GateFacts(5, 0, 3, "E1"))
    ev = g.receive(reply(hub_held=9), 0.1)
    assert isinstance(ev[0], s.ProtocolViolation) and ev[0].code == "journal_ahead"
    assert g.state is s.GateState.HELLO_SENT


@pytest.mark.parametrize(("hello_kw", "reason"), [
    ({"cursor": 0}, "initial"), ({"cursor": 50}, "cursor_ahead"), ({"hub_epoch": "OLD"}, "epoch_changed"),
    ({"schema_version": 0}, "schema"), ({}, ""),
])
def test_hub_chooses_snapshot_when_the_gate_replica_cannot_be_caught_up(hello_kw: dict, reason: str) -> None:
    hub = s.HubSession("g1", CFG)
    kw = dict(gate_id="g1", min_version=1, max_version=2, schema_version=1, cursor=5, acked_high_water=0,
              journal_seq=0, hub_epoch="E1") | hello_kw
    hub.receive(m.Hello(**kw), 0.0)  # type: ignore[arg-type]
    ev = hub.answer_hello(s.HubFacts(0, "E1", hub_seq=10))
    [rep] = hub.messages_to_send()
    assert isinstance(rep, m.HelloReply) and rep.reason == reason
    assert ev == ([s.SnapshotNeeded(reason)] if reason else [s.CatchUpNeeded(5)])


def test_hello_for_another_gate_is_refused_and_closed() -> None:
    hub = s.HubSession("g1", CFG)
    ev = hub.receive(m.Hello("g2", 1, 2, 1, 0, 0, 0), 0.0)
    assert isinstance(ev[-1], s.CloseWanted) and hub.state is s.HubState.CLOSED
    assert hub.messages_to_send()[0] == m.Error("wrong_gate", "authenticated as g1, hello says g2", fatal=True)


# ----------------------------------------------------------------------------- journal upload
def test_upload_is_batched_with_a_bounded_window_and_acked_by_high_water() -> None:
    g = connected_gate(s.GateFacts(5, 0, 10, "E1"))
    g.receive(reply(), 0.0)
    sent = []
    while (w := g.upload_wanted()) is not None:
        g.send_journal(entries("g1", w[0] + 1, w[0] + w[1]), 0.0)
        sent.append(w)
    assert sent == [(0, 3), (3, 3)]  # max_in_flight=2 batches of 3
    ev = g.receive(m.JournalAck(3), 0.5)
    assert ev == [s.JournalAcked(3, 0)] and g.upload_wanted() == (6, 3)
    assert g.receive(m.JournalAck(3), 0.6) == []  # duplicate ack: nothing new


def test_missing_ack_makes_the_gate_go_back_and_resend() -> None:
    g = connected_gate(s.GateFacts(5, 0, 4, "E1"))
    g.receive(reply(), 0.0)
    g.send_journal(entries("g1", 1, 3), 0.0)
    g.receive(m.Pong(1), 1.9)
    assert g.tick(1.9) == []
    assert s.NeedResend(1) in g.tick(2.0)
    assert g.upload_wanted() == (0, 3) and g.retransmits == 1


def test_ack_beyond_the_gate_journal_is_a_violation() -> None:
    g = connected_gate(s.GateFacts(5, 0, 4, "E1"))
    g.receive(reply(), 0.0)
    g.send_journal(entries("g1", 1, 2), 0.0)
    ev = g.receive(m.JournalAck(5), 0.1)
    assert isinstance(ev[0], s.ProtocolViolation) and g.acked == 0


def test_late_ack_after_going_back_is_taken_and_skips_ahead() -> None:
    g = connected_gate(s.GateFacts(5, 0, 6, "E1"))
    g.receive(reply(), 0.0)
    g.send_journal(entries("g1", 1, 3), 0.0)
    g.tick(2.0)  # no ack in time: go back to 0
    assert g.upload_wanted() == (0, 3)
    assert g.receive(m.JournalAck(3), 2.1) == [s.JournalAcked(3, 0)]
    assert g.upload_wanted() == (3, 3)


def test_send_journal_refuses_gaps_and_early_upload() -> None:
    g = s.GateSession("g1", CFG)
    with pytest.raises(LocalProtocolError):
        g.send_journal(entries("g1", 1, 1), 0.0)
    g = connected_gate(s.GateFacts(5, 0, 4, "E1"))
    g.receive(reply(), 0.0)
    with pytest.raises(LocalProtocolError):
        g.send_journal(entries("g1", 2, 3), 0.0)


def test_hub_turns_batches_into_store_events_and_acks_the_owner_high_water() -> None:
    hub = s.HubSession("g1", CFG)
    hub.receive(m.Hello("g1", 1, 2, 1, 5, 0, 3, "E1"), 0.0)
    hub.answer_hello(s.HubFacts(0, "E1", 10))
    hub.messages_to_send()
    batch = m.JournalBatch(tuple(entries("g1", 1, 3)))
    assert hub.receive(batch, 0.1) == [s.StoreEntries(batch.entries)]
    hub.entries_stored(3, backed_up=1, conflicts=1)
    assert hub.messages_to_send() == [m.JournalAck(3, 1, 1)]
    bad = m.JournalBatch(tuple(entries("g2", 4, 4)))
    assert isinstance(hub.receive(bad, 0.2)[0], s.ProtocolViolation)


# ----------------------------------------------------------------------------- replica
def test_snapshot_is_applied_batch_by_batch_and_sets_the_cursor() -> None:
    g = connected_gate(s.GateFacts(0, 0, 0, None))
    g.receive(reply(replica_sync="snapshot", reason="initial"), 0.0)
    assert g.state is s.GateState.SNAPSHOT
    assert g.receive(m.SnapshotBegin(10, 3), 0.1) == [s.SnapshotStarted(10, 3, "")]
    ev = g.receive(m.SnapshotBatch(0, (ticket(1), ticket(2)), done_rows=2, total_rows=3), 0.2)
    assert isinstance(ev[0], s.ApplySnapshotBatch) and ev[0].done_rows == 2
    g.receive(m.SnapshotBatch(1, (ticket(3),), done_rows=3, total_rows=3), 0.3)
    assert g.receive(m.SnapshotEnd(10, 2, 3), 0.4) == [s.SnapshotFinished(10, 3, hub_epoch="E1")]
    assert g.state is s.GateState.LIVE and g.cursor == 10


def test_a_missing_snapshot_batch_aborts_and_asks_again() -> None:
    g = connected_gate(s.GateFacts(0, 0, 0, None))
    g.receive(reply(replica_sync="snapshot"), 0.0)
    g.receive(m.SnapshotBegin(10, 3), 0.1)
    g.messages_to_send()
    ev = g.receive(m.SnapshotBatch(1, (ticket(3),)), 0.2)
    assert isinstance(ev[0], s.SnapshotAborted)
    assert [x.type for x in g.messages_to_send()] == ["snapshot_request"]
    assert g.receive(m.SnapshotEnd(10, 2, 3), 0.3) == []  # ignored until a new begin


def test_a_gate_receiving_a_snapshot_pings_the_hub_though_it_hears_pages_all_the_time() -> None:
    # busy applying pages, the gate would read the hub's ping too late: its own ping keeps the link
    g = connected_gate(s.GateFacts(0, 0, 0, None))
    g.receive(reply(replica_sync="snapshot"), 0.0)
    g.receive(m.SnapshotBegin(10, 3), 0.1)
    g.messages_to_send()
    for k, t in enumerate((0.6, 1.2, 1.8, 2.4)):
        g.receive(m.SnapshotBatch(k, (ticket(k + 1),)), t)
        g.tick(t)
    assert [x.type for x in g.messages_to_send()] == ["ping", "ping"]  # every heartbeat interval (1 s)
    hub = s.HubSession("g1", CFG)
    hub._last_received = 0.0
    hub.receive(m.Ping(1), 2.4)
    assert not any(isinstance(e, s.CloseWanted) for e in hub.tick(4.0))  # 3 s timeout counted from the ping


def test_deltas_advance_the_cursor_and_a_gap_asks_to_catch_up() -> None:
    g = connected_gate()
    g.receive(reply(), 0.0)
    ev = g.receive(m.Deltas(5, (m.TicketRevoke(6, 1), m.TicketUpsert(8, ticket(2)))), 0.1)
    assert ev == [s.ApplyDeltas((m.TicketRevoke(6, 1), m.TicketUpsert(8, ticket(2))), 8)]
    g.messages_to_send()
    assert g.receive(m.Deltas(9, (m.TicketRevoke(10, 3),)), 0.2) == []
    assert g.messages_to_send() == [m.CatchUp(8)]
    assert g.receive(m.Deltas(5, (m.TicketRevoke(6, 1),)), 0.3) == []  # old duplicate, no catch-up
    assert g.messages_to_send() == []


def test_pong_showing_the_hub_ahead_triggers_catch_up() -> None:
    g = connected_gate()
    g.receive(reply(), 0.0)
    g.receive(m.Pong(1, seq=7), 0.1)
    assert g.messages_to_send() == [m.CatchUp(5)]


def test_hub_pushes_only_when_live_and_only_fresh_changes() -> None:
    hub = s.HubSession("g1", CFG)
    hub.receive(m.Hello("g1", 1, 2, 1, 5, 0, 0, "E1"), 0.0)
    assert hub.answer_hello(s.HubFacts(0, "E1", 10)) == [s.CatchUpNeeded(5)]
    assert not hub.push_changes([m.TicketRevoke(6, 1)])  # catching up: the read will include it
    hub.send_changes([m.TicketRevoke(6, 1)])
    hub.caught_up()
    assert hub.push_changes([m.TicketRevoke(6, 1), m.TicketRevoke(7, 2)])
    msgs = hub.messages_to_send()
    assert msgs[-2:] == [m.Deltas(5, (m.TicketRevoke(6, 1),)), m.Deltas(6, (m.TicketRevoke(7, 2),))]


def test_what_the_hub_fans_out_for_each_stored_entry() -> None:
    admit = JournalEntry("g1", 5, 1.0, EntryKind.SCAN, reason="ADMIT", ticket_id=3)
    assert s.remote_admit_for("g1", admit) == m.RemoteAdmit(3, "g1", 1.0, "in", 5)
    refused = JournalEntry("g1", 6, 1.0, EntryKind.SCAN, reason="ALREADY_USED", ticket_id=3)
    assert s.remote_admit_for("g1", refused) is None
    undo = JournalEntry("g1", 7, 2.0, EntryKind.PASSAGE, ticket_id=3, passage=Passage.NOT_PASSED, ref_seq=5)
    assert s.remote_admit_for("g1", undo) == m.RemoteAdmit(3, "g1", 2.0, "in", 5, not_passed=True)
    passed = JournalEntry("g1", 8, 2.0, EntryKind.PASSAGE, ticket_id=3, passage=Passage.PASSED, ref_seq=5)
    assert s.remote_admit_for("g1", passed) is None


def test_remote_admit_and_commands_reach_the_owner() -> None:
    g = connected_gate()
    g.receive(reply(), 0.0)
    assert g.receive(m.RemoteAdmit(3, "g2", 1.0, "in", 9), 0.1) == [s.RemoteAdmitted(3, "g2", 1.0, "in", 9)]
    assert g.receive(m.RemoteAdmit(3, "g1", 1.0), 0.1) == []  # our own echo
    ev = g.receive(m.Command("close", "half time"), 0.2)
    assert ev == [s.CommandReceived(m.Command("close", "half time"), True)]
    ev = g.receive(m.Command("self_destruct"), 0.3)
    assert ev[0].known is False and g.messages_to_send()[-1].code == "unknown_command"  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- errors, heartbeats
def test_garbage_is_counted_answered_and_finally_closes_the_link() -> None:
    g = connected_gate()
    g.receive(reply(), 0.0)
    for i in range(4):
        ev = g.receive_frame("{nope", 0.1 * i)
        assert isinstance(ev[0], s.ProtocolViolation) and len(ev) == 1
    ev = g.receive_frame(b"\x00", 1.0)
    assert isinstance(ev[-1], s.CloseWanted) and g.errors == 5
    assert g.messages_to_send()[-1].fatal  # type: ignore[union-attr]


def test_message_out_of_place_is_a_violation_not_a_crash() -> None:
    g = connected_gate()
    ev = g.receive(m.JournalBatch(()), 0.1)  # a gate-to-hub message sent to a gate
    assert ev[0].code == "unexpected"  # type: ignore[union-attr]
    g.receive(reply(), 0.2)
    assert g.receive(m.Hello("g1", 1, 2, 1, 0, 0, 0), 0.3)[0].code == "unexpected"  # type: ignore[union-attr]
    hub = s.HubSession("g1", CFG)
    assert hub.receive(m.JournalBatch(()), 0.0)[0].code == "unexpected"  # type: ignore[union-attr]


def test_answers_to_an_unseen_hello_reply_are_dropped_quietly_not_counted_as_errors() -> None:
    g = connected_gate()
    assert g.receive(m.SnapshotBegin(3, 1), 0.1) == [] and g.receive(m.JournalAck(0), 0.1) == []
    assert g.ignored == 2 and g.errors == 0 and g.state is s.GateState.HELLO_SENT
    ev = g.receive(m.Command("emergency_on", "fire"), 0.2)  # commands are never dropped
    assert ev == [s.CommandReceived(m.Command("emergency_on", "fire"), True)]


def test_heartbeat_pings_when_quiet_and_declares_a_silent_link_dead() -> None:
    g = connected_gate()
    g.receive(reply(), 0.0)
    assert g.tick(0.5) == [] and g.messages_to_send() == []
    g.tick(1.0)
    [ping] = g.messages_to_send()
    assert isinstance(ping, m.Ping)
    hub = s.HubSession("g1", CFG)
    hub.receive(ping, 1.0)
    assert hub.messages_to_send() == [m.Pong(ping.nonce, 0)]
    assert g.tick(2.9) == []
    assert isinstance(g.tick(3.0)[0], s.CloseWanted)


def test_lost_hello_is_sent_again() -> None:
    g = connected_gate()
    g.tick(2.0)
    assert "hello" in [x.type for x in g.messages_to_send()]


# ----------------------------------------------------------------------------- end to end, in memory
def test_gate_resyncs_after_hub_restore_without_unrevoking() -> None:
    b = make_backend(10)
    w = World(b, [MemoryGate("g1"), MemoryGate("g2")], random.Random(3))
    w.connect_all()
    w.settle()
    backup = b.backup()
    for t in (1, 2, 3):
        w.gates["g1"].scan(t, w.now)
    w.hub.push(b.revoke(5))
    w.settle()
    g1 = w.gates["g1"]
    assert g1.replica[5].status is TicketStatus.REVOKED and g1.acked == 3
    b.restore(backup)
    w.connect_all()
    w.settle()
    assert g1.rollbacks == 1
    assert sorted(b.stored("g1")) == [1, 2, 3]  # re-sent, unasked
    assert g1.replica[5].status is TicketStatus.REVOKED  # the restored hub forgot; the gate did not
    assert w.gates["g2"].replica[5].status is TicketStatus.REVOKED


def test_lossy_link_still_delivers_every_entry_exactly_once() -> None:
    b = make_backend(30)
    w = World(b, [MemoryGate("g1", CFG), MemoryGate("g2", CFG)], random.Random(7),
              LinkFaults(drop=0.2, dup=0.2, max_delay=0.5), hub_config=CFG)
    w.connect_all()
    for i in range(60):
        w.gates["g1" if i % 2 else "g2"].scan(1 + i % 30, w.now)
        w.step()
        if i % 20 == 0:
            w.hub.push(b.revoke(30 - i // 20))
    w.faults.drop = w.faults.dup = w.faults.max_delay = 0.0
    w.connect_all()
    w.settle()
    for gid, g in w.gates.items():
        stored = b.stored(gid)
        assert sorted(stored) == list(range(1, len(g.journal) + 1))
        assert all(stored[e.seq].nonce == e.nonce for e in g.journal)
    assert b.s.inserted == sum(len(g.journal) for g in w.gates.values())


# ----------------------------------------------------------------------------- restored hubs
def test_a_restored_hubs_epoch_is_adopted_only_once_its_snapshot_is_complete() -> None:
    """A restored hub re-issues seqs the gate has seen (with other changes). If the gate took the
    new epoch at the hello reply and lost the link mid-snapshot, its next hello (old cursor, new
    epoch) would be answered with deltas and it would skip the re-issued seqs for good."""
    g = connected_gate(s.GateFacts(15, 0, 0, "E1"))
    g.receive(reply(hub_epoch="E2", hub_seq=15, replica_sync="snapshot", reason="epoch_changed"), 0.1)
    g.receive(m.SnapshotBegin(15, 3), 0.2)
    g.connection_lost()  # before the snapshot ends
    g.connect(s.GateFacts(g.cursor, 0, 0, g.hub_epoch), 0.3)
    [hello] = g.messages_to_send()
    assert isinstance(hello, m.Hello) and hello.hub_epoch == "E1"  # still the old one: the hub snapshots again
    g.receive(reply(hub_epoch="E2", hub_seq=15, replica_sync="snapshot", reason="epoch_changed"), 0.4)
    g.receive(m.SnapshotBegin(15, 0), 0.5)
    assert g.receive(m.SnapshotEnd(15, 0, 0), 0.6) == [s.SnapshotFinished(15, 0, hub_epoch="E2")]
    assert g.hub_epoch == "E2"


def test_a_gate_whose_cursor_change_the_hub_lost_gets_a_snapshot() -> None:
    """v3: the hello names the token of the change at the cursor; a hub whose log no longer
    holds that change (restored, or failed over to a standby that lacked it) sends a snapshot."""
    hub = s.HubSession("g1", s.SessionConfig())
    gate = s.GateSession("g1", s.SessionConfig())
    gate.connect(s.GateFacts(15, 0, 0, "E1", cursor_token="abcd"), 0.0)
    [hello] = gate.messages_to_send()
    assert isinstance(hello, m.Hello) and hello.cursor_token == "abcd"
    [received] = hub.receive(hello, 0.0)
    assert isinstance(received, s.HelloReceived) and received.version == 3
    events = hub.answer_hello(s.HubFacts(hub_held=0, hub_epoch="E1", hub_seq=20, cursor_holds=False))
    assert events == [s.SnapshotNeeded("cursor_lost")]


# ----------------------------------------------------------------------------- entry events (v3)
def _live_hub(version: int, zones: frozenset[int] | None) -> s.HubSession:
    hub = s.HubSession("g1", s.SessionConfig())
    gate = s.GateSession("g1", s.SessionConfig(max_version=version))
    gate.connect(s.GateFacts(10, 0, 0, "E1"), 0.0)
    [hello] = gate.messages_to_send()
    hub.receive(hello, 0.0)
    hub.answer_hello(s.HubFacts(hub_held=0, hub_epoch="E1", hub_seq=10))
    hub.caught_up()
    hub.zones = zones
    hub.messages_to_send()
    return hub


def _admit(seq: int, gate: str = "g2", zone: int = 1) -> m.EntryEvent:
    return m.EntryEvent(seq, ticket_id=seq, gate_id=gate, at=100.0 + seq, zone_id=zone)


def test_entry_events_reach_only_gates_of_the_tickets_zone_and_never_the_gate_they_came_from() -> None:
    hub = _live_hub(3, frozenset({1}))
    assert hub.push_changes([_admit(11, zone=1), _admit(12, zone=2), _admit(13, gate="g1")], 13, "t13")
    [deltas] = hub.messages_to_send()
    assert isinstance(deltas, m.Deltas)
    assert [c.seq for c in deltas.changes] == [11] and deltas.end_seq == 13 and deltas.end_token == "t13"
    assert hub.sent_seq == hub.read_seq == 13


def test_a_v3_gate_cursor_moves_past_events_of_other_zones_without_a_message_each_time() -> None:
    hub = _live_hub(3, frozenset({1}))
    assert not hub.push_changes([_admit(11, zone=2)], 11)
    assert hub.messages_to_send() == [] and hub.read_seq == 11 and hub.sent_seq == 10
    # the next change it does need carries the cursor over what it skipped
    assert hub.push_changes([_admit(12, zone=1)], 12)
    [deltas] = hub.messages_to_send()
    assert isinstance(deltas, m.Deltas) and deltas.prev_seq == 10 and deltas.end_seq == 12


def test_an_older_gate_gets_entry_events_as_remote_admits_and_keeps_its_prev_seq_chain() -> None:
    hub = _live_hub(2, frozenset({1}))
    revoke = m.TicketRevoke(11, 5)
    assert hub.push_changes([revoke, _admit(12, zone=1)], 12)
    deltas, admit = hub.messages_to_send()
    assert isinstance(deltas, m.Deltas) and deltas.changes == (revoke,) and deltas.end_seq is None
    assert isinstance(admit, m.RemoteAdmit) and admit.ticket_id == 12 and admit.gate_seq == 0
    assert hub.sent_seq == 11 and hub.read_seq == 12  # a v2 gate's cursor is the last change it was sent


def test_a_v3_gate_applies_entry_events_and_moves_its_cursor_to_end_seq() -> None:
    g = connected_gate(s.GateFacts(10, 0, 0, "E1"), s.SessionConfig())
    g.receive(reply(version=3, max_version=3), 0.1)
    events = g.receive(m.Deltas(10, (_admit(12),), 14, "t14"), 0.2)
    assert events == [s.ApplyDeltas((_admit(12),), 14, "t14")] and g.cursor == 14 and g.cursor_token == "t14"
    # a message that only moves the cursor is applied too (the owner persists it)
    assert g.receive(m.Deltas(14, (), 20, "t20"), 0.3) == [s.ApplyDeltas((), 20, "t20")]
