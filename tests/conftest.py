"""Shared test settings. Every timeout in the suite scales from TIMEOUT_S."""
from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

#: the one constant timeouts scale from; raise GATEHOUSE_TEST_TIMEOUT on a slow machine
TIMEOUT_S = float(os.environ.get("GATEHOUSE_TEST_TIMEOUT", "10"))


async def eventually(condition: Callable[[], object], timeout: float = TIMEOUT_S, what: str = "condition") -> None:
    """Wait (yielding to the loop) until ``condition()`` is truthy; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        await asyncio.sleep(0.005)
