"""Retry schedules: the one backoff every reconnecting part uses (gates to the hub, scanners
to their device), and a fixed schedule for tests and simulations.

Pure generators — no sleeping here; the caller waits. Injected wherever something retries
(``reconnect_delays=``), so tests run without real waits.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterator


def backoff(initial: float = 0.5, factor: float = 2.0, cap: float = 30.0, *, jitter: bool = True,
            rng: Callable[[], float] = random.random) -> Iterator[float]:
    """Exponential delays ``initial·factorⁿ`` capped at ``cap``, infinite.

    With ``jitter`` (full jitter) the n-th delay is uniform in [0, that]: 200 gates that lost
    the hub at the same instant spread over the window instead of hitting a restarted hub at
    once. Without it the schedule is exact (a device reconnect: nothing to spread).
    """
    ceiling = initial
    while True:
        yield rng() * ceiling if jitter else ceiling
        ceiling = min(cap, ceiling * factor)


def fixed(delay: float) -> Iterator[float]:
    """The same delay every time (tests and simulations)."""
    while True:
        yield delay
