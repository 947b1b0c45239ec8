from __future__ import annotations

import asyncio

import pytest

from firmware_bridge.base import Indicator, Turnstile, TurnstileEvent
from firmware_bridge.config import TurnstileConfigError as ConfigError
from firmware_bridge.factory import open_turnstile
from firmware_bridge.sim import SimTurnstile
from tests.firmware_bridge.conftest import UNIT, FakeClock
from tickets.model import Direction


async def next_event(stream, within: float = 20 * UNIT) -> TurnstileEvent:
    return await asyncio.wait_for(anext(stream), within)


def make() -> tuple[SimTurnstile, FakeClock]:
    clock = FakeClock()
    t = open_turnstile({"backend": "sim"}, clock=clock)
    assert isinstance(t, SimTurnstile)
    return t, clock


def test_sim_satisfies_the_turnstile_protocol() -> None:
    t, _ = make()
    assert isinstance(t, Turnstile)


async def test_admit_unlocks_and_passage_confirms_then_relocks() -> None:
    t, clock = make()
    async with t:
        events = t.events()
        await t.indicate(Indicator.GREEN, "Welcome")
        await t.unlock(Direction.IN)
        clock.advance(1.5)
        t.walk_through(Direction.IN)
        assert await t.passage(timeout=10 * UNIT) is True
        ev = await next_event(events)
    assert (ev.kind, ev.direction, ev.at) == ("passage", Direction.IN, 1001.5)
    assert t.actions[1:4] == [
        (1000.0, "indicate", "green", "Welcome"),
        (1000.0, "release", "in"),
        (1001.5, "lock"),
    ]
    assert t.counters.as_dict() == {"admitted": 1, "passed": 1, "not_passed": 0, "forced": 0}


async def test_passage_while_waiting_resolves_the_wait() -> None:
    t, _ = make()
    async with t:
        await t.unlock(Direction.OUT)
        waiting = asyncio.create_task(t.passage(timeout=20 * UNIT))
        await asyncio.sleep(0)
        t.walk_through(Direction.OUT)
        assert await waiting is True


async def test_no_passage_within_timeout_relocks_and_counts_not_passed() -> None:
    t, _ = make()
    async with t:
        await t.unlock(Direction.IN)
        assert await t.passage(timeout=UNIT) is False
    assert t.action_names() == ["start", "release", "lock", "stop"]
    assert t.counters.as_dict() == {"admitted": 1, "passed": 0, "not_passed": 1, "forced": 0}


async def test_passage_without_unlock_is_a_forced_event_not_a_pass() -> None:
    t, _ = make()
    async with t:
        events = t.events()
        t.walk_through(Direction.IN)
        ev = await next_event(events)
    assert (ev.kind, ev.direction, ev.detail) == ("forced", Direction.IN, "not_unlocked")
    assert t.counters.forced == 1 and t.counters.passed == 0


async def test_passage_in_the_other_direction_is_forced_and_does_not_confirm() -> None:
    t, _ = make()
    async with t:
        events = t.events()
        await t.unlock(Direction.IN)
        t.walk_through(Direction.OUT)
        assert (await next_event(events)).kind == "forced"
        assert await t.passage(timeout=UNIT) is False
    assert t.counters.as_dict() == {"admitted": 1, "passed": 0, "not_passed": 1, "forced": 1}


async def test_forcing_the_arm_after_an_unlock_is_still_forced() -> None:
    t, _ = make()
    async with t:
        await t.unlock(Direction.IN)
        t.force(Direction.IN)
        assert await t.passage(timeout=UNIT) is False
    assert t.counters.forced == 1 and t.counters.passed == 0


async def test_fire_contact_opening_frees_egress_and_holds_until_reset() -> None:
    t, _ = make()
    async with t:
        events = t.events()
        await t.unlock(Direction.IN)
        t.fire_alarm(True)
        ev = await next_event(events)
        assert (ev.kind, ev.detail) == ("alarm", "fire_contact")
        assert await t.passage(timeout=UNIT) is False  # the admit lapses, lane stays free
        assert t.free_egress and t.emergency
        t.fire_alarm(False)
        await t.lock()
        await t.indicate(Indicator.GREEN)
        assert t.free_egress and t.emergency, "closing the contact alone must not end free egress"
        assert t.indicator[0] is Indicator.EMERGENCY
        t.walk_through(Direction.OUT)
        assert (await next_event(events)).detail == "emergency_egress"
        await t.set_emergency(False, "reset by supervisor")
        ev = await next_event(events)
        assert (ev.kind, ev.detail) == ("alarm_cleared", "reset by supervisor")
    assert not t.free_egress and not t.emergency
    assert t.counters.forced == 0


async def test_emergency_reset_is_refused_while_fire_contact_is_open() -> None:
    t, _ = make()
    async with t:
        t.fire_alarm(True)
        await asyncio.sleep(0)
        await t.set_emergency(False, "reset")
        assert t.emergency and t.free_egress


async def test_commanded_emergency_frees_egress_and_shows_emergency() -> None:
    t, _ = make()
    async with t:
        events = t.events()
        await t.set_emergency(True, "control_room")
        ev = await next_event(events)
        assert (ev.kind, ev.detail) == ("alarm", "control_room")
        assert ("free_egress", True) in [a[1:] for a in t.actions]
        assert t.indicator == (Indicator.EMERGENCY, "EMERGENCY")


async def test_manual_release_allows_one_passage_without_a_ticket() -> None:
    t, _ = make()
    async with t:
        events = t.events()
        t.press_manual_release(Direction.IN)
        assert (await next_event(events)).kind == "manual_release"
        await asyncio.sleep(0)
        t.walk_through(Direction.IN)
        ev = await next_event(events)
        assert (ev.kind, ev.detail) == ("passage", "manual_release")
    assert t.counters.as_dict() == {"admitted": 0, "passed": 0, "not_passed": 0, "forced": 0}


async def test_events_before_the_first_subscriber_are_kept() -> None:
    t, _ = make()
    async with t:
        t.fail("jammed")
        t.recover("cleared")
        events = t.events()
        assert [(await next_event(events)).kind for _ in range(2)] == ["fault", "recovered"]


async def test_fault_makes_an_awaited_passage_lapse() -> None:
    t, _ = make()
    async with t:
        await t.unlock(Direction.IN)
        t.fail("jammed")
        assert await t.passage(timeout=20 * UNIT) is False


async def test_event_stream_ends_when_the_turnstile_stops() -> None:
    t, _ = make()
    async with t:
        events = t.events()
    assert [e async for e in events] == []


@pytest.mark.parametrize("config", [{}, {"backend": "nfc"}, {"backend": None}])
def test_unknown_backend_is_a_config_error(config: dict) -> None:
    with pytest.raises(ConfigError) as info:
        open_turnstile(config)
    assert info.value.key == "backend"


async def test_passage_timeout_defaults_to_the_configured_one() -> None:
    t = open_turnstile({"backend": "sim", "passage_timeout_s": UNIT})
    assert t.passage_timeout_s == UNIT
    assert open_turnstile({"backend": "sim"}).passage_timeout_s == 8.0
    async with t:
        await t.unlock(Direction.IN)
        assert await asyncio.wait_for(t.passage(), 40 * UNIT) is False


@pytest.mark.parametrize("value", [0, -1, "8", True])
def test_bad_passage_timeout_is_a_config_error(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        open_turnstile({"backend": "sim", "passage_timeout_s": value})
    assert info.value.key == "passage_timeout_s"
