"""The GPIO backend through gpiozero's own MockFactory: relay, LED and buzzer pin sequences
with their times, sensor debounce against the injected clock, and the fire contact."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from firmware_bridge.base import Indicator, TurnstileEvent
from firmware_bridge.config import TurnstileConfigError as ConfigError
from firmware_bridge.factory import open_turnstile
from firmware_bridge.gpio import GpioTurnstile
from tests.firmware_bridge.conftest import UNIT, FakeClock
from tickets.model import Direction

RELAY_IN, RELAY_OUT, SENSOR_IN, SENSOR_OUT = 17, 27, 22, 23
FIRE, GREEN, RED, BUZZER, MANUAL, TAMPER = 24, 5, 6, 13, 26, 19
#: timing tolerance for pin changes driven by the event loop on a shared machine
TOL = 2 * UNIT


def config(**over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "backend": "gpio", "relay_in": RELAY_IN, "relay_out": RELAY_OUT,
        "sensor_in": SENSOR_IN, "sensor_out": SENSOR_OUT, "fire_contact": FIRE,
        "led_green": GREEN, "led_red": RED, "buzzer": BUZZER, "manual_release": MANUAL,
        "tamper": TAMPER, "relay_mode": "pulse", "pulse_s": 4 * UNIT, "beep_s": 2 * UNIT,
        "debounce_s": 0.05, "blink_s": 2 * UNIT,
    }
    cfg.update(over)
    return cfg


@pytest.fixture
def factory() -> MockFactory:
    return MockFactory()


def lane(factory: MockFactory, clock: Callable[[], float] = time.monotonic, **over: Any) -> GpioTurnstile:
    t = open_turnstile(config(**over), clock=clock, pin_factory=factory)
    assert isinstance(t, GpioTurnstile)
    factory.pin(FIRE).drive_low()  # the NC fire contact is closed: all is well
    for pin in (RELAY_IN, RELAY_OUT, GREEN, RED, BUZZER):
        factory.pin(pin).clear_states()
    return t


def states(factory: MockFactory, pin: int) -> list[bool]:
    return [s.state for s in factory.pin(pin).states]


def durations(factory: MockFactory, pin: int) -> list[float]:
    """How long each recorded state lasted (the last one is still going: not listed)."""
    st = factory.pin(pin).states
    return [st[i + 1].timestamp for i in range(len(st) - 1)]


async def wait_until(cond: Callable[[], bool], within: float = 40 * UNIT) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(UNIT / 10)


async def next_event(stream, within: float = 20 * UNIT) -> TurnstileEvent:
    return await asyncio.wait_for(anext(stream), within)


def press(factory: MockFactory, pin: int) -> None:
    """Close a switch wired to ground (the inputs use the internal pull-up)."""
    factory.pin(pin).drive_low()


def release(factory: MockFactory, pin: int) -> None:
    factory.pin(pin).drive_high()


async def test_admit_pulses_the_in_relay_shows_green_and_confirms_passage(factory: MockFactory) -> None:
    t = lane(factory)
    async with t:
        await t.indicate(Indicator.GREEN, "Welcome")
        await t.unlock(Direction.IN)
        assert factory.pin(RELAY_IN).state
        await wait_until(lambda: not factory.pin(RELAY_IN).state and not factory.pin(BUZZER).state)
        press(factory, SENSOR_IN)
        assert await t.passage(timeout=20 * UNIT) is True
    assert states(factory, RELAY_IN) == [False, True, False]
    assert durations(factory, RELAY_IN)[1] == pytest.approx(4 * UNIT, abs=TOL)
    assert states(factory, RELAY_OUT) == [False]
    assert states(factory, GREEN) == [False, True, False]  # on, then off when the lane closed
    assert states(factory, RED) == [False]
    assert states(factory, BUZZER) == [False, True, False]
    assert durations(factory, BUZZER)[1] == pytest.approx(2 * UNIT, abs=TOL)
    assert t.counters.as_dict() == {"admitted": 1, "passed": 1, "not_passed": 0, "forced": 0}


async def test_hold_mode_keeps_the_relay_until_the_passage(factory: MockFactory) -> None:
    t = lane(factory, relay_mode="hold")
    async with t:
        await t.unlock(Direction.OUT)
        waiting = asyncio.create_task(t.passage(timeout=40 * UNIT))
        await asyncio.sleep(3 * UNIT)  # the fan takes a while to walk through
        assert factory.pin(RELAY_OUT).state, "hold mode releases until the passage"
        press(factory, SENSOR_OUT)
        assert await waiting is True
        assert not factory.pin(RELAY_OUT).state
    assert states(factory, RELAY_OUT) == [False, True, False]
    assert durations(factory, RELAY_OUT)[1] == pytest.approx(3 * UNIT, abs=TOL)


async def test_no_passage_relocks_at_the_timeout(factory: MockFactory) -> None:
    t = lane(factory, relay_mode="hold")
    async with t:
        await t.unlock(Direction.IN)
        assert await t.passage(timeout=3 * UNIT) is False
        assert not factory.pin(RELAY_IN).state
    assert states(factory, RELAY_IN) == [False, True, False]
    assert durations(factory, RELAY_IN)[1] == pytest.approx(3 * UNIT, abs=TOL)
    assert t.counters.as_dict() == {"admitted": 1, "passed": 0, "not_passed": 1, "forced": 0}


async def test_refusal_shows_red_with_two_beeps_and_never_touches_the_relays(factory: MockFactory) -> None:
    t = lane(factory)
    async with t:
        await t.indicate(Indicator.RED, "Already used")
        await wait_until(lambda: len(factory.pin(BUZZER).states) == 5)
        assert factory.pin(RED).state and not factory.pin(GREEN).state
    assert states(factory, BUZZER) == [False, True, False, True, False]
    for d in durations(factory, BUZZER)[1:]:
        assert d == pytest.approx(2 * UNIT, abs=TOL)
    assert states(factory, RELAY_IN) == [False] and states(factory, RELAY_OUT) == [False]


async def test_rotation_without_unlock_is_forced_and_bounces_are_ignored(factory: MockFactory) -> None:
    clock = FakeClock()
    t = lane(factory, clock=clock)
    async with t:
        events = t.events()
        press(factory, SENSOR_IN)
        release(factory, SENSOR_IN)
        clock.advance(0.01)
        press(factory, SENSOR_IN)  # contact bounce 10 ms later: same rotation
        release(factory, SENSOR_IN)
        clock.advance(1.0)
        press(factory, SENSOR_IN)  # a second person a second later
        first, second = await next_event(events), await next_event(events)
    assert [(e.kind, e.direction, e.at) for e in (first, second)] == [
        ("forced", Direction.IN, 1000.0), ("forced", Direction.IN, 1001.01)]
    assert t.counters.forced == 2


async def test_beam_counts_a_break_long_enough_and_then_cleared(factory: MockFactory) -> None:
    clock = FakeClock()
    t = lane(factory, clock=clock, sensor_kind="beam")
    async with t:
        await t.unlock(Direction.IN)
        press(factory, SENSOR_IN)  # a 10 ms glitch: not a person
        clock.advance(0.01)
        release(factory, SENSOR_IN)
        press(factory, SENSOR_IN)  # a person: the beam is broken for 0.4 s
        clock.advance(0.4)
        release(factory, SENSOR_IN)
        assert await t.passage(timeout=20 * UNIT) is True
    assert t.counters.as_dict() == {"admitted": 1, "passed": 1, "not_passed": 0, "forced": 0}


async def test_fire_contact_opening_holds_both_relays_until_reset(factory: MockFactory) -> None:
    t = lane(factory)
    async with t:
        events = t.events()
        release(factory, FIRE)  # the NC contact opens
        ev = await next_event(events)
        assert (ev.kind, ev.detail) == ("alarm", "fire_contact")
        await wait_until(lambda: factory.pin(RELAY_IN).state and factory.pin(RELAY_OUT).state)
        press(factory, FIRE)  # the panel is silenced: still free egress
        await asyncio.sleep(10 * UNIT)  # longer than a relay pulse: nothing may drop
        assert factory.pin(RELAY_IN).state and factory.pin(RELAY_OUT).state
        assert states(factory, RELAY_IN) == [False, True]
        press(factory, SENSOR_OUT)
        assert (await next_event(events)).detail == "emergency_egress"
        await t.set_emergency(False, "reset")
        assert (await next_event(events)).kind == "alarm_cleared"
        assert not factory.pin(RELAY_IN).state and not factory.pin(RELAY_OUT).state
    assert t.counters.forced == 0


async def test_fire_contact_already_open_at_start_is_an_alarm(factory: MockFactory) -> None:
    t = open_turnstile(config(), pin_factory=factory)  # contact never closed: a cut wire
    async with t:
        ev = await next_event(t.events())
        assert ev.kind == "alarm"
        await wait_until(lambda: factory.pin(RELAY_IN).state and factory.pin(RELAY_OUT).state)


async def test_emergency_blinks_both_leds(factory: MockFactory) -> None:
    t = lane(factory)
    async with t:
        await t.set_emergency(True, "control_room")
        await wait_until(lambda: len(factory.pin(GREEN).states) >= 4)
    assert states(factory, GREEN)[:4] == [False, True, False, True]
    assert states(factory, RED)[:4] == [False, True, False, True]


async def test_manual_release_button_pulses_the_relay(factory: MockFactory) -> None:
    t = lane(factory, manual_release_direction="out")
    async with t:
        events = t.events()
        press(factory, MANUAL)
        ev = await next_event(events)
        assert (ev.kind, ev.direction) == ("manual_release", Direction.OUT)
        await wait_until(lambda: states(factory, RELAY_OUT) == [False, True, False])
        press(factory, SENSOR_OUT)
        ev = await next_event(events)
        assert (ev.kind, ev.detail) == ("passage", "manual_release")
    assert t.counters.forced == 0


async def test_tamper_switch_reports_tamper(factory: MockFactory) -> None:
    t = lane(factory)
    async with t:
        press(factory, TAMPER)
        assert (await next_event(t.events())).kind == "tamper"


async def test_pins_are_released_when_the_lane_stops(factory: MockFactory) -> None:
    async with lane(factory):
        pass
    again = lane(factory)  # would raise GPIOPinInUse if the pins were still claimed
    async with again:
        pass


@pytest.mark.parametrize(("over", "key"), [
    ({"relay_in": None}, "relay_in"),
    ({"sensor_in": None}, "sensor_in"),
    ({"relay_mode": "toggle"}, "relay_mode"),
    ({"pulse_s": -1}, "pulse_s"),
    ({"led_red": [6]}, "led_red"),
    ({"led_red": RELAY_IN}, "turnstile"),  # two devices on one pin: refused before gpiozero claims any
    ({"relay_pin": RELAY_IN}, "relay_pin"),  # the old example's name: unknown, not silently ignored
    ({"led_red": 99}, "led_red"),
])
def test_bad_gpio_config_is_a_config_error(factory: MockFactory, over: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_turnstile(config(**over), pin_factory=factory)
    assert info.value.key == key


async def test_a_new_signal_is_not_undone_by_the_previous_effect(factory: MockFactory) -> None:
    t = lane(factory)
    async with t:
        await t.indicate(Indicator.FAULT, "Out of order")  # blinks red
        await wait_until(lambda: factory.pin(RED).state)
        await t.indicate(Indicator.RED, "Refused")
        await asyncio.sleep(4 * UNIT)  # longer than a blink phase
        assert factory.pin(RED).state, "the old blink must not switch the new red off"


async def test_a_second_unlock_restarts_the_pulse(factory: MockFactory) -> None:
    t = lane(factory)
    async with t:
        await t.unlock(Direction.IN)
        await asyncio.sleep(2 * UNIT)
        await t.unlock(Direction.IN)  # the fan scanned again mid-pulse
        await wait_until(lambda: not factory.pin(RELAY_IN).state)
    assert states(factory, RELAY_IN) == [False, True, False]
    assert durations(factory, RELAY_IN)[1] == pytest.approx(6 * UNIT, abs=TOL)
