"""The serial backend against the reference controller firmware running as a real process
behind a real pty pair: commands, events, lost bytes, corrupted frames, a reboot mid-session
and a controller that stops answering."""
from __future__ import annotations

import asyncio
import os
import time

import pytest

from firmware_bridge.base import Indicator, TurnstileEvent
from firmware_bridge.config import TurnstileConfigError as ConfigError
from firmware_bridge.factory import open_turnstile
from firmware_bridge.serial_backend import SerialTurnstile
from tests.firmware_bridge.conftest import UNIT
from tests.firmware_bridge.controller_process import ControllerProcess, bridge_config
from tickets.model import Direction


def bridge(port: str, **over: object) -> SerialTurnstile:
    t = open_turnstile(bridge_config(port, **over))
    assert isinstance(t, SerialTurnstile)
    return t


async def next_event(stream, within: float = 40 * UNIT) -> TurnstileEvent:
    return await asyncio.wait_for(anext(stream), within)


async def event_of(stream, kind: str, within: float = 60 * UNIT) -> TurnstileEvent:
    async def find() -> TurnstileEvent:
        async for ev in stream:
            if ev.kind == kind:
                return ev
        raise AssertionError(f"stream ended before a {kind} event")
    return await asyncio.wait_for(find(), within)


async def test_admit_releases_the_controller_and_its_rotation_confirms_passage(
        controller: ControllerProcess) -> None:
    async with bridge(controller.port) as t:
        assert t.link.firmware.startswith("gatehouse-ref")
        mark = controller.mark()
        await t.indicate(Indicator.GREEN, "Welcome, block C")
        await controller.mechanism("indicate", after=mark, signal="green", text="Welcome, block C")
        await t.unlock(Direction.IN)
        await controller.mechanism("release", after=mark, direction="in")
        await controller.send("rotate in")
        assert await t.passage(timeout=40 * UNIT) is True
        await controller.mechanism("lock", after=mark)
    assert t.counters.as_dict() == {"admitted": 1, "passed": 1, "not_passed": 0, "forced": 0}


async def test_no_passage_relocks_the_controller_and_counts_not_passed(
        controller: ControllerProcess) -> None:
    async with bridge(controller.port) as t:
        await t.unlock(Direction.OUT)
        mark = controller.mark()
        assert await t.passage(timeout=4 * UNIT) is False
        await controller.mechanism("lock", after=mark)
        state = await controller.send("state")
        assert state["released"] is None
    assert t.counters.as_dict() == {"admitted": 1, "passed": 0, "not_passed": 1, "forced": 0}


async def test_rotation_without_unlock_is_reported_forced(controller: ControllerProcess) -> None:
    async with bridge(controller.port) as t:
        events = t.events()
        await controller.send("rotate in")
        ev = await event_of(events, "forced")
        assert (ev.direction, ev.detail) == (Direction.IN, "forced")
    assert t.counters.forced == 1


async def test_fire_contact_at_the_controller_frees_egress_until_reset(
        controller: ControllerProcess) -> None:
    async with bridge(controller.port) as t:
        events = t.events()
        mark = controller.mark()
        opened = time.monotonic()
        await controller.send("fire open")
        await controller.mechanism("free_egress", after=mark, on=True)  # at once, by itself
        ev = await event_of(events, "alarm")
        assert time.monotonic() - opened < 1.0, "the gate must know within a second"
        assert ev.detail == "fire_contact" and t.emergency
        await t.set_emergency(False, "too early")
        assert t.emergency, "no reset while the contact is open"
        await controller.send("fire close")
        await asyncio.wait_for(_until(lambda: not t._fire_open), 40 * UNIT)
        assert t.emergency and (await controller.send("state"))["free_egress"] is True
        mark = controller.mark()
        await t.set_emergency(False, "supervisor reset")
        assert (await event_of(events, "alarm_cleared")).detail == "supervisor reset"
        await controller.mechanism("free_egress", after=mark, on=False)


