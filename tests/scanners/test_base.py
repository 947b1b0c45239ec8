"""Suppression, health changes and the thread→asyncio pump."""
from __future__ import annotations

import asyncio
import threading

from scanners.base import Confirmer, EventPump, HealthTracker, Scanner, Suppressor
from scanners.sim import SimScanner
from tests.scanners.conftest import TIMEOUT_S, next_event
from tickets.model import Scan


def test_code_held_in_view_is_admitted_once():
    s = Suppressor(window_s=1.0)
    assert [s.admit(b"A", t / 30) for t in range(90)].count(True) == 1


def test_code_shown_again_after_the_window_is_admitted_again():
    s = Suppressor(window_s=1.0)
    assert s.admit(b"A", 0.0)
    assert not s.admit(b"A", 0.5)
    assert s.admit(b"A", 1.6)


def test_different_codes_are_independent():
    s = Suppressor(window_s=1.0)
    assert s.admit(b"A", 0.0) and s.admit(b"B", 0.1)
    assert not s.admit(b"A", 0.2)


def test_health_events_only_on_change():
    h = HealthTracker("cam")
    assert h.ok("up", 0.0) is not None
    assert h.ok("up", 1.0) is None
    assert h.fault("gone", 2.0) is not None
    assert h.fault("gone", 3.0) is None
    assert h.fault("frozen", 4.0) is not None
    assert h.ok("up", 5.0).state == "ok"


async def test_events_posted_from_a_thread_arrive_in_order():
    pump = EventPump()
    scans = [Scan(str(i).encode(), "qrcode", "t", float(i)) for i in range(50)]
    thread = threading.Thread(target=lambda: [pump.post(s) for s in scans])
    thread.start()
    got = [await asyncio.wait_for(pump.get(), TIMEOUT_S) for _ in scans]
    thread.join()
    assert got == scans


async def test_pump_drops_the_oldest_when_nobody_reads():
    pump = EventPump(maxsize=3)
    for i in range(5):
        pump.put_nowait(Scan(str(i).encode()))
    assert [(await pump.get()).payload for _ in range(3)] == [b"2", b"3", b"4"]


async def test_sim_scanner_feeds_scans_and_health_through_the_scanner_interface():
    sim = SimScanner("lane-1", clock=lambda: 42.0)
    assert isinstance(sim, Scanner)
    async with sim:
        assert (await next_event(sim)).state == "ok"
        await sim.feed(b"GH1:XYZ")
        assert await next_event(sim) == Scan(b"GH1:XYZ", "qrcode", "lane-1", 42.0)
        sim.fault("lens covered")
        assert sim.fault("lens covered") is None
        ev = await next_event(sim)
        assert (ev.state, ev.detail) == ("fault", "lens covered")
        sim.recover()
        assert (await next_event(sim)).state == "ok"
    events = [e async for e in sim]
    assert events == []


def test_a_code_read_in_only_one_frame_is_not_confirmed():
    c = Confirmer(frames=2, gap_s=0.1)
    assert not c.confirmed(b"4006381333931", 0.0)
    assert not c.confirmed(b"4006381333931", 0.5)  # too long after: starts again
    assert c.confirmed(b"4006381333931", 0.55)
    assert c.confirmed(b"4006381333931", 0.6)  # stays confirmed while in view
