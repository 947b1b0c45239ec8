"""A simulated turnstile: the shared lane logic with a recording mechanism.

Every actuator action is appended to :attr:`SimTurnstile.actions` as ``(time, name, *args)``
so tests (the gate agent's too) assert on sequences, e.g.
``[(t0, "release", "in"), (t1, "lock")]``. Test hooks play the fan and the building:
:meth:`walk_through`, :meth:`force`, :meth:`fire_alarm`, :meth:`tamper`,
:meth:`press_manual_release`, :meth:`fail` and :meth:`recover`.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from firmware_bridge.base import Indicator, TurnstileBase
from tickets.model import Direction


class SimTurnstile(TurnstileBase):
    """In-memory turnstile for tests, demos and a gate without hardware."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock=clock)
        self.actions: list[tuple[Any, ...]] = []
        self.released: Direction | None = None
        self.free_egress = False
        self.indicator: tuple[Indicator, str] = (Indicator.IDLE, "")
        self.started = False

    def _record(self, name: str, *args: object) -> None:
        self.actions.append((self._clock(), name, *args))

    def action_names(self) -> list[str]:
        """Just the names of the actions so far, in order (handy in assertions)."""
        return [a[1] for a in self.actions]

    # -- hooks ----------------------------------------------------------------------------
    async def _hw_start(self) -> None:
        self.started = True
        self._record("start")

    async def _hw_stop(self) -> None:
        self.started = False
        self._record("stop")

    async def _hw_release(self, direction: Direction) -> bool:
        if self._faulted:
            self._record("release_failed", direction.value)
            return False
        self.released = direction
        self._record("release", direction.value)
        return True

    async def _hw_lock(self) -> bool:
        self.released = None
        self._record("lock")
        return True

    def _hw_passed(self) -> None:
        self.released = None
        self._record("lock")

    async def _hw_indicate(self, signal: Indicator, text: str) -> None:
        self.indicator = (signal, text)
        self._record("indicate", signal.value, text)

    async def _hw_emergency(self, on: bool) -> bool:
        self.free_egress = on
        if not on:
            self.released = None
        self._record("free_egress", on)
        return True

    # -- test hooks: the outside world ----------------------------------------------------
    def walk_through(self, direction: Direction = Direction.IN) -> None:
        """A person passes in ``direction`` (the sensor fires). Without an unlock in that
        direction this is a forced passage, just as the real sensor would report it."""
        self._on_passage(Direction(direction))

    def force(self, direction: Direction = Direction.IN) -> None:
        """Someone pushes the locked arm through (or tailgates)."""
        self._on_passage(Direction(direction), authorised=False, detail="forced")

    def fire_alarm(self, on: bool) -> None:
        """The fire-alarm contact opens (``on``) or closes again."""
        self._on_fire_contact(on)

    def tamper(self, detail: str = "cabinet_open") -> None:
        self._on_tamper(detail)

    def press_manual_release(self, direction: Direction = Direction.IN) -> None:
        self._on_manual_release(Direction(direction))

    def fail(self, detail: str = "mechanism_fault") -> None:
        """The mechanism stops working (e.g. the motor jams)."""
        self._on_fault(detail)

    def recover(self, detail: str = "") -> None:
        self._on_recovered(detail)
