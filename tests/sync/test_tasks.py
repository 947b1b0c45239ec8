"""Background tasks never fail silently: logged with their traceback and counted."""
from __future__ import annotations

import asyncio
import logging

import pytest

from sync import tasks


async def test_a_background_task_that_raises_is_logged_and_counted_at_once(caplog: pytest.LogCaptureFixture) -> None:
    async def boom() -> None:
        [].pop()  # the demo's fan loop died like this, and nobody heard

    before = tasks.FAILURES["test-boom"]
    with caplog.at_level(logging.ERROR, logger="sync.tasks"):
        t = tasks.spawn(boom(), "test-boom")
        await asyncio.wait([t])
        await asyncio.sleep(0)  # done-callbacks run on the next loop turn
    assert tasks.FAILURES["test-boom"] == before + 1
    record = next(r for r in caplog.records if "test-boom" in r.getMessage())
    assert "IndexError" in record.getMessage() and record.exc_info is not None


async def test_cancellation_and_a_clean_end_are_not_failures() -> None:
    before = tasks.failures_total()
    done = tasks.spawn(asyncio.sleep(0), "test-clean")
    stuck = tasks.spawn(asyncio.sleep(3600), "test-cancelled")
    await done
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
    await asyncio.sleep(0)
    assert tasks.failures_total() == before
