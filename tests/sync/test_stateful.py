"""Hypothesis drives two gates and a hub through a faulty link (drop, duplicate, delay,
reorder), reconnects, revocations and hub restores from backup.

Invariants: nothing lost (every journal entry ends at the hub, once, with its nonce),
nothing counted twice (the hub's insert count equals the distinct entries it holds), every
duplicate admission reported (each ticket admitted at more than one gate under the
single-entry policy is in the hub's conflicts), and no gate ever un-revokes a ticket.
"""
from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from sync import session as s
from sync.memory import MemoryHubBackend
from tests.sync.harness import LinkFaults, MemoryGate, World, make_backend
from tickets.model import TicketStatus

CFG = s.SessionConfig(batch_size=4, max_in_flight=3, ack_timeout_s=1.5, reply_timeout_s=1.5,
                      heartbeat_interval_s=1.0, heartbeat_timeout_s=4.0, max_errors=1000,
                      compress_min_bytes=200)  # small, so v2 links carry binary frames too
GATES = ("g1", "g2")
TICKETS = 12


class SyncMachine(RuleBasedStateMachine):
    backend: MemoryHubBackend
    world: World

    @initialize(seed=st.integers(0, 2**32 - 1), drop=st.sampled_from([0.0, 0.1, 0.3]),
                dup=st.sampled_from([0.0, 0.2]), delay=st.sampled_from([0.0, 0.3, 1.0]),
                versions=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 2)))
    def start(self, seed: int, drop: float, dup: float, delay: float, versions: tuple[int, int, int]) -> None:
        """``versions``: the highest protocol version of g1, g2 and the hub (v1 and v2 mix)."""
        self.backend = make_backend(TICKETS, GATES)
        gates = [MemoryGate(g, replace(CFG, max_version=v)) for g, v in zip(GATES, versions, strict=False)]
        self.world = World(self.backend, gates, random.Random(seed), LinkFaults(),
                           hub_config=replace(CFG, max_version=versions[2]))
        self.world.connect_all()
        self.world.settle()  # gates start with a loaded replica, then the link turns bad
        self.world.faults = LinkFaults(drop, dup, delay)
        for g in GATES:
            self.world.connect(g)
        self.backup = self.backend.backup()
        self.revoked_at_hub: set[int] = set()

    @rule(gate=st.sampled_from(GATES), ticket_id=st.integers(1, TICKETS))
    def scan(self, gate: str, ticket_id: int) -> None:
        self.world.gates[gate].scan(ticket_id, self.world.now)

    @rule(n=st.integers(1, 15))
    def time_passes(self, n: int) -> None:
        for _ in range(n):
            self.world.step(0.1)

    @rule(gate=st.sampled_from(GATES))
    def link_drops_and_gate_reconnects(self, gate: str) -> None:
        self.world.connect(gate)

    @rule(ticket_id=st.integers(1, TICKETS))
    def hub_revokes(self, ticket_id: int) -> None:
        self.revoked_at_hub.add(ticket_id)
        self.world.hub.push(self.backend.revoke(ticket_id))

    @rule()
    def hub_takes_backup(self) -> None:
        self.backup = self.backend.backup()

    @rule()
    def hub_restored_from_backup(self) -> None:
        self.backend.restore(self.backup)
        self.revoked_at_hub = {t.ticket_id for t in self.backend.s.tickets.values()
                               if t.status is TicketStatus.REVOKED}
        for g in GATES:
            self.world.connect(g)  # a restored hub is a restarted hub: every link drops

    # ---- invariants at every step
    @invariant()
    def hub_holds_only_what_gates_wrote(self) -> None:
        for gid, g in self.world.gates.items():
            for seq, e in self.backend.stored(gid).items():
                assert g.journal[seq - 1].nonce == e.nonce

    @invariant()
    def nothing_counted_twice(self) -> None:
        assert self.backend.s.inserted == sum(len(self.backend.stored(g)) for g in GATES)

    @invariant()
    def acked_entries_are_really_at_the_hub_unless_it_rolled_back(self) -> None:
        for gid, g in self.world.gates.items():
            if g.session.state is s.GateState.LIVE and g.session.hub_epoch == self.backend.epoch:
                assert all(seq in self.backend.stored(gid) for seq in range(1, g.acked + 1))

    @invariant()
    def faults_never_look_like_protocol_violations(self) -> None:
        """Drops, duplicates and reordering are normal weather, not a misbehaving peer."""
        bad = [e for g in self.world.gates.values() for e in g.events if isinstance(e, s.ProtocolViolation)]
        bad += [e for _, e in self.world.hub.events if isinstance(e, s.ProtocolViolation)]
        assert not bad

    @invariant()
    def no_gate_unrevokes(self) -> None:
        for g in self.world.gates.values():
            for tid in g.revoked_ever:
                assert g.replica[tid].status is TicketStatus.REVOKED

    # ---- eventually: heal the link and check nothing was lost
    @precondition(lambda self: hasattr(self, "world"))
    @rule()
    def heal_and_settle(self) -> None:
        self._settle_and_check()

    def teardown(self) -> None:
        if hasattr(self, "world"):
            self._settle_and_check()

    def _settle_and_check(self) -> None:
        w = self.world
        w.faults.drop = w.faults.dup = w.faults.max_delay = 0.0
        w.connect_all()
        w.settle(max_steps=3000)
        admitted: dict[int, set[tuple[str, int]]] = {}
        for gid, g in w.gates.items():
            stored = self.backend.stored(gid)
            assert sorted(stored) == list(range(1, len(g.journal) + 1)), f"{gid} lost entries"
            for e in g.journal:
                assert stored[e.seq].nonce == e.nonce
                if e.admitted and e.ticket_id is not None:
                    admitted.setdefault(e.ticket_id, set()).add((gid, e.seq))
        doubles = {t for t, who in admitted.items() if len(who) > 1}
        reported = {c.ticket_id for c in self.backend.conflicts if c.kind == "double_admit"}
        assert doubles == reported
        for g in w.gates.values():
            for tid in self.revoked_at_hub:
                assert g.replica[tid].status is TicketStatus.REVOKED
            assert g.cursor == self.backend.s.seq


SyncMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
TestSync = SyncMachine.TestCase