async def test_commanded_emergency_reaches_the_controller(controller: ControllerProcess) -> None:
    async with bridge(controller.port) as t:
        mark = controller.mark()
        await t.set_emergency(True, "control_room")
        await controller.mechanism("free_egress", after=mark, on=True)
        await controller.mechanism("indicate", after=mark, signal="emergency")
        await controller.send("rotate out")
        assert (await event_of(t.events(), "passage")).detail == "emergency_egress"


async def test_lost_bytes_both_ways_are_repaired_by_retries(controller: ControllerProcess) -> None:
    async with bridge(controller.port) as t:
        events = t.events()
        await controller.send("drop_rx 4")  # the next UNLOCK loses bytes on the way in
        mark = controller.mark()
        await t.unlock(Direction.IN)
        await controller.mechanism("release", after=mark, direction="in")
        await controller.send("drop_tx 2")  # the PASSAGE event loses bytes on the way out
        await controller.send("rotate in")
        assert await t.passage(timeout=40 * UNIT) is True
        assert (await next_event(events)).kind == "passage"
        stats = t.stats()
    assert stats["retransmits_count"] >= 1
    assert stats["bad_crc_count"] + stats["bad_length_count"] >= 1
    assert t.counters.passed == 1 and t.counters.forced == 0


async def test_corrupted_frames_and_noise_are_counted_and_dropped(controller: ControllerProcess) -> None:
    async with bridge(controller.port) as t:
        await controller.send("garbage a5 03 01 30 00 00 00 00 ff 00 a5")  # bad CRC, noise
        await controller.send("corrupt_tx 2")
        await controller.send("rotate out")  # sent corrupted, retried intact
        ev = await event_of(t.events(), "forced")
        assert ev.direction == Direction.OUT
        await t.unlock(Direction.IN)
        await controller.send("rotate in")
        assert await t.passage(timeout=40 * UNIT) is True
        stats = t.stats()
        assert not t.faulted
    assert stats["bad_crc_count"] >= 2
    assert stats["dropped_bytes_count"] >= 1
    assert t.counters.forced == 1, "a retransmitted event is acted on once"


async def test_controller_reboot_mid_session_is_a_fault_then_state_is_restored(
        controller: ControllerProcess) -> None:
    async with bridge(controller.port) as t:
        events = t.events()
        await t.set_emergency(True, "control_room")
        await t.unlock(Direction.IN)
        waiting = asyncio.create_task(t.passage(timeout=200 * UNIT))
        mark = controller.mark()
        await controller.send("reboot")
        ev = await event_of(events, "fault")
        assert ev.detail == "controller_rebooted"
        assert await waiting is False, "an admit lapses across a reboot: the fan scans again"
        ev = await event_of(events, "recovered")
        assert ev.detail == "controller_rebooted"
        await controller.mechanism("free_egress", after=mark, on=True)  # emergency re-applied
        assert (await controller.send("state"))["free_egress"] is True
        assert not t.faulted


async def test_silent_controller_becomes_a_fault_and_recovers_when_it_answers(
        controller: ControllerProcess) -> None:
    async with bridge(controller.port) as t:
        events = t.events()
        await controller.send("hang")
        ev = await event_of(events, "fault")
        assert ev.detail == "controller_silent" and t.faulted
        await t.unlock(Direction.IN)  # the gate admitted anyway: it must not hang
        assert await t.passage(timeout=40 * UNIT) is False
        await controller.send("resume")
        ev = await event_of(events, "recovered")
        assert ev.detail == "controller_answering" and not t.faulted
        await t.unlock(Direction.IN)
        await controller.send("rotate in")
        assert await t.passage(timeout=40 * UNIT) is True
    assert t.counters.as_dict() == {"admitted": 2, "passed": 1, "not_passed": 1, "forced": 0}


async def test_no_controller_at_start_is_a_fault_not_a_crash() -> None:
    master, slave = os.openpty()  # a port with nothing behind it
    try:
        t = bridge(os.ttyname(slave), connect_timeout_s=4 * UNIT)
        async with t:
            ev = await next_event(t.events())
            assert (ev.kind, ev.detail) == ("fault", "controller_not_answering")
            await t.unlock(Direction.IN)
            assert await t.passage(timeout=4 * UNIT) is False
    finally:
        os.close(master)
        os.close(slave)


