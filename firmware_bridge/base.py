"""The one async interface the gate agent uses to drive a turnstile, and the logic every
backend shares: passage confirmation, forced-passage detection, latched emergency, lane
counters and the event stream.

A backend (:mod:`~firmware_bridge.gpio`, :mod:`~firmware_bridge.serial_backend`,
:mod:`~firmware_bridge.sim`) subclasses :class:`TurnstileBase` and supplies only the ``_hw_*``
actuator hooks; it reports what its sensors saw by calling the ``_on_*`` methods *on the event
loop's thread*. So the rules live in one place and are the same on every backend.
"""
from __future__ import annotations

import abc
import asyncio
import collections
import enum
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from firmware_bridge.config import DEFAULT_PASSAGE_TIMEOUT_S
from tickets.model import Direction

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_PASSAGE_TIMEOUT_S"]  # re-exported: defined with the settings

EVENT_KINDS = frozenset({
    "passage", "forced", "alarm", "alarm_cleared", "fault", "recovered", "tamper",
    "manual_release",
})


class Indicator(enum.StrEnum):
    """What the lane's lights, buzzer and optional display should show."""

    IDLE = "idle"
    GREEN = "green"
    RED = "red"
    FAULT = "fault"
    EMERGENCY = "emergency"


@dataclass(frozen=True, slots=True)
class TurnstileEvent:
    """Something the turnstile reports on its own (not an answer to a command).

    ``kind`` is one of :data:`EVENT_KINDS`; ``direction`` is set for passages, forced passages
    and manual releases; ``detail`` is a short machine-friendly text (e.g. the alarm cause);
    ``at`` is the backend's clock (monotonic seconds by default).
    """

    kind: str
    direction: Direction | None = None
    detail: str = ""
    at: float = 0.0


@dataclass(slots=True)
class LaneCounters:
    """What the lane did since start: exposed on the gate's status endpoint."""

    admitted: int = 0  # unlocks for an admitted fan
    passed: int = 0  # unlocks followed by a confirmed passage
    not_passed: int = 0  # unlocks that timed out (the ticket stays valid)
    forced: int = 0  # passages without an unlock (tailgating, forcing the arm)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@runtime_checkable
class Turnstile(Protocol):
    """The interface the gate agent programs against, whatever the hardware."""

    counters: LaneCounters
    passage_timeout_s: float

    @property
    def emergency(self) -> bool: ...

    @property
    def faulted(self) -> bool: ...

    async def __aenter__(self) -> Turnstile: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def unlock(self, direction: Direction) -> None: ...

    async def passage(self, timeout: float | None = None) -> bool: ...

    async def lock(self) -> None: ...

    async def indicate(self, signal: Indicator, text: str = "") -> None: ...

    async def set_emergency(self, on: bool, cause: str) -> None: ...

    def events(self) -> AsyncIterator[TurnstileEvent]: ...


_CLOSED = object()


