"""Frame codec of the turnstile serial protocol, shared by the host bridge and the controller.

This one file runs unchanged in CPython (the bridge, the tests) and in MicroPython (the
reference firmware on an RP2040 board, where it is copied next to ``main.py``). That is why it
uses no dataclasses, no ``typing``, no annotations and no ``from __future__`` import: the
protocol has exactly one implementation, so the two ends cannot drift apart.

Wire format of one frame (all integers big-endian)::

    +-------+-----+-----+------+-----------------+--------+
    | START | LEN | SEQ | TYPE | PAYLOAD (LEN B) | CRC-16 |
    | 0xA5  | 1 B | 1 B | 1 B  | 0..MAX_PAYLOAD  |  2 B   |
    +-------+-----+-----+------+-----------------+--------+

The CRC is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over LEN, SEQ, TYPE and PAYLOAD.
There is no byte stuffing: the :class:`Decoder` resynchronises after a lost or corrupted byte
by dropping one byte and searching for the next START, so a damaged frame costs only itself.
"""

START = 0xA5
PROTOCOL_VERSION = 1
MAX_PAYLOAD = 64
OVERHEAD = 6  # start, len, seq, type, crc(2)

# -- frame types -------------------------------------------------------------------------
# link management (either direction)
HELLO = 0x01  # host -> controller: payload [version]
HELLO_ACK = 0x02  # controller -> host: [acked seq, version, boot id (2), firmware text]
ACK = 0x03  # payload [acked seq, status]; status 0 = done, other = refused (see STATUS_*)
HEARTBEAT = 0x05  # host: [] ; controller: [boot id (2), state flags]
# commands (host -> controller, acknowledged)
UNLOCK = 0x10  # [direction, hold (2, in 10 ms units; 0 = until passage or lock)]
LOCK = 0x11  # []
INDICATE = 0x12  # [indicator code, text (utf-8)]
EMERGENCY = 0x13  # [on (0/1)]
QUERY = 0x14  # [] -> answered by ACK and then STATE
# replies (controller -> host, not acknowledged)
STATE = 0x20  # [state flags, passages in (2), passages out (2)]
# events (controller -> host, acknowledged)
PASSAGE = 0x30  # [direction, kind: PASS_AUTHORISED / PASS_FORCED / PASS_EGRESS]
ALARM = 0x31  # [fire contact open (0/1)]
TAMPER = 0x32  # [text]
FAULT = 0x33  # [code, text]
MANUAL_RELEASE = 0x34  # [direction]

RELIABLE = (HELLO, UNLOCK, LOCK, INDICATE, EMERGENCY, QUERY, PASSAGE, ALARM, TAMPER, FAULT,
            MANUAL_RELEASE)

TYPE_NAMES = {
    HELLO: "hello", HELLO_ACK: "hello_ack", ACK: "ack", HEARTBEAT: "heartbeat",
    UNLOCK: "unlock", LOCK: "lock", INDICATE: "indicate", EMERGENCY: "emergency",
    QUERY: "query", STATE: "state", PASSAGE: "passage", ALARM: "alarm", TAMPER: "tamper",
    FAULT: "fault", MANUAL_RELEASE: "manual_release",
}

# directions on the wire
DIR_IN = 0
DIR_OUT = 1

# PASSAGE kinds
PASS_AUTHORISED = 0  # the arm turned after an unlock in that direction
PASS_FORCED = 1  # the arm turned while locked (or the other way)
PASS_EGRESS = 2  # the arm turned during free egress (emergency)

# ACK status
STATUS_OK = 0
STATUS_REFUSED = 1  # e.g. emergency reset while the fire contact is still open
STATUS_BAD_PAYLOAD = 2
STATUS_UNKNOWN_TYPE = 3

# STATE flags
FLAG_RELEASED_IN = 0x01
FLAG_RELEASED_OUT = 0x02
FLAG_EMERGENCY = 0x04
FLAG_FIRE_OPEN = 0x08
FLAG_HOST_LOST = 0x10

# indicator codes
IND_IDLE = 0
IND_GREEN = 1
IND_RED = 2
IND_FAULT = 3
IND_EMERGENCY = 4

try:  # CPython: join the project's one error tree. MicroPython: a plain ValueError.
    from tickets.errors import GatehouseError as _Root

    class FrameError(_Root, ValueError):
        """A frame we were asked to build is invalid (our own mistake, never the peer's)."""