async def test_manual_release_at_the_controller_is_reported(controller: ControllerProcess) -> None:
    async with bridge(controller.port) as t:
        events = t.events()
        await controller.send("manual out")
        ev = await event_of(events, "manual_release")
        assert ev.direction == Direction.OUT
        await controller.send("rotate out")
        ev = await event_of(events, "passage")
        assert ev.detail == "manual_release"
        await controller.send("tamper door_open")
        assert (await event_of(events, "tamper")).detail == "door_open"
    assert t.counters.forced == 0


async def _until(cond) -> None:  # type: ignore[no-untyped-def]
    """Poll a condition the bridge exposes no event for (callers bound it with wait_for)."""
    while not cond():  # noqa: ASYNC110 - state set by the reader thread's pump, no event
        await asyncio.sleep(UNIT / 5)


async def test_cli_test_command_unlocks_once_and_reports_the_passage(
        controller: ControllerProcess) -> None:
    import json
    import sys

    from tests.firmware_bridge.controller_process import ROOT

    mark = controller.mark()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gatehouse", "turnstile", "test", "--backend", "serial",
        "--port", controller.port, "--timeout", str(100 * UNIT), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    await controller.mechanism("release", after=mark, direction="in")
    await controller.send("rotate in")
    out, err = await asyncio.wait_for(proc.communicate(), 200 * UNIT)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["passage_confirmed"] is True and result["admitted"] == 1 and result["passed"] == 1
    assert result["link_state"] == "ready" and "passage:in:" in result["events"]


async def test_cli_controller_command_serves_a_pty() -> None:
    import json
    import sys

    from tests.firmware_bridge.controller_process import ROOT

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gatehouse", "turnstile", "controller", "--pty", cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        while True:
            msg = json.loads(await asyncio.wait_for(proc.stdout.readline(), 200 * UNIT))
            if msg["event"] == "ready":
                break
        assert msg["port"].startswith("/dev/pts/")
        async with bridge(msg["port"], heartbeat_s=0.2, silence_s=2.0) as t:
            assert t.link.state == "ready"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 200 * UNIT)


@pytest.mark.parametrize(("over", "key"), [
    ({"port": None}, "port"),
    ({"port": ""}, "port"),
    ({"baudrate": "fast"}, "baudrate"),
    ({"max_retries": 1.5}, "max_retries"),
    ({"silence_s": 0.01}, "silence_s"),
])
def test_bad_serial_config_is_a_config_error(over: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_turnstile({**bridge_config("/dev/null"), **over})
    assert info.value.key == key


async def test_port_that_does_not_exist_is_a_fault_not_a_crash(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with bridge(str(tmp_path / "ttyACM9"), connect_timeout_s=4 * UNIT) as t:
        ev = await next_event(t.events())
        assert (ev.kind, ev.detail) == ("fault", "controller_not_answering")


async def test_controller_that_dies_is_a_fault_and_the_bridge_still_stops_cleanly(
        controller: ControllerProcess) -> None:
    async with bridge(controller.port) as t:
        events = t.events()
        assert controller.proc is not None
        controller.proc.kill()  # power cut to the board: the pty goes away
        await controller.proc.wait()
        ev = await event_of(events, "fault")
        assert ev.detail == "controller_silent"
        await t.unlock(Direction.IN)
        assert await t.passage(timeout=4 * UNIT) is False


async def test_bridge_started_during_a_fire_alarm_learns_it_from_the_controller(
        controller: ControllerProcess) -> None:
    await controller.send("fire open")  # nobody listening: its ALARM frames are given up
    for _ in range(100):
        if (await controller.send("state"))["events_dropped"] == 1:
            break
        await asyncio.sleep(UNIT)
    else:
        raise AssertionError("the controller never gave up its ALARM")
    async with bridge(controller.port) as t:
        ev = await event_of(t.events(), "alarm")
        assert ev.detail == "fire_contact" and t.emergency
        await t.set_emergency(False, "reset")
        assert t.emergency, "the contact is still open"
