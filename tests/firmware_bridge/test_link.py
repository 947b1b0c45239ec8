"""The protocol logic of both ends without any I/O: the host's HostLink and the firmware's
Controller wired back to back, with time passed in by hand."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import frames
from firmware_bridge.firmware.main import Controller, Mechanism
from firmware_bridge.link import Completed, Connected, Failed, HostLink, LinkTimings, Lost, Received

T = LinkTimings(ack_timeout_s=0.2, max_retries=3, heartbeat_s=0.5, silence_s=2.0)


class RecMechanism(Mechanism):
    def __init__(self) -> None:
        self.log: list[tuple[object, ...]] = []

    def release(self, direction):  # type: ignore[no-untyped-def]
        self.log.append(("release", direction))

    def lock(self):  # type: ignore[no-untyped-def]
        self.log.append(("lock",))

    def free_egress(self, on):  # type: ignore[no-untyped-def]
        self.log.append(("free_egress", on))

    def indicate(self, code, text):  # type: ignore[no-untyped-def]
        self.log.append(("indicate", code, text))


class Wire:
    """Host and controller back to back; ``cut`` drops everything in both directions."""

    def __init__(self) -> None:
        self.now = 0.0
        self.mech = RecMechanism()
        self.ctl = Controller(self.mech, 0x0101, 0, heartbeat_ms=500, host_timeout_ms=2000,
                              ack_timeout_ms=200, max_retries=3)
        self.host = HostLink(T, 0.0)
        self.cut = False
        self.events: list[object] = []

    def step(self, dt: float = 0.05, n: int = 1) -> None:
        for _ in range(n):
            self.now += dt
            ms = int(self.now * 1000)
            self.host.poll(self.now)
            self.ctl.tick(ms)
            up, down = self.host.data_to_send(), self.ctl.take_output()
            if not self.cut:
                self.ctl.receive(up, ms)
                self.host.receive_data(down, self.now)
            self.events += self.host.events_received()

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events if isinstance(e, kind)]


def connected() -> Wire:
    w = Wire()
    w.step(n=4)
    assert [type(e) for e in w.events] == [Connected]
    w.events.clear()
    return w


def test_handshake_reports_version_boot_id_and_firmware() -> None:
    w = Wire()
    w.step(n=4)
    (ev,) = w.of(Connected)
    assert (ev.version, ev.boot_id, ev.rebooted) == (frames.PROTOCOL_VERSION, 0x0101, False)
    assert ev.firmware.startswith("gatehouse-ref")


def test_command_is_acknowledged_and_applied_once() -> None:
    w = connected()
    seq = w.host.send(frames.UNLOCK, bytes([frames.DIR_IN, 0, 0]), w.now)
    w.step(n=2)
    assert w.of(Completed) == [Completed(seq, frames.UNLOCK, frames.STATUS_OK)]
    assert w.mech.log.count(("release", frames.DIR_IN)) == 1


def test_a_retransmitted_command_is_acked_again_but_not_reapplied() -> None:
    w = connected()
    frame = frames.encode(77, frames.UNLOCK, bytes([frames.DIR_OUT, 0, 0]))
    w.ctl.receive(frame, 1000)
    w.ctl.receive(frame, 1100)  # our first ACK was lost: the host sent it again
    acks = [p for _, t, p in frames.Decoder().feed(w.ctl.take_output()) if t == frames.ACK]
    assert [bytes(p) for p in acks] == [bytes([77, 0]), bytes([77, 0])]
    assert w.mech.log.count(("release", frames.DIR_OUT)) == 1


def test_unanswered_command_is_retried_a_bounded_number_of_times_then_the_link_is_lost() -> None:
    w = connected()
    w.cut = True
    seq = w.host.send(frames.LOCK, b"", w.now)
    w.step(dt=0.1, n=12)
    assert w.host.retransmits == T.max_retries
    assert w.of(Failed) == [Failed(seq, frames.LOCK, "no_ack")]
    assert w.of(Lost) == [Lost("no_ack")]


def test_silence_is_lost_once_and_the_link_comes_back_by_itself() -> None:
    w = connected()
    w.cut = True
    w.step(dt=0.1, n=40)
    assert w.of(Lost) == [Lost("silent")], "reported once, not on every poll"
    assert w.host.send(frames.LOCK, b"", w.now) and w.host.events_received()[0].reason == "link_down"
    w.cut = False
    w.step(dt=0.05, n=6)
    (ev,) = w.of(Connected)
    assert ev.rebooted is False


def test_heartbeats_keep_an_idle_link_up() -> None:
    w = connected()
    w.step(dt=0.1, n=100)  # ten seconds of nothing to say
    assert w.of(Lost) == [] and w.host.state == "ready"
    assert not w.ctl.host_lost


def test_controller_reboot_is_detected_from_its_heartbeat() -> None:
    w = connected()
    w.ctl = Controller(w.mech, 0x0202, int(w.now * 1000))
    w.step(n=6)
    assert w.of(Lost) == [Lost("rebooted")]
    (ev,) = w.of(Connected)
    assert (ev.boot_id, ev.rebooted) == (0x0202, True)


def test_controller_event_is_delivered_once_even_if_our_ack_is_lost() -> None:
    w = connected()
    w.ctl.rotation(frames.DIR_IN, int(w.now * 1000))
    w.cut = True  # the event got through below, but our ACK will not
    up_before = w.ctl.take_output()
    w.host.receive_data(up_before, w.now)
    w.host.data_to_send()  # the ACK, lost
    w.cut = False
    w.step(dt=0.1, n=6)  # the controller retransmits
    got = [e for e in w.host.events_received() + w.events if isinstance(e, Received)]
    assert [(e.ftype, e.payload) for e in got] == [
        (frames.PASSAGE, bytes([frames.DIR_IN, frames.PASS_FORCED]))]
    assert w.host.duplicates == 1


def test_incompatible_controller_version_is_never_ready() -> None:
    host = HostLink(T, 0.0)
    host.receive_data(frames.encode(1, frames.HELLO_ACK, bytes([1, 99, 0, 1])), 0.1)
    assert host.state != "ready"
    (ev,) = host.events_received()
    assert isinstance(ev, Lost) and ev.reason.startswith("incompatible")


def test_controller_locks_and_shows_fault_when_the_host_goes_silent() -> None:
    w = connected()
    w.host.send(frames.UNLOCK, bytes([frames.DIR_IN, 0, 0]), w.now)
    w.step(n=2)
    w.cut = True
    w.step(dt=0.1, n=25)
    assert w.ctl.host_lost and w.ctl.released is None
    assert w.mech.log[-2:] == [("lock",), ("indicate", frames.IND_FAULT, "OUT OF ORDER")]


def test_controller_relocks_after_the_unlock_hold_time() -> None:
    w = connected()
    w.host.send(frames.UNLOCK, bytes([frames.DIR_IN, 0, 30]), w.now)  # 300 ms
    w.step(n=2)
    assert w.ctl.released == frames.DIR_IN
    w.step(dt=0.05, n=7)
    assert w.ctl.released is None and w.mech.log[-1] == ("lock",)


def test_controller_refuses_to_end_emergency_while_the_fire_contact_is_open() -> None:
    w = connected()
    w.ctl.fire_contact(True, int(w.now * 1000))
    seq = w.host.send(frames.EMERGENCY, b"\x00", w.now)
    w.step(n=2)
    assert Completed(seq, frames.EMERGENCY, frames.STATUS_REFUSED) in w.of(Completed)
    assert w.ctl.emergency and ("free_egress", True) in w.mech.log
    w.ctl.fire_contact(False, int(w.now * 1000))
    seq = w.host.send(frames.EMERGENCY, b"\x00", w.now)
    w.step(n=2)
    assert Completed(seq, frames.EMERGENCY, frames.STATUS_OK) in w.of(Completed)
    assert not w.ctl.emergency and w.mech.log[-2:] == [("free_egress", False), ("lock",)]


def test_controller_gives_up_an_event_after_the_retry_bound() -> None:
    w = connected()
    w.cut = True
    w.ctl.tamper("door", int(w.now * 1000))
    w.step(dt=0.1, n=12)
    assert w.ctl.events_dropped == 1 and not w.ctl.pending


def test_malformed_command_payload_is_refused_not_crashed() -> None:
    w = connected()
    seq = w.host.send(frames.UNLOCK, b"\x07", w.now)
    w.step(n=2)
    assert Completed(seq, frames.UNLOCK, frames.STATUS_BAD_PAYLOAD) in w.of(Completed)


class LossyWire(Wire):
    """Loses and flips bytes at random in both directions (seeded, so a failure replays)."""

    def __init__(self, seed: int, loss: float) -> None:
        super().__init__()
        import random

        self.rng = random.Random(seed)
        self.loss = loss

    def _damage(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            r = self.rng.random()
            if r < self.loss:
                continue  # lost
            out.append(b ^ 0x04 if r < self.loss * 1.5 else b)  # or flipped
        return bytes(out)

    def step(self, dt: float = 0.05, n: int = 1) -> None:
        for _ in range(n):
            self.now += dt
            ms = int(self.now * 1000)
            self.host.poll(self.now)
            self.ctl.tick(ms)
            self.ctl.receive(self._damage(self.host.data_to_send()), ms)
            self.host.receive_data(self._damage(self.ctl.take_output()), self.now)
            self.events += self.host.events_received()


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.002, 0.01, 0.03]))
def test_on_a_noisy_line_nothing_is_applied_or_delivered_twice(seed: int, loss: float) -> None:
    w = LossyWire(seed, loss)
    w.step(n=40)
    unlocks = 0
    sent_events = []
    for i in range(12):
        if w.host.state == "ready":
            w.host.send(frames.UNLOCK, bytes([frames.DIR_IN, 0, 0]), w.now)
            unlocks += 1
        w.step(n=4)
        sent_events.append(f"event {i}")
        w.ctl.tamper(sent_events[-1], int(w.now * 1000))
        w.step(n=8)
    w.step(n=30)  # let retries settle
    applied = w.mech.log.count(("release", frames.DIR_IN))
    delivered = [e.payload.decode() for e in w.events if isinstance(e, Received)
                 and e.ftype == frames.TAMPER]
    completed = [e for e in w.events if isinstance(e, Completed) and e.ftype == frames.UNLOCK]
    assert len(completed) <= applied <= unlocks, "a command is never applied twice"
    assert len(delivered) == len(set(delivered)), "an event is never delivered twice"
    assert set(delivered) <= set(sent_events)
    assert len(delivered) >= len(sent_events) - w.ctl.events_dropped, "only given-up events go missing"
    if not w.of(Lost):  # the link never gave up: every command went through
        assert len(completed) == unlocks
