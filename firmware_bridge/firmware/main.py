"""Reference turnstile controller firmware (MicroPython, RP2040-class board).

Copy ``frames.py`` and this file to the board; MicroPython runs ``main.py`` at boot. The board
drives the release solenoids, reads the rotation sensors, the fire-panel contact, the tamper
switch and the staff button, and speaks the framed protocol of ``frames.py`` to the gate's Pi
over a UART.

The protocol logic (:class:`Controller`) is plain Python with no I/O, so the same code runs on
the host: ``gatehouse turnstile controller --pty`` (or ``python -m
firmware_bridge.firmware.main --pty``) runs it behind a real pseudo-terminal pair with a
simulated mechanism, driven and observed through stdin/stdout lines. The bridge's tests talk
to exactly that process.

Safety rules that hold even when the Pi is gone:

* fire contact open -> free egress at once, latched until the host resets it (and the host
  cannot reset it while the contact is still open);
* an unlock relocks after its hold time or after one passage;
* the host silent for ``host_timeout_ms`` -> lock and show FAULT (but never leave free egress).

No ``typing``, dataclasses or annotations here: MicroPython must import it.
"""

import sys

try:
    from firmware_bridge import frames
except ImportError:  # on the board, frames.py sits next to main.py
    import frames

FIRMWARE = "gatehouse-ref-1.0"


def ticks_diff(a, b):
    """a - b in milliseconds, wrap-safe on the board (ticks_ms wraps), plain on the host."""
    try:
        import time
        return time.ticks_diff(a, b)
    except AttributeError:
        return a - b


class Mechanism:
    """What the controller can move and show. Subclassed by the board and the simulator."""

    def release(self, direction):
        pass

    def lock(self):
        pass

    def free_egress(self, on):
        pass

    def indicate(self, code, text):
        pass


