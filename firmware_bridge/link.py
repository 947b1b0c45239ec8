"""The host's side of the controller link, sans I/O.

:class:`HostLink` holds the whole state machine of the serial protocol on the Pi: the
handshake (``HELLO`` / ``HELLO_ACK`` with the protocol version and the controller's boot id),
acknowledged commands with bounded retries, heartbeats both ways, duplicate suppression,
silence and reboot detection. It never touches a port: feed it bytes with
:meth:`receive_data`, let time pass with :meth:`poll`, and collect :meth:`data_to_send` and
:meth:`events_received`. :mod:`firmware_bridge.serial_backend` is the thin pump around it.

States: ``connecting`` (sending HELLO) -> ``ready`` -> ``lost`` (silent, deaf or rebooted;
HELLO again) -> ``ready`` ...
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from firmware_bridge import frames

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LinkTimings:
    """All link timing in one place (tests scale these from one unit)."""

    ack_timeout_s: float = 0.2
    max_retries: int = 3
    heartbeat_s: float = 0.5
    silence_s: float = 2.0


@dataclass(frozen=True, slots=True)
class Connected:
    """Handshake done. ``rebooted``: the controller's boot id changed since the last one."""

    version: int
    boot_id: int
    firmware: str
    rebooted: bool


@dataclass(frozen=True, slots=True)
class Lost:
    """The link is down (``reason``: silent, no_ack, rebooted, incompatible)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Completed:
    """The controller acknowledged command ``seq`` with ``status`` (frames.STATUS_*)."""

    seq: int
    ftype: int
    status: int


@dataclass(frozen=True, slots=True)
class Failed:
    """Command ``seq`` was never acknowledged (retries exhausted, or the link was down)."""

    seq: int
    ftype: int
    reason: str


@dataclass(frozen=True, slots=True)
class Received:
    """A controller event (already acknowledged, duplicates removed) or a STATE reply."""

    ftype: int
    payload: bytes


LinkEvent = Connected | Lost | Completed | Failed | Received


@dataclass(slots=True)
class _Pending:
    ftype: int
    frame: bytes
    sent_at: float
    tries: int = 0


class HostLink:
    """Protocol state of one controller link (see the module docstring)."""

    def __init__(self, timings: LinkTimings, now: float) -> None:
        self.t = timings
        self.state = "connecting"
        self.decoder = frames.Decoder()
        self._rx_window = frames.SeqWindow()
        self._out = bytearray()
        self._events: list[LinkEvent] = []
        self._seq = 0
        self._pending: dict[int, _Pending] = {}
        self._hello_seq: int | None = None
        self._hello_at = -1e9
        self.boot_id: int | None = None
        self.firmware = ""
        self.version = 0
        self._last_rx = now
        self._last_tx = -1e9
        self._lost_reported = False
        self.retransmits = 0
        self.duplicates = 0
        self.unknown_frames = 0
        self._send_hello(now)

    # -- outputs --------------------------------------------------------------------------
    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def events_received(self) -> list[LinkEvent]:
        events, self._events = self._events, []
        return events

    def stats(self) -> dict[str, int]:
        return {**self.decoder.stats(), "retransmits_count": self.retransmits,
                "duplicates_count": self.duplicates, "unknown_frames_count": self.unknown_frames}

    # -- commands -------------------------------------------------------------------------
    def send(self, ftype: int, payload: bytes, now: float) -> int:
        """Queue an acknowledged command; returns its sequence number. Its outcome arrives
        later as :class:`Completed` or :class:`Failed` (at once if the link is down)."""
        seq = self._next_seq()
        if self.state != "ready":
            self._events.append(Failed(seq, ftype, "link_down"))
            return seq
        frame = frames.encode(seq, ftype, payload)
        self._pending[seq] = _Pending(ftype, frame, now)
        self._write(frame, now)
        return seq

    # -- input ----------------------------------------------------------------------------
    def receive_data(self, data: bytes, now: float) -> None:
        for seq, ftype, payload in self.decoder.feed(data):
            self._last_rx = now
            self._handle(seq, ftype, bytes(payload), now)

    def _handle(self, seq: int, ftype: int, payload: bytes, now: float) -> None:
        if ftype == frames.HELLO_ACK:
            self._on_hello_ack(payload, now)
            return
        if ftype == frames.HEARTBEAT:
            if len(payload) >= 2:
                boot = (payload[0] << 8) | payload[1]
                if self.boot_id is not None and boot != self.boot_id and self.state == "ready":
                    self._go_lost("rebooted", now)
            if self.state == "lost":
                self._send_hello(now)  # it talks again: shake hands without waiting
            return
        if ftype == frames.ACK:
            if len(payload) >= 2:
                entry = self._pending.pop(payload[0], None)
                if entry is not None:
                    self._events.append(Completed(payload[0], entry.ftype, payload[1]))
            return
        if ftype == frames.STATE:
            self._events.append(Received(ftype, payload))
            return
        if ftype in (frames.PASSAGE, frames.ALARM, frames.TAMPER, frames.FAULT,
                     frames.MANUAL_RELEASE):
            self._write(frames.encode(self._next_seq(), frames.ACK, bytes([seq, frames.STATUS_OK])), now)
            if self._rx_window.seen(seq):
                self.duplicates += 1  # our ACK was lost and it sent the event again
                return
            self._events.append(Received(ftype, payload))
            return
        self.unknown_frames += 1
        log.warning("dropped controller frame of unknown type 0x%02x", ftype)

    def _on_hello_ack(self, payload: bytes, now: float) -> None:
        if len(payload) < 4 or self.state == "ready":
            return  # a late answer to a hello we had repeated: already connected
        version = payload[1]
        if version != frames.PROTOCOL_VERSION:
            if not self._lost_reported:
                self._lost_reported = True
                self._events.append(Lost(f"incompatible: controller speaks v{version}, "
                                         f"we speak v{frames.PROTOCOL_VERSION}"))
            self.state = "lost"
            return
        boot = (payload[2] << 8) | payload[3]
        rebooted = self.boot_id is not None and boot != self.boot_id
        if rebooted:
            self._rx_window.clear()  # its sequence numbers started again
        self.boot_id = boot
        self.version = version
        self.firmware = frames.decode_text(payload[4:])
        self.state = "ready"
        self._hello_seq = None
        self._lost_reported = False
        self._events.append(Connected(version, boot, self.firmware, rebooted))

    # -- time -----------------------------------------------------------------------------
    def poll(self, now: float) -> None:
        t = self.t
        if self.state != "ready":
            if now - self._hello_at >= t.ack_timeout_s:
                self._send_hello(now)
            if not self._lost_reported and now - self._last_rx >= t.silence_s:
                self._lost_reported = True
                self._events.append(Lost("silent"))
            return
        if now - self._last_rx >= t.silence_s:
            self._go_lost("silent", now)
            return
        for entry in list(self._pending.values()):
            if now - entry.sent_at < t.ack_timeout_s:
                continue
            if entry.tries >= t.max_retries:
                self._go_lost("no_ack", now)  # it hears us no more, even if it still talks
                return
            entry.sent_at = now
            entry.tries += 1
            self.retransmits += 1
            self._write(entry.frame, now)
        if now - self._last_tx >= t.heartbeat_s:
            self._write(frames.encode(self._next_seq(), frames.HEARTBEAT), now)

    # -- internals ------------------------------------------------------------------------
    def _go_lost(self, reason: str, now: float) -> None:
        self.state = "lost"
        for seq, entry in self._pending.items():
            self._events.append(Failed(seq, entry.ftype, reason))
        self._pending.clear()
        if not self._lost_reported:
            self._lost_reported = True
            self._events.append(Lost(reason))
        self._send_hello(now)

    def _send_hello(self, now: float) -> None:
        self._hello_seq = self._next_seq()
        self._hello_at = now
        self._write(frames.encode(self._hello_seq, frames.HELLO, bytes([frames.PROTOCOL_VERSION])), now)

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def _write(self, frame: bytes, now: float) -> None:
        self._out.extend(frame)
        self._last_tx = now
