"""The queue forecast as a pure function: tables of plain readings in, figures and alerts out."""
from __future__ import annotations

import argparse

import pytest

from hub.forecast import (
    GUIDE_LANE_RATE_PER_MIN,
    ForecastInput,
    GateReading,
    ZoneReading,
    clear_minutes,
    forecast,
    lanes_for_seats,
    profile_share,
)

KICKOFF = 1_800_000_000.0


def gate(gid: str, zone: int = 1, *, recent: int = 0, arrivals: int = 0, lanes: int = 1, mode: str = "ONLINE",
         best: float = 0.0) -> GateReading:
    return GateReading(gid, gid, (zone,), lanes, recent, arrivals, mode, best)


def run(zones: list[ZoneReading], gates: list[GateReading], minutes_before: float | None, **kw: object):  # type: ignore[no-untyped-def]
    now = KICKOFF - 60 * (minutes_before or 0)
    return forecast(ForecastInput(now=now, kickoff_at=KICKOFF if minutes_before is not None else None,
                                  zones=zones, gates=gates, **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(("minutes_before", "share"), [(200, 0.0), (150, 0.0), (60, 0.34), (52.5, 0.42),
                                                        (0, 0.985), (-30, 1.0)])
def test_the_default_profile_is_piecewise_linear(minutes_before: float, share: float) -> None:
    from hub.forecast import DEFAULT_PROFILE

    assert profile_share(DEFAULT_PROFILE, minutes_before) == pytest.approx(share)


@pytest.mark.parametrize(("queue", "arrivals", "capacity", "minutes"), [
    (0, [], 10, 0.0),            # nobody left
    (100, [], 10, 10.0),         # a queue alone: queue / capacity
    (0, [5, 5, 5], 10, 2.5),     # arrivals below capacity: done when the last ones are through
    (50, [20, 20], 10, 9.0),     # saturated all along: total / capacity
    (10, [], 0, None),           # no open lane: never
])
def test_clear_minutes_is_a_fluid_queue(queue: float, arrivals: list[float], capacity: float,
                                        minutes: float | None) -> None:
    got = clear_minutes(queue=queue, arrivals=arrivals, capacity_per_min=capacity)
    assert got == (pytest.approx(minutes) if minutes is not None else None)


def test_green_guide_sizing_is_one_lane_per_660_seats() -> None:
    assert lanes_for_seats(660) == 1 and lanes_for_seats(661) == 2 and lanes_for_seats(15_000) == 23


def test_a_zone_with_lanes_to_spare_is_in_time_and_has_no_queue() -> None:
    # 2,000 tickets, 1,200 in, 4 lanes (44/min) scanning 20/min 30 minutes before kick-off
    f = run([ZoneReading(1, "North", 2000, 1200)], [gate(f"n{i}", recent=25, arrivals=300) for i in range(4)], 30)
    z = f.zone(1)
    assert (z.expected, z.not_arrived, z.lanes) == (1900, 700, 4)
    assert z.rate_per_min == 20.0 and z.capacity_per_min == 4 * GUIDE_LANE_RATE_PER_MIN
    assert z.queue == 0 and not z.alert and z.suggestions == ()
    assert z.clear_at is not None and z.clear_at <= KICKOFF


def test_a_saturated_zone_that_cannot_clear_by_kick_off_alerts_with_the_lanes_it_needs() -> None:
    # 10,000 tickets, 3,000 in, 10 lanes running flat out (110/min) 20 minutes before kick-off
    gates = [gate(f"e{i}", recent=55, arrivals=300) for i in range(10)]
    z = run([ZoneReading(3, "East", 10_000, 3000)], [g.__class__(**{**g.__dict__, "zones": (3,)}) for g in gates],
            20).zone(3)
    assert z.utilisation == 1.0 and z.queue > 0
    assert z.alert and z.late_s > 0
    # 9,500 expected: 6,500 to go; in 20 minutes that needs ~325/min, i.e. 30 lanes: 20 more
    lanes = next(s for s in z.suggestions if s.kind == "open_lanes").lanes
    assert 15 <= lanes <= 22, lanes


def test_busy_gates_beside_idle_ones_of_the_same_zone_suggest_redirecting_fans() -> None:
    gates = [gate("w1", 4, recent=55, arrivals=900), gate("w2", 4, recent=55, arrivals=900),
             gate("w3", 4, recent=5, arrivals=100)]
    z = run([ZoneReading(4, "West", 6000, 1900)], gates, 15).zone(4)
    assert z.alert
    redirect = next(s for s in z.suggestions if s.kind == "redirect")
    assert redirect.from_gates == ("w1", "w2") and redirect.to_gates == ("w3",)


def test_idle_lanes_mean_fans_are_late_not_queueing() -> None:
    # the profile says 70 % should be here 30 min out, only 20 % are, and the lanes are idle
    z = run([ZoneReading(1, "North", 1000, 200)], [gate("n1", recent=5, arrivals=200) for _ in range(1)]
            + [gate(f"n{i}", recent=5, arrivals=0) for i in range(2, 5)], 30).zone(1)
    assert z.queue == 0


def test_a_gate_in_manifest_mode_counts_at_a_hand_checking_rate() -> None:
    f = run([ZoneReading(1, "North", 1000, 0)], [gate("n1", mode="MANIFEST"), gate("n2")], 60)
    assert f.zone(1).capacity_per_min == pytest.approx(GUIDE_LANE_RATE_PER_MIN * 1.3)


def test_a_closed_or_emergency_gate_adds_no_lane() -> None:
    f = run([ZoneReading(1, "North", 1000, 0)], [gate("n1", lanes=0, mode="EMERGENCY"), gate("n2")], 60)
    assert f.zone(1).lanes == 1


def test_the_venues_measured_rate_replaces_the_guidance_once_a_lane_ran_flat_out() -> None:
    slow = run([ZoneReading(1, "N", 1000, 0)], [gate("n1", best=5.0)], 60)
    assert (slow.lane_rate_per_min, slow.lane_rate_source) == (GUIDE_LANE_RATE_PER_MIN, "guidance")
    fast = run([ZoneReading(1, "N", 1000, 0)], [gate("n1", best=13.6)], 60)
    assert (fast.lane_rate_per_min, fast.lane_rate_source) == (13.6, "measured")


def test_without_a_kick_off_there_is_no_alert_but_still_a_time_to_clear() -> None:
    z = run([ZoneReading(1, "N", 1000, 500)], [gate("n1", recent=55)], None).zone(1)
    assert not z.alert and z.clear_s is not None and z.clear_s > 0


def test_a_zone_served_by_no_gate_never_clears_and_alerts() -> None:
    z = run([ZoneReading(9, "Away end", 500, 0)], [gate("n1", zone=1)], 30).zone(9)
    assert z.lanes == 0 and z.clear_s is None and z.alert


def test_after_kick_off_only_a_queue_still_outside_alerts() -> None:
    quiet = run([ZoneReading(1, "N", 1000, 940)], [gate("n1", recent=3)], -5).zone(1)
    assert not quiet.alert
    busy = run([ZoneReading(1, "N", 1000, 600)], [gate("n1", recent=55)], -5).zone(1)
    assert busy.alert


def test_per_gate_figures_split_the_zone_by_where_fans_came() -> None:
    f = run([ZoneReading(1, "N", 1000, 400)], [gate("n1", recent=55, arrivals=300), gate("n2", recent=10,
                                                                                         arrivals=100)], 20)
    n1, n2 = f.gates
    assert n1.not_arrived > n2.not_arrived and n1.not_arrived + n2.not_arrived == f.zone(1).not_arrived
    assert n1.queue > 0 and n2.queue == 0 and n2.spare


def test_the_forecast_bench_meets_its_targets_on_a_smaller_stadium() -> None:
    """Simulated time: a 20,000-seat matchday with a late surge, two seeds."""
    from gatehouse.bench import forecast as bench

    result = bench.run(argparse.Namespace(seats=20_000, seeds=2, at_min=20.0, from_min=90.0))
    assert result["zones"] == 4 and result["late_zones_count"] >= 1
    assert result["clear_time_error_p90_pct"] < 15.0, result
    assert result["alert_lead_time_s"] >= 20 * 60, result  # the late zone was flagged at least 20 min ahead
    assert result["false_alert_count"] == 0, result
