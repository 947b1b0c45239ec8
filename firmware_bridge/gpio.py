"""GPIO backend: a turnstile wired straight to the Raspberry Pi's header, through gpiozero.

Wiring (pin numbers come from config; see ``docs/hardware.md``):

* ``relay_in`` / ``relay_out``: release relay per direction (``relay_out`` optional).
  ``relay_mode`` ``pulse`` energises it for ``pulse_s`` (mechanisms that latch open for one
  turn); ``hold`` keeps it energised until the passage or the timeout.
* ``sensor_in`` / ``sensor_out``: passage sensor per direction, to ground with the internal
  pull-up. ``sensor_kind`` ``rotation`` counts the arm's rotation switch closing; ``beam``
  counts a light beam broken for at least ``debounce_s`` and then cleared. Edges closer than
  ``debounce_s`` are contact bounce and ignored (debounced here, against the injected clock,
  so it is the same on every pin driver and testable with ``MockFactory``).
* ``fire_contact``: the fire panel's *normally-closed* dry contact, to ground with the pull-up.
  Open (or a cut wire) = alarm: free egress, latched until reset.
* ``led_green``, ``led_red``, ``buzzer`` (all optional), ``manual_release`` (staff button,
  optional), ``tamper`` (cabinet switch, optional).

gpiozero calls its callbacks on its own threads; they cross into asyncio only through
:meth:`TurnstileBase._from_thread`. Timed actions (relay pulse, beeps) run as asyncio tasks,
so they follow the event loop and leave no threads behind.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from gpiozero import LED, Buzzer, DigitalInputDevice, DigitalOutputDevice, GPIOZeroError

from firmware_bridge.base import Indicator, TurnstileBase
from firmware_bridge.config import (
    GPIO_PINS,
    GpioTurnstileConfig,
    TurnstileConfigError,
    turnstile_settings,
)
from tickets.model import Direction

log = logging.getLogger(__name__)


class GpioTurnstile(TurnstileBase):
    """Turnstile on GPIO pins. Build it with :func:`firmware_bridge.factory.open_turnstile`."""

    def __init__(
        self,
        config: GpioTurnstileConfig | Mapping[str, Any],
        *,
        clock: Callable[[], float] = time.monotonic,
        pin_factory: Any = None,
    ) -> None:
        super().__init__(clock=clock)
        settings = turnstile_settings(config)
        if not isinstance(settings, GpioTurnstileConfig):
            raise TurnstileConfigError([("backend", f"GpioTurnstile needs backend gpio, not {settings.backend}")])
        self.settings = settings
        self.relay_mode = settings.relay_mode
        self.pulse_s = settings.pulse_s
        self.debounce_s = settings.debounce_s
        self.beep_s = settings.beep_s
        self.blink_s = settings.blink_s
        self.sensor_kind = settings.sensor_kind
        self.manual_direction = Direction(settings.manual_release_direction)
        relay_active_high = settings.relay_active_high
        sensor_pull_up = settings.sensor_active_low
        pins: dict[str, int | str | None] = {k: getattr(settings, k) for k in GPIO_PINS}
        self._devices: list[Any] = []
        try:
            def out(key: str) -> DigitalOutputDevice | None:
                if pins[key] is None:
                    return None
                dev = DigitalOutputDevice(pins[key], active_high=relay_active_high,
                                          initial_value=False, pin_factory=pin_factory)
                self._devices.append(dev)
                return dev

            def inp(key: str, pull_up: bool = True) -> DigitalInputDevice | None:
                if pins[key] is None:
                    return None
                dev = DigitalInputDevice(pins[key], pull_up=pull_up, pin_factory=pin_factory)
                self._devices.append(dev)
                return dev

            self.relays: dict[Direction, DigitalOutputDevice] = {}
            for d, key in ((Direction.IN, "relay_in"), (Direction.OUT, "relay_out")):
                dev = out(key)
                if dev is not None:
                    self.relays[d] = dev
            self.sensors: dict[Direction, DigitalInputDevice] = {}
            for d, key in ((Direction.IN, "sensor_in"), (Direction.OUT, "sensor_out")):
                dev = inp(key, sensor_pull_up)
                if dev is not None:
                    self.sensors[d] = dev
            self.fire = inp("fire_contact")
            self.manual = inp("manual_release")
            self.tamper_switch = inp("tamper")
            self.led_green = self._make(LED, pins["led_green"], pin_factory)
            self.led_red = self._make(LED, pins["led_red"], pin_factory)
            self.buzzer = self._make(Buzzer, pins["buzzer"], pin_factory)
        except GPIOZeroError as exc:
            self._close_devices()
            raise TurnstileConfigError([("gpio", f"cannot claim the configured pins: {exc}")]) from exc
        self._last_edge: dict[object, float] = {}
        self._beam_broken_at: dict[Direction, float] = {}
        self._pulse_task: asyncio.Task[None] | None = None
        self._effect_task: asyncio.Task[None] | None = None

    def _make(self, cls: Any, pin: int | str | None, pin_factory: Any) -> Any:
        if pin is None:
            return None
        dev = cls(pin, pin_factory=pin_factory)
        self._devices.append(dev)
        return dev

    def _close_devices(self) -> None:
        for dev in self._devices:
            try:
                dev.close()
            except Exception:  # closing must never mask the error that brought us here
                log.exception("closing %r", dev)
        self._devices.clear()

    # -- lifecycle ------------------------------------------------------------------------
    async def _hw_start(self) -> None:
        for d, sensor in self.sensors.items():
            sensor.when_activated = self._edge_callback(self._sensor_edge, d, True)
            sensor.when_deactivated = self._edge_callback(self._sensor_edge, d, False)
        if self.fire is not None:
            # pull-up + NC contact to ground: active (low) = closed = normal.
            self.fire.when_activated = self._edge_callback(self._fire_edge, False)
            self.fire.when_deactivated = self._edge_callback(self._fire_edge, True)
            if not self.fire.is_active:
                self._on_fire_contact(True)
        if self.manual is not None:
            self.manual.when_activated = self._edge_callback(self._manual_edge)
        if self.tamper_switch is not None:
            self.tamper_switch.when_activated = self._edge_callback(self._tamper_edge)

    async def _hw_stop(self) -> None:
        tasks = [t for t in (self._pulse_task, self._effect_task) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not self._emergency:  # a stopping agent must not trap people during an alarm
            for relay in self.relays.values():
                relay.off()
        for dev in (self.led_green, self.led_red, self.buzzer):
            if dev is not None:
                dev.off()
        self._close_devices()

    def _edge_callback(self, handler: Callable[..., None], *args: object) -> Callable[[], None]:
        """Wrap ``handler`` for gpiozero's thread: stamp the edge time there, run it on the loop."""
        def callback() -> None:
            self._from_thread(handler, self._clock(), *args)
        return callback

    # -- sensors (on the loop thread) -----------------------------------------------------
    def _debounced(self, key: object, at: float) -> bool:
        last = self._last_edge.get(key)
        if last is not None and at - last < self.debounce_s:
            return False
        self._last_edge[key] = at
        return True

    def _sensor_edge(self, at: float, direction: Direction, active: bool) -> None:
        if len(self.sensors) == 1 and self._armed is not None:
            direction = self._armed  # one sensor cannot tell the direction; trust the unlock
        if self.sensor_kind == "rotation":
            if active and self._debounced(direction, at):
                self._on_passage(direction, at=at)
            return
        if active:  # beam broken
            self._beam_broken_at.setdefault(direction, at)
            return
        broken_at = self._beam_broken_at.pop(direction, None)
        if broken_at is not None and at - broken_at >= self.debounce_s:
            self._on_passage(direction, at=at)

    def _fire_edge(self, at: float, contact_open: bool) -> None:
        self._on_fire_contact(contact_open)

    def _manual_edge(self, at: float) -> None:
        if self._debounced("manual", at):
            self._on_manual_release(self.manual_direction)

    def _tamper_edge(self, at: float) -> None:
        if self._debounced("tamper", at):
            self._on_tamper("cabinet_switch")

    # -- actuators ------------------------------------------------------------------------
    async def _hw_release(self, direction: Direction) -> bool:
        relay = self.relays.get(direction)
        if relay is None:
            log.error("no relay wired for direction %s", direction)
            return False
        await self._cancel_pulse()
        relay.on()
        if self.relay_mode == "pulse":
            self._pulse_task = asyncio.create_task(self._pulse_off(relay))
        return True

    async def _cancel_pulse(self) -> None:
        await _cancel(self._pulse_task)
        self._pulse_task = None

    async def _pulse_off(self, relay: DigitalOutputDevice) -> None:
        # No ``finally``: a cancelled pulse is one being replaced or overridden (new unlock,
        # lock, emergency), and whoever cancelled it sets the relay.
        await asyncio.sleep(self.pulse_s)
        if not self._emergency:
            relay.off()

    async def _hw_lock(self) -> bool:
        await self._cancel_pulse()
        for relay in self.relays.values():
            relay.off()
        return True

    def _hw_passed(self) -> None:
        if self.relay_mode == "hold":
            for relay in self.relays.values():
                relay.off()

    async def _hw_emergency(self, on: bool) -> bool:
        await self._cancel_pulse()
        for relay in self.relays.values():
            if on:
                relay.on()
            else:
                relay.off()
        return True

    async def _hw_indicate(self, signal: Indicator, text: str) -> None:
        # Let the previous effect finish its clean-up first, or it would switch off what
        # we are about to switch on.
        await _cancel(self._effect_task)
        self._effect_task = None
        green, red = self.led_green, self.led_red
        for led in (green, red):
            if led is not None:
                led.off()
        if self.buzzer is not None:
            self.buzzer.off()
        if signal is Indicator.GREEN:
            if green is not None:
                green.on()
            self._effect_task = asyncio.create_task(self._beeps(1, self.beep_s))
        elif signal is Indicator.RED:
            if red is not None:
                red.on()
            self._effect_task = asyncio.create_task(self._beeps(2, self.beep_s))
        elif signal in (Indicator.FAULT, Indicator.EMERGENCY):
            leds = [red] if signal is Indicator.FAULT else [green, red]
            self._effect_task = asyncio.create_task(
                self._blink([led for led in leds if led is not None]))
        if text:
            log.info("display: %s", text)  # no display on the bare GPIO lane; the staff screen shows it

    async def _beeps(self, count: int, length: float) -> None:
        buzzer = self.buzzer
        if buzzer is None:
            return
        try:
            for i in range(count):
                buzzer.on()
                await asyncio.sleep(length)
                buzzer.off()
                if i + 1 < count:
                    await asyncio.sleep(length)
        finally:
            buzzer.off()

    async def _blink(self, leds: list[LED]) -> None:
        try:
            while True:
                for led in leds:
                    led.on()
                await asyncio.sleep(self.blink_s)
                for led in leds:
                    led.off()
                await asyncio.sleep(self.blink_s)
        finally:
            for led in leds:
                led.off()


async def _cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait until its ``finally`` blocks have run."""
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
