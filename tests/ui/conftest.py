"""Browser tests: a real hub and real gate agents (ui.venue), driven in the system Chromium."""
from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.conftest import TIMEOUT_S
from ui.screenshots import CHROMIUM, CHROMIUM_ARGS
from ui.venue import Venue, start_venue

#: checked once at import: the fixture itself is async
HAVE_CHROMIUM = Path(CHROMIUM).exists()
#: waits in the page scale from this (milliseconds, as Playwright counts)
TIMEOUT_MS = int(TIMEOUT_S * 1000)
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    if not HAVE_CHROMIUM:
        pytest.skip(f"{CHROMIUM} is not installed (./run test installs it)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[Venue]:
    v = await start_venue(tmp_path, tickets=120)
    try:
        yield v
    finally:
        await v.stop()


@pytest.fixture
async def north_pair(tmp_path: Path) -> AsyncIterator[Venue]:
    """Two gates for the same stand (a double admit needs two gates that may admit a ticket)."""
    v = await start_venue(tmp_path, zones=(("North stand", 100),), gates=(("North 1", "North stand"),
                                                                          ("North 2", "North stand")), tickets=40)
    try:
        yield v
    finally:
        await v.stop()