class Controller:
    """The controller's protocol logic: bytes in, bytes out, time passed in.

    Inputs: :meth:`receive` (bytes from the UART), :meth:`tick` (call often), and the
    mechanism's sensor reports :meth:`rotation`, :meth:`fire_contact`, :meth:`tamper`,
    :meth:`fault`, :meth:`manual_release`. Output: :meth:`take_output` (bytes for the UART).
    """

    def __init__(self, mechanism, boot_id, now, heartbeat_ms=500, host_timeout_ms=2000,
                 ack_timeout_ms=200, max_retries=3, fire_open=False):
        self.mech = mechanism
        self.boot_id = boot_id & 0xFFFF
        self.heartbeat_ms = heartbeat_ms
        self.host_timeout_ms = host_timeout_ms
        self.ack_timeout_ms = ack_timeout_ms
        self.max_retries = max_retries
        self.decoder = frames.Decoder()
        self.rx_window = frames.SeqWindow()
        self.rx_status = {}
        self.out = bytearray()
        self.seq = 0
        self.pending = {}  # seq -> [frame, sent_at, tries]
        self.released = None  # frames.DIR_IN / DIR_OUT while unlocked
        self.release_deadline = None
        self.emergency = False
        self.fire_open = False
        self.host_lost = True  # until the host says hello
        self.last_rx = now
        self.last_hb = now
        self.passages = [0, 0]
        self.events_dropped = 0
        self.indicator = (frames.IND_IDLE, "")
        self.mech.lock()
        self._send(frames.HEARTBEAT, self._hb_payload())  # announce the (new) boot at once
        if fire_open:
            self.fire_contact(True, now)

    # -- output ---------------------------------------------------------------------------
    def take_output(self):
        data = bytes(self.out)
        self.out = bytearray()
        return data

    def _next_seq(self):
        self.seq = (self.seq + 1) & 0xFF
        return self.seq

    def _send(self, ftype, payload=b""):
        self.out.extend(frames.encode(self._next_seq(), ftype, payload))

    def _send_reliable(self, ftype, payload, now):
        seq = self._next_seq()
        frame = frames.encode(seq, ftype, payload)
        self.pending[seq] = [frame, now, 0]
        self.out.extend(frame)

    def _flags(self):
        f = 0
        if self.released == frames.DIR_IN:
            f |= frames.FLAG_RELEASED_IN
        if self.released == frames.DIR_OUT:
            f |= frames.FLAG_RELEASED_OUT
        if self.emergency:
            f |= frames.FLAG_EMERGENCY
        if self.fire_open:
            f |= frames.FLAG_FIRE_OPEN
        if self.host_lost:
            f |= frames.FLAG_HOST_LOST
        return f

    def _hb_payload(self):
        return bytes([self.boot_id >> 8, self.boot_id & 0xFF, self._flags()])

    # -- input from the host --------------------------------------------------------------
    def receive(self, data, now):
        for seq, ftype, payload in self.decoder.feed(data):
            self.last_rx = now
            if self.host_lost:
                self.host_lost = False
                if not self.emergency:
                    self.mech.indicate(self.indicator[0], self.indicator[1])
            self._handle(seq, ftype, payload, now)

    def _handle(self, seq, ftype, payload, now):
        if ftype == frames.ACK:
            if len(payload) >= 1:
                self.pending.pop(payload[0], None)
            return
        if ftype == frames.HEARTBEAT:
            return
        if ftype == frames.HELLO:
            # A (re)connecting host may restart its sequence numbers: forget old ones.
            self.rx_window.clear()
            self.rx_status = {}
            fw = frames.text_payload(FIRMWARE, frames.MAX_PAYLOAD - 4)
            self._send(frames.HELLO_ACK, bytes([seq, frames.PROTOCOL_VERSION,
                                                self.boot_id >> 8, self.boot_id & 0xFF]) + fw)
            return
        if ftype not in frames.RELIABLE:
            return  # unknown or not for us: dropped (counted by nobody: harmless)
        if self.rx_window.seen(seq):
            status = self.rx_status.get(seq, frames.STATUS_OK)  # our ACK was lost: say it again
        else:
            status = self._command(ftype, payload, now)
            self.rx_status[seq] = status
            if len(self.rx_status) > 32:
                for old in list(self.rx_status)[:-16]:
                    del self.rx_status[old]
        self._send(frames.ACK, bytes([seq, status]))
        if ftype == frames.QUERY:
            s = self.passages
            self._send(frames.STATE, bytes([self._flags(), s[0] >> 8, s[0] & 0xFF,
                                            s[1] >> 8, s[1] & 0xFF]))

    def _command(self, ftype, payload, now):
        if ftype == frames.UNLOCK:
            if len(payload) != 3 or payload[0] not in (frames.DIR_IN, frames.DIR_OUT):
                return frames.STATUS_BAD_PAYLOAD
            if self.emergency:
                return frames.STATUS_OK  # already free
            self.released = payload[0]
            hold = ((payload[1] << 8) | payload[2]) * 10
            self.release_deadline = (now + hold) if hold else None
            self.mech.release(payload[0])
            return frames.STATUS_OK
        if ftype == frames.LOCK:
            if not self.emergency:
                self._relock()
            return frames.STATUS_OK
        if ftype == frames.INDICATE:
            if len(payload) < 1:
                return frames.STATUS_BAD_PAYLOAD
            self.indicator = (payload[0], frames.decode_text(payload[1:]))
            if not self.emergency or payload[0] == frames.IND_EMERGENCY:
                self.mech.indicate(self.indicator[0], self.indicator[1])
            return frames.STATUS_OK
        if ftype == frames.EMERGENCY:
            if len(payload) != 1:
                return frames.STATUS_BAD_PAYLOAD
            if payload[0]:
                self._enter_emergency()
                return frames.STATUS_OK
            if self.fire_open:
                return frames.STATUS_REFUSED
            if self.emergency:
                self.emergency = False
                self.mech.free_egress(False)
                self._relock()
            return frames.STATUS_OK
        if ftype == frames.QUERY:
            return frames.STATUS_OK
        return frames.STATUS_UNKNOWN_TYPE

    def _relock(self):
        self.released = None
        self.release_deadline = None
        self.mech.lock()

    def _enter_emergency(self):
        if self.emergency:
            return
        self.emergency = True
        self.released = None
        self.release_deadline = None
        self.mech.free_egress(True)
        self.mech.indicate(frames.IND_EMERGENCY, "EMERGENCY")

    # -- time -----------------------------------------------------------------------------
    def tick(self, now):
        if ticks_diff(now, self.last_hb) >= self.heartbeat_ms:
            self.last_hb = now
            self._send(frames.HEARTBEAT, self._hb_payload())
        for seq in list(self.pending):
            entry = self.pending[seq]
            if ticks_diff(now, entry[1]) >= self.ack_timeout_ms:
                if entry[2] >= self.max_retries:
                    del self.pending[seq]
                    self.events_dropped += 1
                    continue
                entry[1] = now
                entry[2] += 1
                self.out.extend(entry[0])
        if self.release_deadline is not None and ticks_diff(now, self.release_deadline) >= 0:
            self._relock()
        if not self.host_lost and ticks_diff(now, self.last_rx) >= self.host_timeout_ms:
            self.host_lost = True
            if not self.emergency:
                self._relock()
                self.mech.indicate(frames.IND_FAULT, "OUT OF ORDER")

    # -- sensors --------------------------------------------------------------------------
    def rotation(self, direction, now):
        """The arm turned one step in ``direction`` (frames.DIR_IN / DIR_OUT)."""
        self.passages[direction] = (self.passages[direction] + 1) & 0xFFFF
        if self.emergency:
            kind = frames.PASS_EGRESS
        elif self.released == direction:
            kind = frames.PASS_AUTHORISED
            self._relock()
        else:
            kind = frames.PASS_FORCED
        self._send_reliable(frames.PASSAGE, bytes([direction, kind]), now)

    def fire_contact(self, contact_open, now):
        if contact_open == self.fire_open:
            return
        self.fire_open = contact_open
        if contact_open:
            self._enter_emergency()
        self._send_reliable(frames.ALARM, bytes([1 if contact_open else 0]), now)

    def tamper(self, text, now):
        self._send_reliable(frames.TAMPER, frames.text_payload(text, frames.MAX_PAYLOAD), now)

    def fault(self, code, text, now):
        self._send_reliable(frames.FAULT, bytes([code & 0xFF]) +
                            frames.text_payload(text, frames.MAX_PAYLOAD - 1), now)

    def manual_release(self, direction, now):
        if not self.emergency:
            self.released = direction
            self.release_deadline = now + 8000
            self.mech.release(direction)
        self._send_reliable(frames.MANUAL_RELEASE, bytes([direction]), now)


