"""The queue forecast: will each zone be inside by kick-off, and what to do if not.

A pure model fed with plain data (no I/O, no clock: ``now`` is an argument), so it is
tested with tables and run by the benchmark in simulated time. :mod:`hub.forecast_data`
reads the figures from the hub; the dashboard shows the result.

For each zone (and each gate) it reports arrivals so far, tickets not yet arrived, the
present scan rate and lanes, an estimate of the queue and of the time until the zone is
inside, and an alert when that falls after kick-off — with what to do about it: how many
more lanes would clear it in time, and which gates of the same zone have spare capacity to
take fans redirected from the busy ones.

**The model** is a fluid queue per zone, stepped a minute at a time:

* Service: ``lanes × lane rate``. An enrolled gate agent drives one turnstile, so one
  lane. The lane rate is the Green Guide's ~660 persons an hour (11 per minute) until the
  venue has measured its own: a lane that has run at ≥ :data:`SATURATED` of the assumed rate
  for a rate window is taken to be at capacity, and the best such window becomes the rate.
* Who is still to come: the expected attendance (tickets × show ratio) less arrivals.
* When they come: an arrival profile (the share of fans at the gates by each minute before
  kick-off; :data:`DEFAULT_PROFILE` until the venue sets its own). The part the profile says
  should be here already is the queue **only if the gates are busy** (utilisation ≥
  :data:`SATURATED`); with idle lanes there is no queue and the fans are simply later than
  the profile, so that part is spread over the next minutes instead.
* While the gates of a zone are saturated, the time to clear is bounded below by the
  remaining fans over the capacity: every one of them still has to pass a lane.

No queue length is measured (no cameras or counters at the gates), so the queue is an
estimate: the figure the dashboard calls "estimated queue".
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

#: Green Guide: about 660 persons per hour through one turnstile lane
GUIDE_LANE_RATE_PER_MIN = 11.0
#: Green Guide: about one lane per 660 seats for an hour's entry
GUIDE_SEATS_PER_LANE = 660
#: utilisation at which a lane is taken to have a queue in front of it
SATURATED = 0.85
#: below this utilisation a gate has capacity to spare for redirected fans
SPARE = 0.6
#: the scan rate is averaged over this window (seconds)
RATE_WINDOW_S = 300.0
#: share of ticket holders expected to come (no-shows are usual; the venue may set its own)
DEFAULT_SHOW_RATIO = 0.95
#: the forecast looks this far past kick-off before it gives up ("not inside within 3 h")
HORIZON_MIN = 180
#: the most extra lanes a suggestion considers (beyond that: "opening lanes alone will not do")
MAX_EXTRA_LANES = 200

#: (minutes before kick-off, share of the attendance at the gates by then). Piecewise
#: linear between points; negative minutes are after kick-off. A typical league match:
#: a trickle from 2 h before, most fans in the last 45 minutes, a few late.
DEFAULT_PROFILE: tuple[tuple[float, float], ...] = (
    (150.0, 0.0), (120.0, 0.04), (90.0, 0.14), (60.0, 0.34), (45.0, 0.50), (30.0, 0.70), (20.0, 0.82),
    (10.0, 0.93), (0.0, 0.985), (-10.0, 1.0),
)


@dataclass(frozen=True)
class GateReading:
    """One gate as the hub sees it."""

    gate_id: str
    name: str
    zones: tuple[int, ...]
    #: turnstile lanes at this gate that are admitting now (0 if it is closed, down or in
    #: emergency); an enrolled gate agent is one lane
    lanes: int
    #: admits in the last :data:`RATE_WINDOW_S`
    recent_admits: int
    #: admits this event
    arrivals: int
    #: MANIFEST, OFFLINE, … (shown, and a MANIFEST gate counts at a reduced rate)
    mode: str = "ONLINE"
    #: the best per-lane rate (persons/min) this gate sustained over a rate window so far
    best_rate_per_min: float = 0.0


@dataclass(frozen=True)
class ZoneReading:
    zone_id: int
    name: str
    #: valid tickets for the zone (who may still come)
    tickets: int
    #: admits into the zone this event
    arrived: int


@dataclass(frozen=True)
class ForecastInput:
    now: float
    kickoff_at: float | None
    zones: Sequence[ZoneReading]
    gates: Sequence[GateReading]
    #: the assumed lane rate until the venue's own is measured (persons/min)
    lane_rate_per_min: float = GUIDE_LANE_RATE_PER_MIN
    show_ratio: float = DEFAULT_SHOW_RATIO
    profile: Sequence[tuple[float, float]] = DEFAULT_PROFILE
    window_s: float = RATE_WINDOW_S
    #: a gate in MANIFEST mode checks tickets by hand: this share of a lane's rate
    manifest_rate_ratio: float = 0.3


@dataclass(frozen=True)
class Suggestion:
    """What a supervisor can do. ``kind``: ``open_lanes`` or ``redirect``."""

    kind: str
    lanes: int = 0
    from_gates: tuple[str, ...] = ()
    to_gates: tuple[str, ...] = ()


@dataclass(frozen=True)
class GateForecast:
    gate_id: str
    name: str
    zones: tuple[int, ...]
    mode: str
    lanes: int
    arrivals: int
    #: this gate's share of its zones' fans not yet arrived
    not_arrived: int
    rate_per_min: float
    capacity_per_min: float
    utilisation: float | None
    queue: int
    clear_s: float | None
    spare: bool


@dataclass(frozen=True)
class ZoneForecast:
    zone_id: int
    name: str
    tickets: int
    arrived: int
    expected: int
    not_arrived: int
    lanes: int
    rate_per_min: float
    capacity_per_min: float
    utilisation: float | None
    queue: int
    #: seconds from now until the zone's last expected fan is through; None: not within the horizon
    clear_s: float | None
    clear_at: float | None
    #: True when the zone will not be inside by kick-off at the present capacity
    alert: bool
    #: seconds past kick-off the zone is forecast to be inside (0 if in time)
    late_s: float
    suggestions: tuple[Suggestion, ...] = ()
    gates: tuple[str, ...] = ()


@dataclass(frozen=True)
class Forecast:
    now: float
    kickoff_at: float | None
    lane_rate_per_min: float
    #: "measured" once lanes have run at capacity, else "guidance"
    lane_rate_source: str
    zones: tuple[ZoneForecast, ...]
    gates: tuple[GateForecast, ...]
    alerts: tuple[int, ...] = field(default=())

    def zone(self, zone_id: int) -> ZoneForecast:
        return next(z for z in self.zones if z.zone_id == zone_id)

    def to_json(self) -> dict[str, object]:
        from dataclasses import asdict

        return asdict(self)


def profile_share(profile: Sequence[tuple[float, float]], minutes_before: float) -> float:
    """Share of the attendance at the gates by ``minutes_before`` kick-off (piecewise linear)."""
    pts = sorted(profile, key=lambda p: -p[0])  # earliest first
    if not pts:
        return 1.0
    if minutes_before >= pts[0][0]:
        return pts[0][1]
    if minutes_before <= pts[-1][0]:
        return pts[-1][1]
    xs = [-p[0] for p in pts]
    i = bisect.bisect_right(xs, -minutes_before)
    (x0, y0), (x1, y1) = pts[i - 1], pts[i]
    t = (x0 - minutes_before) / (x0 - x1) if x0 != x1 else 1.0
    return y0 + t * (y1 - y0)


def lane_rate(inp: ForecastInput) -> tuple[float, str]:
    """The per-lane rate to plan with: the venue's measured one once a lane has run at
    capacity for a rate window, else the assumed (guidance) rate."""
    best = max((g.best_rate_per_min for g in inp.gates), default=0.0)
    if best >= SATURATED * inp.lane_rate_per_min:
        return best, "measured"
    return inp.lane_rate_per_min, "guidance"


def _gate_capacity(g: GateReading, mu: float, inp: ForecastInput) -> float:
    ratio = inp.manifest_rate_ratio if g.mode == "MANIFEST" else 1.0
    return max(0, g.lanes) * mu * ratio


def clear_minutes(*, queue: float, arrivals: Sequence[float], capacity_per_min: float,
                  horizon: int = HORIZON_MIN) -> float | None:
    """Minutes until a queue of ``queue`` plus ``arrivals[i]`` fans in minute ``i`` are all
    through ``capacity_per_min``; None if not within ``horizon`` minutes (or no capacity)."""
    total = queue + sum(arrivals)
    if total <= 0:
        return 0.0
    if capacity_per_min <= 0:
        return None
    backlog = queue
    for minute in range(horizon):
        backlog += arrivals[minute] if minute < len(arrivals) else 0.0
        if backlog <= capacity_per_min and minute >= len(arrivals) - 1:
            return minute + backlog / capacity_per_min
        backlog = max(0.0, backlog - capacity_per_min)
    return None


def forecast(inp: ForecastInput) -> Forecast:
    """The forecast for every zone and gate (see the module docstring for the model)."""
    mu, source = lane_rate(inp)
    window_min = inp.window_s / 60.0
    gates_of: dict[int, list[GateReading]] = {}
    for g in inp.gates:
        for zone_id in g.zones:
            gates_of.setdefault(zone_id, []).append(g)
    mins_left = (inp.kickoff_at - inp.now) / 60.0 if inp.kickoff_at is not None else None

    zone_out: list[ZoneForecast] = []
    zone_queue: dict[int, float] = {}
    zone_not_arrived: dict[int, int] = {}
    #: fans the profile says are here but have not passed: at busy gates, they are the queue
    zone_behind: dict[int, float] = {}
    for z in inp.zones:
        gates = gates_of.get(z.zone_id, [])
        # a gate serving several zones splits its lanes by the zones' remaining fans
        share = {g.gate_id: _zone_share(g, z, inp) for g in gates}
        lanes = sum(g.lanes * share[g.gate_id] for g in gates)
        capacity = sum(_gate_capacity(g, mu, inp) * share[g.gate_id] for g in gates)
        rate = sum(g.recent_admits * share[g.gate_id] for g in gates) / window_min if window_min > 0 else 0.0
        util = rate / capacity if capacity > 0 else None
        expected = max(z.arrived, round(z.tickets * inp.show_ratio))
        remaining = max(0, expected - z.arrived)
        # "inside by kick-off" counts the fans who come before it; latecomers walk in afterwards
        before_kickoff = mins_left is not None and mins_left > 0
        end_min = 0.0 if before_kickoff else _profile_end(inp.profile)
        target = expected * profile_share(inp.profile, end_min) if mins_left is not None else float(expected)
        to_clear = max(0.0, min(float(remaining), target - z.arrived))
        queue, arrivals = _split_remaining(to_clear, expected, z.arrived, util, mins_left, end_min, inp)
        minutes = clear_minutes(queue=queue, arrivals=arrivals, capacity_per_min=capacity)
        if minutes is not None and util is not None and util >= SATURATED and capacity > 0:
            # saturated gates: every one of these fans still has to pass a lane
            minutes = max(minutes, to_clear / capacity)
        clear_s = minutes * 60.0 if minutes is not None else None
        clear_at = inp.now + clear_s if clear_s is not None else None
        alert = False
        late_s = 0.0
        suggestions: list[Suggestion] = []
        if inp.kickoff_at is not None and to_clear > 0:
            late = clear_at is None or clear_at > inp.kickoff_at if before_kickoff \
                else util is not None and util >= SATURATED  # after kick-off: a queue is still outside
            if late:
                alert = True
                late_s = (clear_at - inp.kickoff_at) if clear_at is not None else float(HORIZON_MIN * 60)
                suggestions = _suggest(gates, share, to_clear, queue, arrivals, capacity, mu, mins_left, inp)
        zone_queue[z.zone_id] = queue
        zone_not_arrived[z.zone_id] = remaining
        if mins_left is not None:
            zone_behind[z.zone_id] = max(0.0, min(to_clear, expected * profile_share(inp.profile, mins_left) - z.arrived))
        zone_out.append(ZoneForecast(
            zone_id=z.zone_id, name=z.name, tickets=z.tickets, arrived=z.arrived, expected=expected,
            not_arrived=remaining, lanes=round(lanes), rate_per_min=round(rate, 1),
            capacity_per_min=round(capacity, 1), utilisation=round(util, 2) if util is not None else None,
            queue=round(queue), clear_s=round(clear_s) if clear_s is not None else None,
            clear_at=clear_at, alert=alert, late_s=round(late_s), suggestions=tuple(suggestions),
            gates=tuple(g.gate_id for g in gates)))

    gate_out = [_gate_forecast(g, mu, inp, window_min, zone_queue, zone_behind, zone_not_arrived, gates_of)
                for g in inp.gates]
    zone_out = [_with_gate_queues(z, [g for g in gate_out if z.zone_id in g.zones], inp) for z in zone_out]
    return Forecast(now=inp.now, kickoff_at=inp.kickoff_at, lane_rate_per_min=round(mu, 2), lane_rate_source=source,
                    zones=tuple(zone_out), gates=tuple(gate_out),
                    alerts=tuple(z.zone_id for z in zone_out if z.alert))


def _zone_share(g: GateReading, z: ZoneReading, inp: ForecastInput) -> float:
    if len(g.zones) <= 1:
        return 1.0
    weights = {zr.zone_id: max(1, zr.tickets - zr.arrived) for zr in inp.zones if zr.zone_id in g.zones}
    total = sum(weights.values())
    return weights.get(z.zone_id, 0) / total if total else 1.0 / len(g.zones)


def _profile_end(profile: Sequence[tuple[float, float]]) -> float:
    return min((p[0] for p in profile), default=0.0)


def _split_remaining(remaining: float, expected: int, arrived: int, util: float | None, mins_left: float | None,
                     end_min: float, inp: ForecastInput) -> tuple[float, list[float]]:
    """(queue now, fans arriving in each coming minute until ``end_min`` before kick-off) for
    ``remaining`` fans."""
    if remaining <= 0:
        return 0.0, []
    if mins_left is None:
        # no kick-off set: no profile to follow; whoever is missing is taken to be here
        return float(remaining), []
    due_now = expected * profile_share(inp.profile, mins_left)
    behind = max(0.0, min(remaining, due_now - arrived))
    busy = util is not None and util >= SATURATED
    steps = max(0, math.ceil(mins_left - end_min))
    # what the profile still brings, minute by minute, from now to end_min
    shares = [max(0.0, profile_share(inp.profile, max(end_min, mins_left - i - 1))
                  - profile_share(inp.profile, mins_left - i)) for i in range(steps)]
    queue = behind if busy else 0.0
    later = remaining - queue
    if not busy and behind > 0 and shares:
        # idle lanes: nobody is waiting, the fans are later than the profile. Spread the part
        # that is "due" over the next quarter of an hour, on top of the profile's own.
        spread = min(15, len(shares))
        for i in range(spread):
            shares[i] += (behind / max(1.0, expected)) / spread
    total_share = sum(shares)
    if total_share <= 0 or later <= 0:
        return float(remaining), []
    return queue, [later * s / total_share for s in shares]


def _suggest(gates: Sequence[GateReading], share: Mapping[str, float], remaining: float, queue: float,
             arrivals: Sequence[float], capacity: float, mu: float, mins_left: float | None,
             inp: ForecastInput) -> list[Suggestion]:
    out: list[Suggestion] = []
    if mins_left is not None and mins_left > 0 and mu > 0:
        # the fewest lanes that would clear the zone by kick-off (more lanes never clear later,
        # so a bisection finds it); 0: no number of lanes would
        def in_time(extra: int) -> bool:
            cap = capacity + extra * mu
            m = clear_minutes(queue=queue, arrivals=arrivals, capacity_per_min=cap)
            return m is not None and m <= mins_left and remaining / cap <= mins_left

        lo, hi = 1, MAX_EXTRA_LANES
        if not in_time(hi):
            lo = 0
        else:
            while lo < hi:
                mid = (lo + hi) // 2
                if in_time(mid):
                    hi = mid
                else:
                    lo = mid + 1
        out.append(Suggestion("open_lanes", lanes=lo))
    window_min = inp.window_s / 60.0
    busy: list[str] = []
    spare: list[str] = []
    for g in gates:
        cap = _gate_capacity(g, mu, inp) * share[g.gate_id]
        if cap <= 0:
            continue
        util = (g.recent_admits * share[g.gate_id] / window_min) / cap if window_min > 0 else 0.0
        if util >= SATURATED:
            busy.append(g.gate_id)
        elif util < SPARE:
            spare.append(g.gate_id)
    if busy and spare:
        out.append(Suggestion("redirect", from_gates=tuple(busy), to_gates=tuple(spare)))
    return out


def _with_gate_queues(z: ZoneForecast, gates: Sequence[GateForecast], inp: ForecastInput) -> ZoneForecast:
    """Fans do not spread themselves over a zone's gates: a busy gate's own queue can outlast
    the zone's pooled estimate while its neighbours idle. The zone is inside when its slowest
    gate has cleared."""
    slowest = max((g.clear_s for g in gates if g.queue > 0 and g.clear_s is not None), default=None)
    if slowest is None or (z.clear_s is not None and slowest <= z.clear_s):
        return z
    clear_at = inp.now + slowest
    queue = max(z.queue, sum(g.queue for g in gates))
    late = inp.kickoff_at is not None and inp.now < inp.kickoff_at < clear_at
    if not late:
        return replace(z, clear_s=round(slowest), clear_at=clear_at, queue=queue)
    busy = tuple(g.gate_id for g in gates if g.utilisation is not None and g.utilisation >= SATURATED)
    spare = tuple(g.gate_id for g in gates if g.spare)
    suggestions = list(z.suggestions)
    if busy and spare and not any(s.kind == "redirect" for s in suggestions):
        suggestions.append(Suggestion("redirect", from_gates=busy, to_gates=spare))
    return replace(z, clear_s=round(slowest), clear_at=clear_at, queue=queue, alert=True,
                   late_s=round(clear_at - (inp.kickoff_at or clear_at)), suggestions=tuple(suggestions))


def _gate_forecast(g: GateReading, mu: float, inp: ForecastInput, window_min: float, zone_queue: Mapping[int, float],
                   zone_behind: Mapping[int, float], zone_not_arrived: Mapping[int, int],
                   gates_of: Mapping[int, Sequence[GateReading]]) -> GateForecast:
    capacity = _gate_capacity(g, mu, inp)
    rate = g.recent_admits / window_min if window_min > 0 else 0.0
    util = rate / capacity if capacity > 0 else None
    queue = 0.0
    not_arrived = 0.0
    for z in g.zones:
        peers = gates_of.get(z, [])
        cap_total = sum(_gate_capacity(p, mu, inp) for p in peers)
        arrivals_total = sum(p.arrivals for p in peers)
        # the zone's queue stands where the lanes are busy; not-yet-arrived fans split like past arrivals
        if util is not None and util >= SATURATED and cap_total > 0:
            # the queue stands at every gate of the zone that is working (a busy lane's 5-minute
            # count dips below saturation now and then); idle gates have none
            busy_cap = sum(_gate_capacity(p, mu, inp) for p in peers
                           if _util(p, mu, inp, window_min) >= SPARE)
            waiting = max(zone_queue.get(z, 0.0), zone_behind.get(z, 0.0))
            queue += waiting * capacity / max(busy_cap, capacity)
        part = g.arrivals / arrivals_total if arrivals_total else 1.0 / max(1, len(peers))
        not_arrived += zone_not_arrived.get(z, 0) * part
    clear_s = (queue / capacity * 60.0) if capacity > 0 else (None if queue > 0 else 0.0)
    return GateForecast(
        gate_id=g.gate_id, name=g.name, zones=g.zones, mode=g.mode, lanes=g.lanes, arrivals=g.arrivals,
        not_arrived=round(not_arrived), rate_per_min=round(rate, 1), capacity_per_min=round(capacity, 1),
        utilisation=round(util, 2) if util is not None else None, queue=round(queue),
        clear_s=round(clear_s) if clear_s is not None else None,
        spare=util is not None and util < SPARE and capacity > 0)


def _util(g: GateReading, mu: float, inp: ForecastInput, window_min: float) -> float:
    cap = _gate_capacity(g, mu, inp)
    return (g.recent_admits / window_min) / cap if cap > 0 and window_min > 0 else 0.0


def lanes_for_seats(seats: int, seats_per_lane: int = GUIDE_SEATS_PER_LANE) -> int:
    """Green Guide sizing: the lanes a zone of ``seats`` seats should have."""
    return max(1, math.ceil(seats / seats_per_lane))
