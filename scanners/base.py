"""The one interface every scanner backend offers, and the pieces they share.

A scanner is an async context manager (``async with scanner:`` starts and stops it) and an
async iterator of :class:`tickets.model.Scan` and :class:`ScannerHealth` events. The scanner
reports the bytes it read exactly as decoded and never interprets ticket content; deciding is
:func:`tickets.decide.decide`'s job.

Backends that read on a thread (the camera capture thread, the pyserial reader) hand their
events to asyncio in one place: :class:`EventPump`, with ``loop.call_soon_threadsafe``.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol, runtime_checkable

from tickets import delays
from tickets.model import Scan

log = logging.getLogger(__name__)

#: the one time constant scanner code scales its timeouts from
SCANNER_TIMEOUT_S = 1.0
#: events held for a consumer that is not reading; beyond it the oldest are dropped
MAX_PENDING_EVENTS = 256


@dataclass(frozen=True, slots=True)
class ScannerHealth:
    """A scanner's state changed: ``fault`` (with what is wrong) or back to ``ok``."""

    state: Literal["ok", "fault"]
    detail: str
    source: str
    at: float


ScannerEvent = Scan | ScannerHealth


@runtime_checkable
class Scanner(Protocol):
    """What the gate agent uses: start/stop with ``async with``, then iterate events."""

    async def __aenter__(self) -> Scanner: ...

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None: ...

    def __aiter__(self) -> AsyncIterator[ScannerEvent]: ...

    async def __anext__(self) -> ScannerEvent: ...


class EventPump:
    """A bounded event queue that threads may post to: the single thread→asyncio crossing.

    ``post`` may be called from any thread; it schedules the put on the owning loop with
    ``call_soon_threadsafe``. If the consumer stops reading, the oldest events are dropped
    (and logged) rather than letting memory grow without bound.
    """

    def __init__(self, maxsize: int = MAX_PENDING_EVENTS) -> None:
        self._queue: asyncio.Queue[ScannerEvent | None] = asyncio.Queue()
        self._maxsize = maxsize
        self._loop = asyncio.get_running_loop()
        self._closed = False

    def post(self, event: ScannerEvent | None) -> None:
        """Thread-safe: hand an event (or ``None``, end of stream) to the asyncio side."""
        try:
            self._loop.call_soon_threadsafe(self.put_nowait, event)
        except RuntimeError:  # loop closed while a thread was finishing: nobody to tell
            log.debug("event after loop closed dropped: %r", event)

    def put_nowait(self, event: ScannerEvent | None) -> None:
        """Loop-thread only."""
        if self._closed and event is not None:
            return
        while self._queue.qsize() >= self._maxsize:
            dropped = self._queue.get_nowait()
            log.warning("scanner events not consumed; dropped %r", dropped)
        self._queue.put_nowait(event)

    def close(self) -> None:
        """End the stream: iteration stops after the events already queued."""
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)

    async def get(self) -> ScannerEvent:
        event = await self._queue.get()
        if event is None:
            self._closed = True
            self._queue.put_nowait(None)  # every later get also ends
            raise StopAsyncIteration
        return event


class Suppressor:
    """Reports a code once per presentation, not once per frame.

    A payload is reported if it was not seen during the last ``window_s`` seconds. Every
    sighting refreshes its time, so a code held in view is reported once; shown again after
    being away for longer than the window, it is a new scan. Pure: times are passed in.
    """

    def __init__(self, window_s: float) -> None:
        if window_s < 0:
            raise ValueError("suppression window must not be negative")
        self.window_s = window_s
        self._last_seen: dict[bytes, float] = {}

    def admit(self, payload: bytes, t: float) -> bool:
        last = self._last_seen.get(payload)
        self._last_seen[payload] = t
        if len(self._last_seen) > 1024:
            self._forget(t)
        return last is None or t - last > self.window_s

    def _forget(self, t: float) -> None:
        self._last_seen = {p: s for p, s in self._last_seen.items() if t - s <= self.window_s}


class HealthTracker:
    """Emits a health event only when the state changes (fault ↔ ok), or the fault detail does."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.state: Literal["ok", "fault"] | None = None
        self.detail = ""

    def fault(self, detail: str, at: float) -> ScannerHealth | None:
        if self.state == "fault" and self.detail == detail:
            return None
        self.state, self.detail = "fault", detail
        log.warning("scanner %s fault: %s", self.source, detail)
        return ScannerHealth("fault", detail, self.source, at)

    def ok(self, detail: str, at: float) -> ScannerHealth | None:
        if self.state == "ok":
            return None
        self.state, self.detail = "ok", detail
        log.info("scanner %s ok: %s", self.source, detail)
        return ScannerHealth("ok", detail, self.source, at)


def backoff() -> Iterator[float]:
    """A scanner's reconnect schedule: 0.2, 0.4, … s capped at 5 s (tests inject their own)."""
    return delays.backoff(0.2, 2.0, 5.0, jitter=False)


class Confirmer:
    """Holds back a code until it has been read in ``frames`` frames, each within ``gap_s`` of the last.

    1D symbologies have weak checksums (EAN/ITF: one mod-10 digit), so a blurred frame can
    decode as a different valid number; the same misread in consecutive frames is far less
    likely. At 30 frames/s confirming costs one frame. Pure: times are passed in.
    """

    def __init__(self, frames: int = 2, gap_s: float = 0.5 * SCANNER_TIMEOUT_S) -> None:
        if frames < 1:
            raise ValueError("frames must be at least 1")
        self.frames, self.gap_s = frames, gap_s
        self._seen: dict[bytes, tuple[int, float]] = {}

    def confirmed(self, payload: bytes, t: float) -> bool:
        count, last = self._seen.get(payload, (0, t))
        count = count + 1 if t - last <= self.gap_s else 1
        self._seen[payload] = (count, t)
        if len(self._seen) > 1024:
            self._seen = {p: v for p, v in self._seen.items() if t - v[1] <= self.gap_s}
        return count >= self.frames
