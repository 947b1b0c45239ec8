"""Shared timing for the turnstile tests: every timeout scales from :data:`UNIT`."""
from __future__ import annotations

import os

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
