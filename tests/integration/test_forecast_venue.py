"""The forecast from the outside: a real hub process, real gate agents, the public CLI and API.

The venue simulation's arrival curve (:mod:`gatehouse.fans`) is replayed through real gates:
each fan is scanned and walks through at the moment the curve says (the gates' clocks run in
the past and catch up), the hub ingests it over the websocket, and the operator sets kick-off
with ``gatehouse hub event``. What the hub's ``/api/v1/forecast`` says must be exactly what
the model says for the same scans — the benchmark (``gatehouse bench forecast``) then
measures how good the model is, in simulated time.
"""
from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gatehouse.bench.forecast import Lane, ZonePlan, readings_at
from gatehouse.fans import Surge, arrival_times
from gatehouse.venue import TIMEOUT_S, Venue
from hub.forecast import forecast

pytestmark = pytest.mark.slow


class ReplayClock:
    """A gate's clock that reads whatever moment the replay is at."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self) -> float:
        return self.at if self.at is not None else time.time()


async def test_the_hubs_forecast_is_the_models_forecast_for_the_same_scans(tmp_path: Path) -> None:
    venue = await Venue.create(tmp_path, zones={"North": 500, "South": 500}, tickets_per_zone=120)
    clock = ReplayClock()
    try:
        lanes = {"North": [await venue.add_gate(f"North {i}", ["North"], clock=clock) for i in (1, 2)],
                 "South": [await venue.add_gate("South 1", ["South"], clock=clock)]}
        await venue.online()
        kickoff = time.time() + 20 * 60
        iso = datetime.fromtimestamp(kickoff, UTC).isoformat()
        r = await venue.hub.agatehouse("event", "--kickoff", iso)
        assert r.returncode == 0, r.stderr

        # The curve from 75 to 20 minutes before kick-off (now), North with a surge on top.
        rng = random.Random(7)
        plan = []
        for zone, surge in (("North", Surge(0.3, 26.0, 21.0)), ("South", None)):
            numbers = [t["number"] for t in venue.tickets if t["number"].startswith(zone[0])]
            times = [t for t in arrival_times(len(numbers), kickoff, rng, surge=surge)
                     if kickoff - 75 * 60 <= t < kickoff - 20 * 60 - 5]  # tickets are valid from an hour ago
            plan += [(t, zone, n) for t, n in zip(times, numbers, strict=False)]
        plan.sort()
        free = {g.gate_id: 0.0 for gates in lanes.values() for g in gates}
        starts: dict[str, list[float]] = {g: [] for g in free}
        for at, zone, number in plan:
            gate = min(lanes[zone], key=lambda g: free[g.gate_id])  # the lane that serves this fan first
            clock.at = max(at, free[gate.gate_id])
            free[gate.gate_id] = clock.at + 5.0
            assert await gate.scan(await venue.credential(number)) == "ADMIT"
            starts[gate.gate_id].append(clock.at)
        clock.at = None
        total = sum(len(v) for v in starts.values())
        assert total > 100
        async with venue.hub.admin_client() as c:
            deadline = time.monotonic() + TIMEOUT_S * 3
            while int((await c.get("/api/v1/stats")).json()["entries_total"]) < total:
                assert time.monotonic() < deadline, "the hub never got every scan"
                await asyncio.sleep(0.05)
            hub = (await c.get("/api/v1/forecast")).json()

        zone_ids = {"North": venue.zones["North"], "South": venue.zones["South"]}
        assert zone_ids == {"North": 1, "South": 2}  # readings_at numbers the plan's zones from 1
        model_lanes = [Lane(g.gate_id, zone_ids[zone], starts[g.gate_id], []) for zone, gs in lanes.items() for g in gs]
        tickets = {zone_ids[z]: 120 for z in zone_ids}
        plan_zones = [ZonePlan(z, 120, len(lanes[z])) for z in ("North", "South")]
        inp = readings_at(hub["now"], plan_zones, model_lanes, tickets)
        inp = dataclasses.replace(inp, kickoff_at=hub["kickoff_at"])
        model = forecast(inp)
        assert hub["kickoff_at"] == pytest.approx(kickoff, abs=1)
        for z in model.zones:
            got = next(h for h in hub["zones"] if h["zone_id"] == z.zone_id)
            for key in ("arrived", "not_arrived", "lanes", "rate_per_min", "queue", "alert"):
                assert got[key] == getattr(z, key), (z.name, key, got[key], getattr(z, key))
            assert got["clear_s"] == pytest.approx(z.clear_s, abs=2)
        assert hub["lane_rate_source"] == model.lane_rate_source
        north = next(h for h in hub["zones"] if h["name"] == "North")
        assert north["arrived"] == len(starts[lanes["North"][0].gate_id]) + len(starts[lanes["North"][1].gate_id])
        assert north["rate_per_min"] > 0 and north["lanes"] == 2 and north["not_arrived"] > 0
    finally:
        await venue.close()
