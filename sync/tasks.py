"""Background tasks that never fail silently.

An ``asyncio`` task that raises keeps its exception to itself until someone awaits it; a
task nobody awaits (a fan-out flush, a passage wait, a feed loop) takes it to the garbage
collector, and at best a "Task exception was never retrieved" line appears long after. So
every background task in the hub, the gate and the demo is started with :func:`spawn` (or
handed to :func:`watch`): when it ends by an exception, the exception is logged at once
with its traceback and the task's name, and counted in :data:`FAILURES` — which the hub's
``/metrics`` and the gate's ``/status`` report. Cancellation is a normal end, not a failure.

Hand-written because the standard library has exactly the hook (``add_done_callback``) and
nothing that uses it for this; the whole of it is the callback below.
"""
from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: background task name → how many times a task of that name ended by an exception (this process)
FAILURES: collections.Counter[str] = collections.Counter()


def watch(task: asyncio.Task[T], what: str | None = None) -> asyncio.Task[T]:
    """Log and count ``task``'s exception when it ends by one; returns the task."""
    name = what or task.get_name()

    def done(t: asyncio.Task[T]) -> None:
        if t.cancelled():
            return
        exc = t.exception()  # retrieved here, so asyncio never reports it again later
        if exc is None:
            return
        FAILURES[name] += 1
        log.error("background task %s failed (%d so far): %r", name, FAILURES[name], exc,
                  exc_info=(type(exc), exc, exc.__traceback__))

    task.add_done_callback(done)
    return task


def spawn(coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
    """``asyncio.create_task(coro, name=name)``, watched (see :func:`watch`)."""
    return watch(asyncio.get_running_loop().create_task(coro, name=name), name)


def failures_total() -> int:
    return sum(FAILURES.values())
