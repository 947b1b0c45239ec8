"""USB keyboard-wedge scanners: the scanner types the code as key presses (evdev).

:class:`KeyDecoder` is pure: it takes Linux input key events (code, value, time) and returns
completed codes, handling Shift (left/right), Caps Lock, Enter / keypad Enter as the end of a
code, and a timeout that discards a partial code (a scanner types a code in a burst; keys
trickling in slowly, or a code cut off without Enter, are not a scan). Key codes are the
kernel's (``linux/input-event-codes.h``), so it needs no evdev to run or test.

:class:`HidScanner` opens the ``/dev/input/event*`` device with evdev — imported only here,
only when used — and grabs it exclusively, so the codes do not also type into the kiosk.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from scanners.base import SCANNER_TIMEOUT_S, EventPump, HealthTracker, ScannerEvent, backoff
from tickets.model import Scan

log = logging.getLogger(__name__)

EV_KEY = 1
KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2
KEY_ENTER, KEY_KPENTER = 28, 96
KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_CAPSLOCK = 42, 54, 58
#: a partial code with no key for this long is thrown away
DEFAULT_KEY_TIMEOUT_S = 0.2 * SCANNER_TIMEOUT_S
DEFAULT_MAX_LEN = 1024

# (unshifted, shifted) for the US layout scanners are configured with by default
_KEYS: dict[int, tuple[str, str]] = {
    2: ("1", "!"), 3: ("2", "@"), 4: ("3", "#"), 5: ("4", "$"), 6: ("5", "%"), 7: ("6", "^"),
    8: ("7", "&"), 9: ("8", "*"), 10: ("9", "("), 11: ("0", ")"), 12: ("-", "_"), 13: ("=", "+"),
    15: ("\t", "\t"), 26: ("[", "{"), 27: ("]", "}"), 39: (";", ":"), 40: ("'", '"'), 41: ("`", "~"),
    43: ("\\", "|"), 51: (",", "<"), 52: (".", ">"), 53: ("/", "?"), 57: (" ", " "),
    55: ("*", "*"), 71: ("7", "7"), 72: ("8", "8"), 73: ("9", "9"), 74: ("-", "-"), 75: ("4", "4"),
    76: ("5", "5"), 77: ("6", "6"), 78: ("+", "+"), 79: ("1", "1"), 80: ("2", "2"), 81: ("3", "3"),
    82: ("0", "0"), 83: (".", "."), 98: ("/", "/"),
}
for _row, _start in (("qwertyuiop", 16), ("asdfghjkl", 30), ("zxcvbnm", 44)):
    for _i, _ch in enumerate(_row):
        _KEYS[_start + _i] = (_ch, _ch.upper())
_LETTERS = {code for code, (low, _) in _KEYS.items() if low.isalpha()}


class KeyDecoder:
    """Key events in, completed codes out. Pure; the caller passes each event's time."""

    def __init__(self, *, timeout_s: float = DEFAULT_KEY_TIMEOUT_S, max_len: int = DEFAULT_MAX_LEN) -> None:
        self.timeout_s, self.max_len = timeout_s, max_len
        self._chars: list[str] = []
        self._shift: set[int] = set()
        self._caps = False
        self._last_at: float | None = None
        self._overflow = False
        self.discarded = 0  # partial or over-long codes thrown away

    def feed(self, code: int, value: int, at: float) -> bytes | None:
        """One EV_KEY event. Returns the code's bytes when Enter completes one."""
        if self._chars and self._last_at is not None and at - self._last_at > self.timeout_s:
            self._discard("partial code timed out")
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            if value == KEY_UP:
                self._shift.discard(code)
            else:
                self._shift.add(code)
            return None
        if value != KEY_DOWN:  # key-up and autorepeat carry no characters
            return None
        self._last_at = at
        if code == KEY_CAPSLOCK:
            self._caps = not self._caps
            return None
        if code in (KEY_ENTER, KEY_KPENTER):
            text, overflow = "".join(self._chars), self._overflow
            self._chars, self._overflow = [], False
            if overflow:
                self.discarded += 1
                log.warning("keyboard-wedge code longer than %d characters dropped", self.max_len)
                return None
            return text.encode("ascii") if text else None
        pair = _KEYS.get(code)
        if pair is None:
            log.debug("unmapped key code %d ignored", code)
            return None
        shifted = bool(self._shift)
        if code in _LETTERS and self._caps:
            shifted = not shifted
        if len(self._chars) >= self.max_len:
            self._overflow = True
        else:
            self._chars.append(pair[1] if shifted else pair[0])
        return None

    def expire(self, now: float) -> None:
        """Drop a partial code if its last key is older than the timeout (call when idle)."""
        if self._chars and self._last_at is not None and now - self._last_at > self.timeout_s:
            self._discard("partial code timed out")

    def _discard(self, why: str) -> None:
        self.discarded += 1
        log.info("keyboard-wedge: %s (%d chars dropped)", why, len(self._chars))
        self._chars, self._overflow = [], False


