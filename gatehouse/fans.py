"""Simulated fans for the demo and the drills: a realistic stream of people at each gate.

Most fans show a valid ticket for their own zone and walk through; some come back with a
ticket already used, go to the wrong gate, show a cancelled ticket, hold up garbage, type a
legacy number, or turn away after the turnstile unlocks (no passage: the ticket stays valid).
"""
from __future__ import annotations

import asyncio
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
