"""``gatehouse bench forecast``: how good is the queue forecast on a known matchday?

Runs in **simulated time**, not wall-clock: a 60,000-seat stadium's last two and a half
hours before kick-off take about a second. Fans of each zone reach the gates along the
venue simulation's arrival curve (:data:`gatehouse.fans.MATCHDAY_CURVE`, later than the
forecast's own profile) and one zone gets a late surge (a delayed train) on top; a share of
ticket holders never comes. Each fan joins the lane of their zone where they will be served
first, and each lane serves at a rate unknown to the forecast (service times drawn around
:data:`TRUE_LANE_RATE_PER_MIN`). A lane is an enrolled gate, as at the real hub.

Every simulated minute the forecast gets exactly what the hub would give it (valid tickets
per zone, admits so far per zone and gate, admits in the last five minutes, the best rate
each lane sustained, the lanes) and its prediction is compared with what then happens:

* ``clear_time_error_p90_pct``: the 90th percentile, over zones and seeds, of the error of
  the predicted time until the zone is inside (everyone who came before kick-off through a
  lane), predicted ``--at-min`` (20) minutes before kick-off;
* ``alert_lead_time_s``: for zones that really were not inside by kick-off, how long before
  kick-off the forecast alerted and kept alerting (the worst such zone);
* ``false_alert_count``: zones alerted at ``--at-min`` that were inside in time.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Any

from gatehouse.bench import percentile
from gatehouse.fans import Surge, arrival_times
from hub.forecast import (
    RATE_WINDOW_S,
    ForecastInput,
    GateReading,
    ZoneReading,
    forecast,
    lanes_for_seats,
)

#: what a lane really does in the simulation (the forecast starts from the Green Guide's 11)
TRUE_LANE_RATE_PER_MIN = 10.2
#: share of ticket holders who come (the forecast assumes its default, 0.95)
TRUE_SHOW_RATIO = 0.93
KICKOFF = 1_800_000_000.0


@dataclass(frozen=True)
class ZonePlan:
    name: str
    seats: int
    #: lanes open (Green Guide sizing, minus lanes out of order)
    lanes: int
    surge: Surge | None = None


def stadium(seats: int) -> list[ZonePlan]:
    """Four stands; East has a quarter of its lanes out of order and a late surge."""
    shares = (("North", 0.3), ("South", 0.3), ("East", 0.2), ("West", 0.2))
    out = []
    for name, share in shares:
        n = round(seats * share)
        lanes = lanes_for_seats(n)
        if name == "East":
            out.append(ZonePlan(name, n, max(1, round(lanes * 0.75)), Surge(0.25, 32.0, 24.0)))
        else:
            out.append(ZonePlan(name, n, lanes))
    return out


@dataclass
class Lane:
    gate_id: str
    zone_id: int
    starts: list[float]
    finishes: list[float]


def simulate(plan: list[ZonePlan], rng: random.Random, *, sold_ratio: float = 0.97) -> tuple[list[Lane], dict[int, int],
                                                                                            dict[int, float]]:
    """Lanes with their scan (start) and passage (finish) times, tickets per zone, and the
    true moment each zone was inside (the last fan who came before kick-off through)."""
    lanes: list[Lane] = []
    tickets: dict[int, int] = {}
    inside_at: dict[int, float] = {}
    mean_s = 60.0 / TRUE_LANE_RATE_PER_MIN
    for zi, zone in enumerate(plan, start=1):
        sold = round(zone.seats * sold_ratio)
        tickets[zi] = sold
        comers = sum(1 for _ in range(sold) if rng.random() < TRUE_SHOW_RATIO)
        arrivals = arrival_times(comers, KICKOFF, rng, surge=zone.surge)
        free = [KICKOFF - 3 * 3600.0] * zone.lanes
        zone_lanes = [Lane(f"{zone.name.lower()}-{i + 1}", zi, [], []) for i in range(zone.lanes)]
        last_before = 0.0
        for at in arrivals:
            i = min(range(zone.lanes), key=lambda k: free[k])  # the lane that serves this fan first
            start = max(at, free[i])
            # service times: a little spread, a few slow fans (a phone that will not wake)
            service = mean_s * rng.lognormvariate(-0.08, 0.4)
            free[i] = start + service
            zone_lanes[i].starts.append(start)
            zone_lanes[i].finishes.append(free[i])
            if at <= KICKOFF:
                last_before = max(last_before, free[i])
        inside_at[zi] = last_before
        lanes.extend(zone_lanes)
    return lanes, tickets, inside_at


def readings_at(now: float, plan: list[ZonePlan], lanes: list[Lane], tickets: dict[int, int]) -> ForecastInput:
    """What the hub would hand the forecast at ``now``: admits are the scans (lane starts)."""
    zone_arrived = dict.fromkeys(tickets, 0)
    gates = []
    for lane in lanes:
        done = bisect_right(lane.starts, now)
        recent = done - bisect_right(lane.starts, now - RATE_WINDOW_S)
        zone_arrived[lane.zone_id] += done
        gates.append(GateReading(lane.gate_id, lane.gate_id, (lane.zone_id,), 1, recent, done,
                                 best_rate_per_min=_best_rate(lane.starts, now)))
    zones = [ZoneReading(zi, z.name, tickets[zi], zone_arrived[zi]) for zi, z in enumerate(plan, start=1)]
    return ForecastInput(now=now, kickoff_at=KICKOFF, zones=zones, gates=gates)


def _best_rate(starts: list[float], now: float) -> float:
    """The best rate over complete five-minute windows ending on a minute, before ``now``."""
    best = 0
    end = math.floor(now / 60.0) * 60.0
    t = end
    while t > end - 4 * 3600.0:
        n = bisect_left(starts, t) - bisect_left(starts, t - RATE_WINDOW_S)
        best = max(best, n)
        if t < (starts[0] if starts else now):
            break
        t -= 60.0
    return best / (RATE_WINDOW_S / 60.0)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seats", type=int, default=60_000, help="stadium seats (default 60000)")
    p.add_argument("--seeds", type=int, default=5, help="matchdays simulated (default 5)")
    p.add_argument("--at-min", type=float, default=20.0, help="minutes before kick-off the error is measured at")
    p.add_argument("--from-min", type=float, default=120.0, help="first forecast, minutes before kick-off")


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.seats < 1000 or args.seeds < 1 or not 0 < args.at_min < args.from_min:
        raise SystemExit("gatehouse bench forecast: --seats >= 1000, --seeds >= 1, 0 < --at-min < --from-min")
    plan = stadium(args.seats)
    errors: list[float] = []
    leads: list[float] = []
    late_zones = 0
    false_alerts = 0
    forecasts = 0
    started = time.perf_counter()
    compute_s = 0.0
    for seed in range(args.seeds):
        rng = random.Random(1000 + seed)
        lanes, tickets, inside_at = simulate(plan, rng)
        alerted_since: dict[int, float | None] = dict.fromkeys(tickets)
        minute = -args.from_min
        while minute <= 0:
            now = KICKOFF + 60.0 * minute
            t0 = time.perf_counter()
            f = forecast(readings_at(now, plan, lanes, tickets))
            compute_s += time.perf_counter() - t0
            forecasts += 1
            for z in f.zones:
                if z.alert:
                    if alerted_since[z.zone_id] is None:
                        alerted_since[z.zone_id] = now
                else:
                    alerted_since[z.zone_id] = None
                if minute == -args.at_min:
                    truth = inside_at[z.zone_id] - now
                    predicted = z.clear_s if z.clear_s is not None else 3 * 3600.0
                    errors.append(100.0 * abs(predicted - truth) / max(truth, 60.0))
                    if z.alert and inside_at[z.zone_id] <= KICKOFF:
                        false_alerts += 1
                    print(f"seed {seed} {z.name:<6} T-{args.at_min:.0f}: predicted {predicted / 60:5.1f} min, "
                          f"true {truth / 60:5.1f} min, queue ~{z.queue}, alert {z.alert}", file=sys.stderr)
            minute += 1
        for zi, since in alerted_since.items():
            if inside_at[zi] > KICKOFF + 60.0:
                late_zones += 1
                leads.append(KICKOFF - since if since is not None else 0.0)
    return {
        "seats": args.seats, "zones": len(plan), "seeds": args.seeds, "at_min": args.at_min,
        "lanes_count": sum(z.lanes for z in plan),
        "clear_time_error_p90_pct": round(percentile(errors, 90), 1),
        "clear_time_error_p50_pct": round(percentile(errors, 50), 1),
        "alert_lead_time_s": round(min(leads), 0) if leads else 0.0,
        "late_zones_count": late_zones,
        "false_alert_count": false_alerts,
        "forecast_p50_ms": round(1000 * compute_s / max(1, forecasts), 3),
        "simulated_s": round(args.seeds * (args.from_min * 60.0), 0),
        "wall_s": round(time.perf_counter() - started, 2),
    }