except ImportError:  # pragma: no cover - only on the controller board

    class FrameError(ValueError):
        """A frame we were asked to build is invalid (our own mistake, never the peer's)."""


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE of ``data``; bitwise, so it needs no table in the board's RAM."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            if crc & 0x8000:
                crc = ((crc << 1) ^ 0x1021) & 0xFFFF
            else:
                crc = (crc << 1) & 0xFFFF
    return crc


def encode(seq, ftype, payload=b""):
    """Build one frame. Raises :class:`FrameError` for an out-of-range field."""
    if not 0 <= seq <= 255:
        raise FrameError("sequence number out of range: " + str(seq))
    if not 0 <= ftype <= 255:
        raise FrameError("frame type out of range: " + str(ftype))
    if len(payload) > MAX_PAYLOAD:
        raise FrameError("payload of " + str(len(payload)) + " bytes exceeds " + str(MAX_PAYLOAD))
    body = bytes([len(payload), seq, ftype]) + bytes(payload)
    crc = crc16(body)
    return bytes([START]) + body + bytes([crc >> 8, crc & 0xFF])


def text_payload(text, room):
    """Encode ``text`` as UTF-8 cut to at most ``room`` bytes without splitting a character."""
    data = text.encode("utf-8")
    if len(data) <= room:
        return data
    cut = room
    while cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return data[:cut]


def decode_text(data):
    """Decode a text field sent by the peer; bad UTF-8 is replaced, never raised."""
    try:
        return bytes(data).decode("utf-8")
    except (UnicodeError, ValueError):
        return "".join(chr(b) if 32 <= b < 127 else "?" for b in data)


class Decoder:
    """Streaming frame decoder: feed it any chunks of bytes, get whole, valid frames back.

    Bad frames are counted and dropped, never raised: noise on the line, a lost byte or a
    flipped bit must not stop the link. Counters: ``frames`` (valid), ``bad_crc``,
    ``bad_length`` and ``dropped_bytes`` (bytes skipped while searching for a START).
    """

    def __init__(self, max_buffer=512):
        self._buf = bytearray()
        self._max_buffer = max_buffer
        self.frames = 0
        self.bad_crc = 0
        self.bad_length = 0
        self.dropped_bytes = 0

    def reset(self):
        """Forget a partial frame (e.g. after the port was reopened)."""
        self.dropped_bytes += len(self._buf)
        self._buf = bytearray()

    def pending(self):
        """How many bytes wait for the rest of their frame."""
        return len(self._buf)

    def feed(self, data):
        """Add received bytes; return a list of ``(seq, type, payload)`` for each valid frame."""
        self._buf.extend(data)
        if len(self._buf) > self._max_buffer:
            # Only possible with a flood of noise: keep the newest bytes.
            extra = len(self._buf) - self._max_buffer
            self.dropped_bytes += extra
            self._buf = self._buf[extra:]
        out = []
        buf = self._buf
        pos = 0
        n = len(buf)
        while True:
            while pos < n and buf[pos] != START:
                pos += 1
                self.dropped_bytes += 1
            if n - pos < OVERHEAD:
                break
            length = buf[pos + 1]
            if length > MAX_PAYLOAD:
                self.bad_length += 1
                self.dropped_bytes += 1
                pos += 1
                continue
            end = pos + OVERHEAD + length
            if end > n:
                break  # wait for the rest; if a byte was lost the CRC will tell us later
            body = bytes(buf[pos + 1:end - 2])
            got = (buf[end - 2] << 8) | buf[end - 1]
            if crc16(body) != got:
                self.bad_crc += 1
                self.dropped_bytes += 1
                pos += 1  # resynchronise on the next START, which may lie inside this "frame"
                continue
            self.frames += 1
            out.append((body[1], body[2], body[3:]))
            pos = end
        if pos:
            self._buf = buf[pos:]
        return out

    def stats(self):
        """The counters as a dict (for status pages and the ``turnstile test`` command)."""
        return {
            "frames_count": self.frames,
            "bad_crc_count": self.bad_crc,
            "bad_length_count": self.bad_length,
            "dropped_bytes_count": self.dropped_bytes,
        }


class SeqWindow:
    """Remembers the last few sequence numbers received, so a retransmitted frame whose ACK
    was lost is acknowledged again but not acted on twice."""

    def __init__(self, size=16):
        self._seen = []
        self._size = size

    def seen(self, seq):
        """Record ``seq``; return True if it was already in the window (a duplicate)."""
        if seq in self._seen:
            return True
        self._seen.append(seq)
        if len(self._seen) > self._size:
            self._seen.pop(0)
        return False

    def clear(self):
        self._seen = []
