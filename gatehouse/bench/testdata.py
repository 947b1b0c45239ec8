"""Generated events for tests, benchmarks and the demo: tickets, zones, keys and scan mixes.

Deterministic for a given seed. Ticket ``i`` (0-based) has id ``i + 1`` and number
``str(100_000_000 + i)``, zone ``i % zones + 1``; every 20th ticket is rotating.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tickets import credential
from tickets.keys import KeyRing, SigningKey, generate_key
from tickets.model import Zone
from tickets.policy import EntryPolicy

EVENT_ID = 2026


@dataclass(frozen=True)
class GeneratedEvent:
    key: SigningKey
    keyring: KeyRing
    zones: list[Zone]
    policies: list[EntryPolicy]
    tickets: int
    valid_from: int
    valid_until: int
    event_id: int = EVENT_ID

    def number(self, i: int) -> str:
        return str(100_000_000 + i)

    def zone_of(self, i: int) -> int:
        return i % len(self.zones) + 1

    def secret_of(self, i: int) -> bytes | None:
        return (i + 1).to_bytes(8, "big") * 2 + b"GHRS" if i % 20 == 0 else None

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """Replica rows in :func:`gate_agent.replica.record_to_row` shape."""
        for i in range(self.tickets):
            yield (i + 1, self.number(i), self.zone_of(i), 1, float(self.valid_from), float(self.valid_until), 0,
                   "valid", self.secret_of(i), "", "")

    def credential_for(self, i: int, *, serial: int = 0) -> str:
        fields = credential.CredentialFields(
            key_id=self.key.key_id, event_id=self.event_id, ticket_id=i + 1, zone_id=self.zone_of(i), policy_id=1,
            valid_from=self.valid_from, valid_until=self.valid_until, serial=serial,
            rotating=self.secret_of(i) is not None,
        )
        return credential.issue(self.key, fields)


def make_event(tickets: int, now: float, *, gates_per_zone: int = 2, zones: int = 4, key_id: int = 1) -> GeneratedEvent:
    """Zones 1..zones; zone z is admitted at gates ``G{2z-1}`` and ``G{2z}`` (two per zone)."""
    key = generate_key(key_id)
    zone_list = [
        Zone(z, f"Zone {z}", frozenset(f"G{(z - 1) * gates_per_zone + g + 1}" for g in range(gates_per_zone)))
        for z in range(1, zones + 1)
    ]
    return GeneratedEvent(
        key=key, keyring=KeyRing([key.verify_key]), zones=zone_list,
        policies=[EntryPolicy.preset(1, "single"), EntryPolicy.preset(2, "reentry")],
        tickets=tickets, valid_from=int(now) - 86_400, valid_until=int(now) + 86_400,
    )


def scan_mix(event: GeneratedEvent, gate_zone: int, count: int, seed: int = 1) -> list[tuple[str, bytes]]:
    """A realistic stream of (label, payload) at a gate of ``gate_zone``.

    60% valid signed QR, 10% repeats of an earlier admit (used), 8% valid legacy numbers,
    5% unknown numbers, 5% forged, 7% wrong gate, 5% malformed.
    """
    rng = random.Random(seed)
    zones = len(event.zones)
    mine = [i for i in range(gate_zone - 1, event.tickets, zones) if event.secret_of(i) is None]
    others = [i for i in range(gate_zone % zones, event.tickets, zones) if event.secret_of(i) is None]
    rng.shuffle(mine)
    fresh = iter(mine)
    admitted: list[bytes] = []
    out: list[tuple[str, bytes]] = []
    for _ in range(count):
        r = rng.random()
        if r < 0.60 or (r < 0.70 and not admitted):
            payload = event.credential_for(next(fresh)).encode()
            admitted.append(payload)
            out.append(("valid", payload))
        elif r < 0.70:
            out.append(("used", rng.choice(admitted)))
        elif r < 0.78:
            out.append(("legacy", event.number(next(fresh)).encode()))
        elif r < 0.83:
            out.append(("unknown", str(900_000_000 + rng.randrange(10**6)).encode()))
        elif r < 0.88:
            text = bytearray(event.credential_for(next(fresh)).encode())
            pos = rng.randrange(10, len(text))
            text[pos] = ord("A") if text[pos] != ord("A") else ord("B")
            out.append(("forged", bytes(text)))
        elif r < 0.95:
            out.append(("wrong_gate", event.credential_for(rng.choice(others)).encode()))
        else:
            out.append(("malformed", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))))
    return out