class TurnstileBase(abc.ABC):
    """Shared behaviour of every backend (see the module docstring).

    Rules it enforces:

    * ``unlock`` counts an admit and arms one passage in that direction; ``passage(timeout)``
      returns True once the sensor confirms it, else relocks, counts ``not_passed`` and
      returns False (the caller journals "not passed"; the ticket stays valid).
    * A passage that no unlock armed is a ``forced`` event (and counter).
    * Emergency (fire contact opened, or :meth:`set_emergency`) frees the lane for egress and
      is *latched*: only ``set_emergency(False, ...)`` ends it, and not while the fire
      contact is still open.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.counters = LaneCounters()
        self.passage_timeout_s = DEFAULT_PASSAGE_TIMEOUT_S
        self._loop: asyncio.AbstractEventLoop | None = None
        self._armed: Direction | None = None
        self._manual = False  # the armed passage came from the staff button, not an admit
        self._waiter: asyncio.Future[bool] | None = None
        self._emergency = False
        self._emergency_cause = ""
        self._fire_open = False
        self._faulted = False
        self._subscribers: list[asyncio.Queue[object]] = []
        self._backlog: collections.deque[TurnstileEvent] = collections.deque(maxlen=256)
        self._running = False
        self._tasks: set[asyncio.Future[object]] = set()

    # -- lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> TurnstileBase:
        self._loop = asyncio.get_running_loop()
        self._running = True
        await self._hw_start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._running = False
        self._resolve(False)
        for task in list(self._tasks):
            task.cancel()
        try:
            await self._hw_stop()
        finally:
            for q in self._subscribers:
                q.put_nowait(_CLOSED)
            self._subscribers.clear()

    # -- the interface --------------------------------------------------------------------
    @property
    def emergency(self) -> bool:
        """True while the lane is in (latched) free egress."""
        return self._emergency

    @property
    def faulted(self) -> bool:
        """True while the backend reports the mechanism or its controller unavailable."""
        return self._faulted

    async def unlock(self, direction: Direction) -> None:
        """Release the arm for one passage in ``direction`` and count an admit."""
        direction = Direction(direction)
        if self._waiter is not None and not self._waiter.done():
            log.warning("unlock %s while a passage was still awaited: the earlier one lapses", direction)
            self._resolve(False)
        self.counters.admitted += 1
        self._armed = direction
        self._manual = False
        self._waiter = asyncio.get_running_loop().create_future()
        if self._emergency:
            return  # already free for egress; nothing to move
        ok = await self._hw_release(direction)
        if not ok:
            log.warning("release %s failed: the passage will not be confirmed", direction)
            self._resolve(False)

    async def passage(self, timeout: float | None = None) -> bool:
        """Wait for the sensor to confirm the passage armed by :meth:`unlock`.

        True when it came within ``timeout`` (default: :attr:`passage_timeout_s`, from the
        config key ``passage_timeout_s``, 8 s unless set). Otherwise the lane relocks, ``not_passed``
        is counted and False is returned.
        """
        waiter = self._waiter
        if waiter is None:
            log.warning("passage() without a preceding unlock()")
            return False
        try:
            passed = await asyncio.wait_for(
                asyncio.shield(waiter), self.passage_timeout_s if timeout is None else timeout)
        except TimeoutError:
            passed = False
        if waiter is self._waiter:
            self._waiter = None
        if not passed:
            self.counters.not_passed += 1
            self._armed = None
            await self._relock()
        return passed

    async def lock(self) -> None:
        """Lock the lane now; an awaited passage lapses. Ignored during free egress."""
        self._resolve(False)
        await self._relock()

    async def indicate(self, signal: Indicator, text: str = "") -> None:
        """Set lights/buzzer/display. During an emergency the EMERGENCY signal is kept."""
        signal = Indicator(signal)
        if self._emergency and signal is not Indicator.EMERGENCY:
            log.debug("indicate %s ignored during emergency", signal)
            return
        await self._hw_indicate(signal, text)

    async def set_emergency(self, on: bool, cause: str) -> None:
        """Enter (``on``) or reset free egress. A reset is refused while the fire contact
        is open; check :attr:`emergency` afterwards."""
        if on:
            await self._enter_emergency(cause)
            return
        if not self._emergency:
            return
        if self._fire_open:
            log.warning("emergency reset (%s) refused: the fire contact is still open", cause)
            return
        if not await self._hw_emergency(False):
            log.warning("emergency reset (%s) refused by the controller", cause)
            return
        self._emergency = False
        self._emergency_cause = ""
        await self._hw_indicate(Indicator.IDLE, "")
        self._emit("alarm_cleared", detail=cause)

    def events(self) -> AsyncIterator[TurnstileEvent]:
        """A new stream of events from now on (the first stream also gets any backlog
        from before it subscribed, so a fault at start-up is not lost)."""
        q: asyncio.Queue[object] = asyncio.Queue()
        if not self._subscribers:
            for ev in self._backlog:
                q.put_nowait(ev)
            self._backlog.clear()
        self._subscribers.append(q)
        return self._iterate(q)

    async def _iterate(self, q: asyncio.Queue[object]) -> AsyncIterator[TurnstileEvent]:
        try:
            while True:
                item = await q.get()
                if item is _CLOSED:
                    return
                assert isinstance(item, TurnstileEvent)
                yield item
        finally:
            if q in self._subscribers:
                self._subscribers.remove(q)

    # -- what backends report (call on the loop thread) -------------------------------------
    def _on_passage(
        self, direction: Direction, authorised: bool | None = None, detail: str = "",
        at: float | None = None,
    ) -> None:
        """The sensor saw the arm turn (or the beam break and clear) in ``direction``.

        ``authorised`` is the controller's own view where it has one (serial); the passage
        counts as confirmed only if we armed that direction *and* the hardware agrees.
        """
        if self._emergency:
            self._emit("passage", direction, detail or "emergency_egress", at)
            return
        if self._armed == direction and authorised is not False:
            self._armed = None
            if self._manual:  # staff let someone through: a passage, but not an admit's
                self._manual = False
                self._emit("passage", direction, detail or "manual_release", at)
            else:
                self.counters.passed += 1
                self._emit("passage", direction, detail, at)
                self._resolve(True)
            self._hw_passed()
            return
        self.counters.forced += 1
        self._emit("forced", direction,
                   detail or ("wrong_direction" if self._armed else "not_unlocked"), at)

    def _on_fire_contact(self, contact_open: bool) -> None:
        """The normally-closed fire-alarm contact changed. Opening latches free egress."""
        if contact_open == self._fire_open:
            return
        self._fire_open = contact_open
        if contact_open:
            self._spawn(self._enter_emergency("fire_contact"))
        else:
            log.info("fire contact closed again; emergency held until reset")

    def _on_manual_release(self, direction: Direction, release: bool = True) -> None:
        """Staff pressed the manual release: one passage is allowed without a ticket.
        ``release`` False when the hardware already released the arm on its own."""
        self._emit("manual_release", direction)
        if self._emergency:
            return
        self._resolve(False)
        self._armed = direction
        self._manual = True
        if release:
            self._spawn(self._hw_release(direction))

    def _on_tamper(self, detail: str = "") -> None:
        self._emit("tamper", detail=detail)

    def _on_fault(self, detail: str) -> None:
        """The mechanism or its controller is unavailable; an awaited passage lapses."""
        if self._faulted:
            return
        self._faulted = True
        self._resolve(False)
        self._emit("fault", detail=detail)

    def _on_recovered(self, detail: str = "") -> None:
        if not self._faulted:
            return
        self._faulted = False
        self._emit("recovered", detail=detail)

    def _from_thread(self, fn: Callable[..., object], *args: object) -> None:
        """The one place where a hardware library's thread crosses into asyncio."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed between the check and the call
            pass

    # -- hooks for backends ---------------------------------------------------------------
    async def _hw_start(self) -> None:
        """Open the hardware."""
        return None  # optional hook: nothing to do unless a backend needs it

    async def _hw_stop(self) -> None:
        """Release the hardware (leave the lane locked unless in emergency)."""
        return None  # optional hook: nothing to do unless a backend needs it

    # Every backend (sim, gpio, serial) implements these four; abc refuses one that does not.
    @abc.abstractmethod
    async def _hw_release(self, direction: Direction) -> bool:
        """Release the arm in ``direction``; False if the hardware could not."""

    @abc.abstractmethod
    async def _hw_lock(self) -> bool:
        """Lock the lane; False if the hardware could not."""

    @abc.abstractmethod
    async def _hw_indicate(self, signal: Indicator, text: str) -> None:
        """Show ``signal`` on the lights and buzzer (and ``text`` on a display, if fitted)."""

    @abc.abstractmethod
    async def _hw_emergency(self, on: bool) -> bool:
        """Hold (``on``) or end free egress; False if the hardware refused."""

    def _hw_passed(self) -> None:
        """A confirmed passage: relock what needs relocking (default: nothing)."""
        return None  # optional hook: nothing to do unless a backend needs it

    # -- internals ------------------------------------------------------------------------
    async def _enter_emergency(self, cause: str) -> None:
        if self._emergency:
            return
        self._emergency = True
        self._emergency_cause = cause
        self._resolve(False)
        self._armed = None
        self._emit("alarm", detail=cause)
        await self._hw_emergency(True)
        await self._hw_indicate(Indicator.EMERGENCY, "EMERGENCY")

    async def _relock(self) -> None:
        self._armed = None
        if self._emergency:
            return
        await self._hw_lock()

    def _resolve(self, passed: bool) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(passed)

    def _emit(
        self, kind: str, direction: Direction | None = None, detail: str = "",
        at: float | None = None,
    ) -> None:
        assert kind in EVENT_KINDS, kind
        event = TurnstileEvent(kind=kind, direction=direction, detail=detail,
                               at=self._clock() if at is None else at)
        log.info("turnstile event %s %s %s", kind, direction or "", detail)
        if self._subscribers:
            for q in self._subscribers:
                q.put_nowait(event)
        else:
            self._backlog.append(event)

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Future[object] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("turnstile task failed", exc_info=task.exception())
