"""Shared helpers for scanner tests: timeouts from one constant, event collection."""
from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator

from scanners.base import SCANNER_TIMEOUT_S, ScannerEvent, ScannerHealth

#: every wait in these tests scales from this
TIMEOUT_S = 10 * SCANNER_TIMEOUT_S


def no_delay() -> Iterator[float]:
    """Reconnect immediately (tests inject this instead of the real backoff)."""
    return itertools.repeat(0.01)


async def next_event(scanner: object) -> ScannerEvent:
    return await asyncio.wait_for(scanner.__anext__(), TIMEOUT_S)  # type: ignore[attr-defined]


async def next_matching(scanner: object, pred: Callable[[ScannerEvent], bool],
                        ) -> tuple[ScannerEvent, list[ScannerEvent]]:
    """The first event matching ``pred`` and the events skipped before it."""
    skipped: list[ScannerEvent] = []
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            ev = await scanner.__anext__()  # type: ignore[attr-defined]
            if pred(ev):
                return ev, skipped
            skipped.append(ev)


def is_fault(ev: ScannerEvent) -> bool:
    return isinstance(ev, ScannerHealth) and ev.state == "fault"


def is_ok(ev: ScannerEvent) -> bool:
    return isinstance(ev, ScannerHealth) and ev.state == "ok"
