"""Hand-held and fixed-mount scanners in serial / USB-CDC mode (pyserial).

Framing is pure (:class:`LineFramer`): bytes in, payloads out, with the configured terminator
(CR, LF or CRLF) and optional prefix/suffix stripping. A line longer than ``max_len`` is
dropped whole (logged) up to its terminator, so a scanner spewing garbage never grows memory
and never produces half a code. Bytes are passed on as read: non-UTF-8 stays bytes and the
decision core calls it MALFORMED.

:class:`SerialScanner` reads on one thread and hands events to asyncio through
:class:`~scanners.base.EventPump`. When the port goes away (unplugged), it reports a fault and
reopens with backoff; when it comes back it reports ``ok``.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

import serial as pyserial

from scanners.base import SCANNER_TIMEOUT_S, EventPump, HealthTracker, ScannerEvent, backoff
from tickets.model import Scan

log = logging.getLogger(__name__)

TERMINATORS = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n"}
DEFAULT_MAX_LEN = 1024
#: how long a read blocks before the reader checks whether it should stop
READ_TIMEOUT_S = 0.1 * SCANNER_TIMEOUT_S


class LineFramer:
    """Split a byte stream into scans. Pure and incremental: ``feed`` returns complete payloads."""

    def __init__(self, terminator: str = "CR", *, prefix: bytes = b"", suffix: bytes = b"",
                 max_len: int = DEFAULT_MAX_LEN) -> None:
        if terminator not in TERMINATORS:
            raise ValueError(f"terminator must be one of {sorted(TERMINATORS)}, not {terminator!r}")
        if max_len < 1:
            raise ValueError("max_len must be positive")
        self.terminator = TERMINATORS[terminator]
        self.prefix, self.suffix, self.max_len = prefix, suffix, max_len
        self._buf = bytearray()
        self._discarding = False
        self.dropped = 0  # over-long lines thrown away

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        self._buf += data
        term = self.terminator
        while True:
            idx = self._buf.find(term)
            if idx < 0:
                break
            line = bytes(self._buf[:idx])
            del self._buf[:idx + len(term)]
            if self._discarding:
                self._discarding = False
                continue
            payload = self._strip(line)
            if len(line) > self.max_len:
                self._drop(len(line))
            elif payload:
                out.append(payload)
        if len(self._buf) > self.max_len:
            # Keep the tail in case it holds the start of a terminator; drop the rest.
            if not self._discarding:
                self._drop(len(self._buf))
            self._discarding = True
            keep = len(term) - 1
            del self._buf[:len(self._buf) - keep]
        return out

    def _drop(self, n: int) -> None:
        self.dropped += 1
        log.warning("serial scanner line of %d+ bytes is longer than %d; dropped", n, self.max_len)

    def _strip(self, line: bytes) -> bytes:
        if self.terminator != b"\r\n":  # a scanner set to CR that also sends LF: tolerate it
            line = line.strip(b"\r\n")
        if self.prefix and line.startswith(self.prefix):
            line = line[len(self.prefix):]
        if self.suffix and line.endswith(self.suffix):
            line = line[:-len(self.suffix)]
        return line


class SerialScanner:
    """The ``serial`` backend: a pyserial port read on its own thread."""

    def __init__(self, port: str, *, baud: int = 9600, terminator: str = "CR", prefix: bytes = b"",
                 suffix: bytes = b"", max_len: int = DEFAULT_MAX_LEN, symbology: str = "unknown",
                 source: str | None = None, clock: Callable[[], float] = time.time,
                 reconnect_delays: Callable[[], Iterable[float]] = backoff,
                 serial_factory: Callable[..., Any] = pyserial.Serial) -> None:
        self.port, self.baud = port, baud
        self.source = source or f"serial:{port}"
        self.symbology = symbology
        self._framer_args = (terminator, prefix, suffix, max_len)
        LineFramer(terminator, prefix=prefix, suffix=suffix, max_len=max_len)  # validate now
        self._clock = clock
        self._reconnect_delays = reconnect_delays
        self._serial_factory = serial_factory
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pump: EventPump | None = None
        self._health = HealthTracker(self.source)

    async def __aenter__(self) -> SerialScanner:
        self._pump = EventPump()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"scanner-{self.source}", daemon=True)
        self._thread.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5 * SCANNER_TIMEOUT_S)
        if self._pump is not None:
            self._pump.close()

    def __aiter__(self) -> SerialScanner:
        return self

    async def __anext__(self) -> ScannerEvent:
        if self._pump is None:
            raise RuntimeError("use 'async with scanner:' before iterating")
        return await self._pump.get()

    # -- the reader thread ----------------------------------------------------------------------

    def _post(self, event: ScannerEvent | None) -> None:
        if event is not None and self._pump is not None:
            self._pump.post(event)

    def _run(self) -> None:
        delays: Iterator[float] = iter(self._reconnect_delays())
        while not self._stop.is_set():
            try:
                port = self._serial_factory(self.port, self.baud, timeout=READ_TIMEOUT_S)
            except (OSError, pyserial.SerialException) as exc:
                self._post(self._health.fault(f"cannot open {self.port}: {exc}", self._clock()))
                self._stop.wait(next(delays, 1.0))
                continue
            delays = iter(self._reconnect_delays())
            self._post(self._health.ok(f"{self.port} open at {self.baud} baud", self._clock()))
            try:
                self._read(port)
            except (OSError, pyserial.SerialException) as exc:
                self._post(self._health.fault(f"{self.port} lost: {exc}", self._clock()))
                self._stop.wait(next(delays, 1.0))
            finally:
                try:
                    port.close()
                except (OSError, pyserial.SerialException):
                    pass

    def _read(self, port: Any) -> None:
        terminator, prefix, suffix, max_len = self._framer_args
        framer = LineFramer(terminator, prefix=prefix, suffix=suffix, max_len=max_len)
        while not self._stop.is_set():
            data = port.read(max(1, port.in_waiting or 1))
            if not data:
                continue
            for payload in framer.feed(data):
                self._post(Scan(payload, self.symbology, self.source, self._clock()))
