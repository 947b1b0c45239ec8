"""A scanner driven by code: tests and the demo feed it payloads and faults.

It records nothing about tickets: it only turns ``feed`` calls into scans and ``fault`` /
``recover`` calls into health events, exactly as a real backend would deliver them.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType

from scanners.base import HealthTracker, ScannerEvent, ScannerHealth
from tickets.model import Scan


class SimScanner:
    """The ``sim`` backend."""

    def __init__(self, source: str = "sim", *, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self._clock = clock
        self._queue: asyncio.Queue[ScannerEvent | None] = asyncio.Queue()
        self._health = HealthTracker(source)
        self._running = False

    async def __aenter__(self) -> SimScanner:
        self._running = True
        event = self._health.ok("simulator started", self._clock())
        if event:
            self._queue.put_nowait(event)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._running = False
        self._queue.put_nowait(None)

    def __aiter__(self) -> SimScanner:
        return self

    async def __anext__(self) -> ScannerEvent:
        event = await self._queue.get()
        if event is None:
            self._queue.put_nowait(None)
            raise StopAsyncIteration
        return event

    async def feed(self, payload: bytes, symbology: str = "qrcode") -> None:
        """Present a code, as if a fan held it up."""
        if not isinstance(payload, bytes | bytearray):
            raise TypeError("payload must be bytes")
        self._queue.put_nowait(Scan(bytes(payload), symbology, self.source, self._clock()))

    def fault(self, detail: str) -> ScannerHealth | None:
        """Report the scanner broken (no event if already broken with the same detail)."""
        return self._push(self._health.fault(detail, self._clock()))

    def recover(self) -> ScannerHealth | None:
        """Report the scanner working again."""
        return self._push(self._health.ok("recovered", self._clock()))

    def _push(self, event: ScannerHealth | None) -> ScannerHealth | None:
        if event is not None:
            self._queue.put_nowait(event)
        return event