class HidScanner:
    """The ``hid`` backend: an evdev input device, grabbed, decoded with :class:`KeyDecoder`."""

    def __init__(self, device: str, *, grab: bool = True, timeout_s: float = DEFAULT_KEY_TIMEOUT_S,
                 max_len: int = DEFAULT_MAX_LEN, symbology: str = "unknown", source: str | None = None,
                 clock: Callable[[], float] = time.time,
                 reconnect_delays: Callable[[], Iterable[float]] = backoff) -> None:
        self.device_path, self.grab = device, grab
        self.source = source or f"hid:{device}"
        self.symbology = symbology
        self._decoder_args = (timeout_s, max_len)
        self._clock = clock
        self._reconnect_delays = reconnect_delays
        self._task: asyncio.Task[None] | None = None
        self._pump: EventPump | None = None
        self._health = HealthTracker(self.source)

    async def __aenter__(self) -> HidScanner:
        import evdev  # noqa: F401  (fail here, clearly, if the optional extra is missing)

        self._pump = EventPump()
        self._task = asyncio.create_task(self._run(), name=f"scanner-{self.source}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._pump is not None:
            self._pump.close()

    def __aiter__(self) -> HidScanner:
        return self

    async def __anext__(self) -> ScannerEvent:
        if self._pump is None:
            raise RuntimeError("use 'async with scanner:' before iterating")
        return await self._pump.get()

    def _emit(self, event: ScannerEvent | None) -> None:
        if event is not None and self._pump is not None:
            self._pump.put_nowait(event)

    async def _run(self) -> None:
        import evdev

        delays: Iterator[float] = iter(self._reconnect_delays())
        timeout_s, max_len = self._decoder_args
        while True:
            try:
                dev: Any = evdev.InputDevice(self.device_path)
                if self.grab:
                    dev.grab()
            except OSError as exc:
                self._emit(self._health.fault(f"cannot open {self.device_path}: {exc}", self._clock()))
                await asyncio.sleep(next(delays, 1.0))
                continue
            delays = iter(self._reconnect_delays())
            self._emit(self._health.ok(f"{self.device_path} open ({dev.name})", self._clock()))
            decoder = KeyDecoder(timeout_s=timeout_s, max_len=max_len)
            try:
                async for ev in dev.async_read_loop():
                    if ev.type != EV_KEY:
                        continue
                    payload = decoder.feed(ev.code, ev.value, ev.timestamp())
                    if payload:
                        self._emit(Scan(payload, self.symbology, self.source, self._clock()))
            except OSError as exc:
                self._emit(self._health.fault(f"{self.device_path} lost: {exc}", self._clock()))
                await asyncio.sleep(next(delays, 1.0))
            finally:
                try:
                    dev.close()
                except OSError:
                    pass
