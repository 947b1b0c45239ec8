"""Simulated fans for the demo and the drills: a realistic stream of people at each gate.

Most fans show a valid ticket for their own zone and walk through; some come back with a
ticket already used, go to the wrong gate, show a cancelled ticket, hold up garbage, type a
legacy number, or turn away after the turnstile unlocks (no passage: the ticket stays valid).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gatehouse.venue import Gate, Venue

log = logging.getLogger(__name__)


@dataclass
class FanStats:
    decisions: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    #: seconds from presenting a code to the verdict, per decision
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


@dataclass
class Crowd:
    venue: Venue
    #: zone name -> the credentials (QR text) of that zone's tickets, fresh first
    credentials: dict[str, list[str]]
    rng: random.Random = field(default_factory=lambda: random.Random(2026))
    stats: FanStats = field(default_factory=FanStats)
    used: list[str] = field(default_factory=list)

    @classmethod
    async def gather(cls, venue: Venue, *, per_zone: int | None = None, seed: int = 2026) -> Crowd:
        creds: dict[str, list[str]] = {}
        for zone in venue.zones:
            numbers = [t["number"] for t in venue.tickets if t["number"].startswith(zone[:1])]
            if per_zone is not None:
                numbers = numbers[:per_zone]
            creds[zone] = [await venue.credential(n) for n in numbers]
        return cls(venue, creds, random.Random(seed))

    def pick(self, zone: str) -> tuple[str, bytes, bool]:
        """(label, payload, walks through) for the next fan at a gate of ``zone``."""
        r = self.rng.random()
        fresh = self.credentials[zone]
        if r < 0.08 and self.used:
            return "used", self.rng.choice(self.used).encode(), True
        others = [z for z in self.credentials if z != zone and self.credentials[z]]
        if r < 0.14 and others:
            return "wrong_gate", self.rng.choice(self.credentials[self.rng.choice(others)]).encode(), True
        if r < 0.17:
            return "garbage", bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(3, 40))), True
        if r < 0.20:
            return "unknown", f"X{self.rng.randrange(10**8):08d}".encode(), True
        if not fresh:
            return "used", self.rng.choice(self.used).encode() if self.used else b"EMPTY", True
        code = fresh.pop(self.rng.randrange(len(fresh)))
        self.used.append(code)
        return "valid", code.encode(), self.rng.random() > 0.04

    async def walk_up(self, gate: Gate, zone: str) -> str:
        """One fan at ``gate``; a failure is logged and counted, and the next fan still comes."""
        t0 = time.monotonic()
        try:
            _label, payload, walks = self.pick(zone)
            reason = await gate.scan(payload, walk=walks)
        except Exception:
            self.stats.errors += 1
            log.exception("fan at %s could not be served", gate.gate_id)
            return "ERROR"
        self.stats.latencies.append(time.monotonic() - t0)
        self.stats.decisions += 1
        self.stats.by_reason[reason] = self.stats.by_reason.get(reason, 0) + 1
        return reason


async def keep_arriving(crowd: Crowd, gate: Gate, zone: str, *, every_s: Callable[[], float],
                        stop: asyncio.Event) -> None:
    """Fans keep arriving at ``gate`` until ``stop`` is set."""
    while not stop.is_set():
        await crowd.walk_up(gate, zone)
        try:
            await asyncio.wait_for(stop.wait(), every_s())
        except TimeoutError:
            pass


# --- arrivals before kick-off ----------------------------------------------------------------

#: (minutes before kick-off, share of a zone's fans at the gates by then): the venue
#: simulation's "known" arrival curve. Deliberately not the forecast's default profile: a
#: little later throughout, as a derby crowd that lingers outside.
MATCHDAY_CURVE: tuple[tuple[float, float], ...] = (
    (150.0, 0.0), (120.0, 0.03), (90.0, 0.11), (60.0, 0.29), (45.0, 0.45), (30.0, 0.66), (20.0, 0.80),
    (10.0, 0.92), (0.0, 0.98), (-12.0, 1.0),
)


@dataclass(frozen=True)
class Surge:
    """A crowd arriving at once (a delayed train, coaches): ``share`` of a zone's fans
    spread evenly between ``start_min`` and ``end_min`` before kick-off."""

    share: float
    start_min: float
    end_min: float


def arrival_times(count: int, kickoff_at: float, rng: random.Random, *,
                  curve: tuple[tuple[float, float], ...] = MATCHDAY_CURVE, surge: Surge | None = None) -> list[float]:
    """When each of ``count`` fans reaches the gates (epoch seconds, sorted): drawn from
    ``curve`` (inverse of the piecewise-linear share), ``surge.share`` of them in the surge."""
    pts = sorted(curve, key=lambda p: -p[0])
    in_surge = round(count * surge.share) if surge is not None else 0
    out = []
    for _ in range(count - in_surge):
        u = rng.random() * pts[-1][1]
        for (m0, s0), (m1, s1) in itertools.pairwise(pts):
            if s0 <= u <= s1:
                t = (u - s0) / (s1 - s0) if s1 > s0 else 0.0
                out.append(kickoff_at - 60.0 * (m0 + t * (m1 - m0)))
                break
    if surge is not None:
        for _ in range(in_surge):
            out.append(kickoff_at - 60.0 * rng.uniform(surge.end_min, surge.start_min))
    return sorted(out)