# -- the board ---------------------------------------------------------------------------
class PinMechanism(Mechanism):  # pragma: no cover - needs the board
    """RP2040 wiring: GP2/GP3 release solenoid drivers (in/out), GP4/GP5 green/red LED,
    GP6 buzzer, GP10/GP11 rotation sensors, GP12 fire contact (NC to GND), GP13 tamper,
    GP14 staff button. Inputs use the internal pull-ups; UART0 on GP0/GP1."""

    def __init__(self, machine):
        Pin = machine.Pin
        self.rel = [Pin(2, Pin.OUT, value=0), Pin(3, Pin.OUT, value=0)]
        self.green = Pin(4, Pin.OUT, value=0)
        self.red = Pin(5, Pin.OUT, value=0)
        self.buzzer = Pin(6, Pin.OUT, value=0)
        self.sensors = [Pin(10, Pin.IN, Pin.PULL_UP), Pin(11, Pin.IN, Pin.PULL_UP)]
        self.fire = Pin(12, Pin.IN, Pin.PULL_UP)
        self.tamper_in = Pin(13, Pin.IN, Pin.PULL_UP)
        self.button = Pin(14, Pin.IN, Pin.PULL_UP)

    def release(self, direction):
        self.rel[direction].value(1)

    def lock(self):
        self.rel[0].value(0)
        self.rel[1].value(0)

    def free_egress(self, on):
        self.rel[0].value(1 if on else 0)
        self.rel[1].value(1 if on else 0)

    def indicate(self, code, text):
        self.green.value(1 if code in (frames.IND_GREEN, frames.IND_EMERGENCY) else 0)
        self.red.value(1 if code in (frames.IND_RED, frames.IND_FAULT, frames.IND_EMERGENCY) else 0)


def run_board():  # pragma: no cover - needs the board
    import time

    import machine

    mech = PinMechanism(machine)
    uart = machine.UART(0, baudrate=115200, tx=machine.Pin(0), rx=machine.Pin(1))
    boot_id = (time.ticks_us() ^ (machine.unique_id()[-1] << 8)) & 0xFFFF
    now = time.ticks_ms()
    ctl = Controller(mech, boot_id, now, fire_open=mech.fire.value() == 1)
    last = [s.value() for s in mech.sensors]
    debounce = [now, now]
    fire_last = mech.fire.value()
    tamper_last = mech.tamper_in.value()
    button_last = mech.button.value()
    wdt = machine.WDT(timeout=2000)
    while True:
        now = time.ticks_ms()
        data = uart.read()
        if data:
            ctl.receive(data, now)
        for d in (0, 1):
            v = mech.sensors[d].value()
            if v != last[d]:
                last[d] = v
                if v == 0 and time.ticks_diff(now, debounce[d]) >= 50:
                    debounce[d] = now
                    ctl.rotation(d, now)
        v = mech.fire.value()
        if v != fire_last:
            fire_last = v
            ctl.fire_contact(v == 1, now)
        v = mech.tamper_in.value()
        if v != tamper_last:
            tamper_last = v
            if v == 1:
                ctl.tamper("cabinet_open", now)
        v = mech.button.value()
        if v != button_last:
            button_last = v
            if v == 0:
                ctl.manual_release(frames.DIR_IN, now)
        ctl.tick(now)
        out = ctl.take_output()
        if out:
            uart.write(out)
        wdt.feed()
        time.sleep_ms(2)


# -- the host: the same logic behind a pseudo-terminal -----------------------------------
def main(argv=None):
    if sys.implementation.name == "micropython":  # pragma: no cover - on the board
        run_board()
        return 0
    from firmware_bridge.firmware.host import run_host

    return run_host(argv)


if __name__ == "__main__":
    sys.exit(main())
