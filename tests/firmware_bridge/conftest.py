"""Shared timing and fixtures for the turnstile tests: every timeout scales from :data:`UNIT`."""
from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.firmware_bridge.controller_process import ControllerProcess

#: one time unit in seconds; raise GATEHOUSE_TEST_UNIT on a slow machine
UNIT = float(os.environ.get("GATEHOUSE_TEST_UNIT", "0.05"))


class FakeClock:
    """A clock the test moves by hand, for event and action timestamps."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def controller() -> AsyncIterator[ControllerProcess]:
    """A running reference controller process behind a fresh pty pair."""
    from tests.firmware_bridge.controller_process import ControllerProcess

    proc = ControllerProcess()
    await proc.start()
    try:
        yield proc
    finally:
        await proc.stop()
